"""Check a checkpoint file before anything reads it, and say what is wrong with it.

Why: every entry point that reads a checkpoint (training's ``load_from`` and
``--resume``, testing, inference, the converters) otherwise hands the file straight to
``torch.load``. An empty file then ends in a bare ``EOFError`` without the path, a file
cut short by a kill in torch's "failed finding central directory", and both only after
the Runner has created a work dir. This module looks at the file's structure - the zip
central directory of a ``torch.save`` file (cheap: read from the end of the file, no
tensor is loaded), the legacy non-zip torch format, a Detectron pickle - and at the
globals its pickle references (the allow-list of :mod:`.safe_load`), and raises one
:class:`CheckpointCheckError` naming the path and the problem.
"""
import logging
import os
import os.path as osp
import pickle
import zipfile
from typing import List, Optional

import torch

from ..errors import CheckpointCheckError, UnsafeCheckpointError
from ..runtime.safe_load import mmengine_checkpoint_safe_globals, safe_torch_load
from .uri import parse_checkpoint_uri

__all__ = ['check_checkpoint_file']

logger = logging.getLogger(__name__)

_ZIP_MAGIC = b'PK\x03\x04'
# torch's legacy (pre-1.6, non-zip) format starts with its magic number pickled at
# protocol 2: PROTO 2, LONG1 of 10 bytes, 0x1950a86a20f9469cfc6c little-endian.
_LEGACY_TORCH_MAGIC = b'\x80\x02\x8a\x0a' + (0x1950a86a20f9469cfc6c).to_bytes(10, 'little')
_PICKLE_PROTO = b'\x80'
_SHOW_GLOBALS = 5


def _unsafe_globals(path: str) -> List[str]:
    """Globals in the zip checkpoint's ``data.pkl`` outside the mmengine allow-list.

    Reads only the pickle record (``torch.serialization.get_unsafe_globals_in_checkpoint``),
    never a tensor. ``builtins.getattr`` passes here as it is allow-listed by name; the
    loader still resolves only ``HistoryBuffer`` statistics methods through it.
    """
    with torch.serialization.safe_globals(mmengine_checkpoint_safe_globals()):
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))


def _check_zip(path: str, what: str, check_globals: bool) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile as error:
        raise CheckpointCheckError(
            path, 'truncated', f'is truncated or corrupt: it starts like a torch.save zip file but its zip '
            f'central directory cannot be read ({error}); the write was probably cut short (a kill or a full '
            'disk). Use the previous checkpoint (the work dir keeps the last ones) or re-create it.', what) from error
    if not any(name == 'data.pkl' or name.endswith('/data.pkl') for name in names):
        raise CheckpointCheckError(
            path, 'not_a_checkpoint', f'is a zip file but not a torch checkpoint (no data.pkl among its '
            f'{len(names)} member(s), e.g. {names[:3]}); pass a .pth written by torch.save / the train tool.', what)
    if check_globals:
        try:
            unsafe = _unsafe_globals(path)
        except Exception as error:  # noqa: BLE001  (torch raises several types for damaged records)
            raise CheckpointCheckError(
                path, 'truncated', f'is corrupt: its pickle record cannot be read ({type(error).__name__}: '
                f'{error}); re-create the checkpoint.', what) from error
        if unsafe:
            shown = ', '.join(unsafe[:_SHOW_GLOBALS]) + (' ...' if len(unsafe) > _SHOW_GLOBALS else '')
            raise CheckpointCheckError(
                path, 'unsafe', f'is unsafe to load: its pickle references {shown}, which mmengine checkpoints '
                'never hold (they hold tensors, numpy arrays and scalars, HistoryBuffer). Nothing was loaded or '
                'executed. If you trust the file, re-save only its tensors (its "state_dict") and use that.', what)
    return 'torch'


def _check_legacy_torch(path: str, what: str) -> str:
    """The pre-1.6 format has no directory to check cheaply: load it (weights only)."""
    try:
        safe_torch_load(path, map_location='cpu')
    except UnsafeCheckpointError as error:
        raise CheckpointCheckError(path, 'unsafe', f'is unsafe to load: {error}', what) from error
    except (EOFError, pickle.UnpicklingError, RuntimeError, ValueError) as error:
        raise CheckpointCheckError(
            path, 'truncated', f'is a legacy (non-zip) torch checkpoint that cannot be read to the end '
            f'({type(error).__name__}: {error}); it is truncated or corrupt, re-create it.', what) from error
    return 'torch_legacy'


