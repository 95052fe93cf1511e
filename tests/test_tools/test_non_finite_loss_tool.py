"""A NaN or a loss spike injected into a real toy pre-training stops ``dp-train`` at that
iteration with one ``error:`` line and exit code 3, before the optimizer step; the command the
line gives is the run's own command line (its ``--data-root`` and every ``--cfg-options``
kept), and run as given it resumes from the last good checkpoint with the lower LR.

The NaN comes from a test-only detector (written to the test's temp dir and imported through
``custom_imports``): the toy Mask R-CNN whose ``loss_cls`` / ``loss_bbox`` turn NaN / inf (or
are multiplied by 1e8, a finite spike) at its 3rd training step of the process (epoch 2,
batch 1 of 2). The configs point at a data root that does not exist, so a restart command
without ``--data-root`` fails its input check instead of resuming. The runs are forked from the
test's tool server (the process is not what is tested here; ``test_dist_train.py`` runs torchrun).
"""
import os
import os.path as osp
import re
import shlex
import tempfile

import pytest
import torch
from forked_cli import PYTHON, ToolRun, run_tools
from loss_injection_utils import write_injected_config

from direct_pretrain.runtime.safe_load import safe_torch_load

pytestmark = pytest.mark.slow  # trainings


def test_nan_and_spike_stop_the_run_and_the_printed_command_resumes_it(tmp_path, tiny_coco_root):
    missing_root = str(tmp_path / 'not_the_data')  # the configs' own data root: absent
    nan_cfg = write_injected_config(str(tmp_path), missing_root, 2, "dict(type='NaNLossMaskRCNN', nan_at=3)",
                                    'nan')
    spike_cfg = write_injected_config(str(tmp_path), missing_root, 2,
                                      "dict(type='NaNLossMaskRCNN', nan_at=3, factor=1e8)", 'spike')
    work_dir, spike_dir = str(tmp_path / 'work'), str(tmp_path / 'spike_work')
    options = ['--data-root', tiny_coco_root, '--cfg-options', 'train_dataloader.batch_size=4', 'randomness.seed=7']
    # user files that look like the atomic writer's temporary files, and one that is one
    os.makedirs(work_dir)
    user_files = ['.notes.20261203.tmp', '.train_log.md.backup_1.tmp', '.epoch_1.pth.tmp']
    for name in user_files:
        with open(osp.join(work_dir, name), 'w') as f:
            f.write('mine')
    fd, stale = tempfile.mkstemp(prefix='.epoch_2.pth.', suffix='.tmp', dir=work_dir)  # the writer's own call
    os.close(fd)

    nan_run, spike_run = run_tools([
        ToolRun('train', [nan_cfg, '--work-dir', work_dir, *options], str(tmp_path)),
        # spikes looked for after 2 losses, over the median of the last 2
        ToolRun('train', [spike_cfg, '--work-dir', spike_dir, *options, 'custom_hooks.2.spike_warmup=2',
                          'custom_hooks.2.spike_window=2'], str(tmp_path))])

    assert nan_run.returncode == 3, nan_run.describe()
    assert len(nan_run.error_lines) == 1 and 'Traceback' not in nan_run.stderr, nan_run.describe()
    error = nan_run.error_lines[0]
    last = osp.join(work_dir, 'epoch_1.pth')
    assert error.startswith('error: non-finite loss at iteration 3 (epoch 2, batch 1/2): '), error
    assert 'loss_cls=nan' in error and 'loss_bbox=inf' in error and 'loss_rpn_cls' not in error
    assert f'Last good checkpoint: {last}.' in error
    assert not osp.exists(osp.join(work_dir, 'epoch_2.pth'))
    state = safe_torch_load(last)['state_dict']
    assert all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())
    # the stale temporary file of the writer went at the start; the user's files stayed
    assert not osp.exists(stale) and all(osp.exists(osp.join(work_dir, n)) for n in user_files)

    # The command in the error line: this very run's command, --resume and the LR change added.
    command = re.search(r'Resume from it with a lower LR: (.+?) \(or another seed', error).group(1)
    expected = (f'cd {shlex.quote(str(tmp_path))} && ' + shlex.join(
        [PYTHON, '-m', 'direct_pretrain.cli.train', nan_cfg, '--work-dir', work_dir, *options, '--resume', last,
         '--cfg-options', 'custom_hooks.2.resume_lr_mult=0.5']))
    assert command == expected
    args = shlex.split(command.split(' && ', 1)[1])[3:]  # run as printed: the same module, the same arguments
    resumed, = run_tools([ToolRun('train', args, str(tmp_path))])
    assert resumed.returncode == 0, resumed.describe()
    assert 'resuming with the LR multiplied by 0.5' in resumed.output and 'resumed epoch: 1, iter: 2' in resumed.output
    assert osp.isfile(osp.join(work_dir, 'epoch_2.pth'))  # its 2 steps stay below the injected 3rd

    assert spike_run.returncode == 3, spike_run.describe()
    assert len(spike_run.error_lines) == 1, spike_run.describe()
    error = spike_run.error_lines[0]
    assert error.startswith('error: loss spike at iteration 3 (epoch 2, batch 1/2): loss='), error
    assert 'x its running level' in error and 'largest terms: loss_cls=' in error
    assert f'--resume {osp.join(spike_dir, "epoch_1.pth")} --cfg-options custom_hooks.2.resume_lr_mult=0.5' in error
    assert not osp.exists(osp.join(spike_dir, 'epoch_2.pth'))
