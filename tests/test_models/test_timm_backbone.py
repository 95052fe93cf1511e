"""TimmBackbone: timm models as mmdet backbones, offline, with BN swap and frozen stages."""
import pytest
import timm  # a hard dependency of the test environment (tools/setup_env.sh installs it)
import torch
from model_test_utils import assert_pyramid, changed, single_torch_thread, train_steps  # noqa: F401
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS
from direct_pretrain.errors import UnsafeCheckpointError
from direct_pretrain.models.backbones import TimmBackbone
from direct_pretrain.models.layers import SyncBNActAnyBackend, SyncBNAnyBackend


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """Any attempt of timm to fetch weights fails the test instead of reaching the network."""

    def refuse(*args, **kwargs):
        raise AssertionError(f'timm tried to download weights: {args}')

    import timm.models._builder as builder
    for name in ('load_state_dict_from_url', 'load_state_dict_from_hf', 'download_cached_file'):
        if hasattr(builder, name):
            monkeypatch.setattr(builder, name, refuse)
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')


def test_resnet18_pyramid_channels_and_sync_bn_train_step() -> None:
    model = MODELS.build(dict(type='TimmBackbone', model_name='resnet18',
                              norm_cfg=dict(type='SyncBNAnyBackend', requires_grad=True)))
    assert isinstance(model, TimmBackbone)
    assert model.out_indices == (1, 2, 3, 4)  # default: every level of stride >= 4
    assert model.out_channels == [64, 128, 256, 512] and model.out_strides == [4, 8, 16, 32]
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert norms and all(type(m) is SyncBNAnyBackend for m in norms)
    model.eval()
    outs = model(torch.zeros(1, 3, 64, 64))
    assert isinstance(outs, tuple)
    assert_pyramid(outs, model.out_channels)
    before = train_steps(model, steps=2)  # timm zero-inits the last BN of each block, too
    moved = changed(model, before)
    assert all(v for k, v in moved.items() if 'conv' in k) and sum(moved.values()) >= 0.95 * len(moved)


def test_fused_norm_act_layers_keep_their_activation() -> None:
    torch.manual_seed(0)
    plain = TimmBackbone('efficientnet_b0').eval()
    synced = TimmBackbone('efficientnet_b0', norm_cfg=dict(type='SyncBNAnyBackend'))
    synced.load_state_dict(plain.state_dict())
    synced.eval()
    fused = [m for m in synced.modules() if isinstance(m, SyncBNActAnyBackend)]
    assert fused and not any(type(m).__name__ == 'BatchNormAct2d' for m in synced.modules())
    x = torch.randn(1, 3, 64, 64)
    for a, b in zip(synced(x), plain(x)):
        torch.testing.assert_close(a, b)
    assert synced.out_channels == [24, 40, 112, 320] and synced.out_strides == [4, 8, 16, 32]


def test_frozen_stages_follow_mmdet_convention() -> None:
    model = TimmBackbone('resnet18', frozen_stages=1, norm_cfg=dict(type='BN', requires_grad=True))
    model.train()
    grads = {k: p.requires_grad for k, p in model.named_parameters()}
    assert not grads['model.conv1.weight'] and not grads['model.layer1.1.bn2.weight']
    assert grads['model.layer2.0.conv1.weight'] and grads['model.layer4.1.bn2.bias']
    assert not model.model.bn1.training and not model.model.layer1[0].bn1.training
    assert model.model.layer2[0].bn1.training and model.model.training
    before = train_steps(model, steps=2)
    moved = changed(model, before)
    assert not moved['model.layer1.0.conv1.weight'] and moved['model.layer2.0.conv1.weight']
    stem_only = TimmBackbone('resnet18', frozen_stages=0)
    assert [k for k, p in stem_only.named_parameters() if not p.requires_grad] == [
        'model.conv1.weight', 'model.bn1.weight', 'model.bn1.bias']


def test_norm_eval_keeps_all_bn_in_eval_mode() -> None:
    model = TimmBackbone('resnet18', norm_eval=True, norm_cfg=dict(type='BN', requires_grad=False))
    model.train()
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert not any(m.training for m in norms)
    assert not any(p.requires_grad for m in norms for p in m.parameters())
    assert model.model.layer3[0].conv1.weight.requires_grad


def test_channels_last_models_return_nchw() -> None:
    model = TimmBackbone('swin_tiny_patch4_window7_224', model_kwargs=dict(
        img_size=64, embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), window_size=2))
    assert model.out_channels == [16, 32, 64, 128]
    assert_pyramid(model.eval()(torch.zeros(1, 3, 64, 64)), model.out_channels)


def test_explicit_out_indices_and_convnext_stem() -> None:
    model = TimmBackbone('convnext_atto', out_indices=(1, 3), frozen_stages=0)
    assert model.out_channels == [80, 320] and model.out_strides == [8, 32]
    assert [o.shape[1:] for o in model.eval()(torch.zeros(1, 3, 64, 64))] == [(80, 8, 8), (320, 2, 2)]
    assert sorted(k for k, p in model.named_parameters() if not p.requires_grad) == [
        'model.stem_0.bias', 'model.stem_0.weight', 'model.stem_1.bias', 'model.stem_1.weight']


def test_local_checkpoint_loads_with_safe_loader_and_survives_init_weights(tmp_path) -> None:
    torch.manual_seed(3)
    source = timm.create_model('resnet18', pretrained=False)
    with torch.no_grad():
        source.layer4[1].bn2.running_var.uniform_(0.5, 2.0)
    path = tmp_path / 'resnet18.pth'
    torch.save(dict(state_dict=source.state_dict()), path)
    model = TimmBackbone('resnet18', checkpoint_path=str(path), norm_cfg=dict(type='SyncBNAnyBackend'))
    model.init_weights()
    assert 'state_dict' not in model.model.pretrained_cfg  # no second copy of the weights
    for key in ('conv1.weight', 'layer4.1.bn2.running_var', 'layer2.0.downsample.0.weight'):
        torch.testing.assert_close(model.model.state_dict()[key], source.state_dict()[key], rtol=0, atol=0)

    incomplete = {k: v for k, v in source.state_dict().items() if k != 'layer3.0.conv2.weight'}
    torch.save(incomplete, tmp_path / 'incomplete.pth')
    with pytest.raises(ValueError, match=r"lacks 1 weights.*layer3\.0\.conv2\.weight"):
        TimmBackbone('resnet18', checkpoint_path=str(tmp_path / 'incomplete.pth'))

    torch.save(dict(state_dict=source.state_dict(), hook=nn.ReLU()), tmp_path / 'pickled_module.pth')
    with pytest.raises(UnsafeCheckpointError):
        TimmBackbone('resnet18', checkpoint_path=str(tmp_path / 'pickled_module.pth'))


@pytest.mark.parametrize('kwargs, message', [
    (dict(pretrained=True, checkpoint_path='x.pth'), 'set only one'),
    (dict(model_kwargs=dict(features_only=False)), "must not set \\['features_only'\\]"),
    (dict(frozen_stages=5), 'has 4 stages'),
    (dict(norm_cfg=dict(type='GN', num_groups=2)), 'not a plain BatchNorm'),
])
def test_errors_name_the_value_and_the_fix(kwargs, message) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        TimmBackbone('resnet18', **kwargs)