def check_checkpoint_file(path: str, what: str = 'checkpoint', kind: str = 'torch',
                          check_globals: bool = True) -> Optional[str]:
    """Check the checkpoint behind ``path``; raise :class:`CheckpointCheckError` if it is bad.

    The checks, in order: the file exists and is a regular file; it is not empty; it can be
    read; its format is recognised - a ``torch.save`` zip whose central directory (at the
    end of the file) is intact and which holds ``data.pkl``, a legacy non-zip torch file
    that loads (weights only), or, for ``kind='detectron'``, a pickle; and, for zip files,
    its pickle references no global outside the :mod:`.safe_load` allow-list. A zip check
    reads the directory and the pickle record only, never the tensors.

    Args:
        path (str): Checkpoint path; ``detectron://`` and ``direct-release://`` are resolved
            to their local files, other URL schemes are left to mmengine and not checked.
        what (str): How the file was given, for the message (``load_from``, ``--resume``,
            ``checkpoint``). Defaults to 'checkpoint'.
        kind (str): 'torch' (mmengine/torch checkpoint) or 'detectron' (a Detectron
            ``.pkl``, whose contents the Detectron reader checks). Defaults to 'torch'.
        check_globals (bool): Also list the pickle's globals against the allow-list (and
            load a legacy non-zip file, whose structure cannot be checked otherwise). False
            for files whose reader has its own allow-list. Defaults to True.

    Returns:
        str | None: 'torch', 'torch_legacy' or 'detectron'; None when ``path`` is remote.

    Raises:
        CheckpointCheckError: naming the path and the problem.
    """
    if kind not in ('torch', 'detectron'):
        raise ValueError(f"kind must be 'torch' or 'detectron', got {kind!r}")
    uri = parse_checkpoint_uri(path)
    local = uri.path
    if local is None:
        return None
    if uri.scheme == 'detectron':
        kind = 'detectron'
    elif uri.scheme == 'direct-release':
        check_globals = False  # the release reader has its own allow-list (mmdet 2.x meta)
    if not osp.exists(local):
        raise CheckpointCheckError(local, 'missing', 'does not exist; check the path.', what)
    if not osp.isfile(local):
        raise CheckpointCheckError(local, 'not_a_file', 'is not a regular file (a folder?); pass the checkpoint '
                                   'file itself.', what)
    try:
        size = os.stat(local).st_size
        with open(local, 'rb') as f:
            head = f.read(len(_LEGACY_TORCH_MAGIC))
    except OSError as error:
        raise CheckpointCheckError(local, 'unreadable', f'cannot be read ({error}).', what) from error
    if size == 0:
        raise CheckpointCheckError(local, 'empty', 'is empty (0 bytes): its write never happened or was cut '
                                   'short. Use another checkpoint or re-create it.', what)
    if kind == 'detectron':
        if not head.startswith(_PICKLE_PROTO) and head[:1] not in (b'(', b'}', b']'):
            raise CheckpointCheckError(local, 'not_a_checkpoint', f'is not a Detectron pickle (it starts with '
                                       f'{head[:8]!r}); pass a Detectron .pkl such as model_final.pkl.', what)
        return 'detectron'
    if head.startswith(_ZIP_MAGIC):
        return _check_zip(local, what, check_globals)
    if head.startswith(_LEGACY_TORCH_MAGIC):
        # no directory to check cheaply: loading is the check, and it needs the allow-list
        return _check_legacy_torch(local, what) if check_globals else 'torch_legacy'

    if head.startswith(_PICKLE_PROTO):
        raise CheckpointCheckError(
            local, 'not_a_checkpoint', 'is a plain pickle, not a torch checkpoint. A Detectron .pkl is loaded '
            'with load_from="detectron://<path>" or converted with dp-convert-detectron / '
            'tools/convert_detectron.py.', what)
    raise CheckpointCheckError(local, 'not_a_checkpoint', f'is not a torch checkpoint (it starts with {head[:8]!r}, '
                               'neither a torch.save zip nor the legacy format); pass a .pth written by the train '
                               'tool.', what)
