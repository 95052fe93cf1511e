"""The work-dir lock: a live owner in another process is refused by PID, a dead owner's
lock is taken over, the chain's token lets its child stages in, only rank 0 locks; a ``.lock``
that is not a regular file, or a work dir that is a file, is refused and left as it was."""
import json
import logging
import os
import signal
import socket
import subprocess
import textwrap

import pytest
from dp_test_utils import PYTHON, REPO_ROOT, python_env

from direct_pretrain.errors import WorkDirError
from direct_pretrain.runtime.work_dir_lock import (LOCK_FILE, TOKEN_ENV, WorkDirLock, WorkDirLockedError,
                                                   acquire_work_dir_lock, read_lock_owner, work_dir_problem)

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


def test_a_lock_that_is_not_a_regular_file_is_refused_untouched(tmp_path):
    """Nothing is written through a link, a dangling link creates nothing, a fifo does not block;
    the error names the path and the fix."""
    notes = tmp_path / 'notes.txt'
    notes.write_text('my notes')
    cases = {}
    for name in ('link', 'dangling', 'folder', 'fifo'):
        (tmp_path / name).mkdir()
        cases[name] = str(tmp_path / name)
    os.symlink(notes, tmp_path / 'link' / LOCK_FILE)
    os.symlink(tmp_path / 'missing.txt', tmp_path / 'dangling' / LOCK_FILE)
    (tmp_path / 'folder' / LOCK_FILE).mkdir()
    os.mkfifo(tmp_path / 'fifo' / LOCK_FILE)
    expected = dict(link=f"is a symbolic link (to {str(notes)!r})", dangling='is a symbolic link', folder='is a folder',
                    fifo='is a fifo')
    for name, work_dir in cases.items():
        with pytest.raises(WorkDirError) as info:
            WorkDirLock(work_dir).acquire()
        assert expected[name] in str(info.value) and 'pass another --work-dir' in str(info.value), name
        assert work_dir_problem(work_dir) == str(info.value)
        assert read_lock_owner(work_dir) == {}  # not read through the link either
    assert notes.read_text() == 'my notes' and not (tmp_path / 'missing.txt').exists()


def test_a_work_dir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / 'wd'
    path.write_text('x')
    with pytest.raises(WorkDirError, match="is a file, not a folder"):
        WorkDirLock(str(path)).acquire()
    assert path.read_text() == 'x'
    assert work_dir_problem(str(tmp_path / 'wd' / 'sub')) == (f"work dir {str(path / 'sub')!r} cannot be created: "
                                                              f"{str(path)!r} is a file, not a folder; pass another "
                                                              '--work-dir.')
    assert work_dir_problem(str(tmp_path / 'new' / 'deeper')) is None  # created when the run starts
