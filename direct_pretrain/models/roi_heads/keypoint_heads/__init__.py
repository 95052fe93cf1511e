"""Keypoint heads for :class:`~direct_pretrain.models.roi_heads.KeypointRoIHead`."""
from .keypoint_rcnn_head import KeypointRCNNHead

__all__ = ['KeypointRCNNHead']
