"""The config consistency checks on configs built in memory: which heads and datasets they read,
how a run's length is counted, which warmups they compare with it. (The tools' behaviour on the
issue's mistakes is tested in tests/test_tools/test_config_consistency.py.)"""
import json

import pytest
from mmengine.config import Config

import direct_pretrain  # noqa: F401  (registers the package's datasets and heads)
from direct_pretrain.config.consistency_checks import (check_head_classes, check_warmup_length, configured_classes,
                                                       run_length)
from direct_pretrain.errors import ConfigInputError

CLASSES = ('solder joint', 'scratch', 'dent')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def ann_file(tmp_path, images: int) -> str:
    path = tmp_path / f'{images}.json'
    path.write_text(json.dumps(dict(images=[dict(id=i, file_name=f'{i}.jpg', width=9, height=9)
                                            for i in range(images)], annotations=[], categories=[])))
    return str(path)


def detector(bbox_head: dict, classes=CLASSES, test_classes=None, **roi) -> Config:
    dataset = dict(type='CocoDataset', metainfo=dict(classes=classes))
    test = dict(type='CocoDataset', metainfo=dict(classes=test_classes)) if test_classes else dataset
    return Config(dict(model=dict(type='FasterRCNN', rpn_head=dict(type='RPNHead', num_classes=1),
                                  roi_head=dict(type='StandardRoIHead', bbox_head=bbox_head, **roi)),
                       train_dataloader=dict(dataset=dict(type='RepeatDataset', times=2, dataset=dataset)),
                       test_dataloader=dict(dataset=test)))


def test_a_head_without_num_classes_has_its_class_default():
    """Shared2FCBBoxHead passes num_classes on to BBoxHead (80); left out of the config it is 80."""
    with pytest.raises(ConfigInputError, match=r'model\.roi_head\.bbox_head\.num_classes=80, but the datasets have 3'):
        check_head_classes(detector(dict(type='Shared2FCBBoxHead')), LOADERS)
    check_head_classes(detector(dict(type='Shared2FCBBoxHead', num_classes=3)), LOADERS)


def test_datasets_of_a_run_must_agree():
    cfg = detector(dict(type='Shared2FCBBoxHead', num_classes=3), test_classes=CLASSES[::-1])
    with pytest.raises(ConfigInputError, match='every dataset of a run needs the same classes in the same order'):
        check_head_classes(cfg, LOADERS)


def test_no_metainfo_means_the_dataset_class_default():
    cfg = detector(dict(type='Shared2FCBBoxHead', num_classes=3))
    del cfg.train_dataloader.dataset.dataset.metainfo
    found = configured_classes(cfg, ('train_dataloader', ))
    assert found[0].from_default and len(found[0].classes) == 80
    with pytest.raises(ConfigInputError, match="sets no metainfo.classes, so mmdet uses CocoDataset's default ones"):
        check_head_classes(cfg, ('train_dataloader', ))


def test_keypoint_head_against_the_keypoint_names():
    names = ('head', 'left_hand', 'right_hand')
    dataset = dict(type='CocoKeypointDataset', metainfo=dict(classes=('figure', ), keypoint_names=names))
    cfg = Config(dict(model=dict(roi_head=dict(bbox_head=dict(type='Shared2FCBBoxHead', num_classes=1),
                                               keypoint_head=dict(type='KeypointRCNNHead'))),
                      train_dataloader=dict(dataset=dataset)))
    with pytest.raises(ConfigInputError, match=r'keypoint_head\.num_keypoints=17, but the datasets have 3 keypoints'):
        check_head_classes(cfg, LOADERS)
    cfg.model.roi_head.keypoint_head.num_keypoints = 3
    check_head_classes(cfg, LOADERS)


def schedule(tmp_path, images=10, batch=2, epochs=3, times=2, warmup_end=5, wrapper='RepeatDataset', **warmup):
    leaf = dict(type='CocoDataset', ann_file=ann_file(tmp_path, images))
    return Config(dict(train_dataloader=dict(batch_size=batch, dataset=dict(type=wrapper, times=times, dataset=leaf)),
                       train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=epochs),
                       param_scheduler=[dict(type='LinearLR', by_epoch=False, begin=0, end=warmup_end, **warmup),
                                        dict(type='MultiStepLR', by_epoch=True, begin=0, end=99, milestones=[2])]))


def test_run_length_counts_repeats_batch_and_processes(tmp_path, monkeypatch):
    cfg = schedule(tmp_path, images=10, batch=2, epochs=3, times=2)
    assert run_length(cfg).iterations == 3 * 10  # 20 samples / batch 2 per epoch
    monkeypatch.setenv('WORLD_SIZE', '3')
    cfg.launcher = 'pytorch'
    assert run_length(cfg).iterations == 3 * 4  # ceil(20 / 3) = 7 samples per process, ceil(7 / 2) batches
    report = type('Report', (), dict(ann_file=cfg.train_dataloader.dataset.dataset.ann_file, trained_images=4))
    cfg.launcher = 'none'
    assert run_length(cfg, [report]).iterations == 3 * 4  # the dataset check's count after filter_cfg


def test_run_length_of_an_iteration_loop_and_an_unknown_wrapper(tmp_path):
    cfg = schedule(tmp_path, wrapper='ClassBalancedDataset')
    assert run_length(cfg).iterations is None  # its length depends on the labels
    check_warmup_length(cfg)  # cannot be compared: no error
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=4)
    assert run_length(cfg).iterations == 4
    with pytest.raises(ConfigInputError, match=r'param_scheduler\.0\.end=5 .* train_cfg\.max_iters=4 = 4 iterations'):
        check_warmup_length(cfg)


def test_warmups_compared_in_their_own_unit(tmp_path):
    check_warmup_length(schedule(tmp_path, warmup_end=30))  # 30 iterations: the whole run, not longer
    with pytest.raises(ConfigInputError, match=r'param_scheduler\.0\.end=31 .* = 30 iterations'):
        check_warmup_length(schedule(tmp_path, warmup_end=31))
    by_epoch = schedule(tmp_path)
    by_epoch.param_scheduler[0].update(by_epoch=True, end=4)
    with pytest.raises(ConfigInputError, match=r'param_scheduler\.0\.end=4 \(LinearLR, epochs\) .* \(3 epochs\)'):
        check_warmup_length(by_epoch)
    # the step schedule's end past the run is not a warmup
    check_warmup_length(schedule(tmp_path, warmup_end=2))
