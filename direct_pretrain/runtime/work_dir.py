"""Make a work dir ready for a run: take its lock, then clear what an interrupted run left.

Why together: the clean-up may remove files only while this run owns the work dir, so the
lock comes first, and every entry point that writes into a work dir needs both, in this order.
"""
from typing import Optional

from .stale_temp import remove_stale_temp_files
from .work_dir_lock import WorkDirLock, acquire_work_dir_lock

__all__ = ['prepare_work_dir']


def prepare_work_dir(work_dir: str) -> Optional[WorkDirLock]:
    """Take the work dir's lock (rank 0), then remove stale temporary checkpoint files.

    Call it right before the Runner is built: nothing is written before this point, and
    the lock makes sure no other run writes into the work dir meanwhile.

    Returns:
        WorkDirLock | None: the lock to release when training ends (None on other ranks).

    Raises:
        WorkDirLockedError: another live process owns the work dir.
    """
    lock = acquire_work_dir_lock(work_dir)
    if lock is not None:
        remove_stale_temp_files(work_dir)
    return lock
