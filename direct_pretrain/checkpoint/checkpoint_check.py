"""Check a checkpoint file before anything reads it, and say what is wrong with it.

Why: every entry point that reads a checkpoint (training's ``load_from`` and ``--resume``,
testing, inference, the converters) otherwise hands the file straight to ``torch.load`` or
a converter. An empty file then ends in a bare ``EOFError`` without the path, a file cut
short in torch's "failed finding central directory", a zip missing a storage record or a
top level that is not a dict in a torch/mmengine traceback - all only after the Runner has
created a work dir. This is the one pre-check, whatever names the file (plain path,
``detectron://``, ``direct-release://``): it raises one :class:`CheckpointCheckError` naming
the path and the problem.

It stays cheap and executes nothing from the file. For a ``torch.save`` zip it reads the
zip directory and the pickle record ``data.pkl`` only, never a tensor byte: the pickle is
replayed by an unpickler that resolves every global to an inert stand-in (so a hostile
payload cannot run), which yields the storages each tensor references (record name,
declared element count) and the top-level structure; record sizes come from the directory.
A Detectron pickle is scanned opcode by opcode (:mod:`pickletools`), its globals held
against the Detectron reader's allow-list. Only the legacy (pre-1.6) torch format, which
has no directory, is loaded (weights only) to be checked.
"""
import functools
import io
import logging
import os
import os.path as osp
import pickle
import pickletools
import warnings
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch

from ..errors import CheckpointCheckError, UnsafeCheckpointError
from ..runtime.safe_load import mmengine_checkpoint_safe_globals, safe_torch_load
from .detectron.errors import UnsafeDetectronPickleError
from .detectron.reader import RestrictedDetectronUnpickler
from .uri import parse_checkpoint_uri

__all__ = ['CheckpointContents', 'inspect_checkpoint_file', 'check_checkpoint_file']

logger = logging.getLogger(__name__)

_ZIP_MAGIC = b'PK\x03\x04'
# torch's legacy (pre-1.6, non-zip) format starts with its magic number pickled at
# protocol 2: PROTO 2, LONG1 of 10 bytes, 0x1950a86a20f9469cfc6c little-endian.
_LEGACY_TORCH_MAGIC = b'\x80\x02\x8a\x0a' + (0x1950a86a20f9469cfc6c).to_bytes(10, 'little')
_PICKLE_PROTO = b'\x80'
_SHOW = 5
_REUSE_HINT = 'Use the previous checkpoint (the work dir keeps the last ones) or re-create it.'


@dataclass
class CheckpointContents:
    """What the pre-check learned about a checkpoint without loading its tensors.

    Attributes:
        path (str): The local file.
        kind (str): ``'torch'`` (zip), ``'torch_legacy'`` or ``'detectron'``.
        state_shapes (dict[str, tuple[int, ...]] | None): Name -> shape of every tensor of
            the state dict (its ``state_dict`` entry, or the flat mapping), as stored (a
            ``module.`` prefix kept); None when not read (Detectron pickles, a legacy file
            checked without its globals).
    """
    path: str
    kind: str
    state_shapes: Optional[Dict[str, Tuple[int, ...]]] = field(default=None, repr=False)


def _shown(items: List[str]) -> str:
    return ', '.join(items[:_SHOW]) + (' ...' if len(items) > _SHOW else '')


# ---------------------------------------------------------------------------------------------
# torch.save zip files: the pickle record replayed with inert stand-ins
# ---------------------------------------------------------------------------------------------
class _Inert:
    """Stands for every object the pickle would build from a global: it accepts any
    construction, call, state or item and does nothing, so nothing of the file runs."""

    def __new__(cls, *args: Any, **kwargs: Any) -> '_Inert':
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> '_Inert':
        return _Inert()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass

    def add(self, value: Any) -> None:
        pass


