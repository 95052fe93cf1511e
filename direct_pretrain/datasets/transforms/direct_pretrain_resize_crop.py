"""The direct-pretrain recipe's low-resolution geometry as one transform.

Why one unit: the recipe's train pipeline (keep-ratio resize to (448, 448) with a random
ratio in 0.8-1.2, random 448x448 crop, horizontal flip 0.5, pad to 448x448) is what makes
the pretrain stage cheap, and it is easy to get subtly wrong when assembled from five
stock steps: ``Pad`` placed before ``RandomFlip`` moves the padding to the left, a second
``Resize`` after a reduced decode overwrites ``scale_factor`` with a per-step value, and
masks are rasterised at full resolution only to be shrunk. This transform does the steps
in the recipe's order on the image, boxes, polygon or bitmap masks, ignore flags and seg
maps, and keeps ``scale_factor`` relative to the original image so that evaluation maps
predictions back to original coordinates.
"""
from typing import Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import autocast_box_type
from mmdet.structures.mask import PolygonMasks
from ._common import check_annotation_frame, compose_homography, keep_instances

__all__ = ['DirectPretrainResizeCrop']


@TRANSFORMS.register_module()
class DirectPretrainResizeCrop(BaseTransform):
    """Keep-ratio random resize, random crop, horizontal flip and pad, in the recipe's order.

    1. Resize keeping the aspect ratio to ``scale`` x ratio, ratio ~ U(``ratio_range``)
       (``RandomResize(scale, ratio_range, keep_ratio=True)``). When the loader already drew
       the scale (``target_scale`` from :class:`LoadImageReduced`) that one is used. The
       output size is computed from the image's full-size extent (current size divided by
       the incoming ``scale_factor``), so a reduced decode gives the same output size as a
       full decode would.
    2. Random crop of ``crop_size`` (``RandomCrop(crop_type='absolute')``); boxes are
       clipped, boxes left without area are dropped with their labels, ignore flags and
       masks.
    3. Horizontal flip with probability ``flip_prob``, before padding so the padding stays
       at the bottom/right as in the recipe.
    4. Pad bottom/right to ``crop_size`` (``Pad(size=crop_size)``).

    ``scale_factor`` is the product of the incoming one (e.g. the decode reduction) and the
    resize step: predictions divided by it land in original-image pixels once the crop
    offset and flip (both in ``homography_matrix``) are undone. ``ori_shape`` is untouched;
    ``img_shape`` is the padded shape, as after the stock ``Pad``.

    Required Keys:

    - img (np.uint8)
    - scale_factor (tuple[float, float]) (optional, relative to the original image)
    - target_scale (tuple[int, int]) (optional, from :class:`LoadImageReduced`)
    - gt_bboxes (BaseBoxes[torch.float32]) (optional)
    - gt_bboxes_labels (np.int64) (optional)
    - gt_ignore_flags (bool) (optional)
    - gt_masks (BitmapMasks | PolygonMasks) (optional)
    - gt_seg_map (np.uint8) (optional)

    Modified Keys:

    - img
    - img_shape
    - scale_factor (tuple[float, float]): now original -> output
    - gt_bboxes
    - gt_bboxes_labels
    - gt_ignore_flags
    - gt_masks (BitmapMasks when ``poly2mask``)
    - gt_seg_map
    - homography_matrix (np.float32)

    Added Keys:

    - scale (tuple[int, int]): the (w, h) keep-ratio scale used
    - keep_ratio (bool)
    - flip (bool)
    - flip_direction (str | None)
    - pad_shape (tuple[int, int, int])
    - pad_fixed_size (tuple[int, int])
    - pad_size_divisor (None)

    Args:
        scale (Sequence[int]): (w, h) keep-ratio scale. Defaults to (448, 448).
        ratio_range (Sequence[float], optional): Random ratio range of ``scale``; None for
            a fixed scale. Defaults to (0.8, 1.2).
        crop_size (Sequence[int], optional): (w, h) crop and pad size. Defaults to
            ``scale``.
        flip_prob (float): Horizontal flip probability. Defaults to 0.5.
        pad (bool): Pad to ``crop_size``. Defaults to True.
        pad_val (float | dict): Pad value, a number or ``dict(img=..., masks=..., seg=...)``
            as for mmdet ``Pad``. Defaults to dict(img=0, masks=0, seg=255).
        interpolation (str): Image interpolation for the resize. Defaults to 'bilinear'.
        allow_negative_crop (bool): Keep a crop that contains no box. When False the
            transform returns None and the dataset draws another index. Defaults to False.
        recompute_bbox (bool): Recompute boxes from the cropped masks. Defaults to False.
        bbox_clip_border (bool): Clip boxes to the image. Defaults to True.
        poly2mask (bool): Rasterise ``PolygonMasks`` to ``BitmapMasks`` right after the
            resize, at the resized size; crop, flip and pad then work on bitmaps. Together
            with ``LoadAnnotations(poly2mask=False)`` this yields the stock pipeline's
            output (bitmap masks of the padded size) without rasterising and shrinking
            full-size bitmaps. Defaults to False.
    """

    def __init__(self,
                 scale: Sequence[int] = (448, 448),
                 ratio_range: Optional[Sequence[float]] = (0.8, 1.2),
                 crop_size: Optional[Sequence[int]] = None,
                 flip_prob: float = 0.5,
                 pad: bool = True,
                 pad_val: Union[float, dict] = dict(img=0, masks=0, seg=255),
                 interpolation: str = 'bilinear',
                 allow_negative_crop: bool = False,
                 recompute_bbox: bool = False,
                 bbox_clip_border: bool = True,
                 poly2mask: bool = False) -> None:
        name = type(self).__name__
        if len(scale) != 2 or min(scale) <= 0:
            raise ValueError(f'{name}: scale must be a positive (w, h) pair like (448, 448), got {scale}')
        if ratio_range is not None and (len(ratio_range) != 2 or not 0 < ratio_range[0] <= ratio_range[1]):
            raise ValueError(f'{name}: ratio_range must be (lo, hi) with 0 < lo <= hi, got {ratio_range}')
        crop_size = scale if crop_size is None else crop_size
        if len(crop_size) != 2 or min(crop_size) <= 0 or not all(isinstance(v, int) for v in crop_size):
            raise ValueError(f'{name}: crop_size must be a positive integer (w, h) pair, got {crop_size}')
        if not 0 <= flip_prob <= 1:
            raise ValueError(f'{name}: flip_prob must lie in [0, 1], got {flip_prob}')
        self.scale = (int(scale[0]), int(scale[1]))
        self.ratio_range = None if ratio_range is None else (float(ratio_range[0]), float(ratio_range[1]))
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.flip_prob = float(flip_prob)
        self.pad = pad
        self.pad_val = dict(pad_val) if isinstance(pad_val, dict) else dict(img=pad_val, masks=0, seg=255)
        self.interpolation = interpolation
        self.allow_negative_crop = allow_negative_crop
        self.recompute_bbox = recompute_bbox
        self.bbox_clip_border = bbox_clip_border
        self.poly2mask = poly2mask

    # ------------------------------------------------------------------ randomness
    @cache_randomness
    def _random_scale(self) -> Tuple[int, int]:
        """(w, h) scale times a ratio drawn uniformly from ``ratio_range``."""
        if self.ratio_range is None:
            return self.scale
        lo, hi = self.ratio_range
        ratio = np.random.random_sample() * (hi - lo) + lo
        return int(self.scale[0] * ratio), int(self.scale[1] * ratio)

    @cache_randomness
    def _rand_offset(self, margin_h: int, margin_w: int) -> Tuple[int, int]:
        """Crop offset (y, x), uniform over the valid positions."""
        return int(np.random.randint(0, margin_h + 1)), int(np.random.randint(0, margin_w + 1))

    @cache_randomness
    def _random_flip(self) -> bool:
        return bool(np.random.random_sample() < self.flip_prob)

    # ------------------------------------------------------------------ steps
    def _target_scale(self, results: dict) -> Tuple[int, int]:
        """The loader's pre-drawn scale when it is one this transform could draw, else a new draw."""
        target = results.get('target_scale', None)
        if target is None:
            return self._random_scale()
        lo, hi = self.ratio_range if self.ratio_range is not None else (1.0, 1.0)
        bounds = [(int(s * lo), int(s * hi)) for s in self.scale]
        if not all(low <= int(t) <= high for t, (low, high) in zip(target, bounds)):
            raise ValueError(
                f'{type(self).__name__}: target_scale {tuple(target)} from the loader lies outside '
                f'scale={self.scale} x ratio_range={self.ratio_range}. Fix: give LoadImageReduced the same '
                f'scale and ratio_range as {type(self).__name__}.')
        return int(target[0]), int(target[1])

    def _resize(self, results: dict, target: Tuple[int, int]) -> None:
        img = results['img']
        height, width = img.shape[:2]
        prev_w, prev_h = results.get('scale_factor', (1.0, 1.0))
        # Full-size extent of the current image; equals the file's size unless a reduced
        # decode or a crop happened before, so the output size matches a full-decode path.
        full_w, full_h = width / prev_w, height / prev_h
        new_w, new_h = mmcv.rescale_size((full_w, full_h), target)
        new_w, new_h = max(int(new_w), 1), max(int(new_h), 1)
        step_w, step_h = new_w / width, new_h / height
        if (new_w, new_h) != (width, height):
            img = mmcv.imresize(img, (new_w, new_h), interpolation=self.interpolation)
        results['img'] = img
        results['img_shape'] = (new_h, new_w)
        results['scale'] = target
        results['keep_ratio'] = True
        results['scale_factor'] = (prev_w * step_w, prev_h * step_h)
        compose_homography(results, np.array([[step_w, 0, 0], [0, step_h, 0], [0, 0, 1]], dtype=np.float32))
        if results.get('gt_bboxes', None) is not None:
            results['gt_bboxes'].rescale_((step_w, step_h))
            if self.bbox_clip_border:
                results['gt_bboxes'].clip_((new_h, new_w))
        masks = results.get('gt_masks', None)
        if masks is not None:
            if (masks.height, masks.width) != (new_h, new_w):
                masks = masks.resize((new_h, new_w))
            if self.poly2mask and isinstance(masks, PolygonMasks):
                # Rasterise once, at the resized size: cheaper than clipping polygons in the
                # crop, and sharper than shrinking full-size bitmaps as the stock path does.
                masks = masks.to_bitmap()
            results['gt_masks'] = masks
        if results.get('gt_seg_map', None) is not None:
            results['gt_seg_map'] = mmcv.imresize(results['gt_seg_map'], (new_w, new_h), interpolation='nearest')

    def _crop(self, results: dict) -> Optional[dict]:
        img = results['img']
        height, width = img.shape[:2]
        crop_h, crop_w = min(self.crop_size[1], height), min(self.crop_size[0], width)
        y1, x1 = self._rand_offset(height - crop_h, width - crop_w)
        y2, x2 = y1 + crop_h, x1 + crop_w
        if (crop_h, crop_w) != (height, width):
            results['img'] = img[y1:y2, x1:x2]
        results['img_shape'] = (crop_h, crop_w)
        compose_homography(results, np.array([[1, 0, -x1], [0, 1, -y1], [0, 0, 1]], dtype=np.float32))
        boxes = results.get('gt_bboxes', None)
        window = np.array([x1, y1, x2, y2], dtype=np.int64)
        whole = (crop_h, crop_w) == (height, width)  # nothing to cut: skip the mask crop
        if boxes is not None:
            boxes.translate_([-x1, -y1])
            if self.bbox_clip_border:
                boxes.clip_((crop_h, crop_w))
            keep = boxes.is_inside((crop_h, crop_w)).numpy()
            if len(keep) and not keep.any() and not self.allow_negative_crop:
                return None
            keep_instances(results, keep)
            if results.get('gt_masks', None) is not None:
                if not whole:
                    results['gt_masks'] = results['gt_masks'].crop(window)
                if self.recompute_bbox:
                    results['gt_bboxes'] = results['gt_masks'].get_bboxes(type(results['gt_bboxes']))
        elif results.get('gt_masks', None) is not None and not whole:
            results['gt_masks'] = results['gt_masks'].crop(window)
        if results.get('gt_seg_map', None) is not None:
            results['gt_seg_map'] = results['gt_seg_map'][y1:y2, x1:x2]
        return results

    def _flip(self, results: dict) -> None:
        flip = self._random_flip()
        results['flip'] = flip
        results['flip_direction'] = 'horizontal' if flip else None
        if not flip:
            return
        height, width = results['img'].shape[:2]
        results['img'] = mmcv.imflip(results['img'], direction='horizontal')
        compose_homography(results, np.array([[-1, 0, width], [0, 1, 0], [0, 0, 1]], dtype=np.float32))
        if results.get('gt_bboxes', None) is not None:
            results['gt_bboxes'].flip_((height, width), 'horizontal')
        if results.get('gt_masks', None) is not None:
            results['gt_masks'] = results['gt_masks'].flip('horizontal')
        if results.get('gt_seg_map', None) is not None:
            results['gt_seg_map'] = mmcv.imflip(results['gt_seg_map'], direction='horizontal')

    def _pad(self, results: dict) -> None:
        img = results['img']
        shape = (self.crop_size[1], self.crop_size[0])
        pad_val = self.pad_val.get('img', 0)
        if isinstance(pad_val, (int, float)) and img.ndim == 3:
            pad_val = (pad_val, ) * img.shape[2]
        if img.shape[:2] != shape:
            img = mmcv.impad(img, shape=shape, pad_val=pad_val)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['pad_shape'] = img.shape
        results['pad_fixed_size'] = self.crop_size
        results['pad_size_divisor'] = None
        if results.get('gt_masks', None) is not None:
            results['gt_masks'] = results['gt_masks'].pad(shape, pad_val=self.pad_val.get('masks', 0))
        if results.get('gt_seg_map', None) is not None:
            results['gt_seg_map'] = mmcv.impad(results['gt_seg_map'], shape=shape,
                                               pad_val=self.pad_val.get('seg', 255))

    @autocast_box_type()
    def transform(self, results: dict) -> Optional[dict]:
        """Resize, crop, flip and pad ``results``; None when the crop lost every box."""
        check_annotation_frame(results, type(self).__name__)
        self._resize(results, self._target_scale(results))
        if self._crop(results) is None:
            return None
        self._flip(results)
        if self.pad:
            self._pad(results)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale={self.scale}, ratio_range={self.ratio_range}, '
                f'crop_size={self.crop_size}, flip_prob={self.flip_prob}, pad={self.pad}, '
                f'pad_val={self.pad_val}, interpolation={self.interpolation!r}, '
                f'allow_negative_crop={self.allow_negative_crop}, recompute_bbox={self.recompute_bbox}, '
                f'bbox_clip_border={self.bbox_clip_border}, poly2mask={self.poly2mask})')
