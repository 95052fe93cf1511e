"""Embedded default dataset: a small, deterministic COCO-format instance set.

Why: the main job and the tests must run with no download. The images are JPEGs of
varied sizes and aspect ratios (a few outside Detectron's 0.5-2 aspect band, so aspect
cropping has work to do) with textured backgrounds and filled polygons of several
classes; every instance has a box and a polygon mask that match the pixels exactly.

The keypoint variant (:func:`generate_toy_keypoints`) draws articulated stick figures with
13 COCO-like keypoints (head, shoulders, elbows, wrists, hips, knees, ankles) in a
``person_keypoints_*.json`` layout. Figures are seen from the front, so a figure's left limbs
are on its image-right side: left and right are told apart by geometry alone, as for people,
and a horizontal flip must swap them.
"""
import json
import logging
import math
import os
import os.path as osp
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Sequence, Tuple

import cv2
import numpy as np

__all__ = ['TOY_CLASSES', 'ToyCocoSpec', 'generate_toy_coco', 'toy_coco_is_complete', 'TOY_KEYPOINT_META',
           'ToyKeypointSpec', 'generate_toy_keypoints', 'toy_keypoints_is_complete']

logger = logging.getLogger(__name__)

TOY_CLASSES: Tuple[str, ...] = ('circle', 'rectangle', 'triangle', 'star')
# (width, height) aspect ratios to draw from; 0.4 and 2.5 lie outside [0.5, 2].
_ASPECTS = (0.4, 0.5, 0.75, 1.0, 1.0, 1.333, 1.5, 2.0, 2.5)


