"""SyncBNAnyBackend against plain BN on the concatenated batch, on real gloo ranks.

The reference is independent of the layer under test: ``nn.BatchNorm1d/2d`` in float64 on
``torch.cat`` of the per-rank batches, with the per-rank losses summed.
"""
import os.path as osp
from typing import Any, Dict, List, Tuple

import pytest
import torch
from forked_cli import ToolRun, run_tools
from mmengine.model import revert_sync_batchnorm as mmengine_revert_sync_batchnorm
from mmengine.model.utils import _BatchNormXd
from model_test_utils import single_torch_thread  # noqa: F401 (autouse fixture)
from torch import nn

from direct_pretrain.models.layers import (SyncBNActAnyBackend, SyncBNAnyBackend, TokenNorm,
                                           convert_to_plain_batch_norm, convert_to_sync_bn_any_backend,
                                           replace_batch_norm)

WORKER = osp.join(osp.dirname(osp.abspath(__file__)), 'sync_bn_worker.py')
WORLD_SIZE = 2
TOL = dict(rtol=1e-5, atol=1e-5)


def _layer_case(sizes: Tuple[int, int], sample_shape: Tuple[int, ...], steps: int, momentum=0.1,
                affine: bool = True, seed: int = 0) -> Dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)
    channels = sample_shape[0]
    view = (1, channels) + (1, ) * (len(sample_shape) - 1)
    scale = torch.rand(channels, generator=gen, dtype=torch.float64).view(view) * 3 + 0.5
    shift = torch.randn(channels, generator=gen, dtype=torch.float64).view(view) * 2

    def batch(n: int) -> torch.Tensor:
        return torch.randn((n, ) + sample_shape, generator=gen, dtype=torch.float64) * scale + shift

    return dict(
        channels=channels, momentum=momentum, affine=affine,
        weight=torch.rand(channels, generator=gen, dtype=torch.float64) + 0.5,
        bias=torch.randn(channels, generator=gen, dtype=torch.float64),
        inputs=[[batch(n) for n in sizes] for _ in range(steps)],
        grads=[[torch.randn((n, ) + sample_shape, generator=gen, dtype=torch.float64) for n in sizes]
               for _ in range(steps)],
        eval_input=batch(3))


LAYER_CASES = {
    'even_4_4': _layer_case((4, 4), (3, 5, 4), steps=2),
    'uneven_3_5': _layer_case((3, 5), (3, 5, 4), steps=2, seed=1),
    'empty_rank_0_4': _layer_case((0, 4), (3, 5, 4), steps=2, seed=2),
    'cumulative_momentum_2_6': _layer_case((2, 6), (3, 4, 4), steps=3, momentum=None, seed=3),
    'vectors_5_3': _layer_case((5, 3), (6, ), steps=2, seed=4),
    'no_affine_4_4': _layer_case((4, 4), (3, 4, 4), steps=1, affine=False, seed=5),
}


@pytest.fixture(scope='module')
def gloo_results(tmp_path_factory) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """Run all cases once on two gloo processes; returns the cases and per-rank results."""
    tmp = tmp_path_factory.mktemp('sync_bn_gloo')
    gen = torch.Generator().manual_seed(7)
    cases = dict(layer=LAYER_CASES,
                 ddp=dict(seed=11, inputs=[torch.randn(4, 3, 6, 6, generator=gen, dtype=torch.float64) * 2 + 1
                                           for _ in range(WORLD_SIZE)]))
    torch.save(cases, tmp / 'cases.pt')
    # each rank its own process, forked from the tool server (the imports paid once)
    runs = run_tools([ToolRun(WORKER, [str(rank), str(WORLD_SIZE), str(tmp / 'init'), str(tmp / 'cases.pt'), str(tmp)],
                              str(tmp)) for rank in range(WORLD_SIZE)], timeout=240)
    for rank, run in enumerate(runs):
        assert run.returncode == 0, f'rank {rank} failed:\n{run.output[-5000:]}'
    return cases, [torch.load(tmp / f'rank{rank}.pt', weights_only=True) for rank in range(WORLD_SIZE)]


def _reference_bn(case: Dict[str, Any], dims: int) -> nn.Module:
    bn_cls = nn.BatchNorm1d if dims in (2, 3) else nn.BatchNorm2d
    bn = bn_cls(case['channels'], momentum=case['momentum'], affine=case['affine']).double()
    if case['affine']:
        with torch.no_grad():
            bn.weight.copy_(case['weight'])
            bn.bias.copy_(case['bias'])
    return bn


