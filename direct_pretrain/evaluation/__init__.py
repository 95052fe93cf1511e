"""Evaluation: metrics that mmdet lacks (COCO keypoint AP) or names ambiguously (per-class AP of several tasks)."""
from . import metrics  # noqa: F401  (registers metrics)
from .metrics import KEYPOINT_METRIC_ITEMS, PER_CLASS_SUFFIX, CocoClasswiseMetric, CocoKeypointMetric, per_class_key

__all__ = ['CocoClasswiseMetric', 'CocoKeypointMetric', 'KEYPOINT_METRIC_ITEMS', 'PER_CLASS_SUFFIX', 'metrics',
           'per_class_key']
