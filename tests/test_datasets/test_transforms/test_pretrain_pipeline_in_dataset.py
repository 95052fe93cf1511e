"""The toy pretrain config's train pipeline inside a real mmdet CocoDataset and dataloader."""
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import direct_pretrain  # noqa: F401  (registers the transforms)
from direct_pretrain.datasets.transforms import aspect_crop_size
from mmdet.registry import DATASETS
from mmdet.structures.mask import BitmapMasks

init_default_scope('mmdet')  # as the runner does: stock transform names resolve to mmdet's
CONFIG = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', 'toy',
                  'mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py')


@pytest.fixture(scope='module')
def cfg():
    return Config.fromfile(CONFIG)


def test_config_uses_the_package_transforms_and_aspect_grouping(cfg):
    types = [t['type'] for t in cfg.train_pipeline]
    assert types == ['LoadImageReduced', 'AspectRatioCrop', 'DirectPretrainResizeCrop', 'FilterAnnotations',
                     'PackDetInputs']
    loader, crop, unit = cfg.train_pipeline[:3]
    # The loader plans its reduction for exactly the resize and aspect crop that follow.
    assert tuple(loader['scale']) == tuple(unit['scale']) == tuple(unit['crop_size']) == (192, 192)
    assert tuple(loader['ratio_range']) == tuple(unit['ratio_range']) == (0.8, 1.2)
    assert tuple(loader['aspect_range']) == tuple(crop['aspect_range']) == (0.5, 2.0)
    assert cfg.train_dataloader.batch_sampler.type == 'AspectRatioBatchSampler'
    assert cfg.train_dataloader.dataset.dataset.pipeline == cfg.train_pipeline


def test_pipeline_in_coco_dataset(cfg, tiny_coco_root):
    dataset_cfg = cfg.train_dataloader.dataset.dataset.copy()
    dataset_cfg.data_root = tiny_coco_root
    dataset = DATASETS.build(dataset_cfg)
    np.random.seed(0)
    flips, aspects = set(), set()
    for index in range(len(dataset)):
        sample = dataset[index]
        info = dataset.get_data_info(index)
        meta, gt = sample['data_samples'], sample['data_samples'].gt_instances
        assert tuple(sample['inputs'].shape) == (3, 192, 192)
        assert meta.ori_shape == (info['height'], info['width'])
        content_h, content_w = meta.img_shape  # the crop's content; the canvas is padded to 192
        assert content_h <= 192 and content_w <= 192
        sx, sy = meta.scale_factor
        assert sx == pytest.approx(sy, rel=0.02)  # keep-ratio
        # Long side of the aspect-cropped image resized to 192 x U(0.8, 1.2), relative to the file.
        long_side = max(aspect_crop_size(info['width'], info['height'], (0.5, 2.0)))
        assert int(192 * 0.8) / long_side - 0.01 <= sx <= int(192 * 1.2) / long_side + 0.01
        aspects.add(round(info['width'] / info['height'], 2))
        assert isinstance(gt.masks, BitmapMasks) and gt.masks.masks.shape[1:] == (192, 192)
        assert len(gt.masks) == len(gt.bboxes) == len(gt.labels)
        boxes = gt.bboxes.numpy() if hasattr(gt.bboxes, 'numpy') else np.asarray(gt.bboxes)
        assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2] <= content_w) and np.all(boxes[:, 3] <= content_h)
        assert np.all(boxes[:, 2:] > boxes[:, :2])
        assert set(gt.labels.tolist()) <= {0, 1, 2, 3}
        flips.add(meta.flip)
    assert flips == {True, False}
    assert min(aspects) < 0.5 or max(aspects) > 2.0  # the toy set has images to aspect-crop


def test_aspect_ratio_batches_from_the_config(cfg, tiny_coco_root):
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.dataset.dataset.data_root = tiny_coco_root
    loader_cfg.update(batch_size=2, num_workers=0, persistent_workers=False)
    dataloader = Runner.build_dataloader(loader_cfg, seed=0)
    assert type(dataloader.batch_sampler).__name__ == 'AspectRatioBatchSampler'
    batches = list(dataloader)
    assert sum(len(b['inputs']) for b in batches) == len(dataloader.dataset)
    full = [b for b in batches if len(b['inputs']) == 2]
    assert full
    # Full batches come from one orientation group (mmdet groups by width < height).
    groups = [{s.ori_shape[1] < s.ori_shape[0] for s in b['data_samples']} for b in full]
    assert sum(len(g) == 1 for g in groups) >= len(groups) - 1  # only the leftover batch may mix
