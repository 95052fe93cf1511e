"""KeypointDetLocalVisualizer draws confident keypoints and limbs on top of mmdet's drawing."""
import numpy as np
import torch
from mmengine.structures import InstanceData

import direct_pretrain  # noqa: F401
from direct_pretrain.datasets import TOY_KEYPOINT_META
from direct_pretrain.visualization.keypoint_det_local_visualizer import KeypointDetLocalVisualizer
from mmdet.structures import DetDataSample
from mmdet.visualization import DetLocalVisualizer


def drawn(visualizer_cls, sample, **kwargs):
    vis = visualizer_cls(name=f'kp_test_{visualizer_cls.__name__}_{id(sample)}', **kwargs)
    vis.dataset_meta = dict(TOY_KEYPOINT_META)
    image = np.full((120, 320, 3), 128, np.uint8)
    vis.add_datasample('sample', image, sample, draw_gt=False, pred_score_thr=0.3)
    return vis.get_image().astype(int)


def test_confident_keypoints_are_drawn_and_weak_ones_are_not():
    points = np.zeros((1, 13, 2), np.float32)
    points[0, :, 0] = np.linspace(30, 290, 13)
    points[0, :, 1] = 60
    scores = np.full((1, 13), 5.0, np.float32)
    scores[0, 6:] = -1.0  # below kpt_score_thr: not drawn
    sample = DetDataSample()
    sample.pred_instances = InstanceData(bboxes=torch.tensor([[20.0, 20.0, 300.0, 100.0]]), scores=torch.tensor([0.9]),
                                         labels=torch.tensor([0]), keypoints=torch.from_numpy(points),
                                         keypoint_scores=torch.from_numpy(scores))
    plain = drawn(DetLocalVisualizer, sample)
    with_kps = drawn(KeypointDetLocalVisualizer, sample, kpt_score_thr=2.0, kpt_radius=3)
    changed = np.abs(with_kps - plain).sum(-1) > 30
    for k, (x, y) in enumerate(points[0]):
        patch = changed[int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3]
        assert patch.any() == (k < 6), k
    # a limb between two drawn keypoints (head 0 - left shoulder 1) leaves a trace between them
    mid = (points[0, 0] + points[0, 1]) / 2
    assert changed[int(mid[1]) - 1:int(mid[1]) + 2, int(mid[0]) - 1:int(mid[0]) + 2].any()


def test_ground_truth_visibility_decides():
    keypoints = torch.zeros(1, 13, 3)
    keypoints[0, :, 0] = torch.linspace(30, 290, 13)
    keypoints[0, :, 1] = 60
    keypoints[0, ::2, 2] = 2  # even keypoints labelled
    sample = DetDataSample()
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[20.0, 20.0, 300.0, 100.0]]), labels=torch.tensor([0]),
                                       keypoints=keypoints)
    image = np.full((120, 320, 3), 128, np.uint8)
    vis = KeypointDetLocalVisualizer(name='kp_test_gt', skeleton_width=0.1)
    vis.dataset_meta = dict(TOY_KEYPOINT_META, skeleton=())
    vis.add_datasample('gt', image, sample, draw_pred=False)
    plain = DetLocalVisualizer(name='kp_test_gt_plain')
    plain.add_datasample('gt', image, sample, draw_pred=False)
    changed = np.abs(vis.get_image().astype(int) - plain.get_image().astype(int)).sum(-1) > 30
    for k in range(13):
        x, y = keypoints[0, k, :2].int().tolist()
        assert changed[y - 2:y + 3, x - 2:x + 3].any() == (k % 2 == 0), k
