"""Data conventions shared by models, converters and tests: keypoint heatmap encode/decode."""
from .keypoints import bilinear_upsample_kernel, heatmaps_to_keypoints, keypoints_to_heatmap_targets

__all__ = ['bilinear_upsample_kernel', 'heatmaps_to_keypoints', 'keypoints_to_heatmap_targets']
