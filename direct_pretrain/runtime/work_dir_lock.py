"""One live run per work dir: a lock with the owner's PID and host.

Why: two runs started into the same work dir (a second ``--resume`` while the first still
trains, the chain started twice) both train and both write ``epoch_N.pth`` and
``last_checkpoint``; neither notices. The first run takes this lock before anything is
written and a second start refuses, naming the running PID.

Design: a POSIX record lock (``fcntl.lockf``) on ``<work_dir>/.lock``, whose content is a
JSON record of the owner (pid, host, start time, command, token).

- The kernel drops the lock when its process dies, however it dies (SIGKILL included), so
  a lock left by a dead run is simply free: the next start takes it over and logs whose
  it was. No PID-liveness guess is needed, which would fail across hosts and on PID reuse
  (an ``O_EXCL`` lock file has exactly that problem).
- POSIX locks belong to the process, unlike ``flock`` locks, which belong to the open file
  and are inherited by forked children: a dataloader worker orphaned by a killed run would
  then keep the work dir locked.
- ``lockf`` goes through NFS's lock manager; where the file system cannot lock at all the
  run continues with a warning.
- The lock file is opened without following symbolic links and must be a regular file:
  a ``.lock`` that links elsewhere would have the record written - and on release
  truncated - in a file outside the work dir; a folder, fifo or link is refused with
  :class:`~direct_pretrain.errors.WorkDirError` naming it and the fix.
- Under ``torchrun`` only global rank 0 takes the lock (one job, one owner).
- The chain holds the locks of its stage work dirs across all stages and runs the stages
  as child processes; it passes its token in ``DP_WORK_DIR_LOCK_TOKEN``, and a start that
  finds the lock held by the owner of that token runs as its guest instead of refusing.
"""
import datetime
import errno
import fcntl
import json
import logging
import os
import os.path as osp
import socket
import stat
import sys
import time
import uuid
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence

from ..errors import WorkDirError

__all__ = ['LOCK_FILE', 'TOKEN_ENV', 'WorkDirLockedError', 'WorkDirLock', 'acquire_work_dir_lock', 'hold_work_dirs',
           'read_lock_owner', 'lock_file_problem', 'work_dir_problem']

logger = logging.getLogger(__name__)

LOCK_FILE = '.lock'
TOKEN_ENV = 'DP_WORK_DIR_LOCK_TOKEN'

# Locks this process holds, by real path: a second POSIX lock on the same file from the
# same process would succeed silently, and closing it would drop the first one.
_HELD: Dict[str, 'WorkDirLock'] = {}


class WorkDirLockedError(RuntimeError):
    """Another live process owns the work dir.

    Attributes:
        work_dir (str): The work dir.
        owner (dict): The owner's record (pid, host, started, argv), possibly empty.
    """

    def __init__(self, work_dir: str, owner: dict) -> None:
        self.work_dir = work_dir
        self.owner = owner
        pid, host = owner.get('pid', 'unknown'), owner.get('host', 'unknown host')
        started = f', started {owner["started"]}' if owner.get('started') else ''
        command = f', command: {" ".join(owner["argv"])}' if owner.get('argv') else ''
        super().__init__(
            f'work dir {work_dir!r} is in use by a running process: PID {pid} on {host}{started}{command}. '
            'Only one run may write to a work dir: wait for it to finish, stop it, or pass another --work-dir. '
            f'(The lock is {osp.join(work_dir, LOCK_FILE)}; a lock left by a process that no longer runs is '
            'taken over automatically.)')


# Never through a symbolic link, never blocking on a fifo.
_OPEN_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, 'O_CLOEXEC', 0)

_KINDS = ((stat.S_ISDIR, 'a folder'), (stat.S_ISFIFO, 'a fifo'), (stat.S_ISSOCK, 'a socket'),
          (stat.S_ISCHR, 'a character device'), (stat.S_ISBLK, 'a block device'))


def lock_file_problem(work_dir: str) -> Optional[str]:
    """Why ``<work_dir>/.lock`` cannot be the lock file (a link, a folder, ...), as the
    ``error:`` text with the fix; None when it is a regular file or absent."""
    path = osp.join(work_dir, LOCK_FILE)
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISREG(info.st_mode):
        return None
    if stat.S_ISLNK(info.st_mode):
        return (f'{path!r} is a symbolic link (to {os.readlink(path)!r}), not the work dir\'s lock file; the run '
                f'writes no file outside its work dir through it. Remove the link (rm {path!r}) or pass another '
                '--work-dir.')
    kind = next((name for test, name in _KINDS if test(info.st_mode)), 'not a regular file')
    remove = f'rm -r {path!r}' if stat.S_ISDIR(info.st_mode) else f'rm {path!r}'
    return (f'{path!r} is {kind}, not the work dir\'s lock file (a regular file the run writes its owner into). '
            f'Remove it ({remove}) or pass another --work-dir.')


