"""Say where a missing ``load_from`` came from and which pretrain config writes it.

Why: a user's fine-tune usually inherits a zoo fine-tune, whose ``load_from`` and
``pretrain_config`` name the zoo's COCO pretrain. When the checkpoint is missing, "run the
zoo pretrain" is the wrong advice for someone who pretrained with their own config, or who
forgot to set ``load_from`` and silently inherited the zoo's. This module finds which file
set the value (the user's config, one of its bases, or the command line, by reading the
config files' top-level assignments as mmengine resolves their ``_base_``) and the user's
own pretrain config when it can be found (a config next to the fine-tune named like the
checkpoint's work dir, or one inheriting the pretrain config the zoo names).
"""
import ast
import logging
import os
import os.path as osp
from typing import Any, Iterator, List, Optional, Tuple

from mmengine.config import Config

__all__ = ['config_files_of', 'value_origin', 'missing_checkpoint_message']

logger = logging.getLogger(__name__)

_UNKNOWN = object()  # a value that is not a literal


def _top_level_value(path: str, key: str) -> Tuple[bool, Any]:
    """Whether the config file ``path`` assigns ``key`` at its top level, and the literal value."""
    try:
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return False, _UNKNOWN
    found, value = False, _UNKNOWN
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == key for t in node.targets):
            found = True
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, SyntaxError, TypeError):
                value = _UNKNOWN
    return found, value


def _bases(path: str) -> List[str]:
    """The base files of a config, resolved as mmengine resolves them (``mmdet::``... too)."""
    try:
        return [Config._get_cfg_path(base, path)[0] for base in Config._get_base_files(path)]
    except Exception:  # noqa: BLE001  (an unresolvable base: stop there; this is advice, not a check)
        logger.debug('cannot resolve the bases of %s', path, exc_info=True)
        return []


def config_files_of(path: str) -> Iterator[str]:
    """``path`` and its bases, depth first, in the order mmengine lets them override."""
    yield path
    for base in _bases(path):
        yield from config_files_of(base)


def value_origin(config_file: str, key: str) -> Tuple[Optional[str], Any]:
    """The file of ``config_file``'s inheritance chain that sets ``key`` (the config itself
    before its bases; mmengine forbids the same key in two sibling bases) and its literal
    value; ``(None, _UNKNOWN)`` when no file sets it."""
    for path in config_files_of(config_file):
        found, value = _top_level_value(path, key)
        if found:
            return path, value
    return None, _UNKNOWN


def _stem(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def _own_pretrain_inheriting(folder: str, pretrain_config: str, exclude: str) -> Optional[str]:
    """The one config in ``folder`` whose ``_base_`` is the pretrain config the zoo names."""
    if not osp.isdir(folder):
        return None
    matches = []
    for name in sorted(n for n in os.listdir(folder) if n.endswith('.py')):
        path = osp.join(folder, name)
        if osp.abspath(path) != osp.abspath(exclude) and any(
                osp.basename(base) == osp.basename(pretrain_config) for base in _bases(path)):
            matches.append(_shown_path(path))
    return matches[0] if len(matches) == 1 else None


def _shown_path(path: str) -> str:
    """``path`` relative to the working directory when it lies below it (as a user types it)."""
    if not path:
        return path
    relative = osp.relpath(path)
    return path if relative.startswith('..') else relative


def _run_hint(pretrain: str) -> str:
    return (f' It is written by the pretrain stage: run `dp-train {pretrain}` (or `./dist_train.sh {pretrain} '
            f'<GPUS>`) first, or point load_from at your own checkpoint with --cfg-options load_from=<path>.')


def missing_checkpoint_message(cfg: Config, load_from: str, what: str = 'load_from') -> str:
    """The error line for a ``load_from`` file that does not exist.

    It names where the value came from - the user's config file, a base it inherits from,
    or the command line - and, when it can be found, the pretrain config that writes the
    file: the ``pretrain_config`` whose name is the checkpoint's work dir, a config of that
    name next to the fine-tune config, or (for an inherited value) the user's config that
    inherits the zoo's pretrain config; otherwise what to set.
    """
    if what != 'load_from':
        return f'{what} checkpoint {load_from!r} does not exist. Check the path.'
    config_file = cfg.filename or ''
    work_dir_name = osp.basename(osp.dirname(osp.normpath(load_from)))
    pretrain_config: Optional[str] = cfg.get('pretrain_config')
    folder = osp.dirname(config_file)
    next_to_it = _shown_path(osp.join(folder, work_dir_name + '.py')) if work_dir_name else ''
    if not (next_to_it and osp.isfile(next_to_it) and osp.abspath(next_to_it) != osp.abspath(config_file)):
        next_to_it = ''
    # the checkpoint's work dir is named after the config that writes it
    writer = pretrain_config if pretrain_config and work_dir_name == _stem(pretrain_config) else next_to_it

    origin, value = value_origin(config_file, 'load_from') if config_file else (None, _UNKNOWN)
    from_command_line = origin is None or (value is not _UNKNOWN and value != load_from)
    shown_config = _shown_path(config_file)
    if from_command_line:
        return f'{what} checkpoint {load_from!r} does not exist.' + (
            _run_hint(writer) if writer else ' Check the path.')
    if osp.abspath(origin) == osp.abspath(config_file):
        return (f'{what} checkpoint {load_from!r} does not exist (set in {shown_config}).' +
                (_run_hint(writer) if writer else ' Check the path, or set it to the checkpoint your pretrain stage '
                 'writes (work_dirs/<pretrain config name>/epoch_N.pth).'))
    # inherited: the user's config does not set load_from, a base does
    message = (f'{what} checkpoint {load_from!r} does not exist; {shown_config} does not set load_from but inherits '
               f'it from {_shown_path(origin)}')
    message += f' (the output of its pretrain config {pretrain_config}).' if pretrain_config else '.'
    own = next_to_it or (_own_pretrain_inheriting(folder, pretrain_config, config_file) if pretrain_config else None)
    checkpoint_name = osp.basename(load_from)
    if own:
        return message + (f' Your pretrain config {own} writes work_dirs/{_stem(own)}/{checkpoint_name}: set '
                          f"load_from = 'work_dirs/{_stem(own)}/{checkpoint_name}' in {shown_config} (and run "
                          f'`dp-train {own}` first if it has not run).')
    run = f', or run that pretrain first: `dp-train {pretrain_config}`' if pretrain_config else ''
    return message + (f" Set load_from in {shown_config} to your pretrain stage's checkpoint (e.g. load_from = "
                      f"'work_dirs/<your pretrain config name>/{checkpoint_name}'){run}.")
