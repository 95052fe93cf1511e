"""Whether a dataset's classes name the file's categories in the order mmdet labels them.

Why: mmdet's ``CocoDataset`` labels the file's categories that ``metainfo.classes`` names as
0, 1, 2, ... *in the order the file lists them* (pycocotools' ``getCatIds`` filters the
file's list by name), while ``classes[i]`` is the name label ``i`` gets in metrics, pictures
and ``dataset_meta``. A tuple typed in another order trains every box under another class's
name; a name the file does not have drops out and shifts every later label; no ``metainfo``
at all means COCO's 80 names, which on another file match nothing (``ValueError: need at
least one array to concatenate``) or, worse, a few. All silent until the results look wrong.
The rule below is exactly mmdet's mapping: the classes must be the names of the file's
categories that they select, in the file's order.
"""
from typing import Optional, Sequence

from mmdet.datasets import CocoDataset, CocoPanopticDataset, LVISV05Dataset
from mmdet.registry import DATASETS

__all__ = ['default_classes', 'class_order_problem']

# CocoDataset subclasses that map categories their own way (all of LVIS's; panoptic things + stuff).
_OWN_MAPPING = (LVISV05Dataset, CocoPanopticDataset)


def default_classes(dataset_type) -> Optional[Sequence[str]]:
    """The classes a dataset of ``dataset_type`` uses without ``metainfo.classes``, when it maps
    them to categories as ``CocoDataset`` does; None for other dataset types (not checked)."""
    try:
        cls = DATASETS.get(dataset_type) if isinstance(dataset_type, str) else dataset_type
    except KeyError:  # another scope's type that is not loaded here
        return None
    if not isinstance(cls, type) or not issubclass(cls, CocoDataset) or issubclass(cls, _OWN_MAPPING):
        return None
    return tuple(cls.METAINFO.get('classes') or ())


def _shown(names: Sequence[str], limit: int = 12) -> str:
    if len(names) <= limit:
        return repr(tuple(names))
    return repr(tuple(names[:limit]))[:-1] + f', ... ({len(names)} in all))'


def class_order_problem(key: str, ann_file: str, categories: Sequence[dict], classes: Optional[Sequence[str]],
                        defaults: Sequence[str]) -> Optional[str]:
    """The error text when a dataset's classes do not give every label its own name; None when
    they do.

    Args:
        key (str): The dataset's dotted config key (``train_dataloader.dataset.dataset``).
        ann_file (str): Its annotation file.
        categories (Sequence[dict]): The file's categories, in its order.
        classes (Sequence[str], optional): ``metainfo.classes``; None when the config sets none.
        defaults (Sequence[str]): The dataset type's own classes (used when ``classes`` is None).
    """
    names = [c.get('name') for c in categories]
    ids = [c.get('id') for c in categories]
    file_tuple = tuple(names)
    chosen = tuple(defaults if classes is None else ((classes, ) if isinstance(classes, str) else classes))
    wanted = set(chosen)
    labelled = [(name, cat_id) for name, cat_id in zip(names, ids) if name in wanted]  # mmdet's cat_ids order
    order = tuple(name for name, _ in labelled)
    if order == chosen:
        return None
    if classes is None:
        effect = ('none of them is a category of the file, so the dataset would be empty (mmdet then stops with '
                  '"need at least one array to concatenate")' if not labelled else
                  f'only {len(labelled)} of them are categories of the file, and their labels would carry other '
                  "classes' names")
        return (f'{key}.metainfo.classes is not set, so mmdet uses the {len(chosen)} default classes of the dataset '
                f'type ({_shown(chosen)}), but {ann_file} has the categories {_shown(file_tuple)}: {effect}. Fix: set '
                f'{key}.metainfo=dict(classes={file_tuple!r}) (the file\'s names in its order)')
    absent = [name for name in chosen if name not in set(names)]
    if absent:
        return (f'{key}.metainfo.classes names {absent!r}, which {ann_file} does not have (its categories: '
                f'{_shown(file_tuple)}); mmdet leaves them out and every later class moves onto another\'s label. Fix: '
                f'name only categories of the file, in its order, e.g. {key}.metainfo=dict(classes={file_tuple!r})')
    id_text = ', '.join(f'{name!r}={cat_id}' for name, cat_id in labelled)
    return (f'{key}.metainfo.classes lists the classes in another order than {ann_file} lists its categories: config '
            f'{chosen!r}, file {order!r} (category ids {id_text}); mmdet gives label i to the file\'s i-th category '
            f'of those, named classes[i], so boxes would train under other classes\' names. Fix: '
            f'{key}.metainfo=dict(classes={order!r})')
