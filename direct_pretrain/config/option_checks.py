"""``--cfg-options`` values checked against the types of the values they replace.

Why: ``--cfg-options train_dataloader.batch_size=abc`` is merged as the string ``'abc'``; the
Runner then creates the work dir, dumps the config and prints ~600 lines before a worker fails
on it. A value that replaces a number must be a number; this is checked before anything runs.
"""
import numbers
from typing import Any, Mapping

from mmengine.config import Config

from ..errors import ConfigInputError

__all__ = ['check_option_types']

_MISSING = object()


def _lookup(cfg: Config, key: str) -> Any:
    """The value at dotted ``key`` (list indices allowed), or ``_MISSING``."""
    node: Any = cfg
    for part in key.split('.'):
        if isinstance(node, (Mapping, Config)):
            node = node.get(part, _MISSING)
            if node is _MISSING:
                return _MISSING
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _mismatch(old: Any, new: Any) -> bool:
    if isinstance(old, bool):
        return not isinstance(new, bool)
    if _is_number(old):
        return not _is_number(new)
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)) and len(old) == len(new):
        return any(_mismatch(o, n) for o, n in zip(old, new))
    return False


def check_option_types(cfg: Config, options: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigInputError` when an option replaces a number (or a bool, or a
    list of numbers) of ``cfg`` with something else; call before merging the options.

    Keys the config does not have, and values the config leaves None, are not checked.

    Args:
        cfg (Config): The config as loaded from its file.
        options (Mapping[str, Any]): Parsed ``--cfg-options`` (``DictAction`` output).
    """
    for key, new in (options or {}).items():
        old = _lookup(cfg, key)
        if old is _MISSING or old is None or not _mismatch(old, new):
            continue
        kind = 'True or False' if isinstance(old, bool) else 'a number' if _is_number(old) else 'a list of numbers'
        raise ConfigInputError(f'--cfg-options {key}={new!r}: {key} takes {kind} (the config has {old!r}); '
                               f'pass e.g. {key}={old!r}.')
