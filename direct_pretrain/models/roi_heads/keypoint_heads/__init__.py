"""Keypoint heads for :class:`~direct_pretrain.models.roi_heads.KeypointRoIHead`."""
from .keypoint_rcnn_head import KeypointRCNNHead, bilinear_upsample_kernel, heatmaps_to_keypoints, \
    keypoints_to_heatmap_targets

__all__ = ['KeypointRCNNHead', 'bilinear_upsample_kernel', 'heatmaps_to_keypoints', 'keypoints_to_heatmap_targets']
