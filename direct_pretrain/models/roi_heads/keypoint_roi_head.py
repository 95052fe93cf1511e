"""Keypoint R-CNN's RoI head: mmdet's box (and optional mask) branch plus a keypoint branch.

Why a subclass of ``StandardRoIHead``: the box and mask branches, their samplers and their
post-processing stay exactly mmdet's. The keypoint branch is added the way Detectron's
``roi_data/keypoint_rcnn.py`` feeds it: during training it runs on the *positive* sampled
proposals whose matched object has at least one labelled keypoint inside the proposal; at
test time on the final detections (after NMS), in the network input frame, and its
keypoints are rescaled to the original image together with the boxes.
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, SampleList
from mmdet.structures.bbox import bbox2roi, scale_boxes
from mmdet.utils import ConfigType, InstanceList, OptConfigType

__all__ = ['KeypointRoIHead']


@MODELS.register_module()
class KeypointRoIHead(StandardRoIHead):
    """``StandardRoIHead`` with a keypoint branch (Keypoint R-CNN / Mask R-CNN + keypoints).

    Training data must carry ``gt_instances.keypoints`` ((N, K, 3) ``x, y, v``), as packed by
    ``PackKeypointDetInputs``. Predictions gain ``keypoints`` (N, K, 2) and
    ``keypoint_scores`` (N, K) in ``pred_instances``.

    Args:
        keypoint_roi_extractor (dict, optional): RoI extractor of the keypoint branch
            (Detectron: RoIAlign 14x14, sampling ratio 2). Required with ``keypoint_head``.
        keypoint_head (dict, optional): e.g. ``dict(type='KeypointRCNNHead')``. Defaults to
            None (then this is a StandardRoIHead).
        **kwargs: ``StandardRoIHead`` arguments (``bbox_roi_extractor``, ``bbox_head``,
            ``mask_roi_extractor``, ``mask_head``, ``train_cfg``, ``test_cfg``, ...).
    """

    def __init__(self, keypoint_roi_extractor: OptConfigType = None, keypoint_head: OptConfigType = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if keypoint_head is not None:
            self.init_keypoint_head(keypoint_roi_extractor, keypoint_head)

    def init_keypoint_head(self, keypoint_roi_extractor: ConfigType, keypoint_head: ConfigType) -> None:
        """Build the keypoint RoI extractor and head."""
        if keypoint_roi_extractor is None:
            raise ValueError(f'{type(self).__name__}: keypoint_head needs a keypoint_roi_extractor, e.g. '
                             "dict(type='SingleRoIExtractor', roi_layer=dict(type='RoIAlign', output_size=14, "
                             'sampling_ratio=2), out_channels=256, featmap_strides=[4, 8, 16, 32])')
        self.keypoint_roi_extractor = MODELS.build(keypoint_roi_extractor)
        self.keypoint_head = MODELS.build(keypoint_head)

    @property
    def with_keypoint(self) -> bool:
        """bool: whether the RoI head has a keypoint branch."""
        return getattr(self, 'keypoint_head', None) is not None

    # ------------------------------------------------------------------ training
    def loss(self, x: Tuple[Tensor], rpn_results_list: InstanceList, batch_data_samples: List[DetDataSample]) -> dict:
        """Box (and mask) losses as ``StandardRoIHead``, plus ``loss_keypoint``."""
        assert len(rpn_results_list) == len(batch_data_samples)
        batch_gt_instances, batch_gt_instances_ignore, _ = unpack_gt_instances(batch_data_samples)
        sampling_results = []
        for i, rpn_results in enumerate(rpn_results_list):
            rpn_results.priors = rpn_results.pop('bboxes')
            assign_result = self.bbox_assigner.assign(rpn_results, batch_gt_instances[i],
                                                      batch_gt_instances_ignore[i])
            sampling_results.append(
                self.bbox_sampler.sample(assign_result, rpn_results, batch_gt_instances[i],
                                         feats=[lvl_feat[i][None] for lvl_feat in x]))
        losses = dict()
        if self.with_bbox:
            bbox_results = self.bbox_loss(x, sampling_results)
            losses.update(bbox_results['loss_bbox'])
        if self.with_mask:
            mask_results = self.mask_loss(x, sampling_results, bbox_results['bbox_feats'], batch_gt_instances)
            losses.update(mask_results['loss_mask'])
        if self.with_keypoint:
            losses.update(self.keypoint_loss(x, sampling_results, batch_gt_instances)['loss_keypoint'])
        return losses

    def _keypoint_forward(self, x: Tuple[Tensor], rois: Tensor) -> Tensor:
        feats = self.keypoint_roi_extractor(x[:self.keypoint_roi_extractor.num_inputs], rois)
        return self.keypoint_head(feats)

    def keypoint_loss(self, x: Tuple[Tensor], sampling_results: List[SamplingResult],
                      batch_gt_instances: InstanceList) -> dict:
        """Keypoint branch on positive proposals with >= 1 labelled keypoint inside them.

        Returns:
            dict: ``keypoint_preds`` (heatmaps), ``keypoint_rois`` and ``loss_keypoint``
            (``dict(loss_keypoint=...)``).
        """
        rois_list, keypoints_list = [], []
        for res, gt in zip(sampling_results, batch_gt_instances):
            if 'keypoints' not in gt:
                raise KeyError(f'{type(self).__name__}: gt_instances have no "keypoints"; load them with '
                               'LoadKeypointAnnotations and pack them with PackKeypointDetInputs')
            boxes = res.pos_priors
            keypoints = gt.keypoints[res.pos_assigned_gt_inds].to(boxes.dtype)
            x_, y_ = keypoints[..., 0], keypoints[..., 1]
            inside = ((x_ >= boxes[:, 0:1]) & (x_ <= boxes[:, 2:3]) & (y_ >= boxes[:, 1:2]) & (y_ <= boxes[:, 3:4])
                      & (keypoints[..., 2] > 0))
            keep = inside.any(dim=1)
            rois_list.append(boxes[keep])
            keypoints_list.append(keypoints[keep])
        rois = bbox2roi(rois_list)
        keypoints = torch.cat(keypoints_list)
        if rois.shape[0] == 0:
            # No usable keypoint in the batch: run the branch on one dummy RoI so that every
            # parameter still takes part in the graph (DistributedDataParallel), with zero loss.
            rois = x[0].new_tensor([[0, 0, 0, 1, 1]])
            keypoints = x[0].new_zeros(1, self.keypoint_head.num_keypoints, 3)
        heatmaps = self._keypoint_forward(x, rois)
        loss_and_target = self.keypoint_head.loss_and_target(heatmaps, rois[:, 1:], keypoints,
                                                             num_images=len(sampling_results))
        return dict(keypoint_preds=heatmaps, keypoint_rois=rois,
                    loss_keypoint=dict(loss_keypoint=loss_and_target['loss_keypoint']))

    # ------------------------------------------------------------------ inference
    def predict(self, x: Tuple[Tensor], rpn_results_list: InstanceList, batch_data_samples: SampleList,
                rescale: bool = False) -> InstanceList:
        """Boxes (NMS in the input frame), then keypoints and masks from the final boxes."""
        assert self.with_bbox, 'Bbox head must be implemented.'
        batch_img_metas = [data_samples.metainfo for data_samples in batch_data_samples]
        results_list = self.predict_bbox(x, batch_img_metas, rpn_results_list, rcnn_test_cfg=self.test_cfg,
                                         rescale=False)
        if self.with_keypoint:
            results_list = self.predict_keypoints(x, batch_img_metas, results_list, rescale=rescale)
        if self.with_mask:  # rescales the boxes in place
            results_list = self.predict_mask(x, batch_img_metas, results_list, rescale=rescale)
        elif rescale:
            for results, meta in zip(results_list, batch_img_metas):
                if len(results):
                    results.bboxes = scale_boxes(results.bboxes, [1 / s for s in meta['scale_factor']])
        return results_list

    def predict_keypoints(self, x: Tuple[Tensor], batch_img_metas: List[dict], results_list: InstanceList,
                          rescale: bool = False) -> InstanceList:
        """Add ``keypoints`` / ``keypoint_scores`` for the boxes in ``results_list`` (input frame)."""
        rois = bbox2roi([res.bboxes for res in results_list])
        if rois.shape[0] == 0:
            heatmaps = [rois.new_zeros(0, 1, 1, 1) for _ in results_list]
        else:
            heatmaps = self._keypoint_forward(x, rois).split([len(res) for res in results_list], 0)
        return self.keypoint_head.predict_by_feat(heatmaps, results_list, batch_img_metas, rescale=rescale)

    def forward(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
                batch_data_samples: Optional[SampleList] = None) -> tuple:
        """Tensor mode: ``StandardRoIHead.forward`` outputs plus the keypoint heatmaps."""
        results = super().forward(x, rpn_results_list, batch_data_samples)
        if self.with_keypoint:
            rois = bbox2roi([res.bboxes for res in rpn_results_list])[:100]
            results = results + (self._keypoint_forward(x, rois), )
        return results
