"""The test tool's dataloader workers die with it: ``dp-test`` killed with SIGKILL, and
``dp-chain`` killed with SIGTERM in its test stage (the stage, a ``dp-test`` child process of the
chain, gets SIGTERM from the kernel as the chain dies), leave no worker behind.

The two tools are forked from the tool server (each its own process and process group, killed
by its PID); the chain's stage is a real child process of the chain, as a user's. The test set
of the toy chain is read through a test-only dataset whose items hang in the loader's workers
(a long sleep), so the workers are busy when the tool dies; without the parent-death signal they
would sleep on for minutes, re-parented to init. The workers are found by process group,
wherever they ended up.
"""
import os
import os.path as osp
import signal
import time

import pytest
from forked_cli import Pending, ToolRun, group_survivors

pytestmark = pytest.mark.slow  # killed tool processes and their workers

STALLING_DATASET = '''
import os
import time

from torch.utils.data import get_worker_info

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS


@DATASETS.register_module()
class StallingCocoDataset(CocoDataset):
    """CocoDataset whose items hang in the loader's workers, each announcing itself first."""

    def __getitem__(self, index):
        if get_worker_info() is not None:
            open(os.path.join(os.environ['DP_STALL_DIR'], f'worker_{os.getpid()}'), 'w').close()
            time.sleep(600)
        return super().__getitem__(index)
'''

# appended to the chain's finetune config (statements on the dict the file defined above)
STALLING_TEST_SET = """
custom_imports = dict(imports=['direct_pretrain', 'stalling_dataset'], allow_failed_imports=False)
test_dataloader.update(num_workers=2, persistent_workers=False)
test_dataloader['dataset']['type'] = 'StallingCocoDataset'
"""


def start(tool, args, cwd, name):
    """``tool`` forked, with a folder for its workers' announcements; its importable plugin
    (``stalling_dataset``) in ``cwd``."""
    stall_dir = osp.join(cwd, f'{name}_workers')
    os.makedirs(stall_dir)
    env = dict(DP_STALL_DIR=stall_dir, PYTHONPATH=os.pathsep.join(filter(None, [cwd, os.environ.get('PYTHONPATH')])))
    pending = Pending([ToolRun(tool, args, cwd, env=env)])
    return pending, stall_dir


def wait_for_workers(runs, timeout=300):
    deadline = time.time() + timeout
    for pending, stall_dir in runs:
        while len(os.listdir(stall_dir)) < 2:
            assert not pending.finished() and time.time() < deadline, (pending.runs[0].tool, os.listdir(stall_dir))
            time.sleep(0.1)


def test_dp_test_and_the_chains_test_stage_leave_no_worker(tmp_path, toy_chain_copy):
    chain = toy_chain_copy
    with open(osp.join(str(tmp_path), 'stalling_dataset.py'), 'w') as f:
        f.write(STALLING_DATASET)
    with open(chain['ft_cfg'], 'a') as f:  # the test set stalls in the workers
        f.write(STALLING_TEST_SET)
    # dp-test on its own
    tool = start('test', [chain['ft_cfg'], chain['ft_ckpt'], '--work-dir', str(tmp_path / 'test_wd')], str(tmp_path),
                 'dp_test')
    # dp-chain with both stages trained: it goes straight to its test stage
    os.remove(chain['metrics_file'])
    chained = start('chain', [chain['pre_cfg'], chain['ft_cfg'], '--work-root', chain['root'], '--no-report'],
                    str(tmp_path), 'chain')
    runs = {'dp-test': tool, 'dp-chain': chained}
    try:
        wait_for_workers(runs.values())
        os.kill(tool[0].runs[0].pid, signal.SIGKILL)
        os.kill(chained[0].runs[0].pid, signal.SIGTERM)
        tool[0].wait(timeout=60)
        chained[0].wait(timeout=60)
        assert (tool[0].runs[0].returncode, chained[0].runs[0].returncode) == (-signal.SIGKILL, -signal.SIGTERM)
        left = {name: group_survivors(pending.runs[0].pid) for name, (pending, _) in runs.items()}
        for procs in left.values():  # never leave them behind, even when the test fails
            for proc in procs:
                proc.kill()
        assert left == {'dp-test': [], 'dp-chain': []}, {k: [(p.pid, p.cmdline()[:4]) for p in v]
                                                           for k, v in left.items()}
    finally:
        for pending, _ in runs.values():
            try:
                os.killpg(pending.runs[0].pid, signal.SIGKILL)
            except OSError:
                pass
            pending.wait(timeout=60)
