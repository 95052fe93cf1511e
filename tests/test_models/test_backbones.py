"""Direct-pretrain backbones: registry, feature shapes, random init, one CPU training step."""
import pytest
import torch
from mmcv.cnn import build_norm_layer
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import DefaultScope
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from direct_pretrain.models.backbones import DirectSwinTransformer
from direct_pretrain.models.layers import SyncBNAnyBackend, TokenNorm
from mmdet.models.backbones import SwinTransformer
from mmdet.registry import MODELS
from model_test_utils import assert_pyramid, changed, single_torch_thread  # noqa: F401 (autouse fixture)
from model_test_utils import train_steps as train_one_step

SYNC_BN = dict(type='SyncBNAnyBackend', requires_grad=True)
FROZEN_BN = dict(type='BN', requires_grad=False)


@pytest.mark.parametrize('registry', [MODELS, MMENGINE_MODELS], ids=['mmdet', 'mmengine-root'])
@pytest.mark.parametrize('name, cls', [('SyncBNAnyBackend', SyncBNAnyBackend), ('TokenNorm', TokenNorm)])
def test_norm_types_resolve_with_and_without_default_scope(registry, name, cls) -> None:
    # The root lookup is what mmcv's build_norm_layer does when no default scope is set.
    assert registry.get(name) is cls


@pytest.mark.parametrize('scope', ['mmdet', None])
def test_sync_bn_inside_stock_mmdet_modules(scope, monkeypatch) -> None:
    """norm_cfg selects the layer in mmdet's ResNet, FPN and conv box head; names stay 'bn'."""
    if scope is None:  # as in a script that builds modules without a Runner or init_default_scope
        monkeypatch.setattr(DefaultScope, 'get_current_instance', classmethod(lambda cls: None))
    with DefaultScope.overwrite_default_scope(scope):
        name, layer = build_norm_layer(dict(type='SyncBNAnyBackend'), 8, postfix=1)
        assert name == 'bn1' and isinstance(layer, SyncBNAnyBackend)
        resnet = MODELS.build(dict(type='ResNet', depth=18, norm_cfg=SYNC_BN, init_cfg=None))
        fpn = MODELS.build(dict(type='FPN', in_channels=[64, 128], out_channels=16, num_outs=2, norm_cfg=SYNC_BN))
        head = MODELS.build(dict(type='Shared4Conv1FCBBoxHead', in_channels=16, conv_out_channels=16,
                                 fc_out_channels=32, roi_feat_size=7, num_classes=3, norm_cfg=SYNC_BN))
    for module in (resnet, fpn, head):
        norms = [m for m in module.modules() if isinstance(m, _BatchNorm)]
        assert norms and all(type(m) is SyncBNAnyBackend for m in norms)
    bn_resnet = MODELS.build(dict(type='ResNet', depth=18, norm_cfg=dict(type='BN'), init_cfg=None))
    assert list(resnet.state_dict()) == list(bn_resnet.state_dict())


def test_from_scratch_resnet_trains_with_sync_bn() -> None:
    """The zoo's pretrain backbone: mmdet's ResNet, random init, nothing frozen, BN in train mode."""
    model = MODELS.build(dict(type='ResNet', depth=18, norm_cfg=SYNC_BN, norm_eval=False, frozen_stages=-1,
                              init_cfg=None))
    model.init_weights()
    model.eval()
    assert_pyramid(model(torch.zeros(1, 3, 64, 64)), [64, 128, 256, 512])
    before = train_one_step(model, steps=2)
    assert all(m.training for m in model.modules() if isinstance(m, _BatchNorm))
    moved = changed(model, before)
    assert all(v for k, v in moved.items() if 'conv' in k), [k for k, v in moved.items() if not v]
    assert int(model.bn1.num_batches_tracked) == 2