@pytest.mark.slow  # two gloo processes
@pytest.mark.parametrize('name', sorted(LAYER_CASES))
def test_gloo_matches_bn_on_concatenated_batch(gloo_results, name: str) -> None:
    cases, results = gloo_results
    case = cases['layer'][name]
    ranks = [result[name] for result in results]
    bn = _reference_bn(case, case['inputs'][0][0].dim())
    for step, (inputs, grads) in enumerate(zip(case['inputs'], case['grads'])):
        sizes = [x.size(0) for x in inputs]
        x = torch.cat(inputs).requires_grad_(True)
        y = bn(x)
        (y * torch.cat(grads)).sum().backward()
        for rank, (out, grad_input) in enumerate(zip(y.detach().split(sizes), x.grad.split(sizes))):
            torch.testing.assert_close(ranks[rank]['steps'][step]['out'], out, **TOL,
                                       msg=f'{name} step {step} rank {rank}: forward output')
            torch.testing.assert_close(ranks[rank]['steps'][step]['grad_input'], grad_input, **TOL,
                                       msg=f'{name} step {step} rank {rank}: input gradient')
        if case['affine']:
            # Parameter gradients are local; data parallelism sums (or averages) them.
            for key, param in (('grad_weight', bn.weight), ('grad_bias', bn.bias)):
                total = sum(r['steps'][step][key] for r in ranks)
                torch.testing.assert_close(total, param.grad, **TOL, msg=f'{name} step {step}: summed {key}')
            bn.weight.grad = None
            bn.bias.grad = None
    for rank in ranks:
        torch.testing.assert_close(rank['running_mean'], bn.running_mean, **TOL)
        torch.testing.assert_close(rank['running_var'], bn.running_var, **TOL)  # unbiased, as torch
        assert int(rank['num_batches_tracked']) == int(bn.num_batches_tracked) == len(case['inputs'])
    bn.eval()
    with torch.no_grad():
        expected_eval = bn(case['eval_input'])
    for rank in ranks:
        torch.testing.assert_close(rank['eval_out'], expected_eval, **TOL)


@pytest.mark.slow  # two gloo processes
def test_gloo_ddp_training_step_matches_single_process(gloo_results) -> None:
    """convert_to_sync_bn_any_backend + DDP on 2x4 images == one process with BN on 8 images."""
    cases, results = gloo_results
    case = cases['ddp']
    torch.manual_seed(case['seed'])
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1)).double()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.cat(case['inputs'])).pow(2).mean().backward()
    optimizer.step()
    expected = model.state_dict()
    for rank, result in enumerate(results):
        assert result['ddp']['bn_type'] == 'SyncBNAnyBackend'
        for key, value in expected.items():
            torch.testing.assert_close(result['ddp']['state'][key], value, **TOL, msg=f'rank {rank}: {key}')
    changed = [k for k, v in expected.items() if v.is_floating_point() and not torch.equal(v, initial[k])]
    assert '1.weight' in changed and '1.running_var' in changed and '0.weight' in changed


@pytest.mark.slow  # two gloo processes
def test_gloo_one_value_per_channel_raises_on_every_rank(gloo_results) -> None:
    _, results = gloo_results
    for result in results:
        assert 'Expected more than 1 value per channel' in result['too_small']


@pytest.mark.parametrize('momentum', [0.1, None])
def test_single_process_is_plain_batch_norm(momentum) -> None:
    """Without a process group the layer is nn.BatchNorm2d, in train and eval mode."""
    torch.manual_seed(0)
    ours, ref = SyncBNAnyBackend(5, momentum=momentum), nn.BatchNorm2d(5, momentum=momentum)
    ours.load_state_dict(ref.state_dict())
    for _ in range(3):
        x = torch.randn(4, 5, 6, 6) * 3 + 1
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)
    torch.testing.assert_close(ours.running_var, ref.running_var, rtol=0, atol=0)
    ours.eval(), ref.eval()
    x = torch.randn(2, 5, 6, 6)
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)
    assert list(ours.state_dict()) == list(ref.state_dict())


def test_input_checks_name_the_problem() -> None:
    bn = SyncBNAnyBackend(4)
    with pytest.raises(ValueError, match='at least 2 dims'):
        bn(torch.randn(4))
    with pytest.raises(ValueError, match='got an input with 3 channels'):
        bn(torch.randn(2, 3, 4, 4))


def _net_with_bns() -> nn.Sequential:
    from timm.layers import BatchNormAct2d
    return nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.SyncBatchNorm(4), nn.Conv2d(4, 4, 1),
                         BatchNormAct2d(4, act_layer=nn.ReLU))


def test_convert_and_revert_share_tensors_and_keep_activation() -> None:
    from timm.layers import BatchNormAct2d
    torch.manual_seed(0)
    net = _net_with_bns().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-1, 1)
                m.bias.uniform_(-1, 1)
    net[1].weight.requires_grad_(False)
    x = torch.randn(2, 3, 5, 5)
    expected = net(x)
    weights = [net[i].weight for i in (1, 2, 4)]
    converted = convert_to_sync_bn_any_backend(net)
    assert [type(converted[i]) for i in (1, 2, 4)] == [SyncBNAnyBackend, SyncBNAnyBackend,
                                                      SyncBNActAnyBackend]
    assert all(converted[i].weight is w for i, w in zip((1, 2, 4), weights))
    assert not converted[1].weight.requires_grad and not converted[1].training
    torch.testing.assert_close(converted(x), expected, rtol=0, atol=0)  # the ReLU is still applied
    assert (converted(x) >= 0).all()

    reverted = convert_to_plain_batch_norm(converted)
    assert [type(reverted[i]) for i in (1, 2, 4)] == [_BatchNormXd, _BatchNormXd, BatchNormAct2d]
    assert all(reverted[i].weight is w for i, w in zip((1, 2, 4), weights))
    torch.testing.assert_close(reverted(x), expected, rtol=0, atol=0)
    assert set(reverted.state_dict()) == set(_net_with_bns().state_dict())


