"""mmdet's ``PackDetInputs`` that carries keypoints into ``gt_instances.keypoints``.

Why a subclass: ``PackDetInputs`` packs a fixed table of keys. It also checks, once per
sample, that the keypoints followed every geometric step of the pipeline (see
:func:`.keypoint_geometry.check_keypoints_followed`): a stock ``Resize`` or ``RandomFlip``
in a keypoint pipeline fails loudly here instead of training on misplaced keypoints.
"""
from mmdet.datasets.transforms import PackDetInputs
from mmdet.registry import TRANSFORMS
from .keypoint_geometry import KEYPOINTS_KEY, check_keypoints_followed

__all__ = ['PackKeypointDetInputs']


@TRANSFORMS.register_module()
class PackKeypointDetInputs(PackDetInputs):
    """``PackDetInputs`` (same arguments) plus ``gt_keypoints`` -> ``gt_instances.keypoints``.

    Ignored (crowd) instances' keypoints go to ``ignored_instances.keypoints`` like their boxes.

    Required Keys: as ``PackDetInputs``, plus gt_keypoints (np.float32, (N, K, 3)) (optional).

    Added Keys: data_samples.gt_instances.keypoints (torch.float32, (N, K, 3)).
    """
    mapping_table = dict(PackDetInputs.mapping_table, **{KEYPOINTS_KEY: 'keypoints'})

    def transform(self, results: dict) -> dict:
        check_keypoints_followed(results, type(self).__name__)
        return super().transform(results)
