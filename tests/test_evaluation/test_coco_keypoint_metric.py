"""CocoKeypointMetric equals pycocotools run directly on the same detections."""
import json

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import direct_pretrain  # noqa: F401
from direct_pretrain.evaluation import CocoKeypointMetric
from mmdet.structures import DetDataSample

K = 5
SIGMAS = [0.05, 0.08, 0.08, 0.1, 0.1]


def ground_truth(path):
    rng = np.random.default_rng(0)
    images, anns = [], []
    for image_id in (1, 2):
        images.append(dict(id=image_id, file_name=f'{image_id}.jpg', width=200, height=160))
        for j in range(2 if image_id == 1 else 1):
            x, y = 20 + 90 * j, 30
            kps = np.stack([rng.integers(x, x + 60, K), rng.integers(y, y + 100, K), np.full(K, 2)], 1)
            kps[3, 2] = 1
            anns.append(dict(id=len(anns) + 1, image_id=image_id, category_id=1, iscrowd=0, bbox=[x, y, 60, 100],
                             area=4500.0, keypoints=kps.reshape(-1).tolist(), num_keypoints=K))
    data = dict(images=images, annotations=anns,
                categories=[dict(id=1, name='figure', keypoints=[f'k{i}' for i in range(K)], skeleton=[])])
    with open(path, 'w') as f:
        json.dump(data, f)
    return data


def predictions(data):
    """Per image: the GT figures found with growing keypoint error, plus one false positive.
    Keypoints are in the continuous frame (COCO pixel index + 0.5)."""
    rng = np.random.default_rng(1)
    samples, coco_dets = [], []
    for image in data['images']:
        boxes, scores, points, point_scores = [], [], [], []
        for n, ann in enumerate(a for a in data['annotations'] if a['image_id'] == image['id']):
            x, y, w, h = ann['bbox']
            kps = np.array(ann['keypoints'], float).reshape(-1, 3)[:, :2] + rng.normal(0, 2 + 4 * n, (K, 2))
            boxes.append([x + 2, y - 1, x + w - 1, y + h + 3])
            scores.append(0.9 - 0.2 * n)
            points.append(kps + 0.5)
            point_scores.append(rng.uniform(0, 5, K))
        boxes.append([150, 100, 190, 150])
        scores.append(0.4)
        points.append(rng.uniform(150, 190, (K, 2)))
        point_scores.append(rng.uniform(0, 5, K))
        pred = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32), scores=torch.tensor(scores),
                            labels=torch.zeros(len(boxes), dtype=torch.long),
                            keypoints=torch.tensor(np.array(points), dtype=torch.float32),
                            keypoint_scores=torch.tensor(np.array(point_scores), dtype=torch.float32))
        sample = DetDataSample(metainfo=dict(img_id=image['id'], ori_shape=(160, 200)))
        sample.pred_instances = pred
        samples.append(sample.to_dict())
        for box, score, pts, ps in zip(boxes, scores, points, point_scores):
            coco_dets.append(dict(image_id=image['id'], category_id=1, score=float(score),
                                  bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]],
                                  keypoints=np.concatenate([np.float32(pts) - 0.5, np.float32(ps)[:, None]],
                                                           1).reshape(-1).tolist()))
    return samples, coco_dets


def direct(ann_file, dets, iou_type):
    gt = COCO(ann_file)
    if iou_type == 'keypoints':
        dets = [{k: v for k, v in d.items() if k != 'bbox'} for d in dets]
    else:
        dets = [{k: v for k, v in d.items() if k != 'keypoints'} for d in dets]
    evaluator = COCOeval(gt, gt.loadRes(dets), iou_type)
    if iou_type == 'keypoints':
        evaluator.params.kpt_oks_sigmas = np.array(SIGMAS)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return evaluator.stats


@pytest.mark.parametrize('sigmas_from', ['dataset_meta', 'argument'])
def test_keypoint_and_box_ap_equal_pycocotools(tmp_path, sigmas_from):
    ann_file = str(tmp_path / 'gt.json')
    data = ground_truth(ann_file)
    samples, coco_dets = predictions(data)
    kwargs = dict(keypoint_sigmas=SIGMAS) if sigmas_from == 'argument' else {}
    metric = CocoKeypointMetric(ann_file=ann_file, metric=['bbox', 'keypoints'], **kwargs)
    metric.dataset_meta = dict(classes=('figure', ), keypoint_sigmas=SIGMAS if sigmas_from == 'dataset_meta' else None)
    metric.process({}, samples)
    results = metric.evaluate(len(samples))
    kp_stats = direct(ann_file, coco_dets, 'keypoints')
    box_stats = direct(ann_file, coco_dets, 'bbox')
    assert 0.05 < kp_stats[0] < 0.95  # neither trivial nor empty
    for i, item in enumerate(('mAP', 'mAP_50', 'mAP_75', 'mAP_m', 'mAP_l', 'AR')):
        assert results[f'coco/keypoints_{item}'] == pytest.approx(round(kp_stats[i], 3), abs=1e-9), item
    assert results['coco/bbox_mAP'] == pytest.approx(round(box_stats[0], 3), abs=1e-9)
    assert results['coco/bbox_mAP_50'] == pytest.approx(round(box_stats[1], 3), abs=1e-9)


def test_default_coco_sigmas_would_give_a_different_score(tmp_path):
    """The dataset's sigmas are used: scoring with pycocotools' COCO person sigmas differs."""
    ann_file = str(tmp_path / 'gt.json')
    data = ground_truth(ann_file)
    samples, coco_dets = predictions(data)
    metric = CocoKeypointMetric(ann_file=ann_file, metric='keypoints', keypoint_sigmas=np.array(SIGMAS) * 3)
    metric.dataset_meta = dict(classes=('figure', ))
    metric.process({}, samples)
    wider = metric.evaluate(len(samples))['coco/keypoints_mAP']
    assert wider > round(direct(ann_file, coco_dets, 'keypoints')[0], 3)


def test_keypoints_need_an_annotation_file_and_predicted_keypoints(tmp_path):
    with pytest.raises(ValueError, match='ann_file'):
        CocoKeypointMetric(metric=['bbox', 'keypoints'])
    ann_file = str(tmp_path / 'gt.json')
    ground_truth(ann_file)
    metric = CocoKeypointMetric(ann_file=ann_file)
    sample = DetDataSample(metainfo=dict(img_id=1, ori_shape=(160, 200)))
    sample.pred_instances = InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                                         labels=torch.zeros(0, dtype=torch.long))
    metric.dataset_meta = dict(classes=('figure', ))
    with pytest.raises(KeyError, match='keypoint branch'):
        metric.process({}, [sample.to_dict()])
