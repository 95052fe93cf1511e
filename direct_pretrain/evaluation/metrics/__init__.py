"""Metrics registered into mmdet's METRICS."""
from .coco_keypoint_metric import KEYPOINT_METRIC_ITEMS, CocoKeypointMetric

__all__ = ['CocoKeypointMetric', 'KEYPOINT_METRIC_ITEMS']
