"""Write a config as a thin, commented delta that inherits another: only the keys set, each with why.

Why: a generated config is only useful if a person can read it, change a value and run it with
the plain tools; a dump of the merged config (600 lines, every default spelled out) cannot be
read, and it stops following the pair it came from. Here the overlay inherits the pair's config
(``_base_``) and writes the keys that were set, nested as mmengine merges them, with a comment
above each. Where a key lies inside a list (Cascade's three box heads, an evaluator list),
mmengine cannot merge into one element - a child's list replaces the base's - so the whole list
is written, as it results from the base with the change applied.
"""
import keyword
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

__all__ = ['Ref', 'Setting', 'format_value', 'render_overlay']

_WIDTH = 110
_INDENT = '    '


class Ref:
    """A value written as a name: one of the overlay's own top-level variables."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


@dataclass
class Setting:
    """A dotted config key and why it is set. Its value is the one in the config given to
    :func:`render_overlay`, written as ``ref`` when given (a variable of the overlay, or an
    expression) unless the key lies inside a list, which is written whole."""
    key: str
    comment: str
    ref: Optional[Ref] = None


def _is_name(key: Any) -> bool:
    return isinstance(key, str) and key.isidentifier() and not keyword.iskeyword(key)


def _one_line(value: Any) -> str:
    if isinstance(value, dict):
        if all(_is_name(k) for k in value):
            return 'dict(' + ', '.join(f'{k}={_one_line(v)}' for k, v in value.items()) + ')'
        return '{' + ', '.join(f'{k!r}: {_one_line(v)}' for k, v in value.items()) + '}'
    if isinstance(value, list):
        return '[' + ', '.join(_one_line(v) for v in value) + ']'
    if isinstance(value, tuple):
        return '(' + ', '.join(_one_line(v) for v in value) + (',)' if len(value) == 1 else ')')
    return repr(value)


def format_value(value: Any, indent: int = 0) -> str:
    """Python source of ``value`` (dicts as ``dict(...)``), broken over lines indented by
    ``indent`` levels where one line would be longer than the page."""
    line = _one_line(value)
    if len(line) + indent * len(_INDENT) <= _WIDTH or not isinstance(value, (dict, list, tuple)) or not value:
        return line
    inner = _INDENT * (indent + 1)
    if isinstance(value, dict):
        named = all(_is_name(k) for k in value)
        items = [f'{inner}{k}={format_value(v, indent + 1)}' if named else
                 f'{inner}{k!r}: {format_value(v, indent + 1)}' for k, v in value.items()]
        open_, close = ('dict(', ')') if named else ('{', '}')
    else:
        open_, close = ('[', ']') if isinstance(value, list) else ('(', ')')
        parts = [_one_line(v) for v in value]
        if all(len(inner) + len(p) + 1 <= _WIDTH for p in parts) and not any(isinstance(v, dict) for v in value):
            return open_ + '\n' + ',\n'.join(_packed(parts, inner)) + ',\n' + _INDENT * indent + close
        items = [f'{inner}{format_value(v, indent + 1)}' for v in value]
    return open_ + '\n' + ',\n'.join(items) + ',\n' + _INDENT * indent + close


def _packed(parts: Sequence[str], inner: str) -> List[str]:
    """Short items filled into lines (a tuple of 17 numbers takes one or two lines, not 17)."""
    lines: List[str] = []
    for part in parts:
        if lines and len(lines[-1]) + len(part) + 3 <= _WIDTH:
            lines[-1] += ', ' + part
        else:
            lines.append(inner + part)
    return lines


def _without_scope(value: Any, scope: Optional[str]) -> Any:
    """``value`` without the ``_scope_`` markers mmengine adds to dicts of ``scope::`` bases
    when that scope is the config's default anyway (they would only be noise)."""
    if isinstance(value, dict):
        return {k: _without_scope(v, scope) for k, v in value.items() if not (k == '_scope_' and v == scope)}
    if isinstance(value, (list, tuple)):
        return type(value)(_without_scope(v, scope) for v in value)
    return value


