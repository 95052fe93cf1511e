"""The test tool's dataloader workers die with it: ``dp-test`` killed with SIGKILL, and
``dp-chain`` killed with SIGTERM in its test stage (the stage, a ``dp-test`` process, gets
SIGTERM from the kernel as the chain dies), leave no worker behind.

Real processes: the kill is what is tested. The test set of the toy chain is read through a
test-only dataset whose items hang in the loader's workers (a long sleep), so the workers are
busy when the tool dies; without the parent-death signal they would sleep on for minutes,
re-parented to init. Every process of a run carries a marker in its environment, which finds
the workers wherever they ended up.
"""
import os
import os.path as osp
import signal
import subprocess
import time
import uuid

import psutil
import pytest
from forked_cli import PYTHON, python_env

pytestmark = pytest.mark.slow  # real processes

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


def start(cmd, cwd, name):
    """``cmd`` with a marker and a folder for its workers' announcements; output to a file (a
    surviving worker must not hold a pipe the test reads)."""
    mark, stall_dir = uuid.uuid4().hex, osp.join(cwd, f'{name}_workers')
    os.makedirs(stall_dir)
    with open(osp.join(cwd, f'{name}.log'), 'w') as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                env=python_env(DP_WORKER_TEST_MARK=mark, DP_STALL_DIR=stall_dir))
    return proc, mark, stall_dir


def wait_for_workers(runs, timeout=300):
    deadline = time.time() + timeout
    for proc, _, stall_dir, name in runs:
        while len(os.listdir(stall_dir)) < 2:
            assert proc.poll() is None and time.time() < deadline, (name, proc.poll(), os.listdir(stall_dir))
            time.sleep(0.1)


def survivors(mark, grace=5.0):
    """Processes carrying ``mark`` still alive (zombies count as dead) after ``grace`` seconds."""
    deadline = time.time() + grace
    while True:
        alive = []
        for proc in psutil.process_iter():
            try:
                if proc.environ().get('DP_WORKER_TEST_MARK') == mark and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass
        if not alive or time.time() > deadline:
            return alive
        time.sleep(0.1)


def test_dp_test_and_the_chains_test_stage_leave_no_worker(tmp_path, toy_chain_copy):
    chain = toy_chain_copy
    with open(osp.join(str(tmp_path), 'stalling_dataset.py'), 'w') as f:
        f.write(STALLING_DATASET)
    with open(chain['ft_cfg'], 'a') as f:  # the test set stalls in the workers
        f.write(STALLING_TEST_SET)
    # dp-test on its own
    tool = start([PYTHON, '-m', 'direct_pretrain.cli.test', chain['ft_cfg'], chain['ft_ckpt'], '--work-dir',
                  str(tmp_path / 'test_wd')], str(tmp_path), 'dp_test')
    # dp-chain with both stages trained: it goes straight to its test stage
    os.remove(chain['metrics_file'])
    chained = start([PYTHON, '-m', 'direct_pretrain.cli.chain', chain['pre_cfg'], chain['ft_cfg'], '--work-root',
                     chain['root'], '--no-report'], str(tmp_path), 'chain')
    runs = [(*tool, 'dp-test'), (*chained, 'dp-chain')]
    try:
        wait_for_workers(runs)
        tool[0].send_signal(signal.SIGKILL)
        chained[0].send_signal(signal.SIGTERM)
        assert tool[0].wait(timeout=60) == -signal.SIGKILL and chained[0].wait(timeout=60) == -signal.SIGTERM
        left = {name: survivors(mark) for _, mark, _, name in runs}
        for procs in left.values():  # never leave them behind, even when the test fails
            for proc in procs:
                proc.kill()
        assert left == {'dp-test': [], 'dp-chain': []}, {k: [(p.pid, p.cmdline()[:4]) for p in v]
                                                           for k, v in left.items()}
    finally:
        for proc, *_ in runs:
            if proc.poll() is None:
                proc.kill()
