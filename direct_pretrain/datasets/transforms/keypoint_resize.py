"""mmdet's ``Resize`` that scales the keypoints with the boxes.

Why a subclass: mmdet's ``Resize.transform`` does not call mmcv's keypoint resize, so stock
``Resize`` leaves keypoints in the old frame. Multi-scale training uses it through
``RandomChoiceResize(..., resize_type='KeypointResize')`` or
``RandomResize(..., resize_type='KeypointResize')``.
"""
from mmdet.datasets.transforms import Resize
from mmdet.registry import TRANSFORMS
from .keypoint_geometry import KeypointAwareMixin

__all__ = ['KeypointResize']


@TRANSFORMS.register_module()
class KeypointResize(KeypointAwareMixin, Resize):
    """``Resize`` (same arguments) that also scales ``gt_keypoints`` by ``scale_factor``.

    Required Keys: as ``Resize``, plus gt_keypoints (np.float32, (N, K, 3)) (optional).

    Modified Keys: as ``Resize``, plus gt_keypoints and keypoints_homography.
    """
