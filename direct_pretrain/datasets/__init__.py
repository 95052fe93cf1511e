from . import transforms  # noqa: F401  (registers transforms)
from .toy_coco import TOY_CLASSES, ToyCocoSpec, generate_toy_coco, toy_coco_is_complete

__all__ = ['TOY_CLASSES', 'ToyCocoSpec', 'generate_toy_coco', 'toy_coco_is_complete', 'transforms']
