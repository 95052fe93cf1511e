"""Task modules (mmdet's ``models/task_modules``): prior generators."""
from .prior_generators import DetectronAnchorGenerator

__all__ = ['DetectronAnchorGenerator']