def test_published_swin_t_settings_build_as_mmdet_swin() -> None:
    """Build-only check of the published Swin-T: same module and keys as mmdet's Swin."""
    ours = MODELS.build(dict(type='DirectSwinTransformer', norm_cfg=dict(type='LN')))
    stock = SwinTransformer(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7,
                            drop_path_rate=0.2, use_abs_pos_embed=False, patch_norm=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in stock.state_dict().items()}
    assert ours.out_channels == [96, 192, 384, 768]
    assert not ours.use_abs_pos_embed and ours.patch_embed.norm is not None
    assert [s.blocks[0].attn.w_msa.num_heads for s in ours.stages] == [3, 6, 12, 24]
    assert ours.stages[0].blocks[0].attn.w_msa.window_size == (7, 7)
    assert ours.stages[3].blocks[1].ffn.dropout_layer.drop_prob == pytest.approx(0.2)
    assert 27e6 < sum(p.numel() for p in ours.parameters()) < 28.5e6
    assert not any(isinstance(m, (TokenNorm, _BatchNorm)) for m in ours.modules())
    ours.init_weights()
    linear = ours.stages[2].blocks[0].ffn.layers[0][0].weight
    assert linear.std().item() == pytest.approx(0.02, rel=0.1)
    table = ours.stages[0].blocks[0].attn.w_msa.relative_position_bias_table
    assert table.std().item() == pytest.approx(0.02, rel=0.2)  # mmdet's own init leaves it at zero
    norm = ours.stages[1].blocks[0].norm1
    assert torch.equal(norm.weight, torch.ones_like(norm.weight))
    assert torch.equal(norm.bias, torch.zeros_like(norm.bias))


def tiny_swin(norm_cfg: dict, **kwargs) -> DirectSwinTransformer:
    return MODELS.build(dict(type='DirectSwinTransformer', norm_cfg=norm_cfg, embed_dims=16, depths=(2, 2, 2, 2),
                             num_heads=(1, 1, 2, 2), window_size=2, **kwargs))


def test_swin_with_sync_bn_tokens_shapes_and_train_step() -> None:
    model = tiny_swin(SYNC_BN)
    model.init_weights()
    token_norms = [m for m in model.modules() if isinstance(m, TokenNorm)]
    # 2 per block, patch embed, 3 patch mergings, 4 outputs
    assert len(token_norms) == 2 * 8 + 1 + 3 + 4
    assert all(type(m.norm) is SyncBNAnyBackend for m in token_norms)
    assert not any(isinstance(m, nn.LayerNorm) for m in model.modules())
    model.eval()
    assert_pyramid(model(torch.zeros(1, 3, 64, 64)), [16, 32, 64, 128])
    before = train_one_step(model)
    moved = changed(model, before)
    assert moved['patch_embed.norm.norm.weight'] and moved['stages.3.blocks.1.norm2.norm.bias']
    assert sum(moved.values()) >= 0.95 * len(moved)
    assert int(model.norm3.norm.num_batches_tracked) == 1


def test_swin_with_layer_norm_tiny_train_step() -> None:
    model = tiny_swin(dict(type='LN'))
    model.init_weights()
    assert not any(isinstance(m, TokenNorm) for m in model.modules())
    model.eval()
    assert_pyramid(model(torch.zeros(1, 3, 64, 64)), model.out_channels)
    moved = changed(model, train_one_step(model))
    # LayerNorm gains near 1.0 may not move visibly in float32 after one small step.
    assert moved['patch_embed.projection.weight'] and moved['stages.3.blocks.1.ffn.layers.1.weight']
    assert sum(moved.values()) >= 0.9 * len(moved)


def test_swin_fine_tune_mode_freezes_bn_and_stages() -> None:
    model = tiny_swin(FROZEN_BN, norm_eval=True, frozen_stages=1)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and not any(m.training for m in bns)
    assert not any(p.requires_grad for m in bns for p in m.parameters())
    assert not any(p.requires_grad for p in model.patch_embed.parameters())
    assert not any(p.requires_grad for p in model.stages[0].parameters())
    assert model.stages[1].blocks[0].attn.w_msa.qkv.weight.requires_grad
    before = train_one_step(model)
    moved = changed(model, before)
    assert not moved['stages.0.blocks.0.attn.w_msa.qkv.weight'] and moved['stages.1.blocks.0.attn.w_msa.qkv.weight']


def test_swin_requires_a_norm_choice() -> None:
    with pytest.raises(TypeError, match='norm_cfg=dict'):
        DirectSwinTransformer(norm_cfg='LN')
