"""RoI heads: Keypoint R-CNN's (boxes, optional masks, keypoints) on top of mmdet's StandardRoIHead."""
from .keypoint_heads import KeypointRCNNHead
from .keypoint_roi_head import KeypointRoIHead

__all__ = ['KeypointRCNNHead', 'KeypointRoIHead']
