"""Helpers shared by the keypoint tests: a tiny toy keypoint set and config overrides."""
import os.path as osp
from typing import Tuple

from dp_test_utils import REPO_ROOT, write_tiny_stage_configs

TOY_KP_PRETRAIN = osp.join(REPO_ROOT, 'configs/toy/keypoint-rcnn_r18_fpn_1xb8-direct-pretrain-128_toy.py')
TOY_KP_FINETUNE = osp.join(REPO_ROOT, 'configs/toy/keypoint-rcnn_r18_fpn_1xb2-direct-finetune_toy.py')


def make_tiny_keypoints(root: str, num_train: int = 6, num_val: int = 3, seed: int = 1) -> str:
    """A few toy keypoint images (long side 128-160) under ``root``; returns ``root`` with a slash."""
    from direct_pretrain.datasets import ToyKeypointSpec, generate_toy_keypoints
    generate_toy_keypoints(root, ToyKeypointSpec(num_train=num_train, num_val=num_val, min_long_side=128,
                                                 max_long_side=160, max_figures=2, seed=seed))
    return root.rstrip('/') + '/'


def write_tiny_keypoint_configs(folder: str, data_root: str, pretrain_epochs: int = 1,
                                finetune_epochs: int = 1) -> Tuple[str, str]:
    """Stage configs inheriting the toy keypoint pair, pointed at ``data_root``: (pretrain, finetune)."""
    return write_tiny_stage_configs(folder, data_root, pretrain_epochs, finetune_epochs,
                                    pair=(TOY_KP_PRETRAIN, TOY_KP_FINETUNE), ann_name='person_keypoints',
                                    prefix='tiny_kp')
