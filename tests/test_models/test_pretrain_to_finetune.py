"""Between the stages: a SyncBN pretrain checkpoint loads into the frozen-BN fine-tune model.

Every key must match (strict loading, zero missing / unexpected), the values must arrive
unchanged, and the fine-tune model must really be frozen: BN without gradients and in eval
mode under ``model.train()``, stem + stage 1 without gradients.
"""
import os.path as osp
from typing import Any, Dict

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint
from model_test_utils import single_torch_thread, train_steps  # noqa: F401 (autouse fixture)
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from direct_pretrain.config.paths import final_checkpoint_name
from direct_pretrain.models.layers import SyncBNAnyBackend, convert_to_plain_batch_norm
from direct_pretrain.runtime.safe_load import safe_torch_load

SYNC_BN = dict(type='SyncBNAnyBackend', requires_grad=True)
FROZEN_BN = dict(type='BN', requires_grad=False)
TINY_SWIN = dict(type='DirectSwinTransformer', embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 1, 2, 2),
                 window_size=2)

# name -> (pretrain cfg, fine-tune cfg, prefixes frozen by frozen_stages=1)
PAIRS: Dict[str, Any] = {
    'ResNet': (dict(type='ResNet', depth=18, norm_cfg=SYNC_BN, norm_eval=False, frozen_stages=-1, init_cfg=None),
               dict(type='ResNet', depth=18, norm_cfg=FROZEN_BN, norm_eval=True, frozen_stages=1, init_cfg=None),
               ('conv1.', 'bn1.', 'layer1.')),
    'DirectSwinTransformer': (dict(norm_cfg=SYNC_BN, **TINY_SWIN),
                              dict(norm_cfg=FROZEN_BN, norm_eval=True, frozen_stages=1, **TINY_SWIN),
                              ('patch_embed.', 'stages.0.', 'norm0.')),
    'TimmBackbone': (dict(type='TimmBackbone', model_name='resnet18', norm_cfg=SYNC_BN),
                     dict(type='TimmBackbone', model_name='resnet18', norm_cfg=FROZEN_BN, norm_eval=True,
                          frozen_stages=1), ('model.conv1.', 'model.bn1.', 'model.layer1.')),
}


@pytest.mark.parametrize('name', sorted(PAIRS))
def test_backbone_checkpoint_round_trip_into_frozen_bn_model(name: str, tmp_path) -> None:
    pretrain_cfg, finetune_cfg, frozen_prefixes = PAIRS[name]
    pretrain = MODELS.build(pretrain_cfg)
    assert any(type(m) is SyncBNAnyBackend for m in pretrain.modules())
    train_steps(pretrain)  # statistics and weights move away from their init
    path = tmp_path / 'pretrain.pth'
    torch.save(dict(state_dict=pretrain.state_dict()), path)

    finetune = MODELS.build(finetune_cfg)
    state = safe_torch_load(str(path), map_location='cpu')['state_dict']
    result = finetune.load_state_dict(state, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for key, value in finetune.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0, msg=key)

    finetune.train()
    norms = [m for m in finetune.modules() if isinstance(m, _BatchNorm)]
    assert norms and not any(isinstance(m, SyncBNAnyBackend) for m in norms)
    assert not any(m.training for m in norms)
    assert not any(p.requires_grad for m in norms for p in m.parameters())
    frozen = {k for k, p in finetune.named_parameters() if not p.requires_grad}
    stage_params = {k for k, _ in finetune.named_parameters() if k.startswith(frozen_prefixes)}
    assert stage_params and stage_params <= frozen
    assert any(p.requires_grad for p in finetune.parameters())
    tracked = {k: v.clone() for k, v in finetune.state_dict().items() if 'running' in k}
    train_steps(finetune)
    assert all(torch.equal(finetune.state_dict()[k], v) for k, v in tracked.items())  # statistics stay frozen


def test_revert_for_export_keeps_outputs() -> None:
    model = MODELS.build(PAIRS['ResNet'][0])
    train_steps(model)
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    expected = model(x)
    reverted = convert_to_plain_batch_norm(model)
    assert not any(isinstance(m, SyncBNAnyBackend) for m in reverted.modules())
    for a, b in zip(reverted(x), expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs', 'timm')
PRETRAIN = 'faster-rcnn_timm-resnet18_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py'
FINETUNE = 'faster-rcnn_timm-resnet18_fpn_8xb2-direct-finetune-p1x-1x_coco.py'


def _build_detector(cfg: Config, shrink: bool = False) -> nn.Module:
    model_cfg = cfg.model
    if shrink:  # same structure, fewer channels and RoIs: a CPU-sized training step
        channels = 32
        model_cfg.neck.out_channels = channels
        model_cfg.rpn_head.update(in_channels=channels, feat_channels=channels)
        model_cfg.roi_head.bbox_roi_extractor.out_channels = channels
        model_cfg.roi_head.bbox_head.update(in_channels=channels, conv_out_channels=channels, fc_out_channels=64)
        model_cfg.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=32)
        model_cfg.train_cfg.rcnn.sampler.num = 32
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(model_cfg)


def test_config_pair_detector_checkpoint_loads_strictly(tmp_path) -> None:
    pretrain_cfg = Config.fromfile(osp.join(CONFIG_DIR, PRETRAIN))
    finetune_cfg = Config.fromfile(osp.join(CONFIG_DIR, FINETUNE))
    assert finetune_cfg.pretrain_config == f'configs/timm/{PRETRAIN}'
    # where the pretrain run writes its last checkpoint (default work dir)
    assert finetune_cfg.load_from == f'work_dirs/{osp.splitext(PRETRAIN)[0]}/{final_checkpoint_name(pretrain_cfg)}'
    pretrain = _build_detector(pretrain_cfg)
    finetune = _build_detector(finetune_cfg)
    assert type(pretrain.backbone.model.layer2[0].bn1) is SyncBNAnyBackend
    assert type(finetune.backbone.model.layer2[0].bn1) is nn.BatchNorm2d
    assert pretrain_cfg.model.neck.in_channels == pretrain.backbone.out_channels

    path = tmp_path / final_checkpoint_name(pretrain_cfg)
    torch.save(dict(meta=dict(epoch=pretrain_cfg.train_cfg.max_epochs), state_dict=pretrain.state_dict()), path)
    load_checkpoint(finetune, str(path), map_location='cpu', strict=True)  # raises on any key mismatch
    assert set(finetune.state_dict()) == set(pretrain.state_dict())
    finetune.train()
    assert not any(m.training for m in finetune.backbone.modules() if isinstance(m, _BatchNorm))


def test_pretrain_config_detector_trains_one_step_on_cpu() -> None:
    model = _build_detector(Config.fromfile(osp.join(CONFIG_DIR, PRETRAIN)), shrink=True)
    model.init_weights()
    model.train()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    torch.manual_seed(0)
    data = demo_mm_inputs(batch_size=2, image_shapes=[(3, 64, 64)] * 2, num_items=[2, 2], num_classes=80)
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    losses = model.train_step(data, optim_wrapper)
    assert all(torch.isfinite(v).all() for v in losses.values())
    moved = [k for k, v in model.named_parameters() if not torch.equal(v.detach(), before[k])]
    assert any(k.startswith('backbone.') for k in moved) and any(k.startswith('neck.') for k in moved)
    assert any(k.startswith('roi_head.bbox_head.shared_convs') for k in moved)
    assert int(model.backbone.model.bn1.num_batches_tracked) == 1  # BN in train mode saw the batch
