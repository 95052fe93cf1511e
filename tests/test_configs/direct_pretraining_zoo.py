"""The published recipe and the model zoo as data, and cached loaders for their tests.

Imported by the ``test_direct_pretraining_*`` modules, not collected. This is the one
statement of the published recipe (arXiv 2106.03112 and its release, as summarised in
``shared/reference/recipe.md``) in the test suite: :data:`RECIPE` holds the values common
to every detector, :data:`PAIRS` the per-detector ones; the resolved configs are checked
against them and no test restates a recipe value. Every config under
``configs/direct_pretraining/`` appears here exactly once.
"""
import copy
import functools
import os.path as osp
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import mmdet
import torch
from mmengine.config import Config
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from dp_test_utils import REPO_ROOT

__all__ = ['CONFIG_DIR', 'MMDET_CONFIGS', 'RECIPE', 'Pair', 'PAIRS', 'ARMS', 'ALL_CONFIGS', 'PACKAGE_CONFIGS',
           'PERGPU_BN', 'plain', 'load_cfg', 'built', 'built_backbone_norms', 'shrink_sampling', 'fake_batch']

CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'direct_pretraining')
MMDET_CONFIGS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')  # what 'mmdet::' resolves to

R50_4CONV = 'Shared4Conv1FCBBoxHead'

# The published recipe, values shared by every detector (per-detector values: PAIRS).
RECIPE = dict(
    pretrain=dict(
        scale=(448, 448), crop_size=(448, 448), ratio_range=(0.8, 1.2), flip_prob=0.5,
        gpus=8, images_per_gpu=8, repeat=4, ann_file='annotations/instances_train2017.json',
        warmup_start_factor=0.01,
        sgd=dict(type='SGD', momentum=0.9, weight_decay=1e-4), sgd_paramwise=dict(norm_decay_mult=0.),
        norm_cfg=dict(type='SyncBNAnyBackend', requires_grad=True),
        published_norm_cfg=dict(type='BN', requires_grad=True),  # the release: per-GPU BN (the *-pergpu-bn configs)
        adamw=dict(type='AdamW', betas=(0.9, 0.999), weight_decay=0.05),
        swin_backbone=dict(embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7,
                           drop_path_rate=0.2, use_abs_pos_embed=False, patch_norm=True),
        swin_neck_in_channels=[96, 192, 384, 768],
        head_conv_out_channels=256),
    finetune=dict(
        scale=(1333, 800), gpus=8, images_per_gpu=2, flip_prob=0.5, epochs=12, milestones=[8, 11],
        warmup_iters=500, warmup_start_factor=0.001,
        sgd=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
        adamw=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
        norm_cfg=dict(type='BN', requires_grad=False), frozen_stages=1),
    swin_decay_exclusions={k: dict(decay_mult=0.) for k in ('absolute_pos_embed', 'relative_position_bias_table',
                                                            'norm')},
)
CASCADE_HEADS = ('Shared2FCBBoxHead', ) * 3


@dataclass(frozen=True)
class Pair:
    """One pretrain -> finetune pair and what its configs must say."""
    name: str
    pretrain: str
    finetune: str
    detector: str
    bbox_head: Tuple[str, ...]  # RoI box head type(s); () for single-stage
    with_mask: bool
    swin: bool
    pretrain_lr: float
    pretrain_warmup: int
    pretrain_epochs: int
    published: str  # COCO val bbox[/mask] AP, as cited in the README

    @property
    def checkpoint(self) -> str:
        """The file the pretrain run writes last, relative to the repository root."""
        return f'work_dirs/{osp.splitext(self.pretrain)[0]}/epoch_{self.pretrain_epochs}.pth'


PAIRS = (
    Pair('retinanet', 'retinanet_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py',
         'retinanet_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py', 'RetinaNet', (), False, False,
         0.04, 1000, 12, '37.1'),
    Pair('faster', 'faster-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py',
         'faster-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py', 'FasterRCNN', (R50_4CONV, ), False, False,
         0.08, 500, 12, '39.3'),
    Pair('cascade', 'cascade-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py',
         'cascade-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py', 'CascadeRCNN', CASCADE_HEADS, False, False,
         0.08, 500, 12, '41.5'),
    Pair('mask-p1x', 'mask-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py',
         'mask-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py', 'MaskRCNN', (R50_4CONV, ), True, False,
         0.08, 500, 12, '40.0 / 35.8'),
    Pair('mask-p3x', 'mask-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p3x_coco.py',
         'mask-rcnn_r50_fpn_8xb2-direct-finetune-p3x-1x_coco.py', 'MaskRCNN', (R50_4CONV, ), True, False,
         0.08, 500, 36, '41.5 / 37.0'),
    Pair('swin-p1x', 'mask-rcnn_swin-t-p4-w7_fpn_amp_8xb8-direct-pretrain-448-p1x_coco.py',
         'mask-rcnn_swin-t-p4-w7_fpn_amp_8xb2-direct-finetune-p1x-1x_coco.py', 'MaskRCNN', (R50_4CONV, ), True,
         True, 4e-4, 500, 12, '45.0 / 40.5'),
    Pair('swin-p3x', 'mask-rcnn_swin-t-p4-w7_fpn_amp_8xb8-direct-pretrain-448-p3x_coco.py',
         'mask-rcnn_swin-t-p4-w7_fpn_amp_8xb2-direct-finetune-p3x-1x_coco.py', 'MaskRCNN', (R50_4CONV, ), True,
         True, 4e-4, 500, 36, '46.9 / 41.9'),
)

