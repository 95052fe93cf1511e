"""Dataloader workers die with the process that started them, through both worker inits
the package installs (EpochSeedHook's and WorkerLifetimeHook's wrapper).

The workers here are busy in ``__getitem__`` (a long sleep) when their parent is killed:
torch's own watchdog only looks between two items, so without the parent-death signal they
would outlive the parent by minutes. The training-level tests (test_fault_matrix.py) check
the same through the train tool with the 5 s the issue allows.
"""
import os
import signal
import textwrap
import time

import psutil
import pytest

from forked_cli import Pending, ToolRun

CHILD = '''
import functools, os, sys, time
from mmengine.dataset.utils import worker_init_fn as mmengine_worker_init
from torch.utils.data import DataLoader, Dataset
from direct_pretrain.engine.hooks import seed_worker_from_torch, worker_init_with_parent_death

class Busy(Dataset):
    def __init__(self, tag):
        self.tag = tag
    def __len__(self):
        return 100
    def __getitem__(self, index):
        open(os.path.join(sys.argv[1], f'{self.tag}_{os.getpid()}'), 'w').close()
        time.sleep(300)
        return index

inits = dict(seed=seed_worker_from_torch,
             wrapped=worker_init_with_parent_death(functools.partial(mmengine_worker_init, num_workers=2, rank=0,
                                                                     seed=0)))
iterators = [iter(DataLoader(Busy(tag), num_workers=2, worker_init_fn=init)) for tag, init in inits.items()]
time.sleep(600)
'''


@pytest.mark.slow  # a process (forked from the tool server) killed with its workers
@pytest.mark.parametrize('sig', [signal.SIGKILL, signal.SIGTERM])
def test_busy_workers_die_with_their_parent(tmp_path, sig):
    script = tmp_path / 'child.py'
    script.write_text(textwrap.dedent(CHILD))
    pending = Pending([ToolRun(str(script), [str(tmp_path)], str(tmp_path))])
    proc = pending.runs[0]
    try:
        deadline = time.time() + 300
        while len([n for n in os.listdir(tmp_path) if n.startswith(('seed_', 'wrapped_'))]) < 4:
            assert not pending.finished() and time.time() < deadline, 'the child never started its 4 workers'
            time.sleep(0.1)
        workers = [psutil.Process(int(n.split('_')[1])) for n in os.listdir(tmp_path)
                   if n.startswith(('seed_', 'wrapped_'))]
        assert all(w.ppid() == proc.pid for w in workers)
        os.kill(proc.pid, sig)
        pending.wait(timeout=60)
        assert proc.returncode == -sig
        deadline = time.time() + 2.0  # the kernel's signal is immediate; without it they sleep on for minutes
        alive = workers
        while alive and time.time() < deadline:
            time.sleep(0.05)
            alive = [w for w in alive if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
        for worker in alive:
            worker.kill()
        assert not alive, [w.pid for w in alive]
    finally:
        if not pending.finished():
            os.killpg(proc.pid, signal.SIGKILL)
            pending.wait(timeout=60)