class _StorageKind(_Inert):
    """A storage class named by the pickle (``torch.FloatStorage``, ``torch.UntypedStorage``)."""

    def __init__(self, name: str, element_size: Optional[int]) -> None:
        self.name = name
        self.element_size = element_size


@dataclass
class _Storage:
    key: str
    numel: int  # elements of a typed storage, bytes of an untyped one
    element_size: Optional[int]  # None: a storage class the check does not know
    typed: bool


@dataclass
class _Tensor:
    storage: Any
    offset: Any
    size: Any
    stride: Any

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.size) if isinstance(self.size, (tuple, list)) else ()


@functools.lru_cache(maxsize=None)
def _element_size(name: str) -> Optional[int]:
    """Bytes per element of torch's storage class ``name``; read from torch, not from the file."""
    if name == 'UntypedStorage':
        return 1  # its numel counts bytes
    with warnings.catch_warnings():  # the legacy typed storage classes warn that they are deprecated
        warnings.simplefilter('ignore')
        dtype = getattr(getattr(torch, name, None), 'dtype', None)
    return torch._utils._element_size(dtype) if isinstance(dtype, torch.dtype) else None


def _storage_kind(name: str) -> _StorageKind:
    return _StorageKind(name, _element_size(name))


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, *rest: Any) -> _Tensor:
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data: Any, *rest: Any) -> Any:
    return data


