"""Weights-only loading of mmengine checkpoints under torch >= 2.6.

Why: torch >= 2.6 unpickles with ``weights_only=True`` by default and mmengine 0.10.7
does not allow-list what its own checkpoints contain, so resume, ``load_from`` and
testing fail. Instead of turning the safety off, this module allow-lists exactly the
types an mmengine/mmdet checkpoint holds (numpy arrays, dtypes and scalars in ``meta``,
and the message hub's ``HistoryBuffer``) and replaces ``builtins.getattr`` - which
pickle emits to reference ``HistoryBuffer.min`` and friends - by a function that
resolves nothing but those statistics methods. Anything else is refused with
:class:`UnsafeCheckpointError` naming the offending type; there is no unsafe fallback.
"""
import logging
import os.path as osp
import pickle
import re
import threading
from typing import Any, Callable, List, Tuple, Union

import torch
from mmengine.logging.history_buffer import HistoryBuffer

from ..errors import UnsafeCheckpointError
from .numpy_globals import numpy_safe_globals

__all__ = [
    'mmengine_checkpoint_safe_globals', 'safe_torch_load',
    'load_from_local_safely', 'install_safe_checkpoint_loading'
]

logger = logging.getLogger(__name__)


# The defaults are registered lazily (in HistoryBuffer.__init__), so name them here too.
_DEFAULT_STATISTICS = frozenset({'min', 'max', 'mean', 'current'})


def _statistics_method_names() -> frozenset:
    return _DEFAULT_STATISTICS | frozenset(HistoryBuffer._statistics_methods)


# torch re-raises errors from inside the unpickler without their cause; refusals are
# recorded here so the final error can still name them.
_refusals = threading.local()


def _history_buffer_getattr(obj: Any, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` during unpickling.

    Pickle protocol 2 stores a method such as ``HistoryBuffer.min`` as
    ``getattr(HistoryBuffer, 'min')``. Only that construct is resolved; a general
    ``getattr`` would let a crafted file reach arbitrary attributes.
    """
    if obj is HistoryBuffer and isinstance(name, str) and name in _statistics_method_names():
        return getattr(HistoryBuffer, name)
    _refusals.items = getattr(_refusals, 'items', []) + [f'getattr({getattr(obj, "__qualname__", obj)!s}, {name!r})']
    raise UnsafeCheckpointError(
        f'refusing getattr({obj!r}, {name!r}) while loading a checkpoint: only '
        f'HistoryBuffer statistics methods {sorted(_statistics_method_names())} are allowed')


def mmengine_checkpoint_safe_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The globals an mmengine checkpoint may reference, for ``torch.serialization.safe_globals``."""
    numpy_items = [(obj, f'{module}.{name}') for (module, name), obj in numpy_safe_globals().items()]
    return numpy_items + [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr')]


_GLOBAL_RE = re.compile(r'GLOBAL ([\w.]+)')


def _offending_types(file: Any, error: Exception) -> List[str]:
    """Names of the refused globals, from the file itself when it is a path."""
    names: List[str] = list(getattr(_refusals, 'items', []))
    if not names and isinstance(file, str):
        try:
            with torch.serialization.safe_globals(mmengine_checkpoint_safe_globals()):
                names = torch.serialization.get_unsafe_globals_in_checkpoint(file)
        except Exception:  # a corrupt file: fall back to the error text
            names = []
    if not names:
        names = _GLOBAL_RE.findall(str(error))
    return names or ['an object outside the allow-list']


def safe_torch_load(file: Any, map_location: Any = None) -> Any:
    """``torch.load`` with ``weights_only=True`` and the mmengine allow-list.

    Raises:
        UnsafeCheckpointError: the file references a type outside the allow-list.
    """
    _refusals.items = []
    with torch.serialization.safe_globals(mmengine_checkpoint_safe_globals()):
        try:
            return torch.load(file, map_location=map_location, weights_only=True)
        except UnsafeCheckpointError:
            raise
        except pickle.UnpicklingError as error:
            types = _offending_types(file, error)
            raise UnsafeCheckpointError(
                f'refusing to load checkpoint {file!r}: it contains {", ".join(types)}, which '
                'is not a type that mmengine checkpoints hold (tensors, numpy arrays and '
                'scalars, HistoryBuffer). Nothing was executed. If you trust the file, '
                're-save only its tensors (e.g. its "state_dict") and load that.') from error


def load_from_local_safely(filename: str, map_location: Any = None) -> Any:
    """Replacement for mmengine's local-path checkpoint scheme."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found.')
    return safe_torch_load(filename, map_location=map_location)


def install_safe_checkpoint_loading() -> None:
    """Route mmengine's local checkpoint loading (resume, load_from, test, init_cfg)
    through :func:`safe_torch_load`. Idempotent."""
    from mmengine.runner.checkpoint import CheckpointLoader
    if CheckpointLoader._schemes.get('') is not load_from_local_safely:
        CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_safely, force=True)