@dataclass(frozen=True)
class ToyCocoSpec:
    """What to generate. The defaults are the embedded default dataset.

    Args:
        num_train (int): Training images. Defaults to 160.
        num_val (int): Validation images. Defaults to 40.
        min_long_side (int): Smallest long image side in pixels. Defaults to 320.
        max_long_side (int): Largest long image side in pixels. Defaults to 480.
        max_objects (int): Most instances per image. Defaults to 5.
        seed (int): Seed of the generator; same seed, same dataset. Defaults to 0.
    """
    num_train: int = 160
    num_val: int = 40
    min_long_side: int = 320
    max_long_side: int = 480
    max_objects: int = 5
    seed: int = 0


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth two-colour gradient plus low-contrast noise, so JPEG has texture."""
    c0, c1 = rng.uniform(40, 215, size=(2, 3))
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xs * math.cos(angle) + ys * math.sin(angle))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    img = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    noise = cv2.GaussianBlur(rng.normal(0, 12, size=(height, width, 3)).astype(np.float32), (0, 0), 2.0)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def _polygon(rng: np.random.Generator, cls: str, cx: float, cy: float, radius: float) -> np.ndarray:
    """Vertices (N, 2) of one instance of class ``cls`` centred at (cx, cy)."""
    rot = rng.uniform(0, 2 * math.pi)
    if cls == 'circle':
        angles = np.linspace(0, 2 * math.pi, 24, endpoint=False)
        radii = np.full_like(angles, radius)
    elif cls == 'rectangle':
        half = rng.uniform(0.35, 0.65) * math.pi / 2
        angles = np.array([half, math.pi - half, math.pi + half, 2 * math.pi - half])
        radii = np.full(4, radius)
    elif cls == 'triangle':
        angles = np.array([0, 2 * math.pi / 3, 4 * math.pi / 3]) + rng.uniform(-0.2, 0.2, 3)
        radii = np.full(3, radius)
    elif cls == 'star':
        angles = np.linspace(0, 2 * math.pi, 10, endpoint=False)
        radii = np.where(np.arange(10) % 2 == 0, radius, radius * 0.45)
    else:
        raise ValueError(f'unknown toy class {cls!r}; expected one of {TOY_CLASSES}')
    angles = angles + rot
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)


def _boxes_overlap(box: Sequence[float], others: List[Sequence[float]], margin: float = 2) -> bool:
    x1, y1, x2, y2 = box
    return any(x1 < o[2] + margin and o[0] < x2 + margin and y1 < o[3] + margin and o[1] < y2 + margin
               for o in others)


def _make_image(rng: np.random.Generator, spec: ToyCocoSpec) -> Tuple[np.ndarray, List[Tuple[int, np.ndarray]]]:
    long_side = int(rng.integers(spec.min_long_side, spec.max_long_side + 1))
    aspect = float(rng.choice(_ASPECTS))  # width / height
    if aspect >= 1:
        width, height = long_side, max(32, int(round(long_side / aspect)))
    else:
        width, height = max(32, int(round(long_side * aspect))), long_side
    img = _background(rng, height, width)
    instances: List[Tuple[int, np.ndarray]] = []
    boxes: List[Sequence[float]] = []
    target = int(rng.integers(1, spec.max_objects + 1))
    short = min(width, height)
    for _ in range(target * 10):
        if len(instances) == target:
            break
        label = int(rng.integers(len(TOY_CLASSES)))
        radius = rng.uniform(0.08, 0.3) * short
        cx, cy = rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)
        poly = _polygon(rng, TOY_CLASSES[label], cx, cy, radius)
        poly[:, 0] = np.clip(poly[:, 0], 0, width - 1)
        poly[:, 1] = np.clip(poly[:, 1], 0, height - 1)
        box = (poly[:, 0].min(), poly[:, 1].min(), poly[:, 0].max(), poly[:, 1].max())
        if _boxes_overlap(box, boxes):
            continue
        colour = rng.uniform(0, 255, size=3)
        # Keep the object visible against the local background.
        local = img[int(box[1]):int(box[3]) + 1, int(box[0]):int(box[2]) + 1].reshape(-1, 3).mean(0)
        if np.abs(colour - local).sum() < 150:
            colour = 255 - local
        cv2.fillPoly(img, [np.round(poly).astype(np.int32)], [float(c) for c in colour])
        instances.append((label, np.round(poly, 1)))
        boxes.append(box)
    return img, instances


def _annotation(ann_id: int, image_id: int, label: int, poly: np.ndarray) -> Dict:
    x1, y1 = float(poly[:, 0].min()), float(poly[:, 1].min())
    x2, y2 = float(poly[:, 0].max()), float(poly[:, 1].max())
    xs, ys = poly[:, 0], poly[:, 1]
    area = 0.5 * abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))
    return dict(id=ann_id, image_id=image_id, category_id=label + 1, iscrowd=0,
                bbox=[round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                area=round(area, 2), segmentation=[[round(float(v), 1) for v in poly.reshape(-1)]])


def _is_complete(root: str, ann_name: str) -> bool:
    """True when ``root`` holds both splits' ``annotations/<ann_name>_<split>.json`` and every
    image they name."""
    for split in ('train', 'val'):
        ann_file = osp.join(root, 'annotations', f'{ann_name}_{split}.json')
        try:
            with open(ann_file) as f:
                images = json.load(f)['images']
        except (OSError, ValueError, KeyError):
            return False
        if not all(osp.isfile(osp.join(root, split, im['file_name'])) for im in images):
            return False
    return True


def _write_toy_set(root: str, counts: Sequence[Tuple[str, int]], ann_name: str, categories: List[Dict],
                   make_image: Callable[[], Tuple[np.ndarray, list]], annotate: Callable[[int, int, Any], Dict],
                   what: str) -> Dict[str, str]:
    """Write images and ``annotations/<ann_name>_<split>.json`` per split.

    Files are written to temporary names and renamed, so an interrupted run never
    leaves a half-written annotation file that looks complete.
    """
    ann_files = {}
    ann_id = 1
    for split, count in counts:
        os.makedirs(osp.join(root, split), exist_ok=True)
        os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
        images, annotations = [], []
        for index in range(count):
            img, instances = make_image()
            image_id = index + 1
            file_name = f'{split}_{index:05d}.jpg'
            path = osp.join(root, split, file_name)
            ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, 92])
            if not ok:
                raise RuntimeError(f'OpenCV could not encode {path}')
            with open(path + '.tmp', 'wb') as f:
                f.write(buf.tobytes())
            os.replace(path + '.tmp', path)
            images.append(dict(id=image_id, file_name=file_name, height=img.shape[0], width=img.shape[1]))
            for instance in instances:
                annotations.append(annotate(ann_id, image_id, instance))
                ann_id += 1
        ann_file = osp.join(root, 'annotations', f'{ann_name}_{split}.json')
        with open(ann_file + '.tmp', 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
        os.replace(ann_file + '.tmp', ann_file)
        ann_files[split] = ann_file
        logger.info('toy %s %s: %d images, %d instances -> %s', what, split, len(images), len(annotations), ann_file)
    return ann_files


def toy_coco_is_complete(root: str) -> bool:
    """True when ``root`` holds both splits' annotation files and every image they name."""
    return _is_complete(root, 'instances')


