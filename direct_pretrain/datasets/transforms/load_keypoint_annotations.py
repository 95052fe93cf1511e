"""Load person keypoints together with mmdet's boxes, labels and masks.

Why: mmdet's ``LoadAnnotations`` overrides mmcv's ``transform`` and never calls its keypoint
loader, and mmcv's loader cannot shape an image without instances. This subclass loads
``gt_keypoints`` (N, K, 3) next to the boxes, in the same order and the same frame: the
annotation file's, which is the image's frame only when no geometric transform ran before
(mmdet's test pipelines load annotations after ``Resize`` on purpose, to evaluate and draw
in the original frame). The keypoint-aware transforms then keep them in step with the image.
"""
from typing import Optional

import numpy as np

from mmdet.datasets.transforms import LoadAnnotations
from mmdet.registry import TRANSFORMS
from .keypoint_geometry import KEYPOINTS_HOMOGRAPHY_KEY, KEYPOINTS_KEY, KeypointPipelineError

__all__ = ['LoadKeypointAnnotations']


@TRANSFORMS.register_module()
class LoadKeypointAnnotations(LoadAnnotations):
    """``LoadAnnotations`` plus the instances' keypoints.

    Required Keys:

    - instances (list[dict]): each with ``keypoints`` ((K, 3) ``x, y, v``) as parsed by
      :class:`CocoKeypointDataset`, besides what ``LoadAnnotations`` reads
    - flip_indices (list[int]) (optional): gives K for images without instances

    Added Keys:

    - gt_keypoints (np.float32, (N, K, 3))
    - keypoints_homography (np.float32 | None): ``homography_matrix`` at loading (None before any
      geometric transform), so that packing checks only the steps that came after
    - gt_bboxes, gt_bboxes_labels, gt_ignore_flags, gt_masks, ... as ``LoadAnnotations``

    Args:
        with_keypoints (bool): Load ``gt_keypoints``. Defaults to True.
        **kwargs: ``LoadAnnotations`` arguments (``with_bbox``, ``with_mask``, ``poly2mask``, ...).
    """

    def __init__(self, with_keypoints: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.with_keypoints = with_keypoints

    def _load_keypoints(self, results: dict) -> None:
        instances = results.get('instances', [])
        rows = []
        for index, instance in enumerate(instances):
            if 'keypoints' not in instance:
                raise KeypointPipelineError(
                    f'{type(self).__name__}: instance {index} of {results.get("img_path")!r} has no "keypoints"; '
                    'load the annotations with CocoKeypointDataset (person_keypoints_*.json)')
            rows.append(np.asarray(instance['keypoints'], dtype=np.float32).reshape(-1, 3))
        if rows:
            if len({len(r) for r in rows}) != 1:
                raise KeypointPipelineError(f'{type(self).__name__}: instances of {results.get("img_path")!r} have '
                                            f'different keypoint counts {sorted({len(r) for r in rows})}')
            keypoints = np.stack(rows)
        else:
            keypoints = np.zeros((0, len(results.get('flip_indices', ())), 3), dtype=np.float32)
        results[KEYPOINTS_KEY] = keypoints
        matrix = results.get('homography_matrix', None)
        results[KEYPOINTS_HOMOGRAPHY_KEY] = None if matrix is None else np.array(matrix, dtype=np.float32)

    def transform(self, results: dict) -> Optional[dict]:
        """Load boxes/labels/masks as ``LoadAnnotations`` does, then the keypoints."""
        results = super().transform(results)
        if self.with_keypoints:
            self._load_keypoints(results)
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', with_keypoints={self.with_keypoints})'
