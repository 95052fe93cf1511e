"""Helpers for the transform tests: synthetic JPEGs with exact annotations, stock pipelines."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.registry import init_default_scope

from mmdet.registry import TRANSFORMS

init_default_scope('mmdet')  # stock transform names resolve to mmdet's classes

# Axis-aligned rectangles (x1, y1, x2, y2) in a 1600x1200 frame, each painted with its own
# colour, so image, box and mask of an instance can be checked against one another.
RECTS = [(100, 150, 700, 650), (800, 300, 1450, 900), (300, 800, 560, 1100), (1300, 50, 1580, 400)]
COLOURS = [(255, 40, 40), (40, 255, 40), (40, 40, 255), (255, 255, 40)]  # BGR


def textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth gradient plus mild noise: compresses like a photo, has no hard edges."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([60 + 100 * xs / width, 80 + 80 * ys / height, 120 + 0 * xs], -1)
    img += cv2.GaussianBlur(rng.normal(0, 10, (height, width, 3)).astype(np.float32), (0, 0), 2)
    return np.clip(img, 0, 255).astype(np.uint8)


def scaled_rects(width: int, height: int) -> List[Tuple[float, float, float, float]]:
    sx, sy = width / 1600, height / 1200
    return [(x1 * sx, y1 * sy, x2 * sx, y2 * sy) for x1, y1, x2, y2 in RECTS]


def painted_image(width: int = 1600, height: int = 1200, seed: int = 0) -> Tuple[np.ndarray, List]:
    """Textured image with the RECTS (scaled to the size) filled in their colours."""
    img = textured(height, width, seed)
    rects = scaled_rects(width, height)
    for (x1, y1, x2, y2), colour in zip(rects, COLOURS):
        img[int(round(y1)):int(round(y2)), int(round(x1)):int(round(x2))] = colour
    return img, rects


def instances_for(rects: Sequence[Sequence[float]], ignore: Sequence[int] = ()) -> List[dict]:
    """COCO-style data_info ``instances``: label = index, polygon = the rectangle."""
    out = []
    for index, (x1, y1, x2, y2) in enumerate(rects):
        out.append(dict(bbox=[float(x1), float(y1), float(x2), float(y2)], bbox_label=index,
                        ignore_flag=int(index in ignore), mask=[[x1, y1, x2, y1, x2, y2, x1, y2]]))
    return out


def write_jpeg(path: str, img: np.ndarray, quality: int = 92) -> str:
    ok = cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok, path
    return path


def data_info(path: str, instances: Optional[List[dict]] = None, **extra) -> dict:
    info = dict(img_path=path, img_id=0, instances=copy.deepcopy(instances or []), seg_map_path=None)
    info.update(extra)
    return info


def run(pipeline: Sequence[dict], results: dict, overrides: Optional[Dict[int, dict]] = None) -> dict:
    """Build and run ``pipeline``; ``overrides[i]`` sets attributes (e.g. fixed random
    draws) on the i-th transform before it runs; a dotted name (``random_crop._rand_offset``)
    reaches a transform it composes."""
    results = copy.deepcopy(results)
    for index, cfg in enumerate(pipeline):
        transform = TRANSFORMS.build(cfg)
        for name, value in (overrides or {}).get(index, {}).items():
            *path, attr = name.split('.')
            owner = transform
            for part in path:
                owner = getattr(owner, part)
            setattr(owner, attr, value)
        results = transform(results)
        if results is None:
            return None
    return results


def mask_bbox(mask: np.ndarray) -> Optional[Tuple[int, int, int, int]]:
    """Tight (x1, y1, x2, y2) of a binary mask, x2/y2 exclusive; None when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
