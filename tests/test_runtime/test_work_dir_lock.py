"""The work-dir lock: a live owner in another process is refused by PID, a dead owner's
lock is taken over, the chain's token lets its child stages in, only rank 0 locks."""
import json
import logging
import os
import signal
import socket
import subprocess
import textwrap

import pytest
from dp_test_utils import PYTHON, REPO_ROOT, python_env

from direct_pretrain.runtime.work_dir_lock import (LOCK_FILE, TOKEN_ENV, WorkDirLock, WorkDirLockedError,
                                                   acquire_work_dir_lock, read_lock_owner)

# The child processes load the lock module and the leaf errors module alone (standard library
# only) under empty stand-ins of their packages, so they start in a fraction of a second
# instead of running the package's __init__, which imports mmdet.
_LOAD = f'''
import sys, types
for name, folder in (('direct_pretrain', ''), ('direct_pretrain.runtime', '/runtime')):
    package = types.ModuleType(name)
    package.__path__ = [{REPO_ROOT!r} + '/direct_pretrain' + folder]
    sys.modules[name] = package
from direct_pretrain.runtime.work_dir_lock import WorkDirLock, WorkDirLockedError
'''


@pytest.fixture()
def holder(tmp_path):
    """A real process that takes the lock of tmp_path/wd and waits."""
    script = tmp_path / 'holder.py'
    script.write_text(_LOAD + textwrap.dedent(f'''
        import time
        lock = WorkDirLock({str(tmp_path / 'wd')!r}, token='chain-token').acquire()
        print('locked', flush=True)
        time.sleep(120)
    '''))
    proc = subprocess.Popen([PYTHON, str(script)], env=python_env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'locked'
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_live_owner_is_refused_by_pid_and_dead_owner_taken_over(tmp_path, holder, caplog):
    work_dir = str(tmp_path / 'wd')
    with pytest.raises(WorkDirLockedError) as info:
        WorkDirLock(work_dir).acquire()
    assert f'PID {holder.pid} on {socket.gethostname()}' in str(info.value)
    assert info.value.owner['pid'] == holder.pid and 'holder.py' in ' '.join(info.value.owner['argv'])
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with caplog.at_level(logging.WARNING):
        lock = WorkDirLock(work_dir).acquire()
    assert lock.locked and lock.previous_owner['pid'] == holder.pid
    assert f'left by PID {holder.pid}' in caplog.text and 'no longer runs' in caplog.text
    assert json.loads(open(os.path.join(work_dir, LOCK_FILE)).read())['pid'] == os.getpid()
    lock.release()
    assert open(os.path.join(work_dir, LOCK_FILE)).read() == ''  # a clean hand-over
    caplog.clear()
    with caplog.at_level(logging.WARNING), WorkDirLock(work_dir) as again:
        assert again.locked and not again.previous_owner
    assert 'taking over' not in caplog.text


def test_token_holder_children_run_as_guests(tmp_path, holder, monkeypatch):
    work_dir = str(tmp_path / 'wd')
    monkeypatch.setenv(TOKEN_ENV, 'another-token')
    with pytest.raises(WorkDirLockedError):
        WorkDirLock(work_dir).acquire()
    monkeypatch.setenv(TOKEN_ENV, 'chain-token')
    guest = WorkDirLock(work_dir).acquire()
    assert guest.guest and not guest.locked and guest.record['pid'] == holder.pid
    guest.release()
    with pytest.raises(WorkDirLockedError):  # the owner still holds it
        WorkDirLock(work_dir, allow_guest=False).acquire()


def test_one_lock_per_process_and_only_rank_zero(tmp_path):
    work_dir = str(tmp_path / 'wd')
    assert acquire_work_dir_lock(work_dir, rank=1) is None and not os.path.exists(work_dir)
    lock = acquire_work_dir_lock(work_dir, rank=0)
    try:
        with pytest.raises(WorkDirLockedError, match=f'PID {os.getpid()}'):
            WorkDirLock(work_dir).acquire()
        assert read_lock_owner(work_dir)['pid'] == os.getpid()
        assert lock.locked  # the refused second attempt did not drop the POSIX lock
        probe = subprocess.run([PYTHON, '-c', _LOAD + textwrap.dedent(f'''
            try:
                WorkDirLock({work_dir!r}).acquire()
            except WorkDirLockedError as error:
                print(error.owner['pid'])
        ''')], env=python_env(), capture_output=True, text=True, timeout=120)
        assert probe.stdout.strip() == str(os.getpid()), probe.stderr[-2000:]
    finally:
        lock.release()


def test_a_dir_created_by_the_lock_and_left_empty_is_removed(tmp_path):
    work_dir = tmp_path / 'new'
    with WorkDirLock(str(work_dir)):
        assert (work_dir / LOCK_FILE).exists()
    assert not work_dir.exists()  # e.g. the chain's stage dir when the stage's own checks refuse to start
    with WorkDirLock(str(work_dir)):
        (work_dir / 'epoch_1.pth').write_bytes(b'x')
    assert sorted(p.name for p in work_dir.iterdir()) == [LOCK_FILE, 'epoch_1.pth']
