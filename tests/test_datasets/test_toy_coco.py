"""The embedded toy dataset: deterministic, valid COCO, loadable by mmdet."""
import json
import os.path as osp

import cv2
import numpy as np
from pycocotools.coco import COCO

from direct_pretrain.datasets import TOY_CLASSES, ToyCocoSpec, generate_toy_coco, toy_coco_is_complete

SMALL = ToyCocoSpec(num_train=6, num_val=3, min_long_side=128, max_long_side=192, seed=3)


def test_same_seed_same_dataset(tmp_path):
    generate_toy_coco(str(tmp_path / 'a'), SMALL)
    generate_toy_coco(str(tmp_path / 'b'), SMALL)
    for split in ('train', 'val'):
        a = (tmp_path / 'a' / 'annotations' / f'instances_{split}.json').read_text()
        b = (tmp_path / 'b' / 'annotations' / f'instances_{split}.json').read_text()
        assert a == b
    assert toy_coco_is_complete(str(tmp_path / 'a'))


def test_annotations_match_the_pixels(tiny_coco_root):
    coco = COCO(osp.join(tiny_coco_root, 'annotations', 'instances_train.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(TOY_CLASSES)
    aspects = set()
    for img_id in coco.getImgIds():
        info = coco.loadImgs(img_id)[0]
        img = cv2.imread(osp.join(tiny_coco_root, 'train', info['file_name']))
        assert img.shape[:2] == (info['height'], info['width'])
        aspects.add(round(info['width'] / info['height'], 2))
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img_id)):
            x, y, w, h = ann['bbox']
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= info['width'] and y + h <= info['height']
            mask = coco.annToMask(ann).astype(bool)
            ys, xs = np.nonzero(mask)
            # the box is the tight box of the polygon mask (rasterisation within 1.5 px)
            assert abs(xs.min() - x) <= 1.5 and abs(ys.min() - y) <= 1.5
            assert abs(xs.max() + 1 - (x + w)) <= 1.5 and abs(ys.max() + 1 - (y + h)) <= 1.5
            # the object was drawn with one colour: the masked pixels are nearly uniform
            inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            if inner.sum() > 20:
                assert img[inner].std(axis=0).max() < 12
    assert len(aspects) > 2  # varied aspect ratios


def test_incomplete_dataset_is_detected(tmp_path):
    generate_toy_coco(str(tmp_path), SMALL)
    with open(tmp_path / 'annotations' / 'instances_val.json') as f:
        first = json.load(f)['images'][0]['file_name']
    (tmp_path / 'val' / first).unlink()
    assert not toy_coco_is_complete(str(tmp_path))


def test_mmdet_coco_dataset_loads_it(tiny_coco_root):
    from mmdet.datasets import CocoDataset
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    ds = CocoDataset(data_root=tiny_coco_root, ann_file='annotations/instances_val.json',
                     data_prefix=dict(img='val/'), metainfo=dict(classes=TOY_CLASSES), test_mode=True,
                     pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_mask=True)])
    item = ds[0]
    assert item['img'].shape[:2] == item['ori_shape'] and len(item['gt_bboxes']) >= 1
