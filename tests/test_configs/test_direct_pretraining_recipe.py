"""The direct pre-training configs say what the published recipe says (table-driven).

Pretrain: 448 crops, 8 img/GPU, train set x4, constant LR after warmup, SyncBN, random init.
Fine-tune: 1333x800, 2 img/GPU, steps at 8 and 11, frozen BN + stem/stage 1, load_from the
pretrain's final checkpoint. Comparison arms: mmdet's stock configs, unchanged.
"""
import os
import os.path as osp
import re

import pytest
from mmengine.config import Config

from dp_test_utils import REPO_ROOT
from direct_pretraining_zoo import ALL_CONFIGS, ARMS, CONFIG_DIR, MMDET_CONFIGS, PAIRS, load_cfg

PAIR_IDS = [p.name for p in PAIRS]
SWIN_DECAY_EXCLUSIONS = {'absolute_pos_embed': dict(decay_mult=0.), 'relative_position_bias_table': dict(decay_mult=0.),
                         'norm': dict(decay_mult=0.)}


def plain(obj):
    """``obj`` as plain dicts/lists without the ``_scope_`` keys that ``mmdet::`` bases add."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items() if k != '_scope_'}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    return obj


def transform(pipeline, type_name):
    found = [t for t in pipeline if t['type'] == type_name]
    assert len(found) == 1, (type_name, [t['type'] for t in pipeline])
    return found[0]


def bbox_head_types(cfg):
    roi_head = cfg.model.get('roi_head')
    if roi_head is None:
        return ()
    heads = roi_head.bbox_head
    return tuple(h['type'] for h in heads) if isinstance(heads, (list, tuple)) else (heads['type'], )


def test_every_config_in_the_folder_is_in_the_table():
    found = {f for f in os.listdir(CONFIG_DIR) if f.endswith('.py')}
    assert found == set(ALL_CONFIGS)


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_common_settings(name):
    cfg = load_cfg(name)
    assert plain(cfg.custom_imports) == dict(imports=['direct_pretrain'], allow_failed_imports=False)
    # tools/train.py --amp switches this wrapper type; --auto-scale-lr needs the base batch.
    assert cfg.optim_wrapper.get('type', 'OptimWrapper') in ('OptimWrapper', 'AmpOptimWrapper')
    assert cfg.auto_scale_lr.enable is False
    assert cfg.auto_scale_lr.base_batch_size == 8 * cfg.train_dataloader.batch_size
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        resize = transform(loader.dataset.pipeline, 'Resize')
        assert tuple(resize.scale) == (1333, 800) and resize.keep_ratio


@pytest.mark.parametrize('pair', PAIRS, ids=PAIR_IDS)
def test_pretrain_recipe(pair):
    cfg = load_cfg(pair.pretrain)
    assert cfg.model.type == pair.detector
    assert cfg.get('load_from') is None
    # schedule: N epochs of the x4 repeated set, constant LR after a linear warmup
    assert cfg.train_cfg.max_epochs == pair.pretrain_epochs
    assert plain(cfg.param_scheduler) == [
        dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=pair.pretrain_warmup)]
    wrapper = cfg.optim_wrapper
    assert 'clip_grad' not in wrapper
    if pair.swin:
        assert wrapper.type == 'AmpOptimWrapper' and wrapper.loss_scale == 'dynamic'
        assert plain(wrapper.optimizer) == dict(type='AdamW', lr=pair.pretrain_lr, betas=(0.9, 0.999),
                                                weight_decay=0.05)
        assert plain(wrapper.paramwise_cfg) == dict(custom_keys=SWIN_DECAY_EXCLUSIONS)
    else:
        assert wrapper.type == 'OptimWrapper'
        assert plain(wrapper.optimizer) == dict(type='SGD', lr=pair.pretrain_lr, momentum=0.9, weight_decay=1e-4)
        assert plain(wrapper.paramwise_cfg) == dict(norm_decay_mult=0.)
    assert cfg.auto_scale_lr.base_batch_size == 64
    # data: 8 images per GPU, RepeatDataset x4, 448 resize/crop/flip/pad
    loader = cfg.train_dataloader
    assert loader.batch_size == 8
    assert loader.dataset.type == 'RepeatDataset' and loader.dataset.times == 4
    assert loader.dataset.dataset.ann_file == 'annotations/instances_train2017.json'
    pipeline = loader.dataset.dataset.pipeline
    geometry = transform(pipeline, 'DirectPretrainResizeCrop')
    assert tuple(geometry.scale) == (448, 448) and tuple(geometry.crop_size) == (448, 448)
    assert tuple(geometry.ratio_range) == (0.8, 1.2) and geometry.flip_prob == 0.5
    assert not {'Resize', 'RandomResize', 'RandomCrop', 'RandomFlip', 'Pad'} & {t['type'] for t in pipeline}
    assert transform(pipeline, 'LoadAnnotations').get('with_mask', False) == pair.with_mask
    # model: random init, nothing frozen, norms trained in train mode and synchronized
    backbone = cfg.model.backbone
    assert backbone.init_cfg is None
    if pair.swin:
        assert backbone.type == 'DirectSwinTransformer'
        assert (backbone.embed_dims, list(backbone.depths), list(backbone.num_heads), backbone.window_size) == \
            (96, [2, 2, 6, 2], [3, 6, 12, 24], 7)
        assert backbone.drop_path_rate == 0.2 and backbone.use_abs_pos_embed is False and backbone.patch_norm
        assert plain(backbone.norm_cfg) == dict(type='LN')
        assert cfg.model.neck.in_channels == [96, 192, 384, 768]
    else:
        assert backbone.type == 'ResNet' and backbone.depth == 50
        assert backbone.frozen_stages == -1 and backbone.norm_eval is False
        assert plain(backbone.norm_cfg) == dict(type='SyncBNAnyBackend', requires_grad=True)
        assert backbone.zero_init_residual is False
    assert bbox_head_types(cfg) == pair.bbox_head
    if pair.bbox_head == ('Shared4Conv1FCBBoxHead', ):
        assert cfg.model.roi_head.bbox_head.conv_out_channels == 256


@pytest.mark.parametrize('pair', PAIRS, ids=PAIR_IDS)
def test_finetune_recipe(pair):
    cfg = load_cfg(pair.finetune)
    assert cfg.model.type == pair.detector
    # the chain: whole detector from the pretrain's final checkpoint, checked by the hook
    assert cfg.load_from == pair.checkpoint
    assert cfg.pretrain_config == f'configs/direct_pretraining/{pair.pretrain}'
    assert osp.isfile(osp.join(REPO_ROOT, cfg.pretrain_config))
    assert [h['type'] for h in cfg.custom_hooks] == ['LoadFromCheckHook']
    # 1x schedule
    assert cfg.train_cfg.max_epochs == 12
    assert plain(cfg.param_scheduler) == [
        dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
        dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1)]
    wrapper = cfg.optim_wrapper
    if pair.swin:
        assert wrapper.type == 'AmpOptimWrapper'
        assert plain(wrapper.optimizer) == dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05)
        assert plain(wrapper.paramwise_cfg) == dict(custom_keys=SWIN_DECAY_EXCLUSIONS)
    else:
        assert wrapper.type == 'OptimWrapper'
        assert plain(wrapper.optimizer) == dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4)
    assert cfg.auto_scale_lr.base_batch_size == 16
    # data: 2 images per GPU at 1333x800 with flip
    loader = cfg.train_dataloader
    assert loader.batch_size == 2 and loader.dataset.type == 'CocoDataset'
    pipeline = loader.dataset.pipeline
    resize = transform(pipeline, 'Resize')
    assert tuple(resize.scale) == (1333, 800) and resize.keep_ratio
    assert transform(pipeline, 'RandomFlip').prob == 0.5
    # model: BN frozen (no grad, eval mode), stem + stage 1 frozen; no ImageNet init
    backbone = cfg.model.backbone
    assert backbone.init_cfg is None
    if pair.swin:
        assert backbone.type == 'SwinTransformer' and backbone.get('frozen_stages', -1) == -1
        assert backbone.drop_path_rate == 0.2
    else:
        assert backbone.type == 'ResNet' and backbone.depth == 50
        assert plain(backbone.norm_cfg) == dict(type='BN', requires_grad=False)
        assert backbone.norm_eval is True and backbone.frozen_stages == 1
    assert bbox_head_types(cfg) == pair.bbox_head


def test_retinanet_pretrain_lr_is_half_of_the_two_stage_lr():
    """The published setting (an open question upstream; see the README)."""
    retina, faster = load_cfg(PAIRS[0].pretrain), load_cfg(PAIRS[1].pretrain)
    assert retina.optim_wrapper.optimizer.lr * 2 == faster.optim_wrapper.optimizer.lr


@pytest.mark.parametrize('name', sorted(ARMS))
def test_comparison_arm_is_mmdet_stock_config(name):
    ours = plain(load_cfg(name).to_dict())
    assert ours.pop('custom_imports') == dict(imports=['direct_pretrain'], allow_failed_imports=False)
    stock = plain(Config.fromfile(osp.join(MMDET_CONFIGS, ARMS[name])).to_dict())
    assert ours == stock


def test_readme_lists_every_config_and_the_published_results():
    with open(osp.join(CONFIG_DIR, 'README.md')) as f:
        readme = f.read()
    for name in ALL_CONFIGS:
        assert name in readme, name
    rows = [line for line in readme.splitlines() if line.startswith('|')]
    for pair in PAIRS:
        row = [r for r in rows if pair.pretrain in r and pair.finetune in r]
        assert len(row) == 1, pair.name
        published = r'\s*/\s*'.join(re.escape(ap.strip()) for ap in pair.published.split('/'))
        assert re.search(published, row[0]), (pair.name, row[0])
