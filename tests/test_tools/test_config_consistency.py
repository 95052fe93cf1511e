"""Issue 19's silent config mistakes, through the real tools (``dp-train --check-only``, ``dp-test``).

A user's own config for the tiny 4-class set, written the way the issue's user wrote theirs
(inheriting mmdet's Mask R-CNN or Cascade R-CNN, data keys and classes set), with one mistake
each: the mask head left at mmdet's 80 classes, Cascade's three box heads left at 80,
``bbox_head=dict(num_classes=4)`` over Cascade's list, ``val_evaluator.ann_file`` left at
COCO's, mmdet's 500-iteration warmup on a 48-iteration run; at test time (the toy fine-tune
config and a checkpoint of its model) a test evaluator file that does not exist and test
classes that are not the heads'. Each must end the tool
with one ``error:`` line naming the key and the fix, exit code 2 and no work dir; the correct
config, and each mistake fixed the way its message says, must pass.
"""
import os
import os.path as osp

import pytest
import torch
from dp_test_utils import TOY_FINETUNE
from forked_cli import ToolRun, run_tools

MASK_RCNN = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
CASCADE = 'mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py'
CLASSES = ('circle', 'rectangle', 'triangle', 'star')

_DATA = '''
data_root = {root!r}
metainfo = dict(classes={classes!r})
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo,
                                     ann_file='annotations/instances_train.json', data_prefix=dict(img='train/')))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo,
                                   ann_file='annotations/instances_val.json', data_prefix=dict(img='val/')))
test_dataloader = val_dataloader
'''
_VAL_EVALUATOR = ("val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')\n"
                  'test_evaluator = val_evaluator\n')
# 8 images, batch 2, 12 epochs: 48 iterations; mmdet's 1x warmup is 500
_SHORT_WARMUP = ("param_scheduler = [dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=4),\n"
                 "                   dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11])]\n")
_MASK_HEADS = 'model = dict(roi_head=dict(bbox_head=dict(num_classes=4), mask_head=dict(num_classes=4)))\n'


def user_config(folder, name, root, base=MASK_RCNN, model=_MASK_HEADS, val_evaluator=True, short_warmup=True,
                classes=CLASSES):
    path = osp.join(folder, f'{name}.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = {base!r}\n' + _DATA.format(root=root.rstrip('/') + '/', classes=classes) + model +
                (_VAL_EVALUATOR if val_evaluator else '') + (_SHORT_WARMUP if short_warmup else ''))
    return path


def toy_test_config(folder, name, root, classes=CLASSES):
    """The toy fine-tune config (ResNet-18 Mask R-CNN, 4 classes) testing on the tiny set."""
    path = osp.join(folder, f'{name}.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = {TOY_FINETUNE!r}\ndata_root = {root.rstrip("/") + "/"!r}\n'
                f'test_dataloader = dict(dataset=dict(data_root=data_root, metainfo=dict(classes={classes!r})))\n'
                "test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')\n")
    return path


def toy_checkpoint(path):
    """The toy fine-tune model at random init: a checkpoint that fits the test configs' model."""
    from mmengine.config import Config

    from mmdet.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(TOY_FINETUNE).model)
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(classes=CLASSES))), path)
    return path


@pytest.fixture(scope='module')
def runs(tmp_path_factory, tiny_coco_root):
    tmp = tmp_path_factory.mktemp('consistency')
    folder = str(tmp / 'cfg')
    os.makedirs(folder)
    checkpoint = toy_checkpoint(str(tmp / 'toy.pth'))
    no_mask = 'model = dict(roi_head=dict(bbox_head=dict(num_classes=4)))\n'
    train_cases = {
        'correct': (user_config(folder, 'correct', tiny_coco_root), []),
        'mask_head_forgotten': (user_config(folder, 'mask_forgotten', tiny_coco_root, model=no_mask), []),
        'mask_head_fixed': (user_config(folder, 'mask_fixed', tiny_coco_root, model=no_mask),
                            ['--cfg-options', 'model.roi_head.mask_head.num_classes=4']),
        'cascade_at_80': (user_config(folder, 'cascade_80', tiny_coco_root, base=CASCADE, model=''), []),
        'cascade_fixed': (user_config(folder, 'cascade_fixed', tiny_coco_root, base=CASCADE, model=''),
                          ['--cfg-options', *(f'model.roi_head.bbox_head.{i}.num_classes=4' for i in range(3))]),
        'cascade_dict': (user_config(folder, 'cascade_dict', tiny_coco_root, base=CASCADE, model=no_mask), []),
        'val_evaluator_at_coco': (user_config(folder, 'val_coco', tiny_coco_root, val_evaluator=False), []),
        'warmup_500': (user_config(folder, 'warmup_500', tiny_coco_root, short_warmup=False), []),
        'warmup_fixed': (user_config(folder, 'warmup_fixed', tiny_coco_root, short_warmup=False),
                         ['--cfg-options', 'param_scheduler.0.end=4']),
    }
    test_cases = {
        'test_correct': (toy_test_config(folder, 'test_correct', tiny_coco_root), []),
        'test_evaluator_missing': (toy_test_config(folder, 'test_missing', tiny_coco_root), [
            '--cfg-options', f'test_evaluator.ann_file={tiny_coco_root}/annotations/nope.json']),
        'test_classes_not_the_heads': (toy_test_config(folder, 'test_three', tiny_coco_root, classes=CLASSES[:3]),
                                       []),
    }
    tool_runs = {}
    for name, (config, extra) in train_cases.items():
        tool_runs[name] = ToolRun('train', [config, '--work-dir', str(tmp / 'work' / name), '--check-only', *extra],
                                  str(tmp))
    for name, (config, extra) in test_cases.items():
        tool_runs[name] = ToolRun('test', [config, checkpoint, '--work-dir', str(tmp / 'work' / name), '--check-only',
                                           *extra], str(tmp))
    run_tools(list(tool_runs.values()))
    for name, run in tool_runs.items():
        run.work_dir_written = osp.exists(str(tmp / 'work' / name))
    return tool_runs


