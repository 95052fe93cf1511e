"""``--data-root DIR``: point a config's datasets and COCO evaluators at another folder.

Why: every pretrain config wraps its dataset in ``RepeatDataset``, so the key is
``train_dataloader.dataset.dataset.data_root`` there and ``train_dataloader.dataset.data_root``
in a fine-tune; ``--cfg-options`` with the wrong depth lands on the wrapper and fails deep
inside the Runner. And ``CocoMetric.ann_file`` is a full path computed from ``data_root`` when
the config was parsed, so it keeps pointing at the old folder. This sets ``data_root`` on every
innermost dataset of the train, val and test loaders, rewrites the evaluators' ``ann_file`` that
lay under the old root, and updates the config's top-level ``data_root`` variable.
"""
import logging
import os.path as osp
from typing import Dict, List

from mmengine.config import Config

from .dataset_cfg import LOADERS, iter_evaluators, iter_leaf_datasets

__all__ = ['set_data_root']

logger = logging.getLogger(__name__)

_EVALUATORS = {'val_dataloader': 'val_evaluator', 'test_dataloader': 'test_evaluator'}


def _as_root(path: str) -> str:
    """A folder path with exactly one trailing slash, as configs write ``data_root``
    (they concatenate ``data_root + 'annotations/...'``)."""
    return path.rstrip('/') + '/'


def set_data_root(cfg: Config, data_root: str) -> List[str]:
    """Set ``data_root`` wherever ``cfg``'s datasets nest it; returns the keys changed.

    Every innermost dataset of train, val and test loaders (plain or inside
    ``RepeatDataset``, ``ConcatDataset``, ``ClassBalancedDataset``, ...) gets ``data_root``.
    An evaluator's ``ann_file`` that lies under its loader's old data root is moved to the
    same relative path under the new one; one that lies elsewhere is left alone (logged).

    Args:
        cfg (Config): The loaded config, changed in place.
        data_root (str): The dataset folder (``annotations/``, image folders inside).

    Returns:
        list[str]: Dotted keys that were set, e.g. ``train_dataloader.dataset.dataset.data_root``.
    """
    root = _as_root(data_root)
    leaves = list(iter_leaf_datasets(cfg, LOADERS))
    # Old roots first: val and test loaders (and their evaluators) are often one shared dict.
    old_roots: Dict[str, List[str]] = {}
    for key, dataset in leaves:
        old = dataset.get('data_root')
        if old:
            old_roots.setdefault(key.split('.')[0], []).append(_as_root(old))
    changed = []
    for key, dataset in leaves:
        dataset['data_root'] = root
        changed.append(f'{key}.data_root')
    for loader, evaluator_key in _EVALUATORS.items():
        for key, evaluator in iter_evaluators(cfg, evaluator_key):
            ann_file = evaluator.get('ann_file')
            if not isinstance(ann_file, str) or ann_file.startswith(root):
                continue
            old = next((o for o in old_roots.get(loader, []) if ann_file.startswith(o)), None)
            if old is None:
                logger.warning('--data-root: %s.ann_file %r does not lie under the old data_root; left as is '
                               '(set it with --cfg-options %s.ann_file=<path>)', key, ann_file, key)
                continue
            evaluator['ann_file'] = osp.join(root, ann_file[len(old):])
            changed.append(f'{key}.ann_file')
    if isinstance(cfg.get('data_root'), str):
        cfg.data_root = root
        changed.append('data_root')
    return changed
