"""Walk a config's ``param_scheduler``: one answer to "which schedulers, under which key".

Why: ``--accumulate`` rewrites iteration-based schedulers, the warmup check compares their
ends with the run, and the own-dataset overlay caps warmups and scales milestones; each
needs every scheduler however ``param_scheduler`` nests them (one dict, a list, a dict of
lists per parameter) and the dotted key that names it in an error or an overlay.
"""
from typing import Any, Iterator, Tuple

__all__ = ['OPEN_END', 'iter_schedulers']

#: mmengine's ``INF``: the ``end`` of an open-ended scheduler.
OPEN_END = int(1e9)


def iter_schedulers(node: Any, key: str = 'param_scheduler') -> Iterator[Tuple[str, dict]]:
    """``(dotted key, scheduler cfg)`` of every scheduler in ``node`` (a config's ``param_scheduler``:
    a dict, a list, or a dict of lists), in order."""
    if isinstance(node, dict) and 'type' in node:
        yield key, node
    elif isinstance(node, dict):
        for name, value in node.items():
            yield from iter_schedulers(value, f'{key}.{name}')
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from iter_schedulers(value, f'{key}.{index}')
