"""MMDetection's own tools with the plugin: the mmdet wheel's ``train.py`` and ``analyze_logs.py``.

A config outside the checkout imports the package through ``custom_imports`` and trains with
the mmdet wheel's ``train.py`` (Mask R-CNN from a pretrain checkpoint, Keypoint R-CNN); the
stock log analysis reads a real training log. The runs are forked from the ``mmdet`` tool
server (``forked_cli.py``), which imported MMDetection but not the package: ``custom_imports``
is what brings it in, as for any MMDetection user.
"""
import glob
import json
import os.path as osp

import cv2
import numpy as np
import pytest

from forked_cli import run_tool
from keypoint_test_utils import make_tiny_keypoints, write_tiny_keypoint_configs

ONE_ITERATION = ("train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=1, val_interval=100)\n"
                 "default_hooks = dict(checkpoint=dict(by_epoch=False, interval=1))\n")

pytestmark = pytest.mark.slow  # real trainings


def mmdet_tool(*parts: str) -> str:
    import mmdet
    return osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', *parts)


def scalars(work_dir) -> list:
    (path, ) = glob.glob(osp.join(str(work_dir), '*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_train_tool_loads_a_pretrain_checkpoint_through_the_plugin(toy_chain, tmp_path):
    """``load_from`` of an mmengine checkpoint, checked by the package's ``LoadFromCheckHook``."""
    cfg = tmp_path / 'plugin_cfg.py'
    cfg.write_text(f"_base_ = {toy_chain['ft_cfg']!r}\n"
                   "custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)\n"
                   f"load_from = {toy_chain['pre_ckpt']!r}\n"
                   "custom_hooks = [dict(type='LoadFromCheckHook', strict=True)]\n" + ONE_ITERATION)
    work_dir = tmp_path / 'work'
    run_tool(mmdet_tool('train.py'), cfg, '--work-dir', work_dir, cwd=tmp_path, server='mmdet')
    with open(work_dir / 'load_from_report.json') as f:
        summary = json.load(f)['summary']
    assert summary['load_from'] == toy_chain['pre_ckpt'] and summary['num_missing'] == 0
    assert (work_dir / 'iter_1.pth').is_file()


def test_train_tool_builds_and_trains_the_keypoint_model(tmp_path):
    root = make_tiny_keypoints(str(tmp_path / 'data'), num_train=2, num_val=1)
    _, ft_cfg = write_tiny_keypoint_configs(str(tmp_path / 'configs'), root)
    cfg = tmp_path / 'plugin_kp_cfg.py'
    cfg.write_text(f'_base_ = {ft_cfg!r}\n'
                   "custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)\n"
                   'load_from = None\ncustom_hooks = []\n' + ONE_ITERATION)
    work_dir = tmp_path / 'work'
    run = run_tool(mmdet_tool('train.py'), cfg, '--work-dir', work_dir, cwd=tmp_path, server='mmdet')
    assert (work_dir / 'iter_1.pth').is_file()
    logged = [r['loss_keypoint'] for r in scalars(work_dir) if 'loss_keypoint' in r]
    assert logged and all(np.isfinite(v) and v > 0 for v in logged), run.describe()


@pytest.fixture(scope='module')
def scalars_json(toy_chain) -> str:
    (path, ) = glob.glob(osp.join(toy_chain['pre_dir'], '*', 'vis_data', 'scalars.json'))
    return path


def test_analyze_logs_plot_curve_on_a_training_log(scalars_json, tmp_path):
    out = tmp_path / 'loss.png'
    run = run_tool(mmdet_tool('analysis_tools', 'analyze_logs.py'), 'plot_curve', scalars_json, '--keys', 'loss',
                   'loss_rpn_cls', '--out', out, cwd=tmp_path, server='mmdet')
    image = cv2.imread(str(out))
    assert image is not None and min(image.shape[:2]) > 100
    assert f'plot curve of {scalars_json}, metric is loss' in run.stdout


def test_analyze_logs_cal_train_time(scalars_json, tmp_path):
    run = run_tool(mmdet_tool('analysis_tools', 'analyze_logs.py'), 'cal_train_time', scalars_json,
                   '--include-outliers', cwd=tmp_path, server='mmdet')
    assert 'average iter time' in run.stdout
