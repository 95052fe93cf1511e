"""COCO keypoint AP next to mmdet's box (and mask) AP.

Why a subclass of mmdet's ``CocoMetric`` (through :class:`CocoClasswiseMetric`): boxes and masks
keep mmdet's evaluation unchanged (keys ``coco/bbox_mAP``, ...); keypoints are evaluated the way
the COCO keypoint challenge does, with pycocotools ``COCOeval(iouType='keypoints')`` (OKS-based AP, at most 20
detections per image), using the dataset's own per-keypoint OKS sigmas (``keypoint_sigmas``
in the metainfo) instead of pycocotools' built-in 17 COCO sigmas, so that other keypoint
sets (the toy figures) are scored correctly. Keys: ``coco/keypoints_mAP``,
``coco/keypoints_mAP_50``, ``_75``, ``_m``, ``_l``, ``coco/keypoints_AR``, ``_50``, ``_75``,
``_m``, ``_l``; with ``classwise=True`` also each class's keypoint AP,
``coco/keypoints_<class>_precision``, next to the task-named per-class box / mask AP of
:class:`CocoClasswiseMetric` (COCO's own keypoint set has one class, but a dataset may
annotate keypoints on several categories, each evaluated with the same sigmas).

Predicted keypoints are in mmdet's continuous pixel frame; 0.5 is subtracted to return to
COCO's pixel-index convention (see :class:`CocoKeypointDataset`). A detection's keypoint
score is its box score (Detectron's ``KEYPOINT_CONFIDENCE: bbox``).
"""
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.fileio import dump
from mmengine.logging import MMLogger

from mmdet.datasets.api_wrappers import COCOeval
from mmdet.registry import METRICS
from .coco_classwise_metric import CocoClasswiseMetric, per_class_key

__all__ = ['CocoKeypointMetric', 'KEYPOINT_METRIC_ITEMS']

#: ``COCOeval.stats`` of iouType 'keypoints', in order.
KEYPOINT_METRIC_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_m', 'mAP_l', 'AR', 'AR_50', 'AR_75', 'AR_m', 'AR_l')


