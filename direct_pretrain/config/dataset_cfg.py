"""Find the dataset configs a loader nests inside dataset wrappers, with their dotted keys.

Why: mmdet wraps datasets (``RepeatDataset``, ``ConcatDataset``, ``ClassBalancedDataset``,
``MultiImageMixDataset``), so the keys a user has to set - ``data_root``, ``ann_file``,
``pipeline`` - sit at a different depth in every config: ``train_dataloader.dataset.dataset.data_root``
in the pretrain configs, ``train_dataloader.dataset.data_root`` in the fine-tunes. One walker
yields every leaf dataset together with the key ``--cfg-options`` accepts for it, so tools can
set values everywhere and error messages can name the exact key of *this* config.
"""
import os.path as osp
from typing import Iterator, Optional, Sequence, Tuple

from mmengine.config import Config, ConfigDict

__all__ = ['LOADERS', 'iter_leaf_datasets', 'leaf_dataset', 'repeat_factor', 'train_pipeline', 'under_data_root',
           'iter_evaluators']

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _walk(dataset, key: str) -> Iterator[Tuple[str, ConfigDict]]:
    if not isinstance(dataset, dict):
        return
    if isinstance(dataset.get('datasets'), (list, tuple)):  # ConcatDataset and friends
        for index, child in enumerate(dataset['datasets']):
            yield from _walk(child, f'{key}.datasets.{index}')
    elif isinstance(dataset.get('dataset'), dict):  # RepeatDataset, ClassBalancedDataset, ...
        yield from _walk(dataset['dataset'], f'{key}.dataset')
    else:
        yield key, dataset


def iter_leaf_datasets(cfg: Config, loaders: Sequence[str] = LOADERS) -> Iterator[Tuple[str, ConfigDict]]:
    """Yield ``(key, dataset cfg)`` for every innermost dataset of ``loaders``.

    ``key`` is the dotted path of the dataset dict, e.g.
    ``'train_dataloader.dataset.dataset'`` or ``'train_dataloader.dataset.datasets.1'``;
    ``key + '.data_root'`` is what ``--cfg-options`` takes. Loaders that are missing or None
    (validation switched off) are skipped. The yielded dicts are the config's own objects:
    setting a value on them changes ``cfg``.

    Args:
        cfg (Config): A loaded config.
        loaders (Sequence[str]): Loader keys to walk. Defaults to train, val and test.
    """
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if isinstance(loader_cfg, dict):
            yield from _walk(loader_cfg.get('dataset'), f'{loader}.dataset')


def leaf_dataset(cfg: Config, loader: str = 'train_dataloader') -> Optional[Tuple[str, ConfigDict]]:
    """The first innermost dataset of ``loader`` and its key; None when the loader has none."""
    return next(iter_leaf_datasets(cfg, (loader, )), None)


def repeat_factor(cfg: Config, key: str) -> float:
    """Product of the ``times`` of the ``RepeatDataset`` wrappers on the way to ``key``
    (a key from :func:`iter_leaf_datasets`): how often an epoch passes over that dataset."""
    node, factor = cfg, 1.0
    for part in key.split('.'):
        node = node[int(part)] if isinstance(node, (list, tuple)) else node[part]
        if isinstance(node, dict) and isinstance(node.get('dataset'), dict):
            factor *= float(node.get('times', 1))
    return factor


def under_data_root(path: str, data_root: str) -> str:
    """A dataset's ``ann_file`` (or image folder) as mmdet opens it: joined to ``data_root``
    unless absolute or there is no root."""
    return path if osp.isabs(path) or not data_root else osp.join(data_root, path)


def iter_evaluators(cfg: Config, name: str) -> Iterator[Tuple[str, ConfigDict]]:
    """Yield ``(key, metric cfg)`` for the evaluator ``name`` (``val_evaluator``,
    ``test_evaluator``): one metric dict, or each dict of a list as ``<name>.<index>`` (its
    position in the list, the key ``--cfg-options`` takes). The dicts are the config's own."""
    evaluator = cfg.get(name)
    if isinstance(evaluator, dict):
        yield name, evaluator
    elif isinstance(evaluator, (list, tuple)):
        for index, item in enumerate(evaluator):
            if isinstance(item, dict):
                yield f'{name}.{index}', item


def train_pipeline(cfg: Config) -> list:
    """The training pipeline: the innermost train dataset's, else the config's ``train_pipeline``."""
    found = leaf_dataset(cfg, 'train_dataloader')
    pipeline = found[1].get('pipeline') if found else None
    return list(pipeline or cfg.get('train_pipeline') or [])
