"""mmdet's ``DetLocalVisualizer`` that also draws keypoints and the skeleton.

Why a subclass: ``DetLocalVisualizer`` draws boxes, labels and masks of ``gt_instances`` and
``pred_instances`` but ignores keypoints. This one draws them on top, with the limbs of the
dataset's ``skeleton`` (metainfo), the figure's left side in one colour and its right side in
another (so a left/right swap is visible at a glance), like Detectron's ``vis_keypoints``.
Selected by the keypoint configs (``visualizer = dict(type='KeypointDetLocalVisualizer')``),
so ``tools/test.py --show-dir`` and ``tools/infer.py`` drawings show keypoints.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.structures import InstanceData

from mmdet.registry import VISUALIZERS
from mmdet.visualization import DetLocalVisualizer

__all__ = ['KeypointDetLocalVisualizer']

_LEFT, _RIGHT, _CENTRE = (0, 114, 255), (255, 128, 0), (40, 220, 80)


@VISUALIZERS.register_module()
class KeypointDetLocalVisualizer(DetLocalVisualizer):
    """``DetLocalVisualizer`` plus keypoints (``instances.keypoints``) and skeleton.

    Ground-truth keypoints ((N, K, 3) ``x, y, v``) are drawn when labelled (``v > 0``);
    predicted ones ((N, K, 2) with ``keypoint_scores``) when their score exceeds
    ``kpt_score_thr`` (heatmap logits; Detectron draws above 2).

    Args:
        name (str): Instance name (mmengine's ManagerMixin). Defaults to 'visualizer'.
        kpt_score_thr (float): Score above which a predicted keypoint is drawn. Defaults to 2.0.
        kpt_radius (float): Keypoint marker radius in pixels. Defaults to 3.
        skeleton_width (float): Limb line width. Defaults to 2.
        **kwargs: ``DetLocalVisualizer`` arguments.
    """

    def __init__(self, name: str = 'visualizer', kpt_score_thr: float = 2.0, kpt_radius: float = 3,
                 skeleton_width: float = 2, **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.kpt_score_thr = kpt_score_thr
        self.kpt_radius = kpt_radius
        self.skeleton_width = skeleton_width

    def _side_colours(self, num_keypoints: int) -> List[Tuple[int, int, int]]:
        names: Sequence[str] = self.dataset_meta.get('keypoint_names', ()) or ()
        if len(names) != num_keypoints:
            return [_CENTRE] * num_keypoints
        return [_LEFT if 'left' in n else _RIGHT if 'right' in n else _CENTRE for n in names]

    def _visible(self, instances: InstanceData) -> Tuple[np.ndarray, np.ndarray]:
        points = instances.keypoints
        points = points.detach().cpu().numpy() if isinstance(points, torch.Tensor) else np.asarray(points)
        if 'keypoint_scores' in instances:
            scores = instances.keypoint_scores
            scores = scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
            return points[..., :2], scores > self.kpt_score_thr
        return points[..., :2], points[..., 2] > 0

    def _draw_instances(self, image: np.ndarray, instances: InstanceData, classes: Optional[List[str]],
                        palette: Optional[List[tuple]]) -> np.ndarray:
        """Boxes, labels and masks as ``DetLocalVisualizer``, then keypoints and limbs."""
        drawn = super()._draw_instances(image, instances, classes, palette)
        if 'keypoints' not in instances or len(instances) == 0:
            return drawn
        self.set_image(drawn)
        points, visible = self._visible(instances)
        colours = self._side_colours(points.shape[1])
        skeleton = self.dataset_meta.get('skeleton', ()) or ()
        for xy, vis in zip(points, visible):
            for a, b in skeleton:
                if vis[a] and vis[b]:
                    colour = colours[a] if colours[a] == colours[b] else _CENTRE
                    self.draw_lines(np.array([xy[a, 0], xy[b, 0]]), np.array([xy[a, 1], xy[b, 1]]), colors=colour,
                                    line_widths=self.skeleton_width)
            if vis.any():
                self.draw_circles(xy[vis], np.full(int(vis.sum()), self.kpt_radius),
                                  edge_colors=[colours[k] for k in np.flatnonzero(vis)],
                                  face_colors=[colours[k] for k in np.flatnonzero(vis)], alpha=1.0)
        return self.get_image()
