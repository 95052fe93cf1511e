"""Detectron's aspect cropping: bring extreme aspect ratios back into a band.

Why: with aspect-ratio grouped batches (``AspectRatioBatchSampler``), one very tall or very
wide image forces its whole batch to be padded to an extreme shape, wasting memory and
compute. Detectron (``TRAIN.ASPECT_CROPPING`` with ``ASPECT_LO=0.5``, ``ASPECT_HI=2``) crops
such images to the nearest ratio inside the band, placing the window over the boxes so
that as few instances as possible are lost.
"""
import math
from typing import Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import autocast_box_type
from ._common import aspect_crop_size, check_annotation_frame, check_aspect_range, compose_homography, keep_instances
from .keypoint_geometry import moves_keypoints

__all__ = ['AspectRatioCrop']


@TRANSFORMS.register_module()
class AspectRatioCrop(BaseTransform):
    """Crop images whose aspect ratio (width / height) lies outside ``aspect_range``.

    The long side is cut down to the nearest ratio inside the band. Along that side the
    window is placed as Detectron does: if the extent of the (non-ignored) boxes fits, a
    random window that contains all of it; otherwise a window centred on that extent. Boxes
    are translated and clipped, boxes with no area left inside the window are dropped with
    their labels, ignore flags, masks and keypoints; keypoints outside the window become
    invisible. Images inside the band pass through untouched.

    Place it after the image is loaded and before the resize
    (e.g. :class:`DirectPretrainResizeCrop`); give :class:`LoadImageReduced` the same
    ``aspect_range`` so its reduced decode is sized for the cropped image.

    Required Keys:

    - img (np.uint8)
    - gt_bboxes (BaseBoxes[torch.float32]) (optional)
    - gt_bboxes_labels (np.int64) (optional)
    - gt_ignore_flags (bool) (optional)
    - gt_masks (BitmapMasks | PolygonMasks) (optional)
    - gt_seg_map (np.uint8) (optional)
    - gt_keypoints (np.float32, (N, K, 3)) (optional)

    Modified Keys:

    - img
    - img_shape
    - gt_bboxes
    - gt_bboxes_labels
    - gt_ignore_flags
    - gt_masks
    - gt_seg_map
    - gt_keypoints, keypoints_homography
    - homography_matrix (np.float32)

    Added Keys:

    - aspect_crop_bbox (np.ndarray[int64], (4,)): the window ``x1, y1, x2, y2`` in the
      coordinates of the incoming image; only added when the image was cropped.

    Args:
        aspect_range (Sequence[float]): ``(ASPECT_LO, ASPECT_HI)`` band of width / height.
            Defaults to (0.5, 2.0).
        allow_negative_crop (bool): Keep an image whose every box was cropped away. When
            False the transform returns None and the dataset draws another index.
            Defaults to False.
    """

    def __init__(self, aspect_range: Sequence[float] = (0.5, 2.0), allow_negative_crop: bool = False) -> None:
        self.aspect_range = check_aspect_range(aspect_range, type(self).__name__)
        self.allow_negative_crop = allow_negative_crop

    @cache_randomness
    def _rand_offset(self, low: int, high: int) -> int:
        """Uniform integer window start in ``[low, high]``."""
        return int(np.random.randint(low, high + 1))

    def _window_start(self, length: int, size: int, span: Optional[Tuple[float, float]]) -> int:
        """Start of a ``size`` window on a side of ``length`` pixels, Detectron style."""
        last = length - size
        if span is None:  # no boxes to protect
            return self._rand_offset(0, last)
        first_box, last_box = span
        extent = last_box - first_box
        if extent <= size:
            low = max(int(math.ceil(last_box - size)), 0)
            high = min(int(math.floor(first_box)), last)
            if low <= high:
                return self._rand_offset(low, high)
            return min(max(int(round((first_box + last_box - size) / 2)), 0), last)
        # The boxes do not fit: centre the window on them.
        return min(max(int(first_box + (extent - size) / 2), 0), last)

    @moves_keypoints
    @autocast_box_type()
    def transform(self, results: dict) -> Optional[dict]:
        """Crop ``results`` into the aspect band; None when every box was cropped away."""
        check_annotation_frame(results, type(self).__name__)
        img = results['img']
        height, width = img.shape[:2]
        crop_w, crop_h = aspect_crop_size(width, height, self.aspect_range)
        if (crop_w, crop_h) == (width, height):
            return results

        boxes = results.get('gt_bboxes', None)
        span = None
        axis = 0 if crop_w < width else 1  # 0: crop along x, 1: along y
        if boxes is not None and len(boxes) > 0:
            coords = boxes.tensor.numpy()
            ignore = results.get('gt_ignore_flags', None)
            if ignore is not None and not np.all(ignore):
                coords = coords[~ignore]
            span = (float(coords[:, axis].min()), float(coords[:, axis + 2].max()))
        if axis == 0:
            x1, y1 = self._window_start(width, crop_w, span), 0
        else:
            x1, y1 = 0, self._window_start(height, crop_h, span)
        x2, y2 = x1 + crop_w, y1 + crop_h

        results['img'] = img[y1:y2, x1:x2]
        results['img_shape'] = (crop_h, crop_w)
        window = np.array([x1, y1, x2, y2], dtype=np.int64)
        results['aspect_crop_bbox'] = window
        compose_homography(results, np.array([[1, 0, -x1], [0, 1, -y1], [0, 0, 1]], dtype=np.float32))

        if boxes is not None:
            had_boxes = len(boxes) > 0
            boxes.translate_([-x1, -y1])
            boxes.clip_((crop_h, crop_w))
            keep = ((boxes.widths > 0) & (boxes.heights > 0)).numpy()  # some area left in the window
            if had_boxes and not keep.any() and not self.allow_negative_crop:
                return None
            keep_instances(results, keep)
        if results.get('gt_masks', None) is not None:
            results['gt_masks'] = results['gt_masks'].crop(window)
        if results.get('gt_seg_map', None) is not None:
            results['gt_seg_map'] = results['gt_seg_map'][y1:y2, x1:x2]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(aspect_range={self.aspect_range}, '
                f'allow_negative_crop={self.allow_negative_crop})')