_WRITABLE = os.W_OK | os.X_OK


def work_dir_problem(work_dir: str, lock: bool = True) -> Optional[str]:
    """Why a run could not use ``work_dir``, as the ``error:`` text with the fix; None when it can.
    Writes nothing.

    A missing work dir is fine when its nearest existing parent is a writable folder.
    Writability is the kernel's answer (``access``): a read-only file system or an immutable
    folder counts for root too, plain permission bits do not stop root.

    Args:
        work_dir (str): The run's work dir.
        lock (bool): Also look at ``<work_dir>/.lock`` (:func:`lock_file_problem`). Defaults to True.
    """
    if osp.lexists(work_dir) and not osp.isdir(work_dir):
        return f'work dir {work_dir!r} is a file, not a folder; pass another --work-dir (or move the file away).'
    if osp.isdir(work_dir):
        if lock and lock_file_problem(work_dir):
            return lock_file_problem(work_dir)
        if not os.access(work_dir, _WRITABLE):
            return (f'work dir {work_dir!r} is not writable (read-only file system or no write permission); make '
                    'it writable or pass another --work-dir.')
        return None
    parent = osp.dirname(osp.abspath(work_dir))
    while not osp.lexists(parent):
        parent = osp.dirname(parent)
    if not osp.isdir(parent):
        return f'work dir {work_dir!r} cannot be created: {parent!r} is a file, not a folder; pass another --work-dir.'
    if not os.access(parent, _WRITABLE):
        return (f'work dir {work_dir!r} cannot be created: {parent!r} is not writable (read-only file system or no '
                'write permission); pass another --work-dir.')
    return None


def _unusable(work_dir: str, error: OSError) -> WorkDirError:
    """The one-line error for an OSError met while creating the work dir or its lock file."""
    return WorkDirError(work_dir_problem(work_dir) or f'work dir {work_dir!r} cannot be used: '
                        f'{error.strerror or error} ({error.filename or work_dir}); pass another --work-dir.')


def _read_record(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 1 << 16)
        return json.loads(data.decode('utf-8')) if data.strip() else {}
    except (OSError, ValueError):
        return {}


def read_lock_owner(work_dir: str) -> dict:
    """The record in ``<work_dir>/.lock`` (empty when there is none). For messages only:
    do not call it from the process that holds the lock (closing any descriptor of the file
    releases a POSIX lock)."""
    path = osp.join(work_dir, LOCK_FILE)
    if osp.realpath(path) in _HELD:
        return dict(_HELD[osp.realpath(path)].record)
    try:
        fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
    except OSError:
        return {}
    try:
        return _read_record(fd) if stat.S_ISREG(os.fstat(fd).st_mode) else {}
    finally:
        os.close(fd)


