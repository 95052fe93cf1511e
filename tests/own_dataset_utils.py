"""A user's own COCO-format dataset, as the tests make it: the issue's trial set by default.

Three classes with non-contiguous category ids (3, 7, 11), a name with a space and a non-ASCII
one, files under non-COCO names (``annotations/train.json``, ``images/train/``); other layouts
(COCO's, Roboflow's, flat) and a keypoint variant on request. Images are tiny real JPEGs.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

CATEGORIES = [dict(id=3, name='solder joint', supercategory='defect'),
              dict(id=7, name='scratch', supercategory='defect'),
              dict(id=11, name='fissure légère', supercategory='defect')]
KEYPOINT_NAMES = ['nose', 'left_eye', 'right_eye', 'left_foot', 'right_foot']

#: layout -> (annotation file, image folder) per split, relative to the dataset folder; the
#: file_name prefix the images get inside the image folder is ''.
LAYOUTS = {
    'annotations-dir': {'train': ('annotations/train.json', 'images/train'),
                        'val': ('annotations/val.json', 'images/val')},
    'coco': {'train': ('annotations/instances_train2017.json', 'train2017'),
             'val': ('annotations/instances_val2017.json', 'val2017')},
    'coco-keypoints': {'train': ('annotations/person_keypoints_train.json', 'train'),
                       'val': ('annotations/person_keypoints_val.json', 'val')},
    'roboflow': {'train': ('train/_annotations.coco.json', 'train'),
                 'val': ('valid/_annotations.coco.json', 'valid')},
    'flat': {'train': ('train.json', 'images'), 'val': ('val.json', 'images')},
}


def _image(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    img = (rng.random((height, width, 3)) * 60 + 100).astype(np.uint8)
    return img


def make_split(folder: str, prefix: str, per_image: Sequence[Sequence[int]], categories: Sequence[dict],
               keypoints: bool = False, size=(64, 48), seed: int = 0, file_prefix: str = '') -> dict:
    """Write one JPEG per entry of ``per_image`` into ``folder`` (named ``<prefix>_<i>.jpg``) and
    return the COCO dict: image ``i`` has one object of each category id in ``per_image[i]``."""
    rng = np.random.default_rng(seed)
    width, height = size
    os.makedirs(folder, exist_ok=True)
    images, annotations = [], []
    for index, cat_ids in enumerate(per_image):
        name = f'{prefix}_{index}.jpg'
        img = _image(rng, width, height)
        for slot, cat_id in enumerate(cat_ids):
            x, y, w, h = 4 + 19 * (slot % 3), 6 + 20 * (slot // 3), 14, 16
            cv2.rectangle(img, (x, y), (x + w, y + h), (40 * (cat_id % 5), 200, 30 * slot), -1)
            ann = dict(id=len(annotations) + 1, image_id=index + 1, category_id=cat_id, bbox=[x, y, w, h],
                       area=float(w * h), iscrowd=0, segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]])
            if keypoints:
                points = [x + w / 2, y + 2, x + 3, y + 5, x + w - 3, y + 5, x + 2, y + h - 1, x + w - 2, y + h - 1]
                ann['keypoints'] = [v for i in range(5) for v in (int(points[2 * i]), int(points[2 * i + 1]), 2)]
                ann['num_keypoints'] = 5
            annotations.append(ann)
        cv2.imwrite(osp.join(folder, name), img)
        images.append(dict(id=index + 1, file_name=file_prefix + name, width=width, height=height))
    return dict(info=dict(description='own dataset of the tests'), images=images, annotations=annotations,
                categories=[dict(c) for c in categories])


def write_own_dataset(root: str, layout: str = 'annotations-dir', num_train: int = 4, num_val: int = 2,
                      categories: Optional[List[dict]] = None, keypoints: bool = False, with_val: bool = True,
                      train_objects: Optional[Sequence[Sequence[int]]] = None, size=(64, 48)) -> Dict[str, str]:
    """Write the dataset at ``root``; returns ``{'train_ann', 'train_img', 'val_ann', 'val_img'}``
    (absolute paths; the val ones only ``with_val``). By default every image has one object of
    every category."""
    if categories is None:
        categories = [dict(c) for c in CATEGORIES]
        if keypoints:
            categories = [dict(id=5, name='person with hat', supercategory='person', keypoints=KEYPOINT_NAMES,
                               skeleton=[[1, 2], [1, 3], [4, 5]])]
    ids = [c['id'] for c in categories]
    splits = {'train': train_objects or [ids] * num_train}
    if with_val:
        splits['val'] = [ids] * num_val
    out = {}
    for split, per_image in splits.items():
        ann_rel, img_rel = LAYOUTS[layout][split]
        data = make_split(osp.join(root, img_rel), split, per_image, categories, keypoints, size,
                          seed=len(split))
        ann_file = osp.join(root, ann_rel)
        os.makedirs(osp.dirname(ann_file), exist_ok=True)
        with open(ann_file, 'w', encoding='utf-8') as f:
            json.dump(data, f, ensure_ascii=False)
        out[f'{split}_ann'], out[f'{split}_img'] = ann_file, osp.join(root, img_rel)
    return out
