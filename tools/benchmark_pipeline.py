"""Images/s of the direct-pretrain data pipeline vs the stock MMDetection transforms.

Both pipelines turn a COCO-style JPEG + polygon annotations into the same packed sample:
a 3x448x448 image (keep-ratio resize to 448 x U(0.8, 1.2), random 448x448 crop, flip 0.5,
pad to 448x448), boxes, labels and 448x448 bitmap masks (``--no-masks``: boxes only).

- stock: LoadImageFromFile, LoadAnnotations, RandomResize, RandomCrop, RandomFlip, Pad,
  PackDetInputs
- direct: LoadImageReduced (reduced JPEG decode, annotations loaded inside),
  DirectPretrainResizeCrop (polygons rasterised after the resize), PackDetInputs
- direct, full decode: the same with ``max_reduction=1``, to separate the gain of the
  reduced decode from that of the mask handling

One worker is emulated by an in-process loop over an mmdet ``CocoDataset`` with OpenCV
and torch limited to one thread. Time is the process's CPU time (what one worker spends,
not its wait for a shared CPU); each image is seeded identically in every round and its
cost is the best of the rounds, which keeps the figures stable on a busy machine. JPEG
sets are generated in a temporary directory: (a) 640x480 (COCO-like) and (b) 2048x1536,
with textured content of photo-like bytes per pixel and 1-12 polygon instances per image.

Example:
    python tools/benchmark_pipeline.py --num-images 40 --rounds 3
"""
import argparse
import json
import math
import os
import os.path as osp
import tempfile
import time
from typing import Dict, List, Tuple

import cv2
import numpy as np
import torch
from mmengine.registry import init_default_scope

from mmdet.datasets import CocoDataset
from mmdet.structures.mask import BitmapMasks
import direct_pretrain  # noqa: F401  (registers the transforms)

CLASSES = ('blob', 'box', 'star')


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Gradient, scene-scaled noise and pixel-level grain: about the JPEG entropy of a photo
    (q90: ~0.5 bytes/pixel at 640x480, ~0.3 at 2048x1536)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    c0, c1 = rng.uniform(40, 215, size=(2, 3)).astype(np.float32)
    t = (xs / width * 0.7 + ys / height * 0.3)[..., None]
    img = c0 * (1 - t) + c1 * t
    for sigma, amplitude in ((0.5, 16.0), (1.5, 16.0), (4.0, 16.0), (12.0, 24.0), (0.7 * 640 / width, 4.0)):
        noise = rng.normal(0, 1, size=(height, width, 3)).astype(np.float32)
        noise = cv2.GaussianBlur(noise, (0, 0), sigma * width / 640)
        img += noise / max(float(noise.std()), 1e-6) * amplitude
    return img


def make_jpeg_set(root: str, size: Tuple[int, int], num_images: int, seed: int, quality: int = 90) -> str:
    """Write ``num_images`` JPEGs of ``size`` (w, h) and a COCO annotation file; return its path."""
    width, height = size
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        img = _texture(rng, height, width)
        for _ in range(int(rng.integers(1, 13))):
            radius = rng.uniform(0.04, 0.25) * min(width, height)
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            count = int(rng.integers(3, 12))
            angles = np.sort(rng.uniform(0, 2 * math.pi, count))
            radii = radius * rng.uniform(0.5, 1.0, count)
            poly = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
            poly[:, 0] = np.clip(poly[:, 0], 0, width - 1)
            poly[:, 1] = np.clip(poly[:, 1], 0, height - 1)
            x1, y1 = poly.min(0)
            x2, y2 = poly.max(0)
            if x2 - x1 < 4 or y2 - y1 < 4:
                continue
            layer = np.zeros((height, width), np.uint8)
            cv2.fillPoly(layer, [np.round(poly).astype(np.int32)], 1)
            img[layer > 0] = img[layer > 0] * 0.4 + rng.uniform(0, 255, 3).astype(np.float32) * 0.6
            annotations.append(dict(
                id=len(annotations) + 1, image_id=index + 1, category_id=int(rng.integers(1, 4)), iscrowd=0,
                bbox=[float(x1), float(y1), float(x2 - x1), float(y2 - y1)], area=float((x2 - x1) * (y2 - y1)),
                segmentation=[np.round(poly, 1).reshape(-1).tolist()]))
        name = f'{index:05d}.jpg'
        cv2.imwrite(osp.join(root, 'images', name), np.clip(img, 0, 255).astype(np.uint8),
                    [cv2.IMWRITE_JPEG_QUALITY, quality])
        images.append(dict(id=index + 1, file_name=name, width=width, height=height))
    ann_file = osp.join(root, 'annotations.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=[dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]), f)
    return ann_file


def pipelines(scale: Tuple[int, int], ratio_range: Tuple[float, float],
              with_mask: bool = True) -> Dict[str, List[dict]]:
    """The three pipelines compared, all producing the same packed sample."""
    direct = [
        dict(type='LoadImageReduced', scale=scale, ratio_range=ratio_range,
             load_annotations=dict(type='LoadAnnotations', with_bbox=True, with_mask=with_mask, poly2mask=False)),
        dict(type='DirectPretrainResizeCrop', scale=scale, ratio_range=ratio_range, crop_size=scale, flip_prob=0.5,
             recompute_bbox=with_mask, allow_negative_crop=True, poly2mask=True),
        dict(type='PackDetInputs'),
    ]
    direct_full = [dict(direct[0], max_reduction=1)] + direct[1:]
    stock = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=with_mask),
        dict(type='RandomResize', scale=scale, ratio_range=ratio_range, keep_ratio=True),
        dict(type='RandomCrop', crop_size=scale, crop_type='absolute', recompute_bbox=with_mask,
             allow_negative_crop=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='Pad', size=scale),
        dict(type='PackDetInputs'),
    ]
    return {'stock': stock, 'direct': direct, 'direct, full decode': direct_full}


