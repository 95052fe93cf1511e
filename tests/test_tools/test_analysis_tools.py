"""MMDetection's own analysis tools run in the project's environment on a real training log."""
import glob
import os.path as osp
import subprocess

import cv2
import pytest

from dp_test_utils import PYTHON, python_env


def analysis_tool(name: str) -> str:
    import mmdet
    return osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'analysis_tools', name)


@pytest.fixture(scope='module')
def scalars_json(tiny_trained_stage) -> str:
    found = sorted(glob.glob(osp.join(tiny_trained_stage['work_dir'], '*', 'vis_data', 'scalars.json')))
    assert found, tiny_trained_stage['work_dir']
    return found[-1]


def test_analyze_logs_plot_curve_on_a_training_log(scalars_json, tmp_path):
    out = tmp_path / 'loss.png'
    proc = subprocess.run([PYTHON, analysis_tool('analyze_logs.py'), 'plot_curve', scalars_json, '--keys', 'loss',
                           'loss_rpn_cls', '--out', str(out)], cwd=tmp_path, env=python_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    image = cv2.imread(str(out))
    assert image is not None and min(image.shape[:2]) > 100
    assert f'plot curve of {scalars_json}, metric is loss' in proc.stdout


def test_analyze_logs_cal_train_time(scalars_json, tmp_path):
    proc = subprocess.run([PYTHON, analysis_tool('analyze_logs.py'), 'cal_train_time', scalars_json,
                           '--include-outliers'], cwd=tmp_path, env=python_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'average iter time' in proc.stdout
