"""mmdet's ``RandomFlip`` that mirrors keypoints and swaps left/right.

Why a subclass: mmdet's ``RandomFlip._flip`` ignores keypoints, and mmcv's keypoint flip
moves the points but does not swap left and right, so a flipped left wrist would keep the
label "left wrist" while sitting where the right one belongs.
"""
from mmdet.datasets.transforms import RandomFlip
from mmdet.registry import TRANSFORMS
from .keypoint_geometry import KeypointAwareMixin

__all__ = ['KeypointRandomFlip']


@TRANSFORMS.register_module()
class KeypointRandomFlip(KeypointAwareMixin, RandomFlip):
    """``RandomFlip`` (same arguments) that also flips ``gt_keypoints``.

    A horizontal or vertical flip mirrors the figure, so keypoint ``k`` moves to slot
    ``flip_indices[k]`` (left <-> right); a diagonal flip (180 degree rotation) keeps the
    handedness and swaps nothing.

    Required Keys: as ``RandomFlip``, plus gt_keypoints (np.float32, (N, K, 3)) (optional) and
    flip_indices (list[int]) (from :class:`CocoKeypointDataset`).

    Modified Keys: as ``RandomFlip``, plus gt_keypoints and keypoints_homography.
    """
