"""Shared fixtures: a tiny toy COCO set and the repository paths."""
import os
import os.path as osp
import sys

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO_ROOT, 'tools')


@pytest.fixture(scope='session')
def tiny_coco_root(tmp_path_factory) -> str:
    """A small toy COCO set (8 train / 4 val images, long side 160-224) shared by the session."""
    from direct_pretrain.datasets import ToyCocoSpec, generate_toy_coco
    root = str(tmp_path_factory.mktemp('tiny_coco'))
    generate_toy_coco(root, ToyCocoSpec(num_train=8, num_val=4, min_long_side=160, max_long_side=224,
                                        max_objects=3, seed=1))
    return root


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO_ROOT


def python_env() -> dict:
    """Environment for child processes: the repo on PYTHONPATH, one thread per process."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [REPO_ROOT, env.get('PYTHONPATH')]))
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


PYTHON = sys.executable


TOY_PRETRAIN = osp.join(REPO_ROOT, 'configs/toy/mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py')
TOY_FINETUNE = osp.join(REPO_ROOT, 'configs/toy/mask-rcnn_r18_fpn_1xb2-direct-finetune_toy.py')

_DATA_OVERRIDES = '''
data_root = {root!r}
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, {train_dataset})
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs={epochs})
default_hooks = dict(logger=dict(interval=1))
randomness = dict(seed=0, deterministic=True)
'''


def write_tiny_stage_configs(folder: str, data_root: str, pretrain_epochs: int = 1,
                             finetune_epochs: int = 1) -> tuple:
    """Stage configs that inherit the toy pair and point it at ``data_root``, small and fast.

    Returns (pretrain config path, finetune config path).
    """
    os.makedirs(folder, exist_ok=True)
    root = data_root.rstrip('/') + '/'
    pre = osp.join(folder, 'tiny_pretrain.py')
    with open(pre, 'w') as f:
        f.write(f'_base_ = {TOY_PRETRAIN!r}\n' + _DATA_OVERRIDES.format(
            root=root, epochs=pretrain_epochs,
            train_dataset='dataset=dict(times=1, dataset=dict(data_root=data_root))'))
    ft = osp.join(folder, 'tiny_finetune.py')
    with open(ft, 'w') as f:
        f.write(f'_base_ = {TOY_FINETUNE!r}\n' + _DATA_OVERRIDES.format(
            root=root, epochs=finetune_epochs, train_dataset='dataset=dict(data_root=data_root)') +
            f'pretrain_config = {pre!r}\nload_from = None\n'
            'param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=2)]\n')
    return pre, ft