# Comparison arms: config here -> the mmdet stock config it must equal (+ custom_imports).
ARMS: Dict[str, str] = {
    'retinanet_r50_fpn_imagenet-1x_coco.py': 'retinanet/retinanet_r50_fpn_1x_coco.py',
    'faster-rcnn_r50_fpn_imagenet-1x_coco.py': 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'cascade-rcnn_r50_fpn_imagenet-1x_coco.py': 'cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
    'mask-rcnn_r50_fpn_imagenet-1x_coco.py': 'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    'mask-rcnn_swin-t-p4-w7_fpn_imagenet-1x_coco.py': 'swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
    'faster-rcnn_r50-scratch_fpn_gn-all_6x_coco.py': 'scratch/faster-rcnn_r50-scratch_fpn_gn-all_6x_coco.py',
    'mask-rcnn_r50-scratch_fpn_gn-all_6x_coco.py': 'scratch/mask-rcnn_r50-scratch_fpn_gn-all_6x_coco.py',
}

PACKAGE_CONFIGS = tuple(sorted({p.pretrain for p in PAIRS} | {p.finetune for p in PAIRS}))  # defined here

# The published per-GPU BN setting: variant -> the SyncBN pretrain config it equals but for the backbone norm.
PERGPU_BN: Dict[str, str] = {
    p.pretrain.replace('_syncbn_8xb8', '_8xb8').replace('_coco.py', '-pergpu-bn_coco.py'): p.pretrain
    for p in PAIRS if not p.swin
}
ALL_CONFIGS = tuple(sorted(set(PACKAGE_CONFIGS) | set(ARMS) | set(PERGPU_BN)))


def plain(obj):
    """``obj`` as plain dicts/lists without the ``_scope_`` keys that ``mmdet::`` bases add."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items() if k != '_scope_'}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    return obj


@functools.lru_cache(maxsize=None)
def load_cfg(name: str) -> Config:
    """``Config.fromfile`` of a config in this folder (cached: mmdet:: lookups are slow).

    Callers must not modify the returned config; deep-copy what they change.
    """
    return Config.fromfile(osp.join(CONFIG_DIR, name))


def shrink_sampling(node) -> None:
    """Cap RPN/RoI sample and proposal counts in a train_cfg/test_cfg, in place.

    Only *how many* proposals and RoIs a step processes changes - never a layer - so
    that one CPU training step of an R-50 detector takes ~1 s instead of ~4 s.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'sampler' and isinstance(value, dict) and 'num' in value:
                value['num'] = min(value['num'], 32)
            elif key == 'max_per_img' and isinstance(value, int):
                node[key] = min(value, 50)
            elif key == 'nms_pre' and isinstance(value, int):
                node[key] = min(value, 200)
            else:
                shrink_sampling(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            shrink_sampling(value)


def _model_key(cfg: Config) -> str:
    return repr(cfg.model.to_dict())


_MODELS: Dict[str, torch.nn.Module] = {}
_BUILT_NORMS: Dict[str, Tuple[str, ...]] = {}


def built(name: str) -> torch.nn.Module:
    """The detector of config ``name``, built once per distinct model config.

    SyncBN is reverted to BN (single process). Weights are initialised with the config's
    own ``init_cfg`` except that ``Pretrained`` backbones (ImageNet arms) keep the
    constructor's init: there is no network here. Configs whose ``model`` is identical
    (P1x/P3x pairs) share one instance.
    """
    from mmengine.registry import init_default_scope

    from direct_pretrain.models.layers import convert_to_plain_batch_norm
    from mmdet.registry import MODELS
    cfg = load_cfg(name)
    key = _model_key(cfg)
    if key not in _MODELS:
        init_default_scope('mmdet')
        model_cfg = copy.deepcopy(cfg.model)
        shrink_sampling(model_cfg.get('train_cfg'))
        shrink_sampling(model_cfg.get('test_cfg'))
        torch.manual_seed(0)
        model = MODELS.build(model_cfg)
        backbone_init: Optional[dict] = model_cfg.backbone.get('init_cfg')
        if not (backbone_init and backbone_init.get('type') == 'Pretrained'):
            model.init_weights()
        _BUILT_NORMS[key] = tuple(sorted({type(m).__name__ for m in model.backbone.modules()
                                          if isinstance(m, (_BatchNorm, nn.GroupNorm, nn.LayerNorm))}))
        _MODELS[key] = convert_to_plain_batch_norm(model)
    return _MODELS[key]


def built_backbone_norms(name: str) -> Tuple[str, ...]:
    """Class names of the backbone's norm layers as built, before SyncBN was reverted."""
    built(name)
    return _BUILT_NORMS[_model_key(load_cfg(name))]


def fake_batch(size: int = 64, with_mask: bool = True) -> dict:
    """One ``size`` x ``size`` image with two ground-truth boxes (and masks), packed."""
    from mmdet.testing import demo_mm_inputs  # seeded: the same image and boxes every call
    return demo_mm_inputs(batch_size=1, image_shapes=[(3, size, size)], num_items=[2], num_classes=80,
                          with_mask=with_mask)
