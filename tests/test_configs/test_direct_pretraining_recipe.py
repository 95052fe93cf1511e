"""The direct pre-training configs say what the published recipe says: the resolved configs
are checked against the recipe table of ``direct_pretraining_zoo`` (RECIPE + PAIRS).
Comparison arms: mmdet's stock configs, changed only in what the package selects.
"""
import os
import os.path as osp
import re

import pytest
from mmengine.config import Config

from dp_test_utils import REPO_ROOT
from direct_pretraining_zoo import ALL_CONFIGS, ARMS, CONFIG_DIR, MMDET_CONFIGS, PAIRS, RECIPE, load_cfg, plain

PAIR_IDS = [p.name for p in PAIRS]
PRE, FT = RECIPE['pretrain'], RECIPE['finetune']
ATOMIC_CHECKPOINTS = dict(backend_args=dict(backend='atomic_local'))


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
    assert cfg.auto_scale_lr.base_batch_size == FT['gpus'] * cfg.train_dataloader.batch_size
    assert cfg.default_hooks.checkpoint.backend_args == ATOMIC_CHECKPOINTS['backend_args']
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        resize = transform(loader.dataset.pipeline, 'Resize')
        assert tuple(resize.scale) == FT['scale'] and resize.keep_ratio


@pytest.mark.parametrize('pair', PAIRS, ids=PAIR_IDS)
def test_pretrain_recipe(pair):
    cfg = load_cfg(pair.pretrain)
    assert cfg.model.type == pair.detector
    assert cfg.get('load_from') is None
    # schedule: N epochs of the x4 repeated set, constant LR after a linear warmup
    assert cfg.train_cfg.max_epochs == pair.pretrain_epochs
    assert plain(cfg.param_scheduler) == [dict(type='LinearLR', start_factor=PRE['warmup_start_factor'],
                                               by_epoch=False, begin=0, end=pair.pretrain_warmup)]
    wrapper = cfg.optim_wrapper
    assert 'clip_grad' not in wrapper
    if pair.swin:
        assert wrapper.type == 'AmpOptimWrapper' and wrapper.loss_scale == 'dynamic'
        assert plain(wrapper.optimizer) == dict(PRE['adamw'], lr=pair.pretrain_lr)
        assert plain(wrapper.paramwise_cfg) == dict(custom_keys=RECIPE['swin_decay_exclusions'])
    else:
        assert wrapper.type == 'OptimWrapper'
        assert plain(wrapper.optimizer) == dict(PRE['sgd'], lr=pair.pretrain_lr)
        assert plain(wrapper.paramwise_cfg) == PRE['sgd_paramwise']
    assert cfg.auto_scale_lr.base_batch_size == PRE['gpus'] * PRE['images_per_gpu']
    # data: images per GPU, RepeatDataset, the low-resolution resize/crop/flip/pad unit
    loader = cfg.train_dataloader
    assert loader.batch_size == PRE['images_per_gpu']
    assert loader.dataset.type == 'RepeatDataset' and loader.dataset.times == PRE['repeat']
    assert loader.dataset.dataset.ann_file == PRE['ann_file']
    pipeline = loader.dataset.dataset.pipeline
    geometry = transform(pipeline, 'DirectPretrainResizeCrop')
    assert tuple(geometry.scale) == PRE['scale'] and tuple(geometry.crop_size) == PRE['crop_size']
    assert tuple(geometry.ratio_range) == PRE['ratio_range'] and geometry.flip_prob == PRE['flip_prob']
    assert not {'Resize', 'RandomResize', 'RandomCrop', 'RandomFlip', 'Pad'} & {t['type'] for t in pipeline}
    assert transform(pipeline, 'LoadAnnotations').get('with_mask', False) == pair.with_mask
    # model: random init, nothing frozen, norms trained in train mode and synchronized
    backbone = cfg.model.backbone
    assert backbone.init_cfg is None
    if pair.swin:
        assert backbone.type == 'DirectSwinTransformer'
        assert {k: plain(backbone[k]) for k in PRE['swin_backbone']} == PRE['swin_backbone']
        assert plain(backbone.norm_cfg) == dict(type='LN')
        assert cfg.model.neck.in_channels == PRE['swin_neck_in_channels']
    else:
        assert backbone.type == 'ResNet' and backbone.depth == 50
        assert backbone.frozen_stages == -1 and backbone.norm_eval is False
        assert plain(backbone.norm_cfg) == PRE['norm_cfg']
        assert backbone.zero_init_residual is False
    assert bbox_head_types(cfg) == pair.bbox_head
    if pair.bbox_head == ('Shared4Conv1FCBBoxHead', ):
        assert cfg.model.roi_head.bbox_head.conv_out_channels == PRE['head_conv_out_channels']


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
    assert cfg.train_cfg.max_epochs == FT['epochs']
    assert plain(cfg.param_scheduler) == [
        dict(type='LinearLR', start_factor=FT['warmup_start_factor'], by_epoch=False, begin=0, end=FT['warmup_iters']),
        dict(type='MultiStepLR', begin=0, end=FT['epochs'], by_epoch=True, milestones=FT['milestones'], gamma=0.1)]
    wrapper = cfg.optim_wrapper
    if pair.swin:
        assert wrapper.type == 'AmpOptimWrapper'
        assert plain(wrapper.optimizer) == FT['adamw']
        assert plain(wrapper.paramwise_cfg) == dict(custom_keys=RECIPE['swin_decay_exclusions'])
    else:
        assert wrapper.type == 'OptimWrapper'
        assert plain(wrapper.optimizer) == FT['sgd']
    assert cfg.auto_scale_lr.base_batch_size == FT['gpus'] * FT['images_per_gpu']
    # data: images per GPU at the fine-tune scale with flip
    loader = cfg.train_dataloader
    assert loader.batch_size == FT['images_per_gpu'] and loader.dataset.type == 'CocoDataset'
    pipeline = loader.dataset.pipeline
    resize = transform(pipeline, 'Resize')
    assert tuple(resize.scale) == FT['scale'] and resize.keep_ratio
    assert transform(pipeline, 'RandomFlip').prob == FT['flip_prob']
    # model: BN frozen (no grad, eval mode), stem + stage 1 frozen; no ImageNet init
    backbone = cfg.model.backbone
    assert backbone.init_cfg is None
    if pair.swin:
        assert backbone.type == 'SwinTransformer' and backbone.get('frozen_stages', -1) == -1
        assert backbone.drop_path_rate == PRE['swin_backbone']['drop_path_rate']
    else:
        assert backbone.type == 'ResNet' and backbone.depth == 50
        assert plain(backbone.norm_cfg) == FT['norm_cfg']
        assert backbone.norm_eval is True and backbone.frozen_stages == FT['frozen_stages']
    assert bbox_head_types(cfg) == pair.bbox_head


def test_retinanet_pretrain_lr_is_half_of_the_two_stage_lr():
    """The published setting (an open question upstream; see the README)."""
    retina, faster = load_cfg(PAIRS[0].pretrain), load_cfg(PAIRS[1].pretrain)
    assert retina.optim_wrapper.optimizer.lr * 2 == faster.optim_wrapper.optimizer.lr


@pytest.mark.parametrize('name', sorted(ARMS))
def test_comparison_arm_is_mmdet_stock_config(name):
    """The arms are mmdet's configs plus what importing the package selects: its modules
    and atomic checkpoint writes (training is unchanged), so they are not trained here."""
    ours = plain(load_cfg(name).to_dict())
    assert ours.pop('custom_imports') == dict(imports=['direct_pretrain'], allow_failed_imports=False)
    assert ours['default_hooks']['checkpoint'].pop('backend_args') == ATOMIC_CHECKPOINTS['backend_args']
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
