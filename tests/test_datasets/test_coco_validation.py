"""Dataset validation before training: fatal problems stop, the rest is counted."""
import json
import os.path as osp
import shutil

import pytest
from dp_test_utils import write_tiny_stage_configs

from direct_pretrain.cli.train import build_config as build_train_config, parse_args as parse_train_args
from direct_pretrain.datasets import TOY_CLASSES, validate_coco_dataset
from direct_pretrain.errors import ConfigInputError, DatasetValidationError


@pytest.fixture()
def dataset(tmp_path, tiny_coco_root):
    root = tmp_path / 'data'
    shutil.copytree(tiny_coco_root, root)
    return root


def edit(root, fn):
    path = root / 'annotations' / 'instances_train.json'
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))
    return data


def test_clean_dataset(dataset):
    report = validate_coco_dataset(str(dataset / 'annotations/instances_train.json'), str(dataset / 'train'),
                                   TOY_CLASSES)
    assert report.num_images == 8 and report.num_annotations > 8 and not report.fatal
    assert not (report.degenerate_boxes or report.boxes_outside_image or report.empty_images)


def test_counts_each_problem(dataset):
    def corrupt(data):
        anns = data['annotations']
        anns[0]['bbox'][2] = 0                      # non-positive width
        anns[1]['bbox'][0] = -50                     # sticks out of the image
        anns[2]['category_id'] = 99                  # not a known category
        data['images'].append(dict(id=999, file_name=data['images'][0]['file_name'], width=10, height=10))
        return data
    data = edit(dataset, corrupt)
    report = validate_coco_dataset(str(dataset / 'annotations/instances_train.json'), str(dataset / 'train'),
                                   TOY_CLASSES)
    anns = data['annotations']
    assert report.degenerate_boxes == [anns[0]['id']]
    assert report.boxes_outside_image == [anns[1]['id']]
    assert report.unknown_category_annotations == [anns[2]['id']]
    assert 999 in report.empty_images
    assert not report.fatal
    assert 'degenerate boxes: 1' in report.summary()


def test_fatal_problems_stop_the_run_before_the_work_dir(dataset, tmp_path):
    (dataset / 'train' / sorted(p.name for p in (dataset / 'train').iterdir())[0]).unlink()
    cfg, _ = write_tiny_stage_configs(str(tmp_path / 'cfg'), str(dataset))
    args = parse_train_args([cfg, '--work-dir', str(tmp_path / 'wd')])
    with pytest.raises(ConfigInputError, match=r'1 image file\(s\) missing'):
        build_train_config(args)
    assert not (tmp_path / 'wd').exists()


def test_class_mismatch_is_fatal(dataset):
    report = validate_coco_dataset(str(dataset / 'annotations/instances_train.json'), str(dataset / 'train'),
                                   ('circle', 'hexagon'))
    assert report.missing_classes == ['hexagon'] and 'hexagon' in report.fatal[0]


def test_unreadable_json(dataset):
    path = dataset / 'annotations' / 'instances_train.json'
    path.write_text('{"images": [')
    with pytest.raises(DatasetValidationError, match=osp.basename(str(path))):
        validate_coco_dataset(str(path), str(dataset / 'train'))
