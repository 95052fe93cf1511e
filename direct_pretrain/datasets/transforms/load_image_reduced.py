"""Load a JPEG straight at the reduced size the following resize needs.

Why: the pretrain stage trains on ~450 px images, so decoding a 2048x1536 JPEG at full
size and then shrinking it throws most of the decode work away. libjpeg can run its
inverse DCT at 1/2, 1/4 or 1/8 scale (OpenCV ``IMREAD_REDUCED_COLOR_{2,4,8}``, Pillow
``Image.draft``); this loader picks the largest such reduction that still leaves at least
as many pixels as the resize will keep, records the factor it actually obtained, and
rescales the annotations by exactly that factor so that every later transform (and the
evaluation's ``scale_factor``) stays right.
"""
import io
import logging
import math
from typing import Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from PIL import Image, ImageOps

from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import autocast_box_type
from ..image_check import image_header_problem
from ._common import (FRAME_KEYS, BadImageError, aspect_crop_size, check_aspect_range, check_scale_and_ratio,
                      draw_ratio, scale_by_ratio)
from .bad_image_policy import BadImagePolicy
from .keypoint_geometry import move_keypoints

__all__ = ['LoadImageReduced']

logger = logging.getLogger(__name__)

_CV2_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
              8: cv2.IMREAD_REDUCED_COLOR_8}
_EXIF_ORIENTATION = 0x0112
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_JPEG_MAGIC = b'\xff\xd8\xff'


def _is_jpeg(data: bytes) -> bool:
    return data[:3] == _JPEG_MAGIC


def _jpeg_truncated(data: bytes) -> bool:
    """True when no end-of-image marker follows the last start-of-scan marker."""
    return data.rfind(b'\xff\xd9') < data.rfind(b'\xff\xda')


def _as_bgr_uint8(img: np.ndarray, path: str) -> np.ndarray:
    """Normalise a decoded array to (H, W, 3) uint8 BGR, or raise naming the file."""
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    if img.dtype != np.uint8:
        raise BadImageError(path, f'decoded to unsupported pixel type {img.dtype}')
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 1:
        raise BadImageError(path, f'decoded to an array of shape {img.shape}, not (H, W, 3)')
    return img


