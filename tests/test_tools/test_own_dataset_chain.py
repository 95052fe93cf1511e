"""``dp-chain --data DIR``: the issue's trial dataset (category ids 3, 7, 11, a name with a space and
a non-ASCII one, ``annotations/train.json`` + ``images/train/``) on every architecture with
``--dry-run`` - each generated config builds a model whose every head has the dataset's class
count and datasets whose labels carry the file's names - bad input as one error line with
nothing written, and the toy Mask R-CNN pair trained end to end on it."""
import json
import os
import os.path as osp

import pytest
import torch
from dp_test_utils import TOY_FINETUNE, TOY_PRETRAIN
from forked_cli import ToolRun, run_tools
from mmengine.config import Config
from own_dataset_utils import CATEGORIES, KEYPOINT_NAMES, write_own_dataset

from mmdet.registry import DATASETS, MODELS
from direct_pretrain.config.own_dataset import ARCHITECTURES

pytestmark = pytest.mark.slow  # chains and every architecture's configs

NAMES = tuple(c['name'] for c in CATEGORIES)
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """Every architecture's --dry-run and the bad-input cases, in one batch of forked dp-chain runs."""
    tmp = tmp_path_factory.mktemp('own')
    data, keypoints, no_val, empty = (str(tmp / name) for name in ('defects', 'people', 'no_val', 'empty'))
    write_own_dataset(data)
    write_own_dataset(keypoints, 'coco-keypoints', keypoints=True)
    write_own_dataset(no_val, with_val=False)
    os.makedirs(empty)
    dry = {arch: ToolRun('chain', ['--data', keypoints if arch == 'keypoint' else data, '--arch', arch, '--dry-run',
                                   '--work-root', str(tmp / 'work' / arch)], str(tmp))
           for arch in ARCHITECTURES}
    bad = {
        'no layout': (['--data', empty, '--arch', 'faster'], 'no COCO-format training set found in'),
        'no pair': (['--data', data], '--data needs the pair to put it on'),
        'no val': (['--data', no_val, '--arch', 'faster'], '--val-split 0.1'),
        'no keypoints': (['--data', data, '--arch', 'keypoint'], 'no category lists "keypoints"'),
        'both pairs': (['--data', data, '--arch', 'mask', TOY_PRETRAIN, TOY_FINETUNE], 'pass either --arch or'),
    }
    failing = {name: ToolRun('chain', [*args, '--work-root', str(tmp / 'bad' / name.replace(' ', '_'))], str(tmp))
               for name, (args, _) in bad.items()}
    run_tools([*dry.values(), *failing.values()])
    return dict(tmp=tmp, dry=dry, failing=failing, expected={name: text for name, (_, text) in bad.items()})


def _heads(model):
    return {name: module.num_classes for name, module in model.named_modules() if hasattr(module, 'num_classes')}


@pytest.mark.parametrize('arch', list(ARCHITECTURES))
def test_dry_run_configs_build_the_right_heads_and_labels(runs, arch):
    run = runs['dry'][arch]
    assert run.returncode == 0, run.stderr[-3000:]
    assert 'dry run: both stages pass their checks' in run.stdout
    work = runs['tmp'] / 'work' / arch
    configs = sorted(str(work / n) for n in os.listdir(work))
    assert len(configs) == 2 and all(c.endswith('.py') for c in configs)  # no stage dir: nothing trained
    keypoint = arch == 'keypoint'
    names, ids = (('person with hat', ), (5, )) if keypoint else (NAMES, (3, 7, 11))
    for path in configs:
        cfg = Config.fromfile(path)
        # on the meta device: no weights allocated (mmdet's Swin reads a tensor value while it builds)
        with torch.device('cpu' if arch == 'mask-swin' else 'meta'):
            heads = _heads(MODELS.build(cfg.model))
        assert heads and all(n == (1 if 'rpn_head' in name else len(names)) for name, n in heads.items()), heads
        if arch == 'cascade':
            assert [heads[f'roi_head.bbox_head.{i}'] for i in range(3)] == [3, 3, 3]
        if keypoint:
            assert cfg.model.roi_head.keypoint_head.num_keypoints == len(KEYPOINT_NAMES)
        for loader in LOADERS:
            if not cfg.get(loader):
                continue
            dataset = DATASETS.build(cfg[loader].dataset)
            dataset = getattr(dataset, 'dataset', dataset)  # inside RepeatDataset
            assert dataset.metainfo['classes'] == names
            assert dataset.cat2label == {cat_id: label for label, cat_id in enumerate(ids)}
            if keypoint:
                assert dataset.metainfo['keypoint_names'] == tuple(KEYPOINT_NAMES)
                assert tuple(dataset.metainfo['flip_indices']) == (0, 2, 1, 4, 3)
        for evaluator in ('val_evaluator', 'test_evaluator'):
            if cfg.get(evaluator):
                assert cfg[evaluator].ann_file.endswith('val.json') and cfg[evaluator].classwise is True


def test_bad_input_is_one_error_line_and_writes_nothing(runs):
    for name, run in runs['failing'].items():
        context = f'{name}: {run.stderr[-2000:]}'
        assert run.returncode == 2 and len(run.error_lines) == 1 and 'Traceback' not in run.stderr, context
        assert runs['expected'][name] in run.error_lines[0], context
        assert not osp.exists(runs['tmp'] / 'bad' / name.replace(' ', '_')), context


@pytest.mark.slow  # trains: the one real chain of these tests (its stages forked from the tool server)
def test_toy_pair_on_own_dataset_end_to_end(tmp_path):
    data = str(tmp_path / 'defects')
    write_own_dataset(data, num_train=4, num_val=2)
    work = tmp_path / 'work'
    run, = run_tools([ToolRun('chain', [
        '--data', data, TOY_PRETRAIN, TOY_FINETUNE, '--work-root', str(work), '--no-report',
        '--cfg-options', 'train_cfg.max_epochs=1', 'train_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        '--pretrain-cfg-options', 'train_dataloader.dataset.times=1'], str(tmp_path), fast_stages=True)])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    assert "3 classes in label order (the order of the file's categories): 'solder joint' (id 3)" in run.stderr
    pre_name = 'mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_defects'
    ft_name = 'mask-rcnn_r18_fpn_1xb2-direct-finetune_defects'
    assert (work / f'{pre_name}.py').is_file() and (work / pre_name / 'epoch_1.pth').is_file()
    with open(work / ft_name / 'test_metrics.json') as f:
        metrics = json.load(f)
    assert {'coco/bbox_mAP', 'coco/segm_mAP'} <= set(metrics)
    assert all(any(name in key for key in metrics) for name in NAMES)  # per-class AP under the file's names
    assert all(name in run.stdout for name in NAMES)
