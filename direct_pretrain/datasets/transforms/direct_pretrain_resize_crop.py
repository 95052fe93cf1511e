"""The direct-pretrain recipe's low-resolution geometry as one transform.

Why one unit: the recipe's train pipeline (keep-ratio resize to (448, 448) with a random
ratio in 0.8-1.2, random 448x448 crop, horizontal flip 0.5, pad to 448x448) is what makes
the pretrain stage cheap, and it is easy to get subtly wrong when assembled from stock
steps: ``Pad`` placed before ``RandomFlip`` moves the padding to the left, a second
``Resize`` after a reduced decode overwrites ``scale_factor`` with a per-step value, masks
are rasterised at full resolution only to be shrunk, and mmdet 3.x's ``Pad`` sets
``img_shape`` to the padded canvas, so the RPN, the Cascade stages and the anchor
validity treat the padding as image. Only the resize is new here; crop, flip and pad are
mmdet's own ``RandomCrop``, ``RandomFlip`` and ``Pad``, composed in the recipe's order.
"""
from typing import Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmdet.datasets.transforms import Pad, RandomCrop, RandomFlip
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import autocast_box_type
from mmdet.structures.mask import PolygonMasks
from ._common import check_annotation_frame, check_scale_and_ratio, compose_homography, draw_ratio, scale_by_ratio
from .keypoint_geometry import moves_keypoints

__all__ = ['DirectPretrainResizeCrop']


@TRANSFORMS.register_module()
class DirectPretrainResizeCrop(BaseTransform):
    """Keep-ratio random resize, then mmdet's random crop, horizontal flip and pad.

    1. Resize keeping the aspect ratio to ``scale`` x ratio, ratio ~ U(``ratio_range``)
       (``RandomResize(scale, ratio_range, keep_ratio=True)``). When the loader already drew
       the scale (``target_scale`` from :class:`LoadImageReduced`) that one is used. The
       output size is computed from the image's full-size extent (current size divided by
       the incoming ``scale_factor``), so a reduced decode gives the same output size as a
       full decode would, and ``scale_factor`` stays relative to the original image.
    2. ``RandomCrop(crop_size, crop_type='absolute')``: boxes clipped, boxes left without
       area dropped with their labels, ignore flags and masks.
    3. ``RandomFlip(flip_prob, 'horizontal')``, before padding so the padding stays at the
       bottom/right as in the recipe.
    4. ``Pad(size=crop_size)``, bottom/right.

    Shapes after the transform, as in the published (mmdet 2.x) pipeline: ``img_shape`` is
    the real content, the crop's size (smaller than ``crop_size`` when the resized image
    is), and ``pad_shape`` the ``crop_size`` canvas. mmdet clips RPN proposals and Cascade's
    refined boxes to ``img_shape`` and counts anchors as inside the image by it, so nothing
    is proposed or matched inside the padding. ``scale_factor`` is the product of the
    incoming one (e.g. the decode reduction) and the resize step: predictions divided by it
    land in original-image pixels once the crop offset and flip (both in
    ``homography_matrix``) are undone. ``ori_shape`` is untouched.

    Required Keys:

    - img (np.uint8)
    - scale_factor (tuple[float, float]) (optional, relative to the original image)
    - target_scale (tuple[int, int]) (optional, from :class:`LoadImageReduced`)
    - gt_bboxes (BaseBoxes[torch.float32]) (optional)
    - gt_bboxes_labels (np.int64) (optional)
    - gt_ignore_flags (bool) (optional)
    - gt_masks (BitmapMasks | PolygonMasks) (optional)
    - gt_seg_map (np.uint8) (optional)
    - gt_keypoints (np.float32, (N, K, 3)) (optional): moved like the boxes, left/right swapped
      on the flip (``flip_indices`` from :class:`CocoKeypointDataset`), ``v = 0`` outside the crop

    Modified Keys:

    - img
    - img_shape (tuple[int, int]): the crop's size (h, w), padding excluded
    - scale_factor (tuple[float, float]): now original -> output
    - gt_bboxes
    - gt_bboxes_labels
    - gt_ignore_flags
    - gt_masks (BitmapMasks when ``poly2mask``)
    - gt_seg_map
    - gt_keypoints, keypoints_homography
    - homography_matrix (np.float32)

    Added Keys:

    - scale (tuple[int, int]): the (w, h) keep-ratio scale used
    - keep_ratio (bool)
    - flip (bool)
    - flip_direction (str | None)
    - pad_shape (tuple[int, int, int]): the padded canvas (``crop_size``)
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
        self.scale, self.ratio_range = check_scale_and_ratio(scale, ratio_range, name)
        crop_size = self.scale if crop_size is None else crop_size
        if len(crop_size) != 2 or min(crop_size) <= 0 or not all(isinstance(v, int) for v in crop_size):
            raise ValueError(f'{name}: crop_size must be a positive integer (w, h) pair, got {crop_size}')
        if not 0 <= flip_prob <= 1:
            raise ValueError(f'{name}: flip_prob must lie in [0, 1], got {flip_prob}')
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.flip_prob = float(flip_prob)
        self.pad = pad
        self.pad_val = dict(pad_val) if isinstance(pad_val, dict) else dict(img=pad_val, masks=0, seg=255)
        self.interpolation = interpolation
        self.allow_negative_crop = allow_negative_crop
        self.recompute_bbox = recompute_bbox
        self.bbox_clip_border = bbox_clip_border
        self.poly2mask = poly2mask
        self.random_crop = RandomCrop(crop_size=self.crop_size, crop_type='absolute',
                                      allow_negative_crop=allow_negative_crop, recompute_bbox=recompute_bbox,
                                      bbox_clip_border=bbox_clip_border)
        self.random_flip = RandomFlip(prob=self.flip_prob, direction='horizontal')
        self.pad_to_crop = Pad(size=self.crop_size, pad_val=self.pad_val)

    @cache_randomness
    def _random_scale(self) -> Tuple[int, int]:
        """(w, h) scale times a ratio drawn uniformly from ``ratio_range``."""
        return self.scale if self.ratio_range is None else scale_by_ratio(self.scale, draw_ratio(self.ratio_range))

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
        """Keep-ratio resize of the image's full-size extent to ``target``."""
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

    @moves_keypoints
    @autocast_box_type()
    def transform(self, results: dict) -> Optional[dict]:
        """Resize, crop, flip and pad ``results``; None when the crop lost every box."""
        check_annotation_frame(results, type(self).__name__)
        self._resize(results, self._target_scale(results))
        results = self.random_crop.transform(results)
        if results is None:
            return None
        results = self.random_flip.transform(results)
        if self.pad:
            content_shape = results['img_shape']
            results = self.pad_to_crop.transform(results)
            results['img_shape'] = content_shape  # mmdet's Pad sets the canvas; the content is the crop
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale={self.scale}, ratio_range={self.ratio_range}, '
                f'crop_size={self.crop_size}, flip_prob={self.flip_prob}, pad={self.pad}, '
                f'pad_val={self.pad_val}, interpolation={self.interpolation!r}, '
                f'allow_negative_crop={self.allow_negative_crop}, recompute_bbox={self.recompute_bbox}, '
                f'bbox_clip_border={self.bbox_clip_border}, poly2mask={self.poly2mask})')
