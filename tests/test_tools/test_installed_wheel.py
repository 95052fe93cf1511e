"""The package as a user installs it: a wheel, non-editable, used from outside the checkout.

The wheel is built from this checkout and installed with ``--no-deps`` into a fresh virtual
environment that sees the project's stack (torch, mmcv, mmdet, ...) through a ``.pth``
path entry but not the checkout; then the toy chain runs through the installed ``dp-chain``
from a temporary directory, on configs that inherit ``direct_pretrain::toy/...`` as another
project's configs would.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import sysconfig
import venv

import pytest
from dp_test_utils import REPO_ROOT, python_env, write_tiny_stage_configs


def run(cmd, cwd, env=None, timeout=600):
    proc = subprocess.run(cmd, cwd=cwd, env=env or python_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f'{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
    return proc


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """(python of the fresh venv, its bin dir): the wheel installed there, nothing else."""
    tmp = tmp_path_factory.mktemp('wheel')
    wheels = tmp / 'dist'
    run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', str(wheels),
         REPO_ROOT], cwd=str(tmp))
    (wheel, ) = list(wheels.glob('direct_pretrain-*.whl'))
    env_dir = tmp / 'venv'
    venv.EnvBuilder(with_pip=False).create(str(env_dir))
    python = str(env_dir / 'bin' / 'python')
    site = run([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], cwd=str(tmp)).stdout
    # The project's stack, as a plain path: .pth files there (the editable checkout) are not run.
    with open(osp.join(site.strip(), 'stack.pth'), 'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    run([sys.executable, '-m', 'pip', '--python', python, 'install', '--no-deps', '-q', str(wheel)], cwd=str(tmp))
    return python, str(env_dir / 'bin')


def test_import_registers_without_replacing_mmengine_backends(installed, tmp_path):
    python, _ = installed
    code = ('import sys, direct_pretrain, mmengine.fileio.backends as b; '
            'print(direct_pretrain.__file__); print(b.backends["local"].__name__, b.backends["atomic_local"].__name__); '
            'print(sorted(m for m in sys.modules if m.startswith(("direct_pretrain.chain", "direct_pretrain.report", '
            '"direct_pretrain.cli", "direct_pretrain.analysis_tools.pipeline_browser"))))')
    out = run([python, '-c', code], cwd=str(tmp_path)).stdout.splitlines()
    assert not out[0].startswith(REPO_ROOT) and '/venv/' in out[0]  # the installed copy, not the checkout
    assert out[1] == 'LocalBackend AtomicLocalBackend'
    assert out[2] == '[]'  # importing registers modules without the chain, the reports or the tools


def test_toy_chain_runs_from_outside_the_checkout(installed, tmp_path, tiny_coco_root):
    python, bindir = installed
    pre_cfg, ft_cfg = write_tiny_stage_configs(str(tmp_path / 'my_project'), tiny_coco_root, scoped=True)
    proc = run([osp.join(bindir, 'dp-chain'), pre_cfg, ft_cfg, '--work-root', str(tmp_path / 'work'), '--no-report'],
               cwd=str(tmp_path), env=dict(python_env(), PATH=bindir + os.pathsep + os.environ['PATH']))
    assert 'coco/bbox_mAP' not in proc.stderr  # the results table is on stdout
    with open(tmp_path / 'work' / 'tiny_finetune' / 'test_metrics.json') as f:
        metrics = json.load(f)
    assert {'coco/bbox_mAP', 'coco/segm_mAP'} <= set(metrics)
    assert (tmp_path / 'work' / 'tiny_pretrain' / 'epoch_1.pth').is_file()
    # the stages ran the installed tools, and nothing was written into the checkout
    assert 'direct_pretrain.cli.train' in proc.stderr
    assert not osp.exists(osp.join(REPO_ROOT, 'work_dirs', 'tiny_pretrain'))


def test_installed_configs_resolve_by_scope(installed, tmp_path):
    """Another project's config inherits a zoo config through ``direct_pretrain::``."""
    python, _ = installed
    (tmp_path / 'mine.py').write_text(
        "_base_ = 'direct_pretrain::direct_pretraining/faster-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py'\n"
        "model = dict(roi_head=dict(bbox_head=dict(num_classes=3)))\n")
    code = ('import direct_pretrain; from direct_pretrain.config import installed_configs_dir; '
            'from mmengine.config import Config; '
            "cfg = Config.fromfile('mine.py'); print(cfg.model.type, cfg.model.roi_head.bbox_head.num_classes, "
            'cfg.load_from, installed_configs_dir())')
    out = run([python, '-c', code], cwd=str(tmp_path)).stdout.split()
    assert out[:2] == ['FasterRCNN', '3'] and out[2].endswith('epoch_12.pth')
    assert '/venv/' in out[3] and osp.isfile(osp.join(out[3], 'toy', 'mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py'))