class _DoubledBN(nn.BatchNorm2d):
    """A BN subclass whose forward does something extra: no conversion may swap it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * 2


@pytest.mark.parametrize('convert', [
    convert_to_sync_bn_any_backend, convert_to_plain_batch_norm,
    lambda net: replace_batch_norm(net, dict(type='SyncBNAnyBackend'))
])
def test_conversions_leave_a_bn_with_its_own_forward_alone(convert, caplog) -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Sequential(_DoubledBN(4)), nn.SyncBatchNorm(4))
    with caplog.at_level('WARNING', logger='direct_pretrain.models.layers.sync_bn_any_backend'):
        net = convert(net)
    assert type(net[1][0]) is _DoubledBN
    assert type(net[2]) in (SyncBNAnyBackend, _BatchNormXd)
    assert '1.0 (_DoubledBN) left unchanged' in caplog.text


def test_convert_moves_an_existing_layer_to_the_requested_group() -> None:
    layer = SyncBNAnyBackend(4, momentum=0.3)
    group = object()  # stands for a ProcessGroup: only stored, never used in one process
    converted = convert_to_sync_bn_any_backend(nn.Sequential(layer), process_group=group, prefer_torch_kernel=False)
    assert converted[0].process_group is group and converted[0].prefer_torch_kernel is False
    assert converted[0].momentum == 0.3 and converted[0].weight is layer.weight
    assert converted[0].running_var is layer.running_var


def test_mmengine_revert_leaves_our_layer_as_plain_bn() -> None:
    """The non-distributed Runner's revert keeps the layer, which then computes plain BN."""
    net = nn.Sequential(nn.Conv2d(3, 4, 1), SyncBNAnyBackend(4), nn.SyncBatchNorm(4))
    net = mmengine_revert_sync_batchnorm(net)
    assert type(net[1]) is SyncBNAnyBackend and type(net[2]) is _BatchNormXd
    x = torch.randn(3, 3, 4, 4)
    torch.testing.assert_close(net[1](x[:, :1].repeat(1, 4, 1, 1)), nn.BatchNorm2d(4)(x[:, :1].repeat(1, 4, 1, 1)))


def test_replace_batch_norm_follows_norm_cfg() -> None:
    from timm.layers import BatchNormAct2d
    net = _net_with_bns()
    net = replace_batch_norm(net, dict(type='SyncBNAnyBackend', momentum=0.01))
    assert [type(net[i]) for i in (1, 2, 4)] == [SyncBNAnyBackend, SyncBNAnyBackend,
                                                SyncBNActAnyBackend]
    assert all(net[i].momentum == 0.01 for i in (1, 2, 4))
    net = replace_batch_norm(net, dict(type='BN', requires_grad=False))
    assert [type(net[i]) for i in (1, 2, 4)] == [_BatchNormXd, _BatchNormXd, BatchNormAct2d]
    assert not any(p.requires_grad for i in (1, 2, 4) for p in net[i].parameters())
    assert net[0].weight.requires_grad
    with pytest.raises(TypeError, match="'GN'.*not a plain BatchNorm"):
        replace_batch_norm(net, dict(type='GN', num_groups=2))
    with pytest.raises(TypeError, match='SyncBNAnyBackend'):
        replace_batch_norm(_net_with_bns(), dict(type='SyncBN'))


@pytest.mark.parametrize('inner', [dict(type='BN'), dict(type='SyncBNAnyBackend'), dict(type='BN1d')])
def test_token_norm_is_batch_norm_over_all_tokens(inner) -> None:
    from mmcv.cnn import build_norm_layer
    _, norm = build_norm_layer(dict(type='TokenNorm', norm_cfg=inner), 6)
    ref = nn.BatchNorm1d(6)
    tokens = torch.randn(2, 10, 6) * 2 + 1
    expected = ref(tokens.reshape(-1, 6)).reshape(2, 10, 6)
    torch.testing.assert_close(norm(tokens), expected)
    torch.testing.assert_close(norm.norm.running_var, ref.running_var)


def test_token_norm_applies_layer_norm_directly_and_checks_nesting() -> None:
    norm = TokenNorm(6, dict(type='LN'))
    tokens = torch.randn(2, 10, 6)
    torch.testing.assert_close(norm(tokens), nn.functional.layer_norm(tokens, (6, )))
    with pytest.raises(TypeError, match='cannot wrap another TokenNorm'):
        TokenNorm(6, dict(type='TokenNorm', norm_cfg=dict(type='BN')))
    with pytest.raises(TypeError, match='put requires_grad on the TokenNorm config'):
        TokenNorm(6, dict(type='BN', requires_grad=False))
