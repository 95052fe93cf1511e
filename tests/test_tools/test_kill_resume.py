"""A run killed with SIGKILL mid-epoch and resumed ends with the same weights as an
uninterrupted run (deterministic CPU settings). The three runs are forked from the tool server:
each its own process, the killed one killed with SIGKILL by its PID; the reference trains
concurrently with it."""
import os
import os.path as osp
import signal
import time

import pytest
import torch
from dp_test_utils import write_tiny_stage_configs
from forked_cli import Pending, ToolRun, run_tools

pytestmark = pytest.mark.slow  # trains three times, one run killed


def output(run) -> str:
    return ''.join(open(path, errors='replace').read() for path in (run.stdout_path, run.stderr_path))


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path, tiny_coco_root):
    cfg, _ = write_tiny_stage_configs(str(tmp_path / 'cfg'), tiny_coco_root, pretrain_epochs=2)
    reference_dir, killed_dir = str(tmp_path / 'reference'), str(tmp_path / 'killed')
    reference_run, killed_run = (Pending([ToolRun('train', [cfg, '--work-dir', work_dir], str(tmp_path))])
                                 for work_dir in (reference_dir, killed_dir))
    killed = killed_run.runs[0]
    deadline = time.time() + 300
    while 'Epoch(train) [2][2/4]' not in output(killed):  # half-way through the second epoch
        assert time.time() < deadline and not killed_run.finished(), output(killed)[-3000:]
        time.sleep(0.02)
    os.kill(killed.pid, signal.SIGKILL)
    killed_run.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.output[-3000:]  # (wait() read and removed its files)
    assert osp.isfile(osp.join(killed_dir, 'epoch_1.pth')) and not osp.exists(osp.join(killed_dir, 'epoch_2.pth'))

    resumed, = run_tools([ToolRun('train', [cfg, '--work-dir', killed_dir, '--resume'], str(tmp_path))])
    assert resumed.returncode == 0, resumed.describe()
    assert 'resumed epoch: 1, iter: 4' in resumed.output
    done, = reference_run.wait()
    assert done.returncode == 0, done.describe()

    reference = torch.load(osp.join(reference_dir, 'epoch_2.pth'), map_location='cpu', weights_only=False)
    result = torch.load(osp.join(killed_dir, 'epoch_2.pth'), map_location='cpu', weights_only=False)
    assert reference['state_dict'].keys() == result['state_dict'].keys()
    different = [k for k, v in reference['state_dict'].items() if not torch.equal(v, result['state_dict'][k])]
    assert not different, different[:10]
    # sanity: training changed the weights between the epochs, so equality is not trivial
    first = torch.load(osp.join(killed_dir, 'epoch_1.pth'), map_location='cpu', weights_only=False)
    assert not torch.equal(first['state_dict']['roi_head.bbox_head.fc_cls.weight'],
                           result['state_dict']['roi_head.bbox_head.fc_cls.weight'])
