from . import transforms  # noqa: F401  (registers transforms)
from .coco_validation import CocoValidationReport, DatasetValidationError, validate_coco_dataset
from .toy_coco import TOY_CLASSES, ToyCocoSpec, generate_toy_coco, toy_coco_is_complete

__all__ = ['CocoValidationReport', 'DatasetValidationError', 'TOY_CLASSES', 'ToyCocoSpec', 'generate_toy_coco',
           'toy_coco_is_complete', 'transforms', 'validate_coco_dataset']
