"""Crash-safe checkpoint files.

Why: mmengine writes ``epoch_N.pth`` with a plain ``open(path, 'wb')`` and then points
``last_checkpoint`` at it; a kill during the write leaves a truncated file that
``--resume`` picks up and fails on, and the previous good checkpoint may already have
been rotated away. :class:`AtomicLocalBackend` is mmengine's local file backend with
writes that go to a temporary file in the same folder, are fsynced, renamed over the
target and the folder fsynced, so a file under its final name is always complete.

It is registered in mmengine's backend registry as ``'atomic_local'`` and changes nothing
until a config selects it, as the package's configs do::

    default_hooks = dict(checkpoint=dict(backend_args=dict(backend='atomic_local')))

(the checkpoint hook writes ``epoch_N.pth`` and ``last_checkpoint`` through it).
:func:`find_resumable_checkpoint` complements it on the read side: it never returns a
partial file, even when ``last_checkpoint`` itself was cut short.
"""
import logging
import os
import os.path as osp
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Optional, Union

from mmengine.fileio import LocalBackend, register_backend

__all__ = ['ATOMIC_BACKEND', 'AtomicLocalBackend', 'atomic_write_bytes', 'register_atomic_backend',
           'is_complete_checkpoint', 'find_resumable_checkpoint', 'RUN_FILE_NAMES', 'TEMP_NAME_ALPHABET',
           'RUN_TEMP_NAME_RE']

logger = logging.getLogger(__name__)

ATOMIC_BACKEND = 'atomic_local'

#: The names a run writes into its work dir through this backend: mmengine's ``CheckpointHook``
#: writes ``epoch_N.pth`` / ``iter_N.pth`` (its default ``filename_tmpl``), the ``save_best``
#: copies ``best_<metric>_epoch_N.pth`` and the ``last_checkpoint`` marker.
RUN_FILE_NAMES = r'(?:best_[\w.-]+_)?(?:epoch|iter)_\d+\.pth|last_checkpoint'
#: ``tempfile.mkstemp`` draws the random part of its names from these characters, 8 of them.
TEMP_NAME_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789_'
_TEMP_SUFFIX = '.tmp'


def _temp_prefix(name: str) -> str:
    return f'.{name}.'


#: Exactly the temporary files :func:`atomic_write_bytes` leaves when killed while writing one
#: of :data:`RUN_FILE_NAMES`: ``.<name>.<8 random characters>.tmp``.
RUN_TEMP_NAME_RE = re.compile(rf'^\.(?P<target>{RUN_FILE_NAMES})\.(?P<random>[{re.escape(TEMP_NAME_ALPHABET)}]{{8}})'
                              rf'{re.escape(_TEMP_SUFFIX)}$')


def atomic_write_bytes(data: bytes, path: Union[str, Path]) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either the old file or the new, never partial."""
    path = str(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(osp.basename(path)), suffix=_TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` with atomic ``put`` / ``put_text``."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write_bytes(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), filepath)


def register_atomic_backend() -> None:
    """Register :class:`AtomicLocalBackend` as mmengine file backend ``'atomic_local'``
    (selected through ``backend_args``; the default ``'local'`` backend is untouched). Idempotent."""
    from mmengine.fileio.backends import backends
    if backends.get(ATOMIC_BACKEND) is not AtomicLocalBackend:
        register_backend(ATOMIC_BACKEND, AtomicLocalBackend)


def is_complete_checkpoint(path: str) -> bool:
    """True for a complete ``torch.save`` zip file (its central directory is intact)."""
    if not osp.isfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return any(name.endswith('data.pkl') for name in zf.namelist())
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


_CKPT_RE = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` should continue from, or None.

    ``last_checkpoint`` is trusted when it names a complete file; otherwise the newest
    complete ``epoch_N.pth`` / ``iter_N.pth`` in ``work_dir`` is used and a warning says
    what was skipped.
    """
    marker = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(marker):
        with open(marker) as f:
            named = f.read().strip()
        if named and is_complete_checkpoint(named):
            return named
        logger.warning('%s names %r, which is not a complete checkpoint; looking for the newest complete one',
                       marker, named)
    if not osp.isdir(work_dir):
        return None
    candidates = []
    for name in os.listdir(work_dir):
        match = _CKPT_RE.match(name)
        if match:
            candidates.append((int(match.group(2)), osp.getmtime(osp.join(work_dir, name)), name))
    for _, _, name in sorted(candidates, reverse=True):
        path = osp.join(work_dir, name)
        if is_complete_checkpoint(path):
            return path
        logger.warning('skipping incomplete checkpoint %s', path)
    return None
