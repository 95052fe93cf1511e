"""Helpers shared by the keypoint tests: a tiny toy keypoint set and config overrides."""
import os
import os.path as osp
from typing import Tuple

from dp_test_utils import REPO_ROOT

TOY_KP_PRETRAIN = osp.join(REPO_ROOT, 'configs/toy/keypoint-rcnn_r18_fpn_1xb8-direct-pretrain-128_toy.py')
TOY_KP_FINETUNE = osp.join(REPO_ROOT, 'configs/toy/keypoint-rcnn_r18_fpn_1xb2-direct-finetune_toy.py')


def make_tiny_keypoints(root: str, num_train: int = 6, num_val: int = 3, seed: int = 1) -> str:
    """A few toy keypoint images (long side 128-160) under ``root``; returns ``root`` with a slash."""
    from direct_pretrain.datasets import ToyKeypointSpec, generate_toy_keypoints
    generate_toy_keypoints(root, ToyKeypointSpec(num_train=num_train, num_val=num_val, min_long_side=128,
                                                 max_long_side=160, max_figures=2, seed=seed))
    return root.rstrip('/') + '/'


_OVERRIDES = '''
data_root = {root!r}
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, {train_dataset})
test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root))
test_evaluator = dict(ann_file=data_root + 'annotations/person_keypoints_val.json')
train_cfg = dict(max_epochs={epochs})
default_hooks = dict(logger=dict(interval=1))
randomness = dict(seed=0, deterministic=True)
'''


def write_tiny_keypoint_configs(folder: str, data_root: str, pretrain_epochs: int = 1,
                                finetune_epochs: int = 1) -> Tuple[str, str]:
    """Stage configs inheriting the toy keypoint pair, pointed at ``data_root``: (pretrain, finetune)."""
    os.makedirs(folder, exist_ok=True)
    pre = osp.join(folder, 'tiny_kp_pretrain.py')
    with open(pre, 'w') as f:
        f.write(f'_base_ = {TOY_KP_PRETRAIN!r}\n' + _OVERRIDES.format(
            root=data_root, epochs=pretrain_epochs,
            train_dataset='dataset=dict(times=1, dataset=dict(data_root=data_root))'))
    ft = osp.join(folder, 'tiny_kp_finetune.py')
    with open(ft, 'w') as f:
        f.write(f'_base_ = {TOY_KP_FINETUNE!r}\n' + _OVERRIDES.format(
            root=data_root, epochs=finetune_epochs, train_dataset='dataset=dict(data_root=data_root)') +
            f'pretrain_config = {pre!r}\nload_from = None\n'
            'param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=2)]\n')
    return pre, ft
