"""Pieces shared by the low-resolution pipeline transforms and the skip-count hook.

Why a separate module: the loader, the aspect crop and the resize/crop unit all need the
same error types, the same scale / ratio validation and draw, the same aspect-crop
geometry and the same check that annotations and image live in one coordinate frame; keeping them here avoids import cycles between the
one-class-per-file transform modules.
"""
import math
import multiprocessing as mp
from multiprocessing import context as mp_context
from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = ['BadImageError', 'AnnotationFrameError', 'SkipCounter', 'aspect_crop_size', 'check_aspect_range',
           'check_annotation_frame', 'check_scale_and_ratio', 'compose_homography', 'draw_ratio', 'keep_instances',
           'scale_by_ratio']

# Annotation keys whose coordinates follow the image.
FRAME_KEYS = ('gt_bboxes', 'gt_masks', 'gt_seg_map', 'gt_keypoints')


class BadImageError(OSError):
    """An image file is missing, unreadable or cannot be decoded into a 3-channel image.

    The message names the file, the reason and the fix; ``path`` and ``reason`` are kept as
    attributes for callers that count or report them.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f'bad image {path!r}: {reason}. Fix: re-encode or replace the file, remove it from the '
            f"annotation file, or set on_bad_image='skip' in LoadImageReduced to skip it during training "
            f'(skips are counted and reported by BadImageCountHook).')


class AnnotationFrameError(RuntimeError):
    """Annotations are in original-image coordinates while the image was decoded smaller."""


class SkipCounter:
    """Skipped-image counts shared by all dataloader workers of one pipeline.

    Why: each worker process holds its own copy of the pipeline, so a plain attribute would
    count per process and vanish with the worker. The counts live in a ``multiprocessing``
    shared array created in the main process when the pipeline is built, i.e. before the
    workers start: forked workers inherit it and spawned workers receive it while being
    started. Any other copy (``copy.deepcopy``, pickling outside process start) gets a
    detached snapshot so that it never touches shared memory it does not own.
    """

    def __init__(self, epoch: int = 0, total: int = 0) -> None:
        self._counts = mp.Array('q', [epoch, total])  # [this epoch, since construction]

    def increment(self) -> None:
        """Count one skipped image (safe across processes)."""
        with self._counts.get_lock():
            self._counts[0] += 1
            self._counts[1] += 1

    @property
    def epoch(self) -> int:
        """Skips since the last :meth:`pop_epoch`."""
        return int(self._counts[0])

    @property
    def total(self) -> int:
        """Skips since the counter was created."""
        return int(self._counts[1])

    def pop_epoch(self) -> Tuple[int, int]:
        """Return ``(epoch, total)`` and start a new epoch count."""
        with self._counts.get_lock():
            epoch, total = int(self._counts[0]), int(self._counts[1])
            self._counts[0] = 0
        return epoch, total

    def __getstate__(self) -> dict:
        if mp_context.get_spawning_popen() is not None:  # starting a worker: share
            return {'shared': self._counts}
        return {'snapshot': (self.epoch, self.total)}

    def __setstate__(self, state: dict) -> None:
        if 'shared' in state:
            self._counts = state['shared']
        else:
            self._counts = mp.Array('q', list(state['snapshot']))

    def __repr__(self) -> str:
        return f'{type(self).__name__}(epoch={self.epoch}, total={self.total})'


def check_scale_and_ratio(scale: Optional[Sequence[int]], ratio_range: Optional[Sequence[float]],
                          owner: str) -> Tuple[Optional[Tuple[int, int]], Optional[Tuple[float, float]]]:
    """Validate a keep-ratio ``scale`` (w, h) and its random ``ratio_range``; return them as
    an int pair and a float pair (None stays None)."""
    if scale is not None and (len(scale) != 2 or min(scale) <= 0):
        raise ValueError(f'{owner}: scale must be a positive (w, h) pair like (448, 448), got {scale}')
    if ratio_range is not None and (len(ratio_range) != 2 or not 0 < ratio_range[0] <= ratio_range[1]):
        raise ValueError(f'{owner}: ratio_range must be (lo, hi) with 0 < lo <= hi, got {ratio_range}')
    return (None if scale is None else (int(scale[0]), int(scale[1])),
            None if ratio_range is None else (float(ratio_range[0]), float(ratio_range[1])))


def draw_ratio(ratio_range: Tuple[float, float]) -> float:
    """A resize ratio uniform in ``ratio_range``, drawn as mmcv's ``RandomResize`` draws it.
    Callers wrap it in their own ``@cache_randomness`` method."""
    lo, hi = ratio_range
    return float(np.random.random_sample() * (hi - lo) + lo)


def scale_by_ratio(scale: Tuple[int, int], ratio: float) -> Tuple[int, int]:
    """``scale`` x ``ratio``, truncated to integers as ``RandomResize`` does."""
    return int(scale[0] * ratio), int(scale[1] * ratio)


def check_aspect_range(aspect_range: Sequence[float], owner: str) -> Tuple[float, float]:
    """Validate ``aspect_range`` (width / height) and return it as a float pair."""
    if len(aspect_range) != 2 or not 0 < aspect_range[0] <= aspect_range[1]:
        raise ValueError(f'{owner}: aspect_range must be (lo, hi) with 0 < lo <= hi (width / height), '
                         f'got {tuple(aspect_range)}; Detectron uses (0.5, 2.0)')
    return float(aspect_range[0]), float(aspect_range[1])


def aspect_crop_size(width: int, height: int, aspect_range: Sequence[float]) -> Tuple[int, int]:
    """Size ``(w, h)`` an image of ``width`` x ``height`` has after aspect cropping.

    Only the long side is shortened, to the largest integer length that puts width / height
    inside ``aspect_range``; images already inside the band keep their size. Shared by
    :class:`AspectRatioCrop` and :class:`LoadImageReduced`, which sizes its reduced decode
    for the cropped image.
    """
    lo, hi = aspect_range
    if width < lo * height:  # too tall: shorten the height
        return width, max(1, min(height, int(math.floor(width / lo + 1e-6))))
    if width > hi * height:  # too wide: shorten the width
        return max(1, min(width, int(math.floor(height * hi + 1e-6)))), height
    return width, height


def check_annotation_frame(results: dict, owner: str) -> None:
    """Raise when annotations and image are not in the same coordinate frame.

    :class:`LoadImageReduced` rescales the annotations it loads itself (and lists them in
    ``decode_rescaled_keys``); a separate ``LoadAnnotations`` placed after it would leave
    boxes and masks in the full-size frame while the image is 2-8x smaller. Masks carry
    their size, so any mismatch with the image is caught as well.
    """
    masks = results.get('gt_masks', None)
    img = results.get('img', None)
    if masks is not None and img is not None and (masks.height, masks.width) != tuple(img.shape[:2]):
        raise AnnotationFrameError(
            f'{owner}: gt_masks of {results.get("img_path")!r} are {masks.height}x{masks.width} but the image '
            f'is {img.shape[0]}x{img.shape[1]}. Fix: load annotations with the image (inside '
            f'LoadImageReduced(load_annotations=...) or right after LoadImageFromFile) and apply every '
            f'geometric transform to both.')
    reduction = results.get('decode_reduction', 1)
    if reduction == 1:
        return
    rescaled = results.get('decode_rescaled_keys', ())
    stale = [key for key in FRAME_KEYS if results.get(key, None) is not None and key not in rescaled]
    if stale:
        raise AnnotationFrameError(
            f'{owner}: {stale} of {results.get("img_path")!r} are in original-image coordinates but '
            f'LoadImageReduced decoded the image at 1/{reduction}. Fix: load them inside the loader, '
            f"LoadImageReduced(load_annotations=dict(type='LoadAnnotations', ...)), instead of a "
            f'separate LoadAnnotations step after it.')


def compose_homography(results: dict, matrix: np.ndarray) -> None:
    """Left-multiply ``results['homography_matrix']`` by ``matrix`` (mmdet convention), so
    predictions can be mapped back through every geometric step."""
    previous = results.get('homography_matrix', None)
    results['homography_matrix'] = matrix if previous is None else matrix @ previous


def keep_instances(results: dict, keep: np.ndarray) -> None:
    """Keep only the instances where ``keep`` is True, in boxes, labels, ignore flags,
    instance ids and masks alike, so they stay aligned after a crop drops some."""
    results['gt_bboxes'] = results['gt_bboxes'][keep]
    for key in ('gt_bboxes_labels', 'gt_ignore_flags', 'gt_instances_ids'):
        if results.get(key, None) is not None:
            results[key] = results[key][keep]
    masks = results.get('gt_masks', None)
    if masks is not None and not keep.all():
        results['gt_masks'] = masks[keep.nonzero()[0]]
