from . import transforms  # noqa: F401  (registers transforms)
from .bad_image_log import BAD_IMAGE_LOG, TooManyBadImagesError, read_bad_images
from .coco_keypoint_dataset import COCO_PERSON_KEYPOINT_META, CocoKeypointDataset, flip_indices_from_names
from .coco_validation import CocoValidationReport, validate_coco_dataset
from .image_check import IMAGE_CHECK_MODES, ImageCheckReport, check_images
from .toy_coco import (TOY_CLASSES, TOY_KEYPOINT_META, ToyCocoSpec, ToyKeypointSpec, generate_toy_coco,
                       generate_toy_keypoints, toy_coco_is_complete, toy_keypoints_is_complete)

__all__ = ['BAD_IMAGE_LOG', 'CocoValidationReport', 'IMAGE_CHECK_MODES', 'ImageCheckReport',
           'TOY_CLASSES', 'TooManyBadImagesError', 'ToyCocoSpec', 'check_images', 'generate_toy_coco',
           'read_bad_images', 'toy_coco_is_complete', 'transforms', 'validate_coco_dataset',
           'COCO_PERSON_KEYPOINT_META', 'CocoKeypointDataset', 'flip_indices_from_names', 'TOY_KEYPOINT_META',
           'ToyKeypointSpec', 'generate_toy_keypoints', 'toy_keypoints_is_complete']
