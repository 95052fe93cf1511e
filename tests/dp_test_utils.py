"""Helpers shared by the tests: repository paths, child-process environment, tiny configs."""
import os
import os.path as osp

from forked_cli import PYTHON, python_env  # noqa: F401  (one definition, shared with the tool server)

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO_ROOT, 'tools')
TOY_PRETRAIN = osp.join(REPO_ROOT, 'configs/toy/mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py')
TOY_FINETUNE = osp.join(REPO_ROOT, 'configs/toy/mask-rcnn_r18_fpn_1xb2-direct-finetune_toy.py')


class Payload:
    """A pickle payload that would create ``target`` if unpickled by an unsafe loader."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f'touch {self.target}', ))


_DATA_OVERRIDES = '''
data_root = {root!r}
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, {train_dataset})
test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root))
test_evaluator = dict(ann_file=data_root + 'annotations/{ann_name}_val.json')
train_cfg = dict(max_epochs={epochs})
default_hooks = dict(logger=dict(interval=1))
randomness = dict(seed=0, deterministic=True)
'''

# One warmup iteration: a tiny run is a few iterations long, and a warmup longer than the run is refused.
_SHORT_WARMUP = 'param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=1)]\n'


def write_tiny_stage_configs(folder: str, data_root: str, pretrain_epochs: int = 1,
                             finetune_epochs: int = 1, scoped: bool = False,
                             pair: tuple = (TOY_PRETRAIN, TOY_FINETUNE), ann_name: str = 'instances',
                             prefix: str = 'tiny') -> tuple:
    """Stage configs that inherit a toy pair (default the main job's) and point it at
    ``data_root``, small and fast: ``<prefix>_pretrain.py`` and ``<prefix>_finetune.py``.

    With ``scoped`` they inherit ``direct_pretrain::toy/...`` (the installed configs), as
    another project would, instead of the checkout's files. ``ann_name`` is the annotation
    files' stem (``instances``, ``person_keypoints``).

    Returns (pretrain config path, finetune config path).
    """
    os.makedirs(folder, exist_ok=True)
    root = data_root.rstrip('/') + '/'
    bases = [f'direct_pretrain::toy/{osp.basename(c)}' if scoped else c for c in pair]
    pre = osp.join(folder, f'{prefix}_pretrain.py')
    with open(pre, 'w') as f:
        f.write(f'_base_ = {bases[0]!r}\n' + _DATA_OVERRIDES.format(
            root=root, epochs=pretrain_epochs, ann_name=ann_name,
            train_dataset='dataset=dict(times=1, dataset=dict(data_root=data_root))') + _SHORT_WARMUP)
    ft = osp.join(folder, f'{prefix}_finetune.py')
    with open(ft, 'w') as f:
        f.write(f'_base_ = {bases[1]!r}\n' + _DATA_OVERRIDES.format(
            root=root, epochs=finetune_epochs, ann_name=ann_name,
            train_dataset='dataset=dict(data_root=data_root)') +
            f'pretrain_config = {pre!r}\nload_from = None\n' + _SHORT_WARMUP)
    return pre, ft


def table_rows(markdown: str) -> list:
    """The cells (stripped) of every Markdown table row in ``markdown``, header and separator
    rows included; column padding does not matter."""
    return [[cell.strip() for cell in line.strip().strip('|').split('|')]
            for line in markdown.splitlines() if line.strip().startswith('|')]


def has_row(markdown: str, *cells: str) -> bool:
    """Whether a table row of ``markdown`` starts with ``cells``."""
    return any(row[:len(cells)] == list(cells) for row in table_rows(markdown))