def generate_toy_coco(root: str, spec: ToyCocoSpec = ToyCocoSpec()) -> Dict[str, str]:
    """Write the toy set under ``root`` (``train/``, ``val/``, ``annotations/``), atomically per file.

    Returns:
        dict: split name -> annotation file path.
    """
    rng = np.random.default_rng(spec.seed)
    categories = [dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(TOY_CLASSES)]
    return _write_toy_set(root, (('train', spec.num_train), ('val', spec.num_val)), 'instances', categories,
                          lambda: _make_image(rng, spec), lambda ann_id, image_id, inst: _annotation(
                              ann_id, image_id, *inst), 'COCO')


# ----------------------------------------------------------------------------------------------
# Keypoint variant: articulated stick figures
# ----------------------------------------------------------------------------------------------
_KP_NAMES = ('head', 'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
             'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle')
#: Metainfo of the toy keypoint set (0-based skeleton), as ``CocoKeypointDataset`` expects it.
TOY_KEYPOINT_META = dict(
    classes=('figure', ),
    palette=[(220, 20, 60)],
    keypoint_names=_KP_NAMES,
    skeleton=((0, 1), (0, 2), (1, 2), (1, 3), (3, 5), (2, 4), (4, 6), (1, 7), (2, 8), (7, 8), (7, 9), (9, 11),
              (8, 10), (10, 12)),
    flip_indices=(0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11),
    # COCO's sigmas of the matching body parts (nose for the head).
    keypoint_sigmas=(.026, .079, .079, .072, .072, .062, .062, .107, .107, .087, .087, .089, .089))


@dataclass(frozen=True)
class ToyKeypointSpec:
    """What to generate for the keypoint variant. The defaults are the embedded keypoint set.

    Args:
        num_train (int): Training images. Defaults to 64.
        num_val (int): Validation images. Defaults to 16.
        min_long_side (int): Smallest long image side in pixels. Defaults to 128.
        max_long_side (int): Largest long image side in pixels. Defaults to 192.
        max_figures (int): Most figures per image. Defaults to 2.
        seed (int): Seed of the generator; same seed, same dataset. Defaults to 0.
    """
    num_train: int = 64
    num_val: int = 16
    min_long_side: int = 128
    max_long_side: int = 192
    max_figures: int = 2
    seed: int = 0


