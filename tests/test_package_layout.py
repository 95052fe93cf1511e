"""The package's folders import each other downwards only: no circles, no upward arrows.

Every ``import`` of the package's own modules is read from the source (those inside functions
too), folded to the folder it lives in, and checked against the layer order README's package
table states. A new folder has to be given a layer here, which is the point: it says where it
sits before anything imports it.
"""
import ast
import os
import os.path as osp
from collections import defaultdict

from dp_test_utils import REPO_ROOT

PACKAGE = osp.join(REPO_ROOT, 'direct_pretrain')

#: Lowest first; a folder may import from lower layers only (and from itself).
LAYERS = (
    ('errors', 'registry', 'version'),
    ('runtime', 'structures'),
    ('checkpoint', ),
    ('datasets', 'models', 'evaluation', 'visualization'),
    ('engine', 'report'),
    ('config', ),
    ('apis', 'chain'),
    ('analysis_tools', ),
    ('cli', ),
)
LEVEL = {room: level for level, rooms in enumerate(LAYERS) for room in rooms}


def _module_name(path: str) -> str:
    parts = osp.relpath(path, REPO_ROOT)[:-3].split(os.sep)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _imports():
    """(importing module, imported module, line, inside a function) for every own import."""
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = osp.join(folder, name)
            module = _module_name(path)
            package = module.split('.') if name == '__init__.py' else module.split('.')[:-1]
            tree = ast.parse(open(path).read())
            functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            inner = {id(n) for f in functions for n in ast.walk(f)}
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    base = package[:len(package) - node.level + 1] if node.level else []
                    targets = ['.'.join(base + ([node.module] if node.module else []))]
                elif isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                else:
                    continue
                for target in targets:
                    if target == 'direct_pretrain' or target.startswith('direct_pretrain.'):
                        yield module, target, node.lineno, id(node) in inner


def _room(module: str) -> str:
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else ''


def test_every_folder_has_a_layer():
    rooms = {name[:-3] if name.endswith('.py') else name for name in os.listdir(PACKAGE)
             if not name.startswith(('_', '.')) and (name.endswith('.py') or osp.isdir(osp.join(PACKAGE, name)))}
    assert rooms - set(LEVEL) == set(), 'give the new folder a layer in LAYERS (and in README)'
    assert set(LEVEL) - rooms == set(), 'a layer names a folder that no longer exists'


def test_imports_go_downwards_only():
    upward = []
    for module, target, line, _ in _imports():
        source, dest = _room(module), _room(target)
        if not source or source == dest:
            continue  # the package root registers everything; a folder may import itself
        if not dest:
            upward.append(f'{module}:{line} imports the package root')
        elif LEVEL[dest] >= LEVEL[source]:
            upward.append(f'{module}:{line} ({source}, layer {LEVEL[source]}) imports {target} '
                          f'({dest}, layer {LEVEL[dest]})')
    assert upward == []


def test_no_module_cycles():
    """Inside a folder too: module A importing B importing A, even through a function body."""
    graph = defaultdict(set)
    for module, target, _, _ in _imports():
        if module != target and not target.startswith(module + '.'):
            graph[module].add(target)
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = 'open'
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 'open':
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 'done'

    for node in list(graph):
        if node not in state:
            visit(node, [node])
    # a package __init__ importing its own submodules is how packages are built, not a cycle
    real = [c for c in cycles if not all(a.startswith(b + '.') or b.startswith(a + '.') for a, b in zip(c, c[1:]))]
    assert real == []
