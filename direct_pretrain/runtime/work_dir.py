"""Make a work dir ready for a run: check it can hold one, take its lock, then clear what an
interrupted run left.

Why together: the clean-up may remove files only while this run owns the work dir, so the
lock comes first, and every entry point that writes into a work dir needs both, in this order.
The check comes before both, and before anything else is written, so that a work dir that is
a file, cannot be written or has a ``.lock`` that is a link or a folder ends the tool with one
``error:`` line instead of a traceback halfway through.
"""
from typing import Optional

from ..errors import WorkDirError
from .stale_temp import remove_stale_temp_files
from .work_dir_lock import WorkDirLock, acquire_work_dir_lock, work_dir_problem

__all__ = ['check_work_dir', 'prepare_work_dir']


def check_work_dir(work_dir: str, lock: bool = True) -> None:
    """Raise :class:`~direct_pretrain.errors.WorkDirError` when a run could not use ``work_dir``
    (:func:`~.work_dir_lock.work_dir_problem`: a file, not writable, a ``.lock`` that is not a
    regular file). Writes nothing; the tools call it before anything else is written.

    Args:
        work_dir (str): The run's work dir.
        lock (bool): Also check ``<work_dir>/.lock`` (train; the test tool takes no lock).
            Defaults to True.
    """
    problem = work_dir_problem(work_dir, lock)
    if problem:
        raise WorkDirError(problem)


def prepare_work_dir(work_dir: str) -> Optional[WorkDirLock]:
    """Check the work dir, take its lock (rank 0), then remove stale temporary checkpoint files.

    Call it right before the Runner is built: nothing is written before this point, and
    the lock makes sure no other run writes into the work dir meanwhile.

    Returns:
        WorkDirLock | None: the lock to release when training ends (None on other ranks).

    Raises:
        WorkDirLockedError: another live process owns the work dir.
        WorkDirError: the work dir cannot hold a run (:func:`check_work_dir`).
    """
    check_work_dir(work_dir)
    lock = acquire_work_dir_lock(work_dir)
    if lock is not None:
        remove_stale_temp_files(work_dir)
    return lock
