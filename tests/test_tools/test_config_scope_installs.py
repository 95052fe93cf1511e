"""README's snippet for another project - ``_base_ = 'direct_pretrain::toy/...'`` - loads in every
kind of install: the checkout's editable one (``pip install -e .``), a wheel in a fresh
environment, and ``pip install --target DIR``. mmengine resolves ``pkg::name`` under the installed
package's folder; an editable install's distribution lives in site-packages while the package
is in the checkout, where it used to fail with ``FileNotFoundError: .../site-packages/
direct_pretrain/.mim/model-index.yml``. The session's one wheel serves the two installed cases."""
import os.path as osp
import subprocess
import sys

import pytest
from dp_test_utils import REPO_ROOT, python_env

pytestmark = pytest.mark.slow  # builds and installs the package

SNIPPET = ("_base_ = 'direct_pretrain::toy/mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py'\n"
           "custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)\n"
           'model = dict(roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)))\n')
LOAD = ('import direct_pretrain; from mmengine.config import Config; cfg = Config.fromfile("mine.py"); '
        'print(direct_pretrain.__file__); print(cfg.model.type, cfg.model.roi_head.bbox_head.num_classes, '
        'cfg.train_dataloader.dataset.type)')


def _run(cmd, cwd, env=None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=str(cwd), env=env or python_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f'{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
    return proc


def _load_snippet(python: str, folder, env=None) -> list:
    (folder / 'mine.py').write_text(SNIPPET)
    return _run([python, '-c', LOAD], folder, env).stdout.splitlines()


def test_editable_checkout(tmp_path):
    """From another folder, as another project runs it: the checkout is not on sys.path there."""
    out = _load_snippet(sys.executable, tmp_path)
    assert out[0] == osp.join(REPO_ROOT, 'direct_pretrain', '__init__.py')  # the editable install's package
    assert out[1] == 'MaskRCNN 3 RepeatDataset'  # RepeatDataset: the toy pretrain's own setting, inherited


def test_wheel_in_a_fresh_environment(installed_wheel, tmp_path):
    """The session's wheel installed in a fresh virtual environment (conftest: built once from a
    copy of the checkout, read-only)."""
    out = _load_snippet(installed_wheel['python'], tmp_path)
    assert out[0].startswith(installed_wheel['site']) and out[1] == 'MaskRCNN 3 RepeatDataset'


def test_pip_install_target(package_wheel, tmp_path):
    target = tmp_path / 'target'
    _run([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target', str(target), package_wheel], tmp_path)
    out = _load_snippet(sys.executable, tmp_path, python_env(PYTHONPATH=str(target)))
    assert out[0] == str(target / 'direct_pretrain' / '__init__.py') and out[1] == 'MaskRCNN 3 RepeatDataset'