def check_sample(name: str, sample: dict, scale: Tuple[int, int], with_mask: bool) -> None:
    """Fail loudly if a pipeline does not produce the common output format."""
    inputs, data = sample['inputs'], sample['data_samples']
    ok = tuple(inputs.shape) == (3, scale[1], scale[0]) and inputs.dtype == torch.uint8
    masks = data.gt_instances.get('masks', None)
    if with_mask:
        ok = ok and isinstance(masks, BitmapMasks) and masks.masks.shape[1:] == (scale[1], scale[0]) \
            and len(masks) == len(data.gt_instances.bboxes)
    else:
        ok = ok and masks is None
    if not ok:
        raise RuntimeError(f'{name}: unexpected output {tuple(inputs.shape)} {type(masks).__name__}')


def benchmark(root: str, ann_file: str, scale, ratio_range, rounds: int, label: str,
              with_mask: bool = True) -> Dict[str, float]:
    """Images/s (CPU time) per pipeline, robust to load from other processes.

    Each image is processed with the same random seed in every round, so a pipeline does
    identical work for it each time; the image's cost is the best of ``rounds`` timings and
    the pipeline's speed is the number of images over the sum of those costs. Within a
    round every image goes through all pipelines back to back in a rotating order.
    """
    datasets = {}
    for name, pipeline in pipelines(scale, ratio_range, with_mask).items():
        dataset = CocoDataset(data_root=root, ann_file=ann_file, data_prefix=dict(img='images/'),
                              metainfo=dict(classes=CLASSES), filter_cfg=None, pipeline=pipeline)
        check_sample(name, dataset[0], scale, with_mask)
        for index in range(min(3, len(dataset))):  # warm-up
            dataset[index]
        datasets[name] = dataset
    names = list(datasets)
    num = len(datasets[names[0]])
    best = {name: np.full(num, np.inf) for name in names}
    for _ in range(rounds):
        for index in range(num):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                np.random.seed(index)
                start = time.process_time()
                datasets[name][index]
                best[name][index] = min(best[name][index], time.process_time() - start)
    result = {name: num / float(best[name].sum()) for name in names}
    print(f'\n{label}')
    for name, value in result.items():
        print(f'  {name:<22s} {value:7.1f} images/s   ({1000 / value:.2f} ms/image)')
    print(f'  ratio direct / stock      {result["direct"] / result["stock"]:.2f}x')
    print(f'  ratio full decode / stock {result["direct, full decode"] / result["stock"]:.2f}x')
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-images', type=int, default=40, help='images per set')
    parser.add_argument('--rounds', type=int, default=3, help='timed passes per image and pipeline (best one counts)')
    parser.add_argument('--scale', type=int, default=448, help='square pretrain scale / crop size')
    parser.add_argument('--quality', type=int, default=90, help='JPEG quality of the generated sets')
    parser.add_argument('--work-dir', default=None, help='where to generate the sets (default: a temp dir)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--no-masks', action='store_true',
                        help='boxes only (Faster R-CNN / RetinaNet pretraining) instead of boxes + masks')
    args = parser.parse_args()

    cv2.setNumThreads(0)  # one dataloader worker: no OpenCV / torch thread pools
    torch.set_num_threads(1)
    np.random.seed(args.seed)
    init_default_scope('mmdet')
    scale, ratio_range = (args.scale, args.scale), (0.8, 1.2)
    with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
        results = {}
        for tag, size in (('a', (640, 480)), ('b', (2048, 1536))):
            root = osp.join(tmp, f'{size[0]}x{size[1]}')
            ann_file = make_jpeg_set(root, size, args.num_images, seed=args.seed + ord(tag), quality=args.quality)
            files = [osp.join(root, 'images', f) for f in os.listdir(osp.join(root, 'images'))]
            bpp = sum(osp.getsize(f) for f in files) / len(files) / (size[0] * size[1])
            label = (f'({tag}) {size[0]}x{size[1]} JPEG q{args.quality}, {args.num_images} images, '
                     f'{bpp:.2f} bytes/pixel, scale {scale} x {ratio_range}, '
                     f'{"boxes only" if args.no_masks else "boxes + masks"}')
            results[tag] = benchmark(root, ann_file, scale, ratio_range, args.rounds, label, not args.no_masks)
    print('\nsummary: direct / stock = (a) 640x480 {:.2f}x (target >= 1.0x), (b) 2048x1536 {:.2f}x '
          '(target >= 3.0x)'.format(results['a']['direct'] / results['a']['stock'],
                                     results['b']['direct'] / results['b']['stock']))


if __name__ == '__main__':
    main()
