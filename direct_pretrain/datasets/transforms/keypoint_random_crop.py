"""mmdet's ``RandomCrop`` that crops keypoints with the boxes.

Why a subclass: ``RandomCrop`` drops instances whose boxes leave the crop (with their
labels, flags and masks) and knows nothing of keypoints. Here the instances that survive are
recovered through the labels (see :mod:`.keypoint_geometry`), their keypoints are shifted by
the crop offset, and keypoints outside the crop become invisible.
"""
from mmdet.datasets.transforms import RandomCrop
from mmdet.registry import TRANSFORMS
from .keypoint_geometry import KeypointAwareMixin

__all__ = ['KeypointRandomCrop']


@TRANSFORMS.register_module()
class KeypointRandomCrop(KeypointAwareMixin, RandomCrop):
    """``RandomCrop`` (same arguments) that also crops ``gt_keypoints``.

    Required Keys: as ``RandomCrop``, plus gt_keypoints (np.float32, (N, K, 3)) (optional).

    Modified Keys: as ``RandomCrop``, plus gt_keypoints (kept instances only; ``v = 0`` outside
    the crop) and keypoints_homography.
    """
