"""Safe reading of Detectron (Caffe2) ``.pkl`` weight files.

Why: Detectron's ``model_final.pkl`` and ImageNet ``R-50.pkl`` files are Python-2
pickles (protocol 2, ``str`` data that must be decoded as latin-1). ``pickle.load`` on
an untrusted file executes whatever callables it names, so this reader uses an
unpickler whose ``find_class`` resolves only what numpy arrays, dtypes and scalars are
rebuilt from (plus a latin-1-only ``_codecs.encode``, which Python 3 emits for
``bytes`` at protocol 2). Dicts, lists, tuples, strings, bytes and numbers need no
globals. Any other global is refused with :class:`UnsafeDetectronPickleError` naming
it - before anything is called.

The reader then normalises both layouts (``{'blobs': {...}, 'cfg': yaml}`` of model-zoo
files and the flat ``{name: array}`` of older/ImageNet files), drops optimizer state
(``*_momentum``) and keeps the ``cfg`` text, parsed without constructing any Python
object, for the few facts the blobs do not encode (stride placement, RetinaNet anchor
order).
"""
import codecs
import logging
import os
import os.path as osp
import pickle
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import yaml

from ...runtime.numpy_globals import numpy_safe_globals
from .errors import DetectronFormatError, UnsafeDetectronPickleError

__all__ = [
    'DetectronBlobs', 'RestrictedDetectronUnpickler', 'read_detectron_pickle', 'load_detectron_blobs',
    'parse_detectron_cfg'
]

logger = logging.getLogger(__name__)

MOMENTUM_SUFFIX = '_momentum'


def _latin1_encode(text: Any, encoding: str = 'latin1', errors: str = 'strict') -> bytes:
    """Stand-in for ``_codecs.encode`` during unpickling.

    Python 3 pickles ``bytes`` at protocol 2 as ``_codecs.encode(str, 'latin1')``; only
    that exact construct is resolved.
    """
    if isinstance(text, str) and codecs.lookup(encoding).name == 'iso8859-1' and errors == 'strict':
        return text.encode('latin1')
    raise UnsafeDetectronPickleError(
        f'refusing _codecs.encode({type(text).__name__}, {encoding!r}, {errors!r}) in a Detectron pickle: only '
        "latin-1 encoding of a str is allowed")


def _allowed_globals() -> Dict[Tuple[str, str], Callable]:
    """numpy's array globals (shared with the weights-only loader) plus Python 2's latin-1 str."""
    allowed = numpy_safe_globals()
    allowed[('_codecs', 'encode')] = _latin1_encode
    return allowed


_ALLOWED_GLOBALS = _allowed_globals()


class RestrictedDetectronUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy array/dtype/scalar reconstruction.

    Args:
        file (BinaryIO): The open pickle.
        source (str): File name used in error messages. Defaults to '<stream>'.
    """

    def __init__(self, file: BinaryIO, source: str = '<stream>') -> None:
        super().__init__(file, encoding='latin1')
        self.source = source

    def find_class(self, module: str, name: str) -> Callable:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeDetectronPickleError(
                f'refusing to load Detectron checkpoint {self.source}: it references the global '
                f'{module}.{name}, which a Detectron weight file never holds (only numpy arrays, '
                'dtypes, scalars, dicts, lists, strings and numbers). Nothing was executed. If you '
                'trust the file, re-save its arrays as a plain {name: numpy array} dict.') from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeDetectronPickleError(
            f'refusing to load Detectron checkpoint {self.source}: it uses persistent id {pid!r}, '
            'which Detectron weight files never do')


def read_detectron_pickle(file: Union[str, os.PathLike, BinaryIO]) -> Any:
    """Unpickle a Detectron file with the restricted unpickler.

    Args:
        file (str | PathLike | BinaryIO): Path or open binary file.

    Returns:
        The unpickled object (normally a dict).

    Raises:
        UnsafeDetectronPickleError: the file references a refused global.
        DetectronFormatError: the file is not a readable pickle.
        FileNotFoundError: no such file.
    """
    if isinstance(file, (str, os.PathLike)):
        path = osp.expanduser(os.fspath(file))
        if not osp.isfile(path):
            raise FileNotFoundError(f'Detectron checkpoint {path} can not be found.')
        with open(path, 'rb') as handle:
            return _unpickle(handle, path)
    return _unpickle(file, getattr(file, 'name', '<stream>'))


def _unpickle(handle: BinaryIO, source: str) -> Any:
    try:
        return RestrictedDetectronUnpickler(handle, source).load()
    except UnsafeDetectronPickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise DetectronFormatError(
            f'{source} is not a readable Detectron pickle ({type(error).__name__}: {error}). Detectron '
            'weights are Python-2 pickles of {"blobs": {name: array}, "cfg": yaml} or {name: array}.') from error


class _PlainDataLoader(yaml.SafeLoader):
    """SafeLoader that reads Python-tagged nodes as plain data instead of refusing them.

    Detectron's ``cfg`` is ``yaml.dump`` of an ``AttrDict`` with ``!!python/tuple`` and
    numpy tags; they are turned into dicts/lists/strings, never into objects.
    """


def _construct_plain(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        mapping = loader.construct_mapping(node, deep=True)
        return mapping.get('dictitems', mapping)  # AttrDict: !!python/object/new with dictitems
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_PlainDataLoader.add_multi_constructor('tag:yaml.org,2002:python/', _construct_plain)


def parse_detectron_cfg(text: Optional[str]) -> Optional[Dict[str, Any]]:
    """Parse the ``cfg`` yaml of a model-zoo file into plain nested dicts.

    Returns:
        dict | None: None when absent or unreadable (the cfg is optional information).
    """
    if not text:
        return None
    try:
        cfg = yaml.load(text, Loader=_PlainDataLoader)  # noqa: S506  (SafeLoader subclass)
    except yaml.YAMLError as error:
        logger.warning('ignoring the unreadable Detectron cfg: %s', str(error).splitlines()[0])
        return None
    return cfg if isinstance(cfg, dict) else None


@dataclass
class DetectronBlobs:
    """The arrays of a Detectron file and what was set aside while reading them.

    Attributes:
        blobs (dict[str, np.ndarray]): Model blobs, momentum removed.
        source (str): Where they came from.
        layout (str): ``'nested'`` (``{'blobs', 'cfg'}``) or ``'flat'``.
        momentum (list[str]): Dropped ``*_momentum`` blob names.
        non_arrays (list[str]): Entries of the blob dict that were not arrays (skipped).
        cfg_text (str | None): The raw ``cfg`` yaml, if any.
        cfg (dict | None): ``cfg_text`` parsed as plain data.
    """
    blobs: Dict[str, np.ndarray]
    source: str = '<memory>'
    layout: str = 'flat'
    momentum: List[str] = field(default_factory=list)
    non_arrays: List[str] = field(default_factory=list)
    cfg_text: Optional[str] = None
    cfg: Optional[Dict[str, Any]] = None

    def cfg_value(self, dotted: str, default: Any = None) -> Any:
        """``cfg['A']['B']`` for ``'A.B'``, or ``default`` when absent."""
        node: Any = self.cfg
        for part in dotted.split('.'):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node


def _as_text(key: Any) -> Any:
    return key.decode('latin1') if isinstance(key, bytes) else key


def load_detectron_blobs(file: Union[str, os.PathLike, BinaryIO, Dict[str, Any]]) -> DetectronBlobs:
    """Read a Detectron weight file (or an already unpickled dict) into :class:`DetectronBlobs`.

    Args:
        file (str | PathLike | BinaryIO | dict): Path, open file, or unpickled object.

    Raises:
        DetectronFormatError: not a dict of blobs, or an array of non-numeric dtype.
        UnsafeDetectronPickleError: see :func:`read_detectron_pickle`.
    """
    if isinstance(file, dict):
        obj, source = file, '<memory>'
    else:
        source = os.fspath(file) if isinstance(file, (str, os.PathLike)) else getattr(file, 'name', '<stream>')
        obj = read_detectron_pickle(file)
    if not isinstance(obj, dict):
        raise DetectronFormatError(
            f'{source} holds a {type(obj).__name__}, not a dict: a Detectron weight file is '
            '{"blobs": {name: array}, "cfg": yaml} or {name: array}.')
    obj = {_as_text(k): v for k, v in obj.items()}
    cfg_text = None
    if isinstance(obj.get('blobs'), dict):
        layout, raw = 'nested', obj['blobs']
        cfg_text = obj.get('cfg')
        cfg_text = cfg_text.decode('latin1') if isinstance(cfg_text, bytes) else cfg_text
        extra = sorted(set(obj) - {'blobs', 'cfg'})
        if extra:
            logger.warning('%s: ignoring top-level entries %s next to "blobs"', source, extra)
    else:
        layout, raw = 'flat', obj
    blobs: Dict[str, np.ndarray] = {}
    momentum: List[str] = []
    non_arrays: List[str] = []
    for key, value in raw.items():
        name = _as_text(key)
        if not isinstance(name, str):
            raise DetectronFormatError(f'{source}: blob name {name!r} is a {type(name).__name__}, not a string')
        if name.endswith(MOMENTUM_SUFFIX):
            momentum.append(name)
            continue
        if isinstance(value, np.generic):
            value = np.asarray(value)
        if not isinstance(value, np.ndarray):
            non_arrays.append(name)
            continue
        if value.dtype.kind not in 'fiub':
            raise DetectronFormatError(
                f'{source}: blob {name!r} has dtype {value.dtype}; Detectron weights are numeric arrays')
        blobs[name] = value
    if non_arrays:
        logger.warning('%s: skipping %d entries that are not arrays: %s', source, len(non_arrays),
                       sorted(non_arrays)[:10])
    if not isinstance(cfg_text, str):
        cfg_text = None
    logger.debug('%s: %s layout, %d blobs, %d momentum blobs dropped', source, layout, len(blobs), len(momentum))
    return DetectronBlobs(blobs=blobs, source=source, layout=layout, momentum=sorted(momentum),
                          non_arrays=sorted(non_arrays), cfg_text=cfg_text, cfg=parse_detectron_cfg(cfg_text))