def _rebuild_from_type(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    return func(*args) if callable(func) and isinstance(args, tuple) else _Inert()


def _size(*args: Any) -> Any:
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else _Inert()


def _ordered_dict(*args: Any) -> Any:
    if not args:
        return OrderedDict()
    return OrderedDict(args[0]) if len(args) == 1 and isinstance(args[0], (list, dict)) else _Inert()


# What the replay interprets; every other global becomes _Inert (safe or not: the allow-list
# is held against the record separately, by torch's own scan).
_INTERPRETED = {
    ('collections', 'OrderedDict'): _ordered_dict,
    ('torch._utils', '_rebuild_tensor'): _rebuild_tensor,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
    ('torch._utils', '_rebuild_tensor_v3'): _rebuild_tensor,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
    ('torch._utils', '_rebuild_parameter_with_state'): _rebuild_parameter,
    ('torch._tensor', '_rebuild_from_type_v2'): _rebuild_from_type,
    ('torch', 'Size'): _size,
}


class _RecordReplay(pickle.Unpickler):
    """Replays ``data.pkl``: containers are real, every global is inert, storages are records."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.storages: Dict[str, _Storage] = {}
        self.tensors: List[_Tensor] = []

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _INTERPRETED:
            found = _INTERPRETED[(module, name)]
            if found is _rebuild_tensor:
                return self._record_tensor
            return found
        if module in ('torch', 'torch.storage') and name.endswith('Storage'):
            return _storage_kind(name)
        return _Inert

    def _record_tensor(self, *args: Any) -> _Tensor:
        tensor = _rebuild_tensor(*args)
        self.tensors.append(tensor)
        return tensor

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == 'storage'):
            raise pickle.UnpicklingError(f'unknown persistent id {str(pid)[:80]}')
        _, kind, key, _, numel = pid
        if not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError(f'storage {key!r} declares {numel!r} elements')
        element_size = kind.element_size if isinstance(kind, _StorageKind) else None
        typed = isinstance(kind, _StorageKind) and kind.name != 'UntypedStorage'
        storage = _Storage(str(key), numel, element_size, typed)
        self.storages.setdefault(storage.key, storage)
        return storage


def _unsafe_globals(path: str) -> List[str]:
    """Globals in the zip checkpoint's ``data.pkl`` outside the allow-list.

    Reads only the pickle record (``torch.serialization.get_unsafe_globals_in_checkpoint``),
    never a tensor. The allow-list is :func:`~..runtime.safe_load.mmengine_checkpoint_safe_globals`,
    which is also the release reader's (it loads through ``safe_torch_load``).
    ``builtins.getattr`` passes here as it is allow-listed by name; the loader still resolves
    only ``HistoryBuffer`` statistics methods through it.
    """
    with torch.serialization.safe_globals(mmengine_checkpoint_safe_globals()):
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))


def _tensor_extent(tensor: _Tensor) -> Optional[int]:
    """Elements of its storage the tensor reaches, or None when its fields are not plain ints."""
    size, stride, offset = tensor.size, tensor.stride, tensor.offset
    if not (isinstance(offset, int) and isinstance(size, (tuple, list)) and isinstance(stride, (tuple, list))
            and len(size) == len(stride) and all(isinstance(v, int) for v in (*size, *stride))):
        return None
    if any(s == 0 for s in size):
        return 0
    return offset + sum((s - 1) * st for s, st in zip(size, stride)) + 1


def _state_shapes(path: str, what: str, top: Any) -> Dict[str, Tuple[int, ...]]:
    """The state dict's name -> shape; raises when the top level is not a checkpoint dict."""
    if not isinstance(top, dict):
        kind = 'a tensor' if isinstance(top, _Tensor) else (
            'an object' if isinstance(top, _Inert) else f'a {type(top).__name__}')
        raise CheckpointCheckError(
            path, 'not_a_checkpoint', f'holds {kind} at its top level, not a checkpoint dict; pass a .pth written by '
            'the train tool (a dict with a "state_dict"), or save one with torch.save(dict(state_dict='
            'model.state_dict()), PATH).', what)
    if 'state_dict' in top:
        state = top['state_dict']
        if not isinstance(state, dict):
            raise CheckpointCheckError(
                path, 'not_a_checkpoint', f'has a "state_dict" entry that is not a mapping of tensors (it holds '
                f'{"an object" if isinstance(state, _Inert) else type(state).__name__}); re-save the model\'s '
                'state_dict() under it.', what)
        others = sorted(str(k) for k, v in state.items() if not isinstance(v, _Tensor))
        if others:
            raise CheckpointCheckError(
                path, 'not_a_checkpoint', f'has {len(others)} "state_dict" '
                f'{"entry that is" if len(others) == 1 else "entries that are"} not a tensor ({_shown(others)}); it is '
                'not a model checkpoint. Re-save the model\'s state_dict() under "state_dict".', what)
    else:
        state = top
        if not state or not all(isinstance(v, _Tensor) for v in state.values()):
            keys = sorted(str(k) for k in top)
            raise CheckpointCheckError(
                path, 'not_a_checkpoint', f'holds a dict without a "state_dict" entry (keys: {_shown(keys) or "none"}) '
                'that is not a name -> tensor mapping either, so no weights would be loaded. Pass a .pth written by '
                'the train tool, or re-save the weights as torch.save(dict(state_dict=...), PATH).', what)
    return {str(k): v.shape for k, v in state.items()}


def _check_zip(path: str, what: str, check_globals: bool) -> CheckpointContents:
    try:
        with zipfile.ZipFile(path) as zf:
            members = {info.filename: info for info in zf.infolist()}
            records = [name for name in members if name == 'data.pkl' or name.endswith('/data.pkl')]
            data = zf.read(records[0]) if records else b''
    except zipfile.BadZipFile as error:
        raise CheckpointCheckError(
            path, 'truncated', f'is truncated or corrupt: it starts like a torch.save zip file but its zip '
            f'central directory cannot be read ({error}); the write was probably cut short (a kill or a full '
            f'disk). {_REUSE_HINT}', what) from error
    except (OSError, EOFError, RuntimeError, ValueError) as error:  # a member whose bytes are gone or damaged
        raise CheckpointCheckError(
            path, 'truncated', f'is corrupt: its pickle record cannot be read ({type(error).__name__}: {error}). '
            f'{_REUSE_HINT}', what) from error
    if not records:
        names = list(members)
        raise CheckpointCheckError(
            path, 'not_a_checkpoint', f'is a zip file but not a torch checkpoint (no data.pkl among its '
            f'{len(names)} member(s), e.g. {names[:3]}); pass a .pth written by torch.save / the train tool.', what)
    record = records[0]
    if check_globals:
        try:
            unsafe = _unsafe_globals(path)
        except Exception as error:  # noqa: BLE001  (torch raises several types for damaged records)
            raise CheckpointCheckError(
                path, 'truncated', f'is corrupt: its pickle record cannot be read ({type(error).__name__}: '
                f'{error}); re-create the checkpoint.', what) from error
        if unsafe:
            raise CheckpointCheckError(
                path, 'unsafe', f'is unsafe to load: its pickle references {_shown(unsafe)}, which mmengine '
                'checkpoints never hold (they hold tensors, numpy arrays and scalars, HistoryBuffer). Nothing was '
                'loaded or executed. If you trust the file, re-save only its tensors (its "state_dict") and use '
                'that.', what)
    replay = _RecordReplay(data)
    try:
        top = replay.load()
    except Exception as error:  # noqa: BLE001  (a damaged record fails in many ways; nothing of it ran)
        raise CheckpointCheckError(
            path, 'truncated', f'is corrupt: its pickle record {record} cannot be read ({type(error).__name__}: '
            f'{error}). {_REUSE_HINT}', what) from error
    prefix = record[:-len('data.pkl')]
    absent = sorted(key for key in replay.storages if prefix + 'data/' + key not in members)
    if absent:
        raise CheckpointCheckError(
            path, 'truncated', f'is incomplete: its pickle references {len(absent)} tensor storage record(s) that '
            f'the zip does not hold ({_shown([prefix + "data/" + k for k in absent])}); it was assembled or copied '
            f'wrongly. {_REUSE_HINT}', what)
    for key, storage in sorted(replay.storages.items()):
        held = members[prefix + 'data/' + key].file_size
        if storage.element_size is not None and held < storage.numel * storage.element_size:
            raise CheckpointCheckError(
                path, 'truncated', f'is incomplete: its storage record {prefix}data/{key} holds {held} bytes but its '
                f'storage declares {storage.numel} elements of {storage.element_size} byte(s) '
                f'({storage.numel * storage.element_size} bytes). {_REUSE_HINT}', what)
    for tensor in replay.tensors:
        extent = _tensor_extent(tensor)
        storage = tensor.storage
        if isinstance(storage, _Storage) and storage.typed and extent is not None and extent > storage.numel:
            raise CheckpointCheckError(
                path, 'truncated', f'is corrupt: a tensor of shape {tensor.shape} reaches {extent} elements of its '
                f'storage {storage.key}, which holds {storage.numel}. {_REUSE_HINT}', what)
    return CheckpointContents(path, 'torch', _state_shapes(path, what, top))


# ---------------------------------------------------------------------------------------------
# the legacy torch format and Detectron pickles
# ---------------------------------------------------------------------------------------------
def _check_legacy_torch(path: str, what: str) -> CheckpointContents:
    """The pre-1.6 format has no directory to check cheaply: load it (weights only)."""
    try:
        obj = safe_torch_load(path, map_location='cpu')
    except UnsafeCheckpointError as error:
        raise CheckpointCheckError(path, 'unsafe', f'is unsafe to load: {error}', what) from error
    except (EOFError, pickle.UnpicklingError, RuntimeError, ValueError) as error:
        raise CheckpointCheckError(
            path, 'truncated', f'is a legacy (non-zip) torch checkpoint that cannot be read to the end '
            f'({type(error).__name__}: {error}); it is truncated or corrupt, re-create it.', what) from error

    def as_record(value: Any) -> Any:  # reuse the zip path's structure rules on the loaded object
        if isinstance(value, torch.Tensor):
            return _Tensor(None, 0, tuple(value.shape), None)
        if isinstance(value, Mapping):
            return {k: as_record(v) for k, v in value.items()}
        return value

    return CheckpointContents(path, 'torch_legacy', _state_shapes(path, what, as_record(obj)))


_STRING_OPS = frozenset({'STRING', 'BINSTRING', 'SHORT_BINSTRING', 'UNICODE', 'BINUNICODE', 'SHORT_BINUNICODE',
                         'BINUNICODE8'})
_MEMO_PUTS = frozenset({'PUT', 'BINPUT', 'LONG_BINPUT', 'MEMOIZE'})
_MEMO_GETS = frozenset({'GET', 'BINGET', 'LONG_BINGET'})
_MAX_NAME = 200


def _scan_detectron_pickle(path: str, what: str) -> None:
    """Walk the pickle's opcodes without building anything: every global must be on the
    Detectron reader's allow-list, the stream must reach STOP, the top level must be a dict.

    ``STACK_GLOBAL`` takes its names from the stack; they are known here only when the two
    values below it were pushed as literal strings (or memo copies of them) with nothing but
    memo stores in between - as Python's pickler writes them. Anything else is refused.
    """
    allow_list = RestrictedDetectronUnpickler(io.BytesIO(b''), path)  # its find_class is a table lookup
    refused: List[str] = []

    def check(module: str, name: str) -> None:
        try:
            allow_list.find_class(module, name)
        except UnsafeDetectronPickleError:
            refused.append(f'{module}.{name}')

    known_top: List[str] = []  # the exact top of the stack, while it is made of literal strings
    memo: Dict[int, Optional[str]] = {}
    first: Optional[str] = None
    closing: Optional[str] = None  # the opcode that closes a top-level MARK
    depth = 0
    stopped = False
    try:
        with open(path, 'rb') as f:
            for opcode, arg, _ in pickletools.genops(f):
                op = opcode.name
                if op in ('PROTO', 'FRAME'):
                    continue
                if first is None:
                    first = op
                if op == 'STOP':
                    stopped = True
                    break
                if pickletools.markobject in opcode.stack_after:
                    depth += 1
                if pickletools.markobject in opcode.stack_before:
                    depth -= 1
                    if depth == 0 and first == 'MARK' and closing is None:
                        closing = op
                if op in ('GLOBAL', 'INST'):
                    module, _, name = str(arg).partition(' ')
                    check(module, name)
                elif op == 'STACK_GLOBAL':
                    if len(known_top) < 2:
                        refused.append('a STACK_GLOBAL whose names are not literal strings')
                    else:
                        check(known_top[-2], known_top[-1])
                elif op in ('PERSID', 'BINPERSID'):
                    refused.append('a persistent id (Detectron pickles never hold one)')
                elif op in ('EXT1', 'EXT2', 'EXT4'):
                    refused.append(f'the copyreg extension code {arg}')
                if op in _STRING_OPS:
                    known_top.append(arg if isinstance(arg, str) and len(arg) <= _MAX_NAME else '')
                elif op in _MEMO_PUTS:
                    index = len(memo) if op == 'MEMOIZE' else int(arg)
                    memo[index] = known_top[-1] if known_top and known_top[-1] else None
                elif op in _MEMO_GETS and memo.get(int(arg)):
                    known_top.append(memo[int(arg)])
                else:
                    known_top = []
    except (ValueError, EOFError, OSError) as error:
        raise CheckpointCheckError(
            path, 'truncated', f'is truncated or corrupt: its pickle stream cannot be read to the end ({error}). '
            'Re-download or re-create the Detectron .pkl.', what) from error
    if refused:
        raise CheckpointCheckError(
            path, 'unsafe', f'is unsafe to load: its pickle references {_shown(sorted(set(refused)))}, which a '
            'Detectron weight file never holds (only numpy arrays, dtypes, scalars, dicts, lists, strings and '
            'numbers). Nothing was loaded or executed. If you trust the file, re-save its arrays as a plain '
            '{name: numpy array} dict.', what)
    if not stopped:
        raise CheckpointCheckError(path, 'truncated', 'is truncated: its pickle stream ends before its STOP opcode. '
                                   'Re-download or re-create the Detectron .pkl.', what)
    if not (first == 'EMPTY_DICT' or (first == 'MARK' and closing == 'DICT')):
        raise CheckpointCheckError(
            path, 'not_a_checkpoint', f'is a pickle whose top level is not a dict (it starts with {first}); a '
            'Detectron weight file is {"blobs": {name: array}, "cfg": yaml} or {name: array}.', what)


# ---------------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------------
def inspect_checkpoint_file(path: str, what: str = 'checkpoint', kind: str = 'torch',
                            check_globals: bool = True) -> Optional[CheckpointContents]:
    """Check the checkpoint behind ``path`` and return what the check read of it.

    The checks, in order: the file exists and is a regular file; it is not empty; it can be
    read; its format is recognised. Then, for a ``torch.save`` zip: the zip directory is
    intact and holds ``data.pkl``; the pickle references no global outside the allow-list
    (:mod:`~..runtime.safe_load`, which the release reader uses too); every storage record
    the pickle references is in the zip, holds at least the bytes its storage declares
    (elements x element size, from the directory) and covers the tensors on it; the top
    level is a dict with a ``state_dict`` mapping of tensors or a flat name -> tensor
    mapping. For a Detectron pickle (``kind='detectron'`` or ``detectron://``): every global
    on the Detectron reader's allow-list, the stream complete, the top level a dict. A legacy
    non-zip torch file is loaded weights-only. Nothing from the file is executed, and no
    tensor byte of a zip is read.

    Args:
        path (str): Checkpoint path; ``detectron://`` and ``direct-release://`` are resolved
            to their local files, other URL schemes are left to mmengine and not checked.
        what (str): How the file was given, for the message (``load_from``, ``--resume``,
            ``checkpoint``, ``release checkpoint``...). Defaults to 'checkpoint'.
        kind (str): 'torch' (an mmengine/torch checkpoint, the release's included) or
            'detectron' (a Detectron ``.pkl``). Defaults to 'torch'.
        check_globals (bool): Hold the pickle's globals against the allow-list (and load a
            legacy non-zip file, whose structure cannot be checked otherwise). Defaults to True.

    Returns:
        CheckpointContents | None: None when ``path`` is remote (``http://``, ``s3://``...).

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
        _scan_detectron_pickle(local, what)
        return CheckpointContents(local, 'detectron')
    if head.startswith(_ZIP_MAGIC):
        return _check_zip(local, what, check_globals)
    if head.startswith(_LEGACY_TORCH_MAGIC):
        # no directory to check cheaply: loading is the check, and it needs the allow-list
        return _check_legacy_torch(local, what) if check_globals else CheckpointContents(local, 'torch_legacy')
    if head.startswith(_PICKLE_PROTO):
        raise CheckpointCheckError(
            local, 'not_a_checkpoint', 'is a plain pickle, not a torch checkpoint. A Detectron .pkl is loaded '
            'with load_from="detectron://<path>" or converted with dp-convert-detectron / '
            'tools/convert_detectron.py.', what)
    raise CheckpointCheckError(local, 'not_a_checkpoint', f'is not a torch checkpoint (it starts with {head[:8]!r}, '
                               'neither a torch.save zip nor the legacy format); pass a .pth written by the train '
                               'tool.', what)


def check_checkpoint_file(path: str, what: str = 'checkpoint', kind: str = 'torch',
                          check_globals: bool = True) -> Optional[str]:
    """The one pre-check of a checkpoint file, for every entry point and the converters:
    :func:`inspect_checkpoint_file`, returning only the format.

    Returns:
        str | None: 'torch', 'torch_legacy' or 'detectron'; None when ``path`` is remote.

    Raises:
        CheckpointCheckError: naming the path and the problem.
    """
    contents = inspect_checkpoint_file(path, what, kind, check_globals)
    return None if contents is None else contents.kind
