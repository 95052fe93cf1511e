"""mmdet's ``FilterAnnotations`` that drops the keypoints of the instances it drops.

Why a subclass: ``FilterAnnotations`` filters boxes, labels, masks and ignore flags by a
fixed key list; keypoints would stay and no longer line up with the boxes.
"""
from mmdet.datasets.transforms import FilterAnnotations
from mmdet.registry import TRANSFORMS
from .keypoint_geometry import KeypointAwareMixin

__all__ = ['KeypointFilterAnnotations']


@TRANSFORMS.register_module()
class KeypointFilterAnnotations(KeypointAwareMixin, FilterAnnotations):
    """``FilterAnnotations`` (same arguments) that keeps ``gt_keypoints`` aligned.

    Required Keys: as ``FilterAnnotations``, plus gt_keypoints (np.float32, (N, K, 3)) (optional).

    Modified Keys: as ``FilterAnnotations``, plus gt_keypoints.
    """
