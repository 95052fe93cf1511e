"""Anchor generators registered in mmdet's TASK_UTILS."""
from .detectron_anchor_generator import DetectronAnchorGenerator

__all__ = ['DetectronAnchorGenerator']