class WorkDirLock:
    """The lock of one work dir; use :meth:`acquire` / :meth:`release` or ``with``.

    Args:
        work_dir (str): The work dir; created when missing.
        token (str, optional): The owner token written into the record; children started
            with it in ``DP_WORK_DIR_LOCK_TOKEN`` run as guests. Defaults to a new random one.
        allow_guest (bool): Accept a lock held by the owner of the token found in
            ``DP_WORK_DIR_LOCK_TOKEN``. Defaults to True.
    """

    def __init__(self, work_dir: str, token: Optional[str] = None, allow_guest: bool = True) -> None:
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK_FILE)
        self.token = token or uuid.uuid4().hex
        self.allow_guest = allow_guest
        self.record: dict = {}
        self.guest = False  # running under the lock of the token's owner (the chain)
        self.locked = False
        self.previous_owner: dict = {}  # record of a dead owner taken over
        self._fd: Optional[int] = None
        self._created_dir = False

    def _owner_record(self) -> dict:
        return dict(pid=os.getpid(), host=socket.gethostname(),
                    started=datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
                    argv=[osp.basename(sys.argv[0])] + sys.argv[1:] if sys.argv and sys.argv[0] else [],
                    token=self.token)

    def acquire(self) -> 'WorkDirLock':
        """Take the lock, or join its owner as a guest.

        Raises:
            WorkDirLockedError: another live process owns the work dir.
            WorkDirError: the work dir is a file or cannot be written, or its ``.lock`` is
                not a regular file (nothing is written through a link).
        """
        key = osp.realpath(self.path)
        if key in _HELD:
            raise WorkDirLockedError(self.work_dir, _HELD[key].record)
        self._created_dir = not osp.isdir(self.work_dir)
        try:
            os.makedirs(self.work_dir, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, 0o644)
        except OSError as error:
            if self._created_dir and osp.isdir(self.work_dir):
                os.rmdir(self.work_dir)  # leave nothing behind
            raise _unusable(self.work_dir, error) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a fifo or device opened without blocking
            os.close(fd)
            raise WorkDirError(lock_file_problem(self.work_dir) or f'{self.path!r} is not a regular file')
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EAGAIN):
                self._created_dir = False
                owner = self._wait_for_record(fd)
                os.close(fd)
                env_token = os.environ.get(TOKEN_ENV)
                if self.allow_guest and env_token and owner.get('token') == env_token:
                    self.guest, self.record = True, owner
                    logger.info('work dir %s is held by PID %s (%s), whose token this process carries: running '
                                'under its lock', self.work_dir, owner.get('pid'), owner.get('host'))
                    return self
                raise WorkDirLockedError(self.work_dir, owner) from None
            os.close(fd)
            logger.warning('cannot lock %s (%s): the file system does not support locks; a second run started '
                           'into this work dir would not be detected', self.path, error)
            return self
        previous = _read_record(fd)
        if previous:
            self.previous_owner = previous
            logger.warning('taking over the lock of work dir %s left by PID %s on %s (started %s), which no longer '
                           'runs', self.work_dir, previous.get('pid', '?'), previous.get('host', '?'),
                           previous.get('started', '?'))
        self.record = self._owner_record()
        data = json.dumps(self.record).encode('utf-8')
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        self._fd, self.locked = fd, True
        _HELD[key] = self
        return self

    @staticmethod
    def _wait_for_record(fd: int, timeout: float = 2.0) -> dict:
        """The owner's record; an owner that has just locked may not have written it yet."""
        deadline = time.monotonic() + timeout
        record = _read_record(fd)
        while not record and time.monotonic() < deadline:
            time.sleep(0.05)
            record = _read_record(fd)
        return record

    def release(self) -> None:
        """Clear the record and drop the lock (a guest does nothing). Idempotent. A work dir
        this lock created and nothing else wrote into is removed again."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        _HELD.pop(osp.realpath(self.path), None)
        try:
            if self._created_dir and os.listdir(self.work_dir) == [LOCK_FILE]:
                os.unlink(self.path)  # still locked: nobody can take the file meanwhile
                os.rmdir(self.work_dir)
            else:
                os.ftruncate(fd, 0)  # empty record: the next start sees a clean hand-over
        except OSError:
            pass
        finally:
            self.locked = False
            os.close(fd)  # closing drops the POSIX lock

    def __enter__(self) -> 'WorkDirLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def acquire_work_dir_lock(work_dir: str, rank: Optional[int] = None) -> Optional[WorkDirLock]:
    """Take the lock of ``work_dir`` for this run; None on ranks other than 0.

    Args:
        work_dir (str): The run's work dir.
        rank (int, optional): Global rank. Defaults to ``$RANK`` (0 without torchrun).

    Raises:
        WorkDirLockedError: another live process owns the work dir.
    """
    if rank is None:
        rank = int(os.environ.get('RANK', '0') or 0)
    if rank != 0:
        return None
    return WorkDirLock(work_dir).acquire()


@contextmanager
def hold_work_dirs(work_dirs: Sequence[str]) -> Iterator[List[WorkDirLock]]:
    """Hold the locks of ``work_dirs`` (e.g. the chain's stage dirs) for the ``with`` block.

    All locks share one token, exported in ``DP_WORK_DIR_LOCK_TOKEN`` meanwhile, so child
    processes started in the block (the stages) run as guests of these locks.

    Raises:
        WorkDirLockedError: one of the dirs is owned by another live process (the locks
            taken before it are released).
    """
    token = uuid.uuid4().hex
    locks: List[WorkDirLock] = []
    previous = os.environ.get(TOKEN_ENV)
    try:
        for work_dir in dict.fromkeys(work_dirs):
            locks.append(WorkDirLock(work_dir, token=token, allow_guest=False).acquire())
        os.environ[TOKEN_ENV] = token
        yield locks
    finally:
        if previous is None:
            os.environ.pop(TOKEN_ENV, None)
        else:
            os.environ[TOKEN_ENV] = previous
        for lock in reversed(locks):
            lock.release()
