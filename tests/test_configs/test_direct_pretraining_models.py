"""Every direct pre-training config the package defines builds a detector that trains and
infers on CPU (the comparison arms are mmdet's own configs, checked equal to them in
``test_direct_pretraining_recipe``, and not trained again here), and
every pretrain checkpoint loads into its fine-tune model with nothing missing or left over.

Models are built once per distinct model config (module cache in ``direct_pretraining_zoo``)
at full size; only the number of sampled proposals/RoIs is capped, and steps run on one
64x64 image with two boxes (and masks).
"""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.runner.checkpoint import load_state_dict
from torch.nn.modules.batchnorm import _BatchNorm

from direct_pretrain.engine.hooks.load_from_check_hook import compare_state_dicts
from direct_pretraining_zoo import PACKAGE_CONFIGS, PAIRS, built, built_backbone_norms, fake_batch, load_cfg

pytestmark = pytest.mark.slow  # full-size detectors, a training step each

FINETUNES = {p.finetune: p for p in PAIRS}
PRETRAINS = {p.pretrain: p for p in PAIRS}


@pytest.fixture(autouse=True)
def single_torch_thread():
    """One intra-op thread: the 2 shared cores make multi-threaded tiny steps several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def model_of():
    """``built(name)`` for a test that changes the model (trains it, loads into it): the instances
    are shared by every test of the session, so each is put back as it was after the test."""
    taken = []

    def take(name):
        model = built(name)
        taken.append((model, {k: v.detach().clone() for k, v in model.state_dict().items()}, model.training))
        return model

    yield take
    for model, state, training in reversed(taken):
        model.load_state_dict(state)
        model.train(training)


def cpu_optim_wrapper(model, name):
    """The config's optimizer and paramwise settings; AMP (CUDA only) becomes the plain wrapper."""
    cfg = copy.deepcopy(load_cfg(name).optim_wrapper)
    if cfg.get('type') == 'AmpOptimWrapper':
        cfg.type = 'OptimWrapper'
        cfg.pop('loss_scale', None)
    return build_optim_wrapper(model, cfg)


def backbone_bn(model):
    return {n: m for n, m in model.backbone.named_modules() if isinstance(m, _BatchNorm)}


@pytest.mark.parametrize('name', PACKAGE_CONFIGS)
def test_one_train_step_and_one_inference_step(name, model_of):
    model = model_of(name)
    with_mask = bool(getattr(model, 'with_mask', False))
    data = fake_batch(with_mask=with_mask)
    optim_wrapper = cpu_optim_wrapper(model, name)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}

    model.train()
    losses = model.train_step(copy.deepcopy(data), optim_wrapper)
    assert losses and all(torch.isfinite(v).all() for v in losses.values()), losses
    if with_mask:
        assert 'loss_mask' in losses
    after = model.state_dict()
    moved = {k for k, v in after.items() if not torch.equal(v, before[k])}
    assert any(k.startswith('backbone.') for k in moved) and any(not k.startswith('backbone.') for k in moved)

    if name in FINETUNES and not FINETUNES[name].swin:
        # Frozen for real in a training step: stem + stage 1 weights, and every backbone BN's
        # affine and running statistics (requires_grad False, eval mode).
        frozen = [k for k in before if k.startswith(('backbone.conv1.', 'backbone.bn1.', 'backbone.layer1.'))]
        bn_state = [f'backbone.{n}.{s}' for n in backbone_bn(model)
                    for s in ('weight', 'bias', 'running_mean', 'running_var')]
        assert len(frozen) > 50 and len(bn_state) == 4 * 53
        assert not moved & set(frozen + bn_state)
    elif name in PRETRAINS and not PRETRAINS[name].swin:
        # From scratch: nothing frozen, BN statistics updated in train mode.
        assert {'backbone.conv1.weight', 'backbone.layer1.0.conv1.weight', 'backbone.bn1.running_mean',
                'backbone.layer4.2.bn3.running_var'} <= moved

    model.eval()
    with torch.no_grad():
        results = model.test_step(copy.deepcopy(data))
    assert len(results) == 1
    pred = results[0].pred_instances
    assert pred.bboxes.shape[1:] == (4, ) and len(pred.scores) == len(pred.labels) == len(pred.bboxes)
    if with_mask:
        assert pred.masks.shape[1:] == (64, 64) and len(pred.masks) == len(pred.bboxes)


@pytest.mark.parametrize('pair', PAIRS, ids=[p.name for p in PAIRS])
def test_built_models_follow_the_recipe(pair):
    pretrain, finetune = built(pair.pretrain), built(pair.finetune)
    if pair.swin:
        assert built_backbone_norms(pair.pretrain) == built_backbone_norms(pair.finetune) == ('LayerNorm', )
        assert pretrain.backbone.frozen_stages == finetune.backbone.frozen_stages == -1
        return
    # Pretrain: synchronized BN (reverted to BN for this single process), all trainable.
    assert built_backbone_norms(pair.pretrain) == ('SyncBNAnyBackend', )
    assert pretrain.backbone.frozen_stages == -1 and pretrain.backbone.norm_eval is False
    assert all(p.requires_grad for p in pretrain.parameters())
    # Fine-tune: plain BN, no grad, kept in eval mode by train(); stem + stage 1 frozen.
    assert built_backbone_norms(pair.finetune) == ('BatchNorm2d', )
    assert finetune.backbone.frozen_stages == 1 and finetune.backbone.norm_eval is True
    finetune.train()
    for bn in backbone_bn(finetune).values():
        assert not bn.training and not bn.weight.requires_grad and not bn.bias.requires_grad
    frozen = [p for n, p in finetune.backbone.named_parameters() if n.startswith(('conv1.', 'layer1.'))]
    assert frozen and not any(p.requires_grad for p in frozen)
    assert finetune.backbone.layer2[0].conv1.weight.requires_grad


@pytest.mark.parametrize('pair', PAIRS, ids=[p.name for p in PAIRS])
def test_pretrain_state_dict_loads_into_the_finetune_model(pair, model_of):
    """What LoadFromCheckHook checks at the start of the fine-tune: every key, every shape."""
    pretrain, finetune = built(pair.pretrain), model_of(pair.finetune)
    assert pretrain is not finetune
    state = {k: v.detach().clone() for k, v in pretrain.state_dict().items()}
    load_state_dict(finetune, state, strict=True)  # raises on missing/unexpected/mismatched keys
    report = compare_state_dicts(finetune.state_dict(), state)
    for bucket in ('missing', 'allowed_missing', 'unexpected', 'shape_mismatch', 'value_mismatch'):
        assert report[bucket] == [], (bucket, report[bucket][:5])
    assert len(report['equal']) == len(state) > 200