def _rot(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _figure_points(rng: np.random.Generator) -> np.ndarray:
    """13 keypoints of one figure in its own frame: height 1, pelvis at the origin, y down.

    The figure faces the viewer: its left side is +x. Limbs bend outwards only, so each
    wrist, knee and ankle stays on its own side and left/right is decidable from the pose.
    """
    def limb(start, angle_from_down, length, side):
        # side +1 = figure's left (+x); angles open outwards from straight down.
        return start + length * np.array([side * math.sin(angle_from_down), math.cos(angle_from_down)])

    pts = np.zeros((13, 2))
    pts[0] = (rng.uniform(-0.02, 0.02), -0.43)  # head centre
    for side, (sh, el, wr, hip, kn, an) in ((1, (1, 3, 5, 7, 9, 11)), (-1, (2, 4, 6, 8, 10, 12))):
        pts[sh] = (side * 0.12, -0.30)
        pts[hip] = (side * 0.08, 0.0)
        upper = math.radians(rng.uniform(15, 160))
        lower = float(np.clip(upper + math.radians(rng.uniform(-70, 70)), math.radians(5), math.radians(175)))
        pts[el] = limb(pts[sh], upper, 0.16, side)
        pts[wr] = limb(pts[el], lower, 0.15, side)
        thigh = math.radians(rng.uniform(0, 35))
        shin = float(np.clip(thigh + math.radians(rng.uniform(-15, 30)), math.radians(-5), math.radians(45)))
        pts[kn] = limb(pts[hip], thigh, 0.25, side)
        pts[an] = limb(pts[kn], shin, 0.25, side)
    return pts


def _draw_figure(img: np.ndarray, pts: np.ndarray, height: float, colour: Sequence[float]) -> np.ndarray:
    """Draw limbs, torso and head; returns the figure's binary mask (drawn pixels)."""
    mask = np.zeros(img.shape[:2], np.uint8)
    thick = max(2, int(round(0.045 * height)))
    p = np.round(pts).astype(np.int32)
    for a, b in ((1, 3), (3, 5), (2, 4), (4, 6), (7, 9), (9, 11), (8, 10), (10, 12)):
        cv2.line(mask, tuple(map(int, p[a])), tuple(map(int, p[b])), 1, thick, cv2.LINE_AA)
    cv2.fillPoly(mask, [p[[1, 2, 8, 7]]], 1)
    cv2.line(mask, tuple(map(int, (p[1] + p[2]) // 2)), tuple(map(int, p[0])), 1, thick, cv2.LINE_AA)
    cv2.circle(mask, tuple(map(int, p[0])), max(3, int(round(0.07 * height))), 1, -1, cv2.LINE_AA)
    img[mask > 0] = np.asarray(colour, dtype=np.float64).round().astype(np.uint8)
    return mask > 0


def _make_keypoint_image(rng: np.random.Generator, spec: ToyKeypointSpec) -> Tuple[np.ndarray, List[Dict]]:
    long_side = int(rng.integers(spec.min_long_side, spec.max_long_side + 1))
    aspect = float(rng.choice((0.75, 1.0, 1.333, 1.5)))  # width / height
    if aspect >= 1:
        width, height = long_side, int(round(long_side / aspect))
    else:
        width, height = int(round(long_side * aspect)), long_side
    img = _background(rng, height, width)
    figures: List[Dict] = []
    boxes: List[Sequence[float]] = []
    target = int(rng.integers(1, spec.max_figures + 1))
    for _ in range(target * 10):
        if len(figures) == target:
            break
        fig_h = rng.uniform(0.45, 0.9) * height
        pts = _figure_points(rng) @ _rot(rng.uniform(-0.4, 0.4)).T * fig_h
        lo, hi = pts.min(0) - 0.08 * fig_h, pts.max(0) + 0.08 * fig_h
        if np.any(hi - lo > (width - 2, height - 2)):
            continue
        offset = rng.uniform(-lo, np.array([width - 1, height - 1]) - hi)
        pts = pts + offset
        box = (*(lo + offset), *(hi + offset))
        if _boxes_overlap(box, boxes):
            continue
        local = img[int(box[1]):int(box[3]) + 1, int(box[0]):int(box[2]) + 1].reshape(-1, 3).mean(0)
        colour = rng.uniform(0, 255, size=3)
        if np.abs(colour - local).sum() < 200:
            colour = 255 - local
        mask = _draw_figure(img, pts, fig_h, colour)
        figures.append(dict(points=pts, mask=mask))
        boxes.append(box)
    return img, figures


def _keypoint_annotation(ann_id: int, image_id: int, points: np.ndarray, mask: np.ndarray) -> Dict:
    ys, xs = np.nonzero(mask)
    x1, y1, x2, y2 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    h, w = mask.shape
    index = np.round(points).astype(np.int64)  # pixel indices, as COCO annotates
    inside = (index[:, 0] >= 0) & (index[:, 0] < w) & (index[:, 1] >= 0) & (index[:, 1] < h)
    keypoints = []
    for (x, y), ok in zip(index, inside):
        keypoints += [int(x), int(y), 2] if ok else [0, 0, 0]
    # OKS scales keypoint errors by sqrt(area). A person's silhouette fills about half its box;
    # the thin figure's own pixel count would make the toy OKS far stricter than COCO's.
    return dict(id=ann_id, image_id=image_id, category_id=1, iscrowd=0, bbox=[x1, y1, x2 - x1, y2 - y1],
                area=0.5 * (x2 - x1) * (y2 - y1), keypoints=keypoints, num_keypoints=int(inside.sum()))


def toy_keypoints_is_complete(root: str) -> bool:
    """True when ``root`` holds both splits' keypoint annotation files and every image they name."""
    return _is_complete(root, 'person_keypoints')


def generate_toy_keypoints(root: str, spec: ToyKeypointSpec = ToyKeypointSpec()) -> Dict[str, str]:
    """Write the toy keypoint set under ``root`` (``train/``, ``val/``,
    ``annotations/person_keypoints_{train,val}.json``), atomically per file.

    Returns:
        dict: split name -> annotation file path.
    """
    rng = np.random.default_rng(spec.seed)
    meta = TOY_KEYPOINT_META
    categories = [dict(id=1, name=meta['classes'][0], supercategory='figure', keypoints=list(meta['keypoint_names']),
                       skeleton=[[a + 1, b + 1] for a, b in meta['skeleton']])]
    return _write_toy_set(root, (('train', spec.num_train), ('val', spec.num_val)), 'person_keypoints', categories,
                          lambda: _make_keypoint_image(rng, spec), lambda ann_id, image_id, figure: _keypoint_annotation(
                              ann_id, image_id, figure['points'], figure['mask']), 'keypoints')
