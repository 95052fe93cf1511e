"""``./dist_train.sh CFG 2`` without CUDA: two real processes on gloo, a dying rank, and a rank
whose loss turns NaN (one ``error:`` line, exit code 3, the restart command is the dist command).

The shell scripts, torchrun (``tools/dist_run.py``) and its two ranks are each their own process,
as a user's; their interpreter (``PYTHON`` for the scripts, ``PYTHON_EXEC`` for torchrun's ranks)
is forked from the session's pre-imported tool server, so no process pays the imports again."""
import json
import os
import os.path as osp
import re
import shlex
import socket
import subprocess
import textwrap
import time

import pytest
import torch
from dp_test_utils import python_env, write_tiny_stage_configs
from forked_cli import forked_python
from loss_injection_utils import write_injected_config

pytestmark = pytest.mark.slow  # torchrun jobs of real processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def launch_env(folder, **extra) -> dict:
    """A launcher's environment: a free port, and the scripts' and torchrun ranks' interpreter
    forked from the tool server."""
    python = forked_python(str(folder))
    return python_env(PORT=str(free_port()), PYTHON=python, PYTHON_EXEC=python, **extra)


def dist_train(repo_root, cfg, work_dir, cwd, extra_pythonpath=None, *extra):
    env = launch_env(cwd / 'bin')
    if extra_pythonpath:
        env['PYTHONPATH'] = os.pathsep.join(filter(None, [extra_pythonpath, env.get('PYTHONPATH')]))
    return subprocess.run([osp.join(repo_root, 'dist_train.sh'), cfg, '2', '--work-dir', str(work_dir), *extra],
                          cwd=str(cwd), env=env, capture_output=True, text=True, timeout=600)


def test_dist_train_two_processes_on_gloo(tmp_path, tiny_coco_root, repo_root):
    pre_cfg, _ = write_tiny_stage_configs(str(tmp_path / 'cfg'), tiny_coco_root)
    work_dir = tmp_path / 'work'
    proc = dist_train(repo_root, pre_cfg, work_dir, tmp_path, None, '--cfg-options', 'train_dataloader.batch_size=1')
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    assert "dist_cfg: {'backend': 'gloo'}" in log and 'Distributed training: True' in log, log[-3000:]
    ckpt = torch.load(work_dir / 'epoch_1.pth', map_location='cpu', weights_only=False)
    # 8 images, 1 per process, 2 processes: 4 iterations per epoch (a single process would take 8).
    assert ckpt['meta']['iter'] == 4
    scalars = sorted(work_dir.glob('*/vis_data/scalars.json'))
    lines = [json.loads(line) for line in scalars[-1].read_text().splitlines()]
    assert [line['iter'] for line in lines if 'loss' in line] == [1, 2, 3, 4]

    # ./dist_test.sh on the same two processes evaluates the checkpoint; rank 0 writes the
    # metrics into the work dir (here the training's, as with the default work dirs), where
    # the run report finds them
    env = launch_env(tmp_path / 'bin')
    proc = subprocess.run([osp.join(repo_root, 'dist_test.sh'), pre_cfg, str(work_dir / 'epoch_1.pth'), '2',
                           '--eval', 'bbox', '--work-dir', str(work_dir)],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    metrics = json.loads((work_dir / 'test_metrics.json').read_text())
    assert log.count('test metrics written to') == 1 and not list(work_dir.glob('*.tmp'))
    from direct_pretrain.report import read_stage_log
    assert read_stage_log(str(work_dir)).test_metrics['coco/bbox_mAP'] == metrics['coco/bbox_mAP']


@pytest.mark.parametrize('how', ['raise', 'exit'])
def test_a_dying_rank_ends_the_job_with_its_error(tmp_path, tiny_coco_root, repo_root, how):
    """Rank 1 fails at its 2nd iteration while rank 0 waits in the gradient all-reduce:
    the job must end on its own, non-zero, and show rank 1's error."""
    plugin = tmp_path / 'plugin'
    plugin.mkdir()
    (plugin / 'failing_rank_hook.py').write_text(textwrap.dedent(f'''
        import os
        from mmengine.hooks import Hook
        from mmdet.registry import HOOKS

        @HOOKS.register_module()
        class FailingRankHook(Hook):
            def before_train_iter(self, runner, batch_idx, data_batch=None):
                if runner.rank == 1 and runner.iter == 1:
                    if {how!r} == 'raise':
                        raise RuntimeError('injected failure on rank 1')
                    os._exit(17)
    '''))
    pre_cfg, _ = write_tiny_stage_configs(str(tmp_path / 'cfg'), tiny_coco_root)
    cfg = tmp_path / 'failing.py'
    cfg.write_text(f'_base_ = {pre_cfg!r}\n'
                   "custom_imports = dict(imports=['direct_pretrain', 'failing_rank_hook'], allow_failed_imports=False)\n"
                   "custom_hooks = [dict(type='FailingRankHook')]\n")
    start = time.time()
    proc = dist_train(repo_root, str(cfg), tmp_path / 'work', tmp_path, str(plugin), '--cfg-options',
                      'train_dataloader.batch_size=1')
    elapsed = time.time() - start
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert elapsed < 180, elapsed
    assert 'rank     : 1' in log or 'rank: 1' in log, log[-4000:]
    if how == 'raise':
        assert 'injected failure on rank 1' in log, log[-4000:]
    else:
        assert 'exitcode  : 17' in log or 'exitcode: 17' in log, log[-4000:]


def test_nan_on_one_rank_ends_the_job_with_one_error_line_and_exit_3(tmp_path, tiny_coco_root, repo_root):
    """Rank 1's loss turns NaN at the first iteration: both ranks stop there (the verdict is
    all-reduced), rank 0 prints rank 1's loss terms, and the job ends with exit code 3 and
    nothing else - no torchrun failure report, no traceback."""
    cfg = write_injected_config(str(tmp_path), tiny_coco_root, 1, "dict(type='NaNLossMaskRCNN', nan_at=1, ranks=[1])",
                                'nan')
    work_dir = str(tmp_path / 'work')
    env = launch_env(tmp_path / 'bin')
    port = env['PORT']
    script = osp.join(repo_root, 'dist_train.sh')
    proc = subprocess.run([script, cfg, '2', '--work-dir', work_dir, '--cfg-options', 'train_dataloader.batch_size=2'],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out[-5000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and out.count('error:') == 1, out[-5000:]
    for noise in ('Traceback', 'ChildFailedError', 'failed (exitcode', 'Root Cause'):
        assert noise not in out, out[-5000:]
    error = errors[0]
    assert error.startswith('error: non-finite loss at iteration 1 (epoch 1, batch 1/2): loss_cls=nan, loss_bbox=inf '
                            'on rank(s) [1]; the weights were not updated with it. No checkpoint was written'), error
    command = re.search(r'Restart with a lower LR or another seed: (.+)$', error).group(1)
    launcher_env = f'PORT={port} PYTHON={shlex.quote(env["PYTHON"])}'  # as given to dist_train.sh
    assert command == f'cd {shlex.quote(str(tmp_path))} && {launcher_env} ' + shlex.join(
        [script, cfg, '2', '--work-dir', work_dir, '--cfg-options', 'train_dataloader.batch_size=2', '--cfg-options',
         'optim_wrapper.optimizer.lr=0.01', 'randomness.seed=1'])
