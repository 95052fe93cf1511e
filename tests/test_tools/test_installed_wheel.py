"""The package as a user installs it: a wheel, non-editable, used from outside the checkout.

The wheel (``installed_wheel``, built once per session: from a copy of this checkout's files,
installed with ``--no-deps`` into a fresh virtual environment that sees the project's stack but
not the checkout) is used by real processes started in a temporary directory: one interpreter
imports the installed package and reads another project's config that inherits
``direct_pretrain::...``; the installed ``dp-chain`` runs the toy chain (one iteration per
stage) on configs that inherit ``direct_pretrain::toy/...``.
"""
import json
import os
import os.path as osp
import subprocess

import pytest

from dp_test_utils import REPO_ROOT, python_env, write_tiny_stage_configs

pytestmark = pytest.mark.slow  # real processes of an installed package

TOY_PRETRAIN = 'mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py'


def run(cmd, cwd, env=None, timeout=600):
    proc = subprocess.run(cmd, cwd=cwd, env=env or python_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f'{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
    return proc


_FACTS = '''
import json, sys
import direct_pretrain
import mmengine.fileio.backends as backends
not_at_import = ('direct_pretrain.chain', 'direct_pretrain.report', 'direct_pretrain.cli',
                 'direct_pretrain.analysis_tools.pipeline_browser')
facts = dict(file=direct_pretrain.__file__, local=backends.backends['local'].__name__,
             atomic=backends.backends['atomic_local'].__name__,
             loaded=sorted(m for m in sys.modules if m.startswith(not_at_import)))
from mmengine.config import Config
from direct_pretrain.config import installed_configs_dir
cfg = Config.fromfile('mine.py')
facts.update(type=cfg.model.type, num_classes=cfg.model.roi_head.bbox_head.num_classes, load_from=cfg.load_from,
             configs_dir=installed_configs_dir())
print(json.dumps(facts))
'''


@pytest.fixture(scope='module')
def facts(installed_wheel, tmp_path_factory) -> dict:
    """What one interpreter of the venv, started in another project's folder, finds: first right
    after ``import direct_pretrain``, then reading that project's config."""
    python = installed_wheel['python']
    project = tmp_path_factory.mktemp('my_project')
    (project / 'mine.py').write_text(
        "_base_ = 'direct_pretrain::direct_pretraining/faster-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py'\n"
        "model = dict(roi_head=dict(bbox_head=dict(num_classes=3)))\n")
    return json.loads(run([python, '-c', _FACTS], cwd=str(project)).stdout.splitlines()[-1])


def test_import_registers_without_replacing_mmengine_backends(facts):
    assert not facts['file'].startswith(REPO_ROOT) and '/venv/' in facts['file']  # the installed copy
    assert (facts['local'], facts['atomic']) == ('LocalBackend', 'AtomicLocalBackend')
    assert facts['loaded'] == []  # importing registers modules without the chain, the reports or the tools


def test_installed_configs_resolve_by_scope(facts):
    """Another project's config inherits a zoo config through ``direct_pretrain::``."""
    assert (facts['type'], facts['num_classes']) == ('FasterRCNN', 3) and facts['load_from'].endswith('.pth')
    assert '/venv/' in facts['configs_dir'] and osp.isfile(osp.join(facts['configs_dir'], 'toy', TOY_PRETRAIN))


def test_toy_chain_runs_from_outside_the_checkout(installed_wheel, tmp_path):
    from direct_pretrain.datasets import ToyCocoSpec, generate_toy_coco
    python, bindir = installed_wheel['python'], installed_wheel['bindir']
    data = str(tmp_path / 'data')  # one batch: one iteration per stage
    generate_toy_coco(data, ToyCocoSpec(num_train=2, num_val=1, min_long_side=160, max_long_side=192, seed=1))
    pre_cfg, ft_cfg = write_tiny_stage_configs(str(tmp_path / 'my_project'), data, scoped=True)
    proc = run([osp.join(bindir, 'dp-chain'), pre_cfg, ft_cfg, '--work-root', str(tmp_path / 'work'), '--no-report'],
               cwd=str(tmp_path), env=python_env(PATH=bindir + os.pathsep + os.environ['PATH']))
    assert 'coco/bbox_mAP' not in proc.stderr  # the results table is on stdout
    with open(tmp_path / 'work' / 'tiny_finetune' / 'test_metrics.json') as f:
        metrics = json.load(f)
    assert {'coco/bbox_mAP', 'coco/segm_mAP'} <= set(metrics)
    assert (tmp_path / 'work' / 'tiny_pretrain' / 'epoch_1.pth').is_file()
    # the stages ran the installed tools with the venv's interpreter, and nothing was written into the checkout
    assert f'{python} -m direct_pretrain.cli.train' in proc.stderr
    assert not osp.exists(osp.join(REPO_ROOT, 'work_dirs', 'tiny_pretrain'))
