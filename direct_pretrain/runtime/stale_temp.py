"""Remove the atomic checkpoint writer's temporary files left behind by a killed run.

Why: :func:`~direct_pretrain.runtime.atomic_save.atomic_write_bytes` writes each file
to ``.<name>.XXXXXXXX.tmp`` beside it (``tempfile.mkstemp(prefix=f'.{name}.',
suffix='.tmp')``) and renames it into place. A SIGKILL during the write skips its
clean-up, so the temporary file - hundreds of MB for an R-50 checkpoint - stays in the
work dir forever. Only the run that owns the work dir (it holds the work-dir lock, see
:mod:`direct_pretrain.runtime.work_dir_lock`) may remove them, and only what the writer
itself names for a run (:data:`~direct_pretrain.runtime.atomic_save.RUN_TEMP_NAME_RE`: the
name of a checkpoint or ``last_checkpoint``, then exactly ``mkstemp``'s 8 random
characters), a regular file and not a link. A user's ``.notes.20261203.tmp`` or
``.train_log.md.backup_1.tmp`` looks alike to a loose pattern and is never touched.
"""
import logging
import os
import os.path as osp
import stat
from typing import List

from .atomic_save import RUN_TEMP_NAME_RE

__all__ = ['STALE_TEMP_RE', 'is_writer_temp_name', 'find_stale_temp_files', 'remove_stale_temp_files']

logger = logging.getLogger(__name__)

STALE_TEMP_RE = RUN_TEMP_NAME_RE


def is_writer_temp_name(name: str) -> bool:
    """True when ``name`` is what the atomic writer names its temporary file of a run's checkpoint
    or ``last_checkpoint``."""
    return STALE_TEMP_RE.match(name) is not None


def find_stale_temp_files(work_dir: str) -> List[str]:
    """Regular files (not links) directly in ``work_dir`` named as the atomic writer names the
    temporary files of a run's checkpoints."""
    if not osp.isdir(work_dir):
        return []
    found = []
    with os.scandir(work_dir) as entries:
        for entry in entries:
            if is_writer_temp_name(entry.name) and entry.is_file(follow_symlinks=False):
                found.append(entry.path)
    return sorted(found)


def remove_stale_temp_files(work_dir: str) -> List[str]:
    """Delete the atomic writer's leftover temporary files in ``work_dir``; returns them.

    Call it only from the process that holds the work dir's lock, before training starts
    or resumes: no other writer can then be in the middle of a write. Logs one line with
    the number of files and bytes removed.
    """
    removed, freed = [], 0
    for path in find_stale_temp_files(work_dir):
        try:
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode):
                continue
            os.unlink(path)
        except FileNotFoundError:
            continue
        except OSError as error:
            logger.warning('could not remove the stale temporary checkpoint file %s: %s', path, error)
            continue
        removed.append(path)
        freed += info.st_size
    if removed:
        names = ', '.join(osp.basename(p) for p in removed[:5]) + (' ...' if len(removed) > 5 else '')
        logger.warning('removed %d stale temporary checkpoint file(s) of an interrupted write from %s '
                       '(%.1f MB): %s', len(removed), work_dir, freed / 1e6, names)
    return removed
