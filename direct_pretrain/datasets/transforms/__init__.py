"""Data transforms of the low-resolution pretrain pipeline, registered into mmdet's TRANSFORMS.

``LoadImageReduced`` decodes JPEGs at 1/2, 1/4 or 1/8 when the resize allows it,
``AspectRatioCrop`` is Detectron's aspect cropping, and ``DirectPretrainResizeCrop`` is the
recipe's resize / crop / flip / pad step as one unit. See ``docs/pipeline.md``.
"""
from ._common import AnnotationFrameError, BadImageError, SkipCounter, aspect_crop_size
from .aspect_ratio_crop import AspectRatioCrop
from .direct_pretrain_resize_crop import DirectPretrainResizeCrop
from .keypoint_filter_annotations import KeypointFilterAnnotations
from .keypoint_geometry import KeypointPipelineError
from .keypoint_random_crop import KeypointRandomCrop
from .keypoint_random_flip import KeypointRandomFlip
from .keypoint_resize import KeypointResize
from .load_image_from_file_or_skip import LoadImageFromFileOrSkip
from .load_image_reduced import LoadImageReduced
from .load_keypoint_annotations import LoadKeypointAnnotations
from .pack_keypoint_det_inputs import PackKeypointDetInputs

__all__ = ['AnnotationFrameError', 'AspectRatioCrop', 'BadImageError', 'DirectPretrainResizeCrop',
           'LoadImageFromFileOrSkip', 'LoadImageReduced', 'SkipCounter', 'aspect_crop_size',
           'KeypointFilterAnnotations', 'KeypointPipelineError', 'KeypointRandomCrop', 'KeypointRandomFlip',
           'KeypointResize', 'LoadKeypointAnnotations', 'PackKeypointDetInputs']
