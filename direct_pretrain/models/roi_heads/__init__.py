"""RoI heads: Keypoint R-CNN's (boxes, optional masks, keypoints) on top of mmdet's StandardRoIHead."""
from .keypoint_heads import KeypointRCNNHead, bilinear_upsample_kernel, heatmaps_to_keypoints, \
    keypoints_to_heatmap_targets
from .keypoint_roi_head import KeypointRoIHead

__all__ = ['KeypointRCNNHead', 'KeypointRoIHead', 'bilinear_upsample_kernel', 'heatmaps_to_keypoints',
           'keypoints_to_heatmap_targets']