def _lookup(cfg: Config, parts: Sequence[str]) -> Tuple[Any, int]:
    """The value at ``parts`` in ``cfg`` - or the first list on the way and how many parts lead to it."""
    node: Any = cfg
    for i, part in enumerate(parts):
        if isinstance(node, (list, tuple)):
            return node, i
        node = node[part]
    return node, len(parts)


class _Node:

    def __init__(self) -> None:
        self.children: Dict[str, '_Node'] = {}
        self.value: Any = None
        self.is_leaf = False
        self.comments: List[str] = []


def _tree(settings: Sequence[Setting], cfg: Config) -> _Node:
    root = _Node()
    for setting in settings:
        parts = setting.key.split('.')
        value, depth = _lookup(cfg, parts)
        comment = setting.comment
        if depth < len(parts):
            parts = parts[:depth]
            whole = 'the list written whole (a child config cannot change one element)'
            comment = f'{comment} - {whole}' if comment else whole[0].upper() + whole[1:]
        elif setting.ref is not None:
            value = setting.ref
        value = _without_scope(value, cfg.get('default_scope'))
        node = root
        for part in parts:
            if node.is_leaf:
                break
            node = node.children.setdefault(part, _Node())
        if comment and comment not in node.comments:
            node.comments.append(comment)
        if not node.is_leaf:
            node.is_leaf, node.value, node.children = True, value, {}
    return root


def _inline(node: _Node) -> Optional[str]:
    """A subtree without comments as one ``dict(...)`` expression, None when it has comments."""
    if node.is_leaf:
        return None if node.comments else _one_line(node.value)
    parts = [(name, _inline(child)) for name, child in node.children.items()]
    if node.comments or any(text is None for _, text in parts):
        return None
    return 'dict(' + ', '.join(f'{name}={text}' for name, text in parts) + ')'


def _render(name: str, node: _Node, indent: int, top: bool) -> List[str]:
    pad = _INDENT * indent
    lines = [f'{pad}# {c}' for c in node.comments]
    assign = ' = ' if top else '='
    end = '' if top else ','
    if node.is_leaf:
        lines.append(f'{pad}{name}{assign}{format_value(node.value, indent)}{end}')
        return lines
    inline = _inline(node)
    if inline is not None and len(pad) + len(name) + len(assign) + len(inline) + len(end) <= _WIDTH:
        return [f'{pad}{name}{assign}{inline}{end}']
    lines.append(f'{pad}{name}{assign}dict(')
    for child_name, child in node.children.items():
        lines.extend(_render(child_name, child, indent + 1, False))
    lines.append(f'{pad}){end}')
    return lines


def render_overlay(base: str, header: Sequence[str], variables: Sequence[Tuple[str, Any, str]],
                   settings: Sequence[Setting], cfg: Config) -> str:
    """The source of a config inheriting ``base`` that sets ``settings``.

    Args:
        base (str): The ``_base_`` of the overlay (a ``pkg::`` name or a path).
        header (Sequence[str]): Comment lines at the top (without ``#``).
        variables (Sequence[tuple]): ``(name, value, comment)`` top-level variables, written first
            (values in ``settings`` may refer to them with :class:`Ref`).
        settings (Sequence[Setting]): The keys to set, in order; a key below another one set
            is covered by it (comments are kept).
        cfg (Config): Where the settings take their values: the base config with every change
            applied.
    """
    lines = [f'# {line}' if line else '#' for line in header]
    lines += ['', f'_base_ = {base!r}', '']
    for name, value, comment in variables:
        if comment:
            lines.append(f'# {comment}')
        lines.append(f'{name} = {format_value(value)}')
    root = _tree(settings, cfg)
    for name, node in root.children.items():
        lines.append('')
        lines.extend(_render(name, node, 0, True))
    return '\n'.join(lines) + '\n'