def refused(run) -> str:
    """The one error line of a refused run (exit 2, no traceback, no work dir)."""
    assert run.returncode == 2, (run.returncode, run.stderr[-3000:])
    assert len(run.error_lines) == 1 and 'Traceback' not in run.stderr, run.stderr[-3000:]
    assert not run.work_dir_written
    return run.error_lines[0]


@pytest.mark.parametrize('name', ['correct', 'mask_head_fixed', 'cascade_fixed', 'warmup_fixed', 'test_correct'])
def test_correct_and_fixed_configs_pass(runs, name):
    run = runs[name]
    assert run.returncode == 0 and not run.error_lines, run.stderr[-3000:]


def test_mask_head_left_at_80_classes(runs):
    line = refused(runs['mask_head_forgotten'])
    assert 'model.roi_head.mask_head.num_classes=80' in line and 'bbox_head' not in line.split(', but')[0]
    assert "4 classes (train_dataloader.dataset.metainfo.classes: 'circle', 'rectangle', 'triangle', 'star')" in line
    assert 'model = dict(roi_head=dict(mask_head=dict(num_classes=4)))' in line
    assert '--cfg-options model.roi_head.mask_head.num_classes=4' in line


def test_cascade_heads_left_at_80_classes(runs):
    line = refused(runs['cascade_at_80'])
    for index in range(3):
        assert f'model.roi_head.bbox_head.{index}.num_classes=80' in line
    assert 'write the whole list model.roi_head.bbox_head' in line and 'cannot merge a dict' in line
    assert ('--cfg-options model.roi_head.bbox_head.0.num_classes=4 model.roi_head.bbox_head.1.num_classes=4 '
            'model.roi_head.bbox_head.2.num_classes=4') in line


def test_cascade_bbox_head_dict_over_the_base_list(runs):
    """mmengine's list/dict inheritance TypeError becomes the same advice, before anything runs."""
    line = refused(runs['cascade_dict'])
    assert 'model.roi_head.bbox_head is a list in the base config' in line
    assert 'bbox_head=[dict(type=..., num_classes=4, ...), ...]' in line
    assert 'model.roi_head.bbox_head.2.num_classes=4' in line


def test_val_evaluator_left_at_coco(runs, tiny_coco_root):
    line = refused(runs['val_evaluator_at_coco'])
    assert "val_evaluator.ann_file 'data/coco/annotations/instances_val2017.json' does not exist" in line
    assert f'--cfg-options val_evaluator.ann_file={tiny_coco_root.rstrip("/")}/annotations/instances_val.json' in line


def test_warmup_longer_than_the_run(runs):
    line = refused(runs['warmup_500'])
    assert 'param_scheduler.0.end=500 (LinearLR, iterations) is longer than the whole run' in line
    assert '12 epochs x 4 iterations (8 images / batch 2 x 1 process) = 48 iterations' in line
    assert '--cfg-options param_scheduler.0.end=4' in line


def test_test_evaluator_file_missing(runs, tiny_coco_root):
    line = refused(runs['test_evaluator_missing'])
    assert f"test_evaluator.ann_file '{tiny_coco_root}/annotations/nope.json' does not exist" in line


def test_test_classes_are_not_the_heads(runs):
    line = refused(runs['test_classes_not_the_heads'])
    assert 'model.roi_head.bbox_head.num_classes=4, model.roi_head.mask_head.num_classes=4' in line
    assert '3 classes (test_dataloader.dataset.metainfo.classes' in line
