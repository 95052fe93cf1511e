"""``--val-split FRACTION``: hold out part of a training set as the validation set, deterministically.

Why: many small datasets come as one annotated folder. The chain needs a val set for the test
stage (and the per-class AP), and a random split can leave a rare class without any val image -
its AP is then undefined - or without any train image. Here the images are shuffled with a fixed
seed; first, rarest class first, each class that has two or more images gets one val image,
then the split is filled up to the fraction in the shuffled order, never taking a class's last
training image. The two files go into the work root; the user's files stay untouched, the images
stay where they are (both splits point at the training image folder), and the same input gives
byte-identical files.
"""
import json
import os
import os.path as osp
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, List, Set, Tuple

from ..errors import ConfigInputError

__all__ = ['VAL_SPLIT_SEED', 'ValSplit', 'split_train_val']

#: Seed of the shuffle: the same annotation file and fraction always give the same split.
VAL_SPLIT_SEED = 0


@dataclass
class ValSplit:
    """The written files and what they hold."""
    train_file: str
    val_file: str
    num_train: int
    num_val: int
    classes_without_val: List[str]


def _choose_val(coco: dict, fraction: float, seed: int) -> Set:
    image_ids = [im['id'] for im in coco['images']]
    order = list(image_ids)
    random.Random(seed).shuffle(order)
    classes_of: Dict[object, Set[int]] = defaultdict(set)
    for ann in coco.get('annotations') or []:
        classes_of[ann.get('image_id')].add(ann.get('category_id'))
    images_of: Dict[int, List] = defaultdict(list)
    for image_id in order:
        for cat in classes_of[image_id]:
            images_of[cat].append(image_id)
    left = {cat: len(images) for cat, images in images_of.items()}  # training images per class
    val: Set = set()

    def move(image_id) -> bool:
        if image_id in val or any(left[c] <= 1 for c in classes_of[image_id]):
            return False
        val.add(image_id)
        for cat in classes_of[image_id]:
            left[cat] -= 1
        return True

    for cat in sorted(images_of, key=lambda c: (len(images_of[c]), str(c))):  # rarest first
        if not any(cat in classes_of[i] for i in val):
            next((True for image_id in images_of[cat] if move(image_id)), False)
    target = max(1, round(fraction * len(image_ids)))
    for image_id in order:
        if len(val) >= target:
            break
        move(image_id)
    return val


def _write(coco: dict, image_ids: Set, path: str) -> None:
    subset = {k: v for k, v in coco.items() if k not in ('images', 'annotations')}
    subset['images'] = [im for im in coco['images'] if im['id'] in image_ids]
    subset['annotations'] = [a for a in coco.get('annotations') or [] if a.get('image_id') in image_ids]
    tmp = f'{path}.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(subset, f, ensure_ascii=False)
    os.replace(tmp, path)


def split_train_val(coco: dict, ann_file: str, fraction: float, out_dir: str,
                    seed: int = VAL_SPLIT_SEED) -> ValSplit:
    """Write ``<out_dir>/train.json`` and ``<out_dir>/val.json`` from the loaded ``coco``.

    Args:
        coco (dict): The loaded training annotation file; ``ann_file`` is its path (messages).
        fraction (float): Share of the images held out, 0 < fraction < 1.
        out_dir (str): Where the two files go (created).
        seed (int): Shuffle seed. Defaults to :data:`VAL_SPLIT_SEED`.

    Raises:
        ConfigInputError: the fraction is out of range, or the file has fewer than 2 images.
    """
    if not 0 < fraction < 1:
        raise ConfigInputError(f'--val-split {fraction}: give the share of images to hold out, between 0 and 1 '
                               '(e.g. 0.1).')
    images = coco.get('images') or []
    if len(images) < 2:
        raise ConfigInputError(f'--val-split: {ann_file} has {len(images)} image(s); a split needs at least 2.')
    val = _choose_val(coco, fraction, seed)
    train = {im['id'] for im in images} - val
    os.makedirs(out_dir, exist_ok=True)
    paths: Tuple[str, str] = (osp.join(out_dir, 'train.json'), osp.join(out_dir, 'val.json'))
    _write(coco, train, paths[0])
    _write(coco, val, paths[1])
    in_val = {a.get('category_id') for a in coco.get('annotations') or [] if a.get('image_id') in val}
    missing = [c.get('name') for c in coco.get('categories') or [] if c.get('id') not in in_val]
    return ValSplit(paths[0], paths[1], len(train), len(val), missing)
