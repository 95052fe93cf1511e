"""User-facing options: --data-root on nested datasets, --cfg-options value types, and the
batch-size / LR warning."""
import logging
import os.path as osp

import pytest
from dp_test_utils import TOY_FINETUNE, TOY_PRETRAIN
from mmengine.config import Config
from shared_runs import TOY_SET

from direct_pretrain.config.batch_check import check_batch_size
from direct_pretrain.config.data_root import set_data_root
from direct_pretrain.config.dataset_cfg import iter_leaf_datasets
from direct_pretrain.config.input_checks import check_dataset_paths
from direct_pretrain.config.option_checks import check_option_types
from direct_pretrain.errors import ConfigInputError


def test_data_root_reaches_the_dataset_inside_repeat_dataset(tiny_coco_root):
    from mmengine.registry import init_default_scope

    from mmdet.registry import DATASETS
    cfg = Config.fromfile(TOY_PRETRAIN)
    # the shipped root is relative to the working directory, the test's empty scratch folder (conftest):
    # missing there even after ``make demo`` wrote data/toy_coco into the checkout
    with pytest.raises(ConfigInputError, match='does not exist'):
        check_dataset_paths(cfg, ('train_dataloader', ))
    changed = set_data_root(cfg, tiny_coco_root)
    assert 'train_dataloader.dataset.dataset.data_root' in changed
    assert 'train_dataloader.dataset.data_root' not in changed  # never on the wrapper
    check_dataset_paths(cfg, ('train_dataloader', 'test_dataloader'))
    init_default_scope('mmdet')
    inner = DATASETS.build(cfg.train_dataloader.dataset).dataset
    assert inner.data_root == tiny_coco_root + '/' and len(inner) == TOY_SET['num_train']


def test_data_root_moves_the_evaluator_ann_file(tiny_coco_root):
    cfg = Config.fromfile(TOY_FINETUNE)
    relative = osp.relpath(cfg.test_evaluator.ann_file, cfg.test_dataloader.dataset.data_root)
    changed = set_data_root(cfg, tiny_coco_root)
    assert 'test_evaluator.ann_file' in changed
    assert cfg.test_evaluator.ann_file == osp.join(tiny_coco_root, relative)
    assert osp.isfile(cfg.test_evaluator.ann_file)


def test_data_root_on_concat_and_class_balanced_datasets(tmp_path):
    leaf = dict(type='CocoDataset', data_root='old/', ann_file='a.json', data_prefix=dict(img='img/'))
    cfg = Config(dict(
        data_root='old/',
        train_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[
            dict(leaf), dict(type='ClassBalancedDataset', oversample_thr=0.1, dataset=dict(leaf))])),
        val_dataloader=None,
        test_dataloader=dict(dataset=dict(leaf)),
        test_evaluator=[dict(type='CocoMetric', ann_file='old/a.json'),
                        dict(type='CocoMetric', ann_file='/elsewhere/b.json')]))
    changed = set_data_root(cfg, str(tmp_path))
    root = str(tmp_path) + '/'
    assert [k for k, _ in iter_leaf_datasets(cfg)] == [
        'train_dataloader.dataset.datasets.0', 'train_dataloader.dataset.datasets.1.dataset', 'test_dataloader.dataset']
    assert all(ds.data_root == root for _, ds in iter_leaf_datasets(cfg))
    assert cfg.test_evaluator[0].ann_file == root + 'a.json'
    assert cfg.test_evaluator[1].ann_file == '/elsewhere/b.json'  # not under the old root: kept
    assert 'test_evaluator.0.ann_file' in changed and cfg.data_root == root
    # the keys are ones --cfg-options accepts
    fresh = Config(dict(train_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[dict(leaf), dict(leaf)]))))
    fresh.merge_from_dict({'train_dataloader.dataset.datasets.1.data_root': 'x/'})
    assert fresh.train_dataloader.dataset.datasets[1].data_root == 'x/'


@pytest.mark.parametrize('options, message', [
    ({'train_dataloader.batch_size': 'abc'}, "train_dataloader.batch_size='abc'.*takes a number"),
    ({'optim_wrapper.optimizer.lr': 'fast'}, 'optim_wrapper.optimizer.lr.*takes a number'),
    ({'train_dataloader.persistent_workers': 'maybe'}, 'True or False'),
])
def test_non_numeric_option_for_a_numeric_key(options, message):
    with pytest.raises(ConfigInputError, match=message):
        check_option_types(Config.fromfile(TOY_PRETRAIN), options)


def test_valid_options_pass_the_type_check():
    check_option_types(Config.fromfile(TOY_PRETRAIN), {
        'train_dataloader.batch_size': 4, 'optim_wrapper.optimizer.weight_decay': 0.5,
        'train_dataloader.persistent_workers': True, 'load_from': 'x.pth', 'no.such.key': 'abc',
        'model.backbone.norm_cfg.type': 'BN'})


def test_batch_warning_once_with_the_effective_batch_and_the_fix(caplog):
    cfg = Config.fromfile(TOY_PRETRAIN)
    base, batch = cfg.auto_scale_lr.base_batch_size, cfg.train_dataloader.batch_size
    lr = cfg.optim_wrapper.optimizer.lr
    assert batch == base  # a 1xbN config: one process matches its base batch
    with caplog.at_level(logging.WARNING):
        assert check_batch_size(cfg, 1) is None
        message = check_batch_size(cfg, 2)
    assert len(caplog.records) == 1 and caplog.records[0].getMessage() == message
    assert f'effective batch {2 * batch} (2 processes x {batch} images)' in message
    assert f'base_batch_size={base}' in message and '--auto-scale-lr' in message
    assert f'{lr * 2:g}' in message and '\n' not in message
    assert check_batch_size(cfg, 2, auto_scale_lr=True) is None
    with_accumulate = check_batch_size(cfg, 1, accumulate=2)  # --accumulate 2: the flag fixes it
    assert f'effective batch {2 * batch} (1 process x {batch} images x 2 accumulated steps)' in with_accumulate
    assert '--auto-scale-lr' in with_accumulate
    cfg.optim_wrapper.accumulative_counts = 2
    accumulated = check_batch_size(cfg, 1)
    assert f'effective batch {2 * batch}' in accumulated and 'x 2 accumulated steps' in accumulated
    assert f'optim_wrapper.optimizer.lr={lr * 2:g}' in accumulated
