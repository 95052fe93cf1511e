"""Evaluation: metrics that mmdet lacks (COCO keypoint AP)."""
from . import metrics  # noqa: F401  (registers metrics)
from .metrics import KEYPOINT_METRIC_ITEMS, CocoKeypointMetric

__all__ = ['CocoKeypointMetric', 'KEYPOINT_METRIC_ITEMS', 'metrics']