@METRICS.register_module()
class CocoKeypointMetric(CocoClasswiseMetric):
    """``CocoMetric`` with ``'keypoints'`` among the metrics.

    Args:
        metric (str | list[str]): Any of ``'bbox'``, ``'segm'``, ``'proposal'``,
            ``'proposal_fast'`` (mmdet's) and ``'keypoints'``. Defaults to ['bbox', 'keypoints'].
        keypoint_sigmas (Sequence[float], optional): Per-keypoint OKS sigmas. Defaults to None
            (the dataset metainfo's ``keypoint_sigmas``).
        classwise (bool): Per-class AP of every task (box, mask, keypoints). Defaults to False.
        **kwargs: ``CocoMetric`` arguments (``ann_file`` - a ``person_keypoints_*.json`` -
            ``format_only``, ``outfile_prefix``, ...).
    """

    def __init__(self,
                 metric: Union[str, List[str]] = ('bbox', 'keypoints'),
                 keypoint_sigmas: Optional[Sequence[float]] = None,
                 classwise: bool = False,
                 **kwargs) -> None:
        metrics = [metric] if isinstance(metric, str) else list(metric)
        self.with_keypoints = 'keypoints' in metrics
        super().__init__(metric=[m for m in metrics if m != 'keypoints'], classwise=classwise, **kwargs)
        if self.with_keypoints and self._coco_api is None:
            raise ValueError("CocoKeypointMetric: 'keypoints' needs ann_file (a person_keypoints_*.json): the "
                             'ground truth keypoints and their areas are read from it')
        self.keypoint_sigmas = None if keypoint_sigmas is None else np.asarray(keypoint_sigmas, dtype=np.float64)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """mmdet's processing, plus the predicted keypoints of every detection."""
        start = len(self.results)
        super().process(data_batch, data_samples)
        if not self.with_keypoints:
            return
        for (_, result), data_sample in zip(self.results[start:], data_samples):
            pred = data_sample['pred_instances']
            if 'keypoints' not in pred:
                raise KeyError('CocoKeypointMetric: predictions carry no "keypoints"; the model needs a keypoint '
                               "branch (roi_head=dict(type='KeypointRoIHead', keypoint_head=...))")
            result['keypoints'] = pred['keypoints'].cpu().numpy()
            result['keypoint_scores'] = pred['keypoint_scores'].cpu().numpy()

    def keypoints2json(self, results: Sequence[dict], outfile: str) -> str:
        """Write keypoint detections in COCO result format; returns the file name."""
        detections = []
        for idx, result in enumerate(results):
            image_id = result.get('img_id', idx)
            for label, score, points, point_scores in zip(result['labels'], result['scores'], result['keypoints'],
                                                          result['keypoint_scores']):
                values = np.concatenate([points - 0.5, point_scores[:, None]], axis=1)
                detections.append(dict(image_id=image_id, category_id=self.cat_ids[label], score=float(score),
                                       keypoints=[float(v) for v in values.reshape(-1)]))
        dump(detections, outfile)
        return outfile

    def _sigmas(self) -> np.ndarray:
        sigmas = self.keypoint_sigmas
        if sigmas is None:
            sigmas = (self.dataset_meta or {}).get('keypoint_sigmas', None)
        if sigmas is None:
            raise KeyError('CocoKeypointMetric: no OKS sigmas: pass keypoint_sigmas=[...] or evaluate a dataset '
                           'whose metainfo has keypoint_sigmas (CocoKeypointDataset)')
        return np.asarray(sigmas, dtype=np.float64)

    def evaluate_keypoints(self, results_file: str, logger: MMLogger) -> Dict[str, float]:
        """OKS AP/AR of the detections in ``results_file`` against the annotation file."""
        from mmengine.fileio import load
        detections = load(results_file)
        keys = [f'keypoints_{item}' for item in KEYPOINT_METRIC_ITEMS]
        if not detections:
            logger.warning('CocoKeypointMetric: no detections at all; keypoint AP/AR reported as 0')
            return OrderedDict((key, 0.0) for key in keys)
        coco_dt = self._coco_api.loadRes(detections)
        coco_eval = COCOeval(self._coco_api, coco_dt, 'keypoints')
        sigmas = self._sigmas()
        num_keypoints = len(detections[0]['keypoints']) // 3
        if len(sigmas) != num_keypoints:
            raise ValueError(f'CocoKeypointMetric: {len(sigmas)} OKS sigmas for {num_keypoints} predicted keypoints')
        coco_eval.params.kpt_oks_sigmas = sigmas
        coco_eval.params.catIds = self.cat_ids
        coco_eval.params.imgIds = self.img_ids
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
        eval_results = OrderedDict((key, float(f'{round(coco_eval.stats[i], 3)}')) for i, key in enumerate(keys))
        if self.classwise:
            eval_results.update(self._per_class_keypoint_ap(coco_eval))
        logger.info('keypoints_mAP_copypaste: ' + ' '.join(f'{v:.3f}' for v in coco_eval.stats[:5]))
        return eval_results

    def _per_class_keypoint_ap(self, coco_eval: COCOeval) -> Dict[str, float]:
        """Each class's OKS AP (OKS 0.5:0.95, all areas, 20 detections), as mmdet computes the box one;
        NaN for a class without ground truth."""
        precisions = coco_eval.eval['precision']  # (iou, recall, class, area, max dets)
        per_class = OrderedDict()
        for index, cat_id in enumerate(self.cat_ids):
            precision = precisions[:, :, index, 0, -1]
            precision = precision[precision > -1]
            ap = float(np.mean(precision)) if precision.size else float('nan')
            per_class[per_class_key('keypoints', self._coco_api.loadCats(cat_id)[0]['name'])] = round(ap, 3)
        return per_class

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """mmdet's box/mask metrics, then keypoint AP/AR."""
        logger: MMLogger = MMLogger.get_current_instance()
        eval_results = super().compute_metrics(results)  # also initialises the COCO api, cat and image ids
        if not self.with_keypoints:
            return eval_results
        preds = [pred for _, pred in results]
        with tempfile.TemporaryDirectory() as tmp_dir:
            prefix = self.outfile_prefix or osp.join(tmp_dir, 'results')
            results_file = self.keypoints2json(preds, f'{prefix}.keypoints.json')
            if self.format_only:
                logger.info(f'keypoint results are saved in {results_file}')
                return eval_results
            logger.info('Evaluating keypoints...')
            eval_results.update(self.evaluate_keypoints(results_file, logger))
        return eval_results
