"""A NaN injected into a real toy pre-training stops ``tools/train.py`` at that iteration with one
``error:`` line, a non-zero exit code and a finite last checkpoint; the command the line gives
resumes from it with the lower LR.

The NaN comes from a test-only detector (written to the test's temp dir and imported through
``custom_imports``): the toy Mask R-CNN whose ``loss_cls`` / ``loss_bbox`` turn NaN / inf at
its 6th training step (epoch 2, batch 2 of 4).
"""
import os.path as osp
import re
import shlex
import subprocess

import torch
from dp_test_utils import PYTHON, REPO_ROOT, TOOLS, python_env, write_tiny_stage_configs

from direct_pretrain.runtime.safe_load import safe_torch_load

INJECTION = '''
from mmdet.models.detectors import MaskRCNN
from mmdet.registry import MODELS


@MODELS.register_module()
class NaNLossMaskRCNN(MaskRCNN):
    """The toy Mask R-CNN with a non-finite classification / box loss at one training step."""

    def __init__(self, nan_at, **kwargs):
        super().__init__(**kwargs)
        self.nan_at, self.steps = nan_at, 0

    def loss(self, batch_inputs, batch_data_samples):
        losses = super().loss(batch_inputs, batch_data_samples)
        self.steps += 1
        if self.steps == self.nan_at:
            losses['loss_cls'] = losses['loss_cls'] * float('nan')
            losses['loss_bbox'] = losses['loss_bbox'] + float('inf')
        return losses
'''


def run(args, cwd, env):
    return subprocess.run([PYTHON, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_injected_nan_stops_the_toy_pretrain_with_one_error_line(tmp_path, tiny_coco_root):
    base, _ = write_tiny_stage_configs(str(tmp_path / 'cfg'), tiny_coco_root, pretrain_epochs=2)
    (tmp_path / 'nan_injection.py').write_text(INJECTION)
    cfg = tmp_path / 'cfg' / 'nan_pretrain.py'
    cfg.write_text(f'_base_ = {base!r}\n'
                   "custom_imports = dict(imports=['direct_pretrain', 'nan_injection'], allow_failed_imports=False)\n"
                   "model = dict(type='NaNLossMaskRCNN', nan_at=6)\n")
    env = python_env()
    env['PYTHONPATH'] = str(tmp_path)  # the injection module only; the package comes from its installation
    work_dir = str(tmp_path / 'work')

    result = run([osp.join(TOOLS, 'train.py'), str(cfg), '--work-dir', work_dir], str(tmp_path), env)
    assert result.returncode not in (0, 2), result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1, result.stderr[-3000:]
    error = errors[0]
    last = osp.join(work_dir, 'epoch_1.pth')
    assert error.startswith('error: non-finite loss at iteration 6 (epoch 2, batch 2/4): ')
    assert 'loss_cls=nan' in error and 'loss_bbox=inf' in error and 'loss_rpn_cls' not in error
    assert f'Last good checkpoint: {last}.' in error
    assert not osp.exists(osp.join(work_dir, 'epoch_2.pth'))
    state = safe_torch_load(last)['state_dict']
    assert all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())

    # The command in the error line resumes from that checkpoint with half the LR.
    command = re.search(r'Resume from it with a lower LR: python (tools/train\.py .+?) \(or another seed', error)
    args = shlex.split(command.group(1))
    assert args[args.index('--resume') + 1] == last
    args[0] = osp.join(REPO_ROOT, args[0])
    resumed = run(args, str(tmp_path), env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert 'resuming with the LR multiplied by 0.5' in log and 'resumed epoch: 1, iter: 4' in log
    assert osp.isfile(osp.join(work_dir, 'epoch_2.pth'))  # (its 4 steps stay below the injected 6th)