@TRANSFORMS.register_module()
class LoadImageReduced(BadImagePolicy, BaseTransform):
    """``LoadImageFromFile`` (+ ``LoadAnnotations``) that decodes JPEGs at 1/2, 1/4 or 1/8.

    The loader knows the keep-ratio target ``scale`` of the resize that follows. For a JPEG
    it reads the header (size and EXIF orientation), computes the resize factor the image
    will get and decodes at the largest reduction ``d`` in {2, 4, 8} with ``1/d`` at least
    that factor, so the resize never has to enlarge. Non-JPEG files, images too small to
    reduce and files whose decoded size disagrees with their header are decoded at full
    size. EXIF orientation is applied exactly as the stock ``LoadImageFromFile`` (OpenCV)
    applies it; grayscale, 16-bit and palette PNGs and CMYK JPEGs become 3-channel uint8.

    With ``ratio_range`` and ``sample_scale=True`` the loader also draws the random resize
    ratio (uniform, as ``RandomResize``) and hands the resulting ``target_scale`` to
    :class:`DirectPretrainResizeCrop`, so the reduction can follow each sample's scale
    instead of the largest one; the distribution of scales is unchanged.

    Annotations: ``LoadAnnotations`` needs ``ori_shape`` (set here) and must see the
    reduced frame, so it runs inside this transform via ``load_annotations``; boxes, masks
    and seg maps it loads are rescaled by the obtained factor. A separate
    ``LoadAnnotations`` after this loader is detected by the later transforms of this
    package and rejected with :class:`AnnotationFrameError`.

    Bad files (missing, truncated or corrupt JPEG, undecodable): with
    ``on_bad_image='raise'`` a :class:`BadImageError` naming the file; with ``'skip'`` the
    transform returns None, which makes a training ``BaseDataset`` draw another index. Skips
    are counted in :attr:`skip_counter`, shared by all dataloader workers, and logged per
    epoch by ``BadImageCountHook``. Test-mode datasets cannot skip (mmengine raises).

    Required Keys:

    - img_path (str)
    - instances (list[dict]) (optional, read by ``load_annotations``)

    Modified Keys:

    - gt_bboxes (BaseBoxes[torch.float32]) (optional, rescaled)
    - gt_masks (BitmapMasks | PolygonMasks) (optional, rescaled)
    - gt_seg_map (np.uint8) (optional, rescaled)
    - gt_keypoints (np.float32, (N, K, 3)) (optional, rescaled; with ``LoadKeypointAnnotations``)
    - homography_matrix (np.float32)

    Added Keys:

    - img (np.uint8, (H, W, 3) BGR)
    - img_shape (tuple[int, int]): decoded (reduced) size (h, w)
    - ori_shape (tuple[int, int]): full size of the oriented image (h, w)
    - scale_factor (tuple[float, float]): (w, h) decoded size / full size
    - decode_reduction (int): 1, 2, 4 or 8 as obtained
    - decode_rescaled_keys (tuple[str]): annotation keys rescaled with the image
    - target_scale (tuple[int, int]): sampled (w, h) keep-ratio scale, only with
      ``ratio_range`` and ``sample_scale=True``
    - gt_bboxes_labels (np.int64), gt_ignore_flags (bool), ... as added by
      ``load_annotations``

    Args:
        scale (tuple[int, int], optional): (w, h) keep-ratio scale of the resize that
            follows, e.g. (448, 448). None disables reduced decoding. Defaults to None.
        ratio_range (tuple[float, float], optional): Random ratio range of that resize.
            Defaults to None (fixed ``scale``).
        sample_scale (bool): Draw the ratio here and pass ``target_scale`` on. When False
            the reduction is sized for the largest ratio, safe for any resize that
            follows. Defaults to True.
        aspect_range (tuple[float, float], optional): Band of :class:`AspectRatioCrop`
            when it follows; the reduction is then sized for the cropped image.
            Defaults to None.
        max_reduction (int): Largest reduction to use, 1, 2, 4 or 8. Defaults to 8.
        backend (str): JPEG decoder, 'cv2' (``IMREAD_REDUCED_COLOR_*``) or 'pillow'
            (``Image.draft`` + ``ImageOps.exif_transpose``). Non-JPEG files are always
            decoded by OpenCV. Defaults to 'cv2'.
        load_annotations (dict, optional): Config of the annotation loader run right after
            decoding, e.g. ``dict(type='LoadAnnotations', with_bbox=True, with_mask=True,
            poly2mask=False)``. Defaults to None (no annotations).
        on_bad_image (str): 'raise' or 'skip'. Defaults to 'raise'.
        backend_args (dict, optional): mmengine file backend arguments. Defaults to None.
        max_image_pixels (int, optional): A file whose header has more pixels is bad (never
            decoded). Defaults to None (no limit).
        check_size (bool): A header size other than ``results['width']``/``['height']`` (the
            annotation file's) is a bad file. Defaults to False (the train tool turns it on for
            training pipelines).
        verify (bool): Also run Pillow's structure check on the file (what
            ``--check-images full`` checks up front). Defaults to False.
    """

    def __init__(self,
                 scale: Optional[Sequence[int]] = None,
                 ratio_range: Optional[Sequence[float]] = None,
                 sample_scale: bool = True,
                 aspect_range: Optional[Sequence[float]] = None,
                 max_reduction: int = 8,
                 backend: str = 'cv2',
                 load_annotations: Optional[dict] = None,
                 on_bad_image: str = 'raise',
                 backend_args: Optional[dict] = None,
                 max_image_pixels: Optional[int] = None,
                 check_size: bool = False,
                 verify: bool = False) -> None:
        name = type(self).__name__
        self.scale, self.ratio_range = check_scale_and_ratio(scale, ratio_range, name)
        if max_reduction not in _CV2_FLAGS:
            raise ValueError(f'{name}: max_reduction must be 1, 2, 4 or 8 (libjpeg scales), got {max_reduction}')
        if backend not in ('cv2', 'pillow'):
            raise ValueError(f"{name}: backend must be 'cv2' or 'pillow', got {backend!r}")
        self._init_bad_image_policy(on_bad_image, max_image_pixels, check_size, verify)
        self.sample_scale = sample_scale
        self.aspect_range = None if aspect_range is None else check_aspect_range(aspect_range, name)
        self.max_reduction = max_reduction
        self.backend = backend
        self.load_annotations = None if load_annotations is None else dict(load_annotations)
        self._annotation_loader = None if load_annotations is None else TRANSFORMS.build(load_annotations)
        self.backend_args = None if backend_args is None else dict(backend_args)
        self._warned_fallback = False

    # ------------------------------------------------------------------ randomness
    @cache_randomness
    def _random_ratio(self) -> float:
        """Resize ratio drawn uniformly from ``ratio_range`` (as mmcv ``RandomResize``)."""
        return draw_ratio(self.ratio_range)

    def _target_scale(self) -> Tuple[Optional[Tuple[int, int]], bool]:
        """(scale the reduction is sized for, whether it was sampled for this image)."""
        if self.scale is None:
            return None, False
        if self.ratio_range is None:
            return self.scale, False
        ratio = self._random_ratio() if self.sample_scale else self.ratio_range[1]
        return scale_by_ratio(self.scale, ratio), self.sample_scale

    # ------------------------------------------------------------------ decoding
    def _reduction_for(self, width: int, height: int, target: Optional[Tuple[int, int]]) -> int:
        """Largest allowed libjpeg reduction that keeps the resize a shrink."""
        if target is None:
            return 1
        if self.aspect_range is not None:
            width, height = aspect_crop_size(width, height, self.aspect_range)
        factor = min(max(target) / max(width, height), min(target) / min(width, height))
        reduction = 1
        for candidate in (2, 4, 8):
            if candidate <= self.max_reduction and factor <= 1.0 / candidate:
                reduction = candidate
        return reduction

    @staticmethod
    def _jpeg_header(data: bytes, path: str) -> Tuple[int, int]:
        """Full (w, h) of the image as displayed, i.e. after EXIF orientation."""
        try:
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
                try:
                    orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
                except Exception:  # malformed EXIF: decoders ignore it too; the shape check catches the rest
                    orientation = 1
        except Exception as err:  # Pillow raises several types for broken headers
            raise BadImageError(path, f'unreadable JPEG header ({err})') from err
        if orientation in _TRANSPOSING_ORIENTATIONS:
            width, height = height, width
        return width, height

    def _decode_jpeg(self, data: bytes, path: str, reduction: int) -> np.ndarray:
        """Decode at 1/``reduction`` with EXIF orientation applied; BGR or 3-channel-convertible."""
        if self.backend == 'cv2':
            img = cv2.imdecode(np.frombuffer(data, np.uint8), _CV2_FLAGS[reduction])
            if img is None:
                reason = 'truncated JPEG (no end-of-image marker)' if _jpeg_truncated(data) else 'corrupt JPEG'
                raise BadImageError(path, f'OpenCV could not decode it: {reason}')
            return img
        try:
            with Image.open(io.BytesIO(data)) as im:
                if reduction > 1:
                    stored = im.size  # before orientation
                    im.draft('RGB', (math.ceil(stored[0] / reduction), math.ceil(stored[1] / reduction)))
                im = ImageOps.exif_transpose(im)
                rgb = np.asarray(im.convert('RGB'))
        except Exception as err:
            reason = 'truncated JPEG' if _jpeg_truncated(data) else 'corrupt JPEG'
            raise BadImageError(path, f'Pillow could not decode it: {reason} ({err})') from err
        return np.ascontiguousarray(rgb[..., ::-1])

    def _decode(self, data: bytes, path: str, target: Optional[Tuple[int, int]],
                size_hint: Optional[Tuple[int, int]]) -> Tuple[np.ndarray, Tuple[int, int], int]:
        """Decode ``data``; returns (BGR image, full (h, w), reduction obtained).

        ``size_hint`` is the (w, h) the annotation file gives; when even it allows no
        reduction the header is not parsed. It only ever saves work: the decoded image,
        never the hint, decides shapes.
        """
        if not _is_jpeg(data):
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                raise BadImageError(path, 'OpenCV could not decode it (unknown format or corrupt file)')
            img = _as_bgr_uint8(img, path)
            return img, img.shape[:2], 1
        if target is None or (size_hint is not None and self._reduction_for(*size_hint, target) == 1):
            img = _as_bgr_uint8(self._decode_jpeg(data, path, 1), path)
            return img, img.shape[:2], 1
        full_w, full_h = self._jpeg_header(data, path)
        reduction = self._reduction_for(full_w, full_h, target)
        img = _as_bgr_uint8(self._decode_jpeg(data, path, reduction), path)
        expected = (math.ceil(full_h / reduction), math.ceil(full_w / reduction))
        if img.shape[:2] != expected:
            # The decoder disagrees with the header (e.g. it ignored the EXIF orientation).
            # Trust the decoder, as the stock loader does, and redo it at full size.
            if not self._warned_fallback:
                logger.warning('%s: %s decoded to %s, header says %s at 1/%d; using a full-size decode and its '
                               'shape instead (further cases are not reported)', type(self).__name__, path,
                               img.shape[:2], expected, reduction)
                self._warned_fallback = True
            if reduction > 1:
                img = _as_bgr_uint8(self._decode_jpeg(data, path, 1), path)
            return img, img.shape[:2], 1
        return img, (full_h, full_w), reduction

    def _read(self, path: str) -> bytes:
        data = self._read_bytes(path, self.backend_args)
        if not data:
            raise BadImageError(path, 'file is empty')
        if _is_jpeg(data) and _jpeg_truncated(data):  # decoders fill the missing part with grey
            raise BadImageError(path, 'truncated JPEG (no end-of-image marker after its last scan)')
        return data

    # ------------------------------------------------------------------ annotations
    @autocast_box_type()
    def _rescale_annotations(self, results: dict) -> dict:
        """Move freshly loaded full-size annotations into the decoded frame."""
        rescaled = tuple(key for key in FRAME_KEYS if results.get(key) is not None)
        # Keypoints follow the decode's scale matrix (identity at full size), as the boxes do;
        # like them they were loaded in the original frame.
        if results.get('gt_keypoints', None) is not None:
            results['keypoints_homography'] = None
            move_keypoints(results, np.diag([*results['scale_factor'], 1.0]), owner=type(self).__name__)
        if results['decode_reduction'] > 1:
            height, width = results['img_shape']
            if results.get('gt_bboxes', None) is not None:
                results['gt_bboxes'].rescale_(results['scale_factor'])
            if results.get('gt_masks', None) is not None:
                results['gt_masks'] = results['gt_masks'].resize((height, width))
            if results.get('gt_seg_map', None) is not None:
                results['gt_seg_map'] = mmcv.imresize(results['gt_seg_map'], (width, height),
                                                      interpolation='nearest')
        results['decode_rescaled_keys'] = rescaled
        return results

    # ------------------------------------------------------------------ main
    def transform(self, results: dict) -> Optional[dict]:
        """Load the image (reduced when possible) and its annotations; None on a skipped file."""
        path = results['img_path']
        target, sampled = self._target_scale()
        try:
            hint = (results['width'], results['height']) if results.get('width') and results.get('height') else None
            data = self._read(path)
            # the up-front check's header tests, before any decoding (the decoders apply EXIF orientation here)
            problem = image_header_problem(data, hint if self.check_size else None, self.max_image_pixels, self.verify)
            if problem:
                raise BadImageError(path, problem)
            img, (full_h, full_w), reduction = self._decode(data, path, target, hint)
        except BadImageError as err:
            if self.on_bad_image == 'raise':
                raise
            self._skip(err)
            return None
        height, width = img.shape[:2]
        scale_factor = (width / full_w, height / full_h)
        results['img'] = img
        results['img_shape'] = (height, width)
        results['ori_shape'] = (full_h, full_w)
        results['scale_factor'] = scale_factor
        results['decode_reduction'] = reduction
        results['decode_rescaled_keys'] = ()
        if sampled:
            results['target_scale'] = target
        homography = np.array([[scale_factor[0], 0, 0], [0, scale_factor[1], 0], [0, 0, 1]], dtype=np.float32)
        previous = results.get('homography_matrix', None)
        results['homography_matrix'] = homography if previous is None else homography @ previous
        if self._annotation_loader is None:
            return results
        # LoadAnnotations works in the full-size frame (it reads ori_shape); move it over.
        results = self._annotation_loader(results)
        return None if results is None else self._rescale_annotations(results)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale={self.scale}, ratio_range={self.ratio_range}, '
                f'sample_scale={self.sample_scale}, aspect_range={self.aspect_range}, '
                f'max_reduction={self.max_reduction}, backend={self.backend!r}, '
                f'load_annotations={self.load_annotations}, backend_args={self.backend_args}, '
                f'{self._bad_image_repr()})')
