"""Small helpers shared by tools and entry points (config walking, cost analysis)."""
from .dataset_cfg import LOADERS, iter_leaf_datasets, leaf_dataset, repeat_factor, train_pipeline

__all__ = ['LOADERS', 'iter_leaf_datasets', 'leaf_dataset', 'repeat_factor', 'train_pipeline']
