"""Metrics registered into mmdet's METRICS."""
from .coco_classwise_metric import PER_CLASS_SUFFIX, CocoClasswiseMetric, per_class_key, use_classwise_metric
from .coco_keypoint_metric import KEYPOINT_METRIC_ITEMS, CocoKeypointMetric

__all__ = ['CocoClasswiseMetric', 'CocoKeypointMetric', 'KEYPOINT_METRIC_ITEMS', 'PER_CLASS_SUFFIX', 'per_class_key',
           'use_classwise_metric']
