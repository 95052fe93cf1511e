"""Per-class AP of every task under the dataset's class names, equal to pycocotools run on one
category at a time: box and mask (CocoClasswiseMetric) and keypoints (CocoKeypointMetric)."""
import json

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import direct_pretrain  # noqa: F401
from direct_pretrain.evaluation import CocoClasswiseMetric, CocoKeypointMetric
from mmdet.evaluation.metrics import CocoMetric
from mmdet.structures import DetDataSample

# Non-contiguous ids, names with spaces, file order = id order.
CATEGORIES = [dict(id=3, name='solder joint'), dict(id=7, name='scratch'), dict(id=11, name='dent')]
CLASSES = tuple(c['name'] for c in CATEGORIES)
SIZE = 120


def write_ground_truth(path):
    rng = np.random.default_rng(0)
    images, anns = [], []
    for image_id in range(1, 6):
        images.append(dict(id=image_id, file_name=f'{image_id}.jpg', width=SIZE, height=SIZE))
        for slot, category in enumerate(CATEGORIES):
            x, y = 5 + 38 * slot, int(rng.integers(5, 60))
            w, h = int(rng.integers(20, 32)), int(rng.integers(25, 50))
            anns.append(dict(id=len(anns) + 1, image_id=image_id, category_id=category['id'], iscrowd=0,
                             bbox=[x, y, w, h], area=float(w * h),
                             segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]]))
    data = dict(images=images, annotations=anns, categories=CATEGORIES)
    with open(path, 'w') as f:
        json.dump(data, f)
    return data


def rect_mask(x1, y1, x2, y2):
    mask = np.zeros((SIZE, SIZE), bool)
    mask[max(int(y1), 0):int(y2), max(int(x1), 0):int(x2)] = True
    return mask


def predictions(data):
    """Each ground truth found with a jittered box; masks are good for 'solder joint' and poor
    (shifted) for 'scratch' and 'dent', so box and mask AP per class differ. Plus one false positive."""
    rng = np.random.default_rng(1)
    label_of = {c['id']: i for i, c in enumerate(CATEGORIES)}
    samples = []
    for image in data['images']:
        boxes, scores, labels, masks = [], [], [], []
        for ann in (a for a in data['annotations'] if a['image_id'] == image['id']):
            x, y, w, h = ann['bbox']
            box = np.array([x, y, x + w, y + h], float) + rng.normal(0, 2.5, 4)
            label = label_of[ann['category_id']]
            shift = 0 if label == 0 else 6 + 3 * label
            boxes.append(box)
            scores.append(float(rng.uniform(0.5, 1.0)))
            labels.append(label)
            masks.append(rect_mask(x + shift, y + shift, x + w + shift, y + h + shift))
        boxes.append([60, 80, 100, 115])
        scores.append(0.55)
        labels.append(1)
        masks.append(rect_mask(60, 80, 100, 115))
        sample = DetDataSample(metainfo=dict(img_id=image['id'], ori_shape=(SIZE, SIZE)))
        sample.pred_instances = InstanceData(bboxes=torch.tensor(np.array(boxes), dtype=torch.float32),
                                             scores=torch.tensor(scores), labels=torch.tensor(labels),
                                             masks=torch.tensor(np.array(masks)))
        samples.append(sample.to_dict())
    return samples


def per_category_ap(ann_file, results_file, iou_type, cat_id, sigmas=None):
    """pycocotools on one category alone."""
    gt = COCO(ann_file)
    with open(results_file) as f:
        dets = json.load(f)
    if iou_type == 'segm':
        dets = [{k: v for k, v in d.items() if k != 'bbox'} for d in dets]
    evaluator = COCOeval(gt, gt.loadRes(dets), iou_type)
    evaluator.params.catIds = [cat_id]
    if sigmas is not None:
        evaluator.params.kpt_oks_sigmas = np.array(sigmas)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return round(evaluator.stats[0], 3)


def evaluate(metric, samples):
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_box_and_mask_ap_per_class_under_the_class_names(tmp_path):
    ann_file = str(tmp_path / 'gt.json')
    data = write_ground_truth(ann_file)
    samples = predictions(data)
    prefix = str(tmp_path / 'results')
    results = evaluate(CocoClasswiseMetric(ann_file=ann_file, metric=['bbox', 'segm'], outfile_prefix=prefix),
                       samples)
    for category in CATEGORIES:
        name = category['name']
        for task in ('bbox', 'segm'):
            expected = per_category_ap(ann_file, f'{prefix}.{task}.json', task, category['id'])
            assert results[f'coco/{task}_{name}_precision'] == pytest.approx(expected, abs=1e-9), (task, name)
    # the masks of 'scratch' and 'dent' are worse than their boxes: two different numbers per class
    assert results['coco/segm_scratch_precision'] < results['coco/bbox_scratch_precision'] - 0.1
    # mmdet's own task keys are all there, unchanged
    plain = evaluate(CocoMetric(ann_file=ann_file, metric=['bbox', 'segm']), samples)
    for key, value in plain.items():
        assert results[key] == value, key
    assert not any(k.endswith('_precision') for k in plain)


def test_mmdet_classwise_keeps_only_the_last_task(tmp_path):
    """Why the subclass exists: mmdet's CocoMetric(classwise=True) writes both tasks' per-class AP
    to coco/<class>_precision, so the box AP is replaced by the mask AP."""
    ann_file = str(tmp_path / 'gt.json')
    samples = predictions(write_ground_truth(ann_file))
    mmdet_results = evaluate(CocoMetric(ann_file=ann_file, metric=['bbox', 'segm'], classwise=True), samples)
    ours = evaluate(CocoClasswiseMetric(ann_file=ann_file, metric=['bbox', 'segm']), samples)
    assert mmdet_results['coco/scratch_precision'] == ours['coco/segm_scratch_precision']
    assert 'coco/bbox_scratch_precision' not in mmdet_results


def test_classwise_off_adds_no_per_class_keys(tmp_path):
    ann_file = str(tmp_path / 'gt.json')
    samples = predictions(write_ground_truth(ann_file))
    results = evaluate(CocoClasswiseMetric(ann_file=ann_file, metric=['bbox', 'segm'], classwise=False), samples)
    assert 'coco/bbox_mAP' in results and not any(k.endswith('_precision') for k in results)


K = 3
SIGMAS = [0.06, 0.08, 0.1]
KEYPOINT_CATEGORIES = [dict(id=2, name='figure', keypoints=['a', 'b', 'c'], skeleton=[]),
                       dict(id=5, name='robot arm', keypoints=['a', 'b', 'c'], skeleton=[])]


def keypoint_data(path):
    rng = np.random.default_rng(2)
    images, anns = [], []
    for image_id in (1, 2, 3):
        images.append(dict(id=image_id, file_name=f'{image_id}.jpg', width=200, height=160))
        for slot, category in enumerate(KEYPOINT_CATEGORIES):
            x, y = 10 + 95 * slot, 20
            kps = np.stack([rng.integers(x, x + 60, K), rng.integers(y, y + 100, K), np.full(K, 2)], 1)
            anns.append(dict(id=len(anns) + 1, image_id=image_id, category_id=category['id'], iscrowd=0,
                             bbox=[x, y, 60, 100], area=6000.0, keypoints=kps.reshape(-1).tolist(), num_keypoints=K))
    data = dict(images=images, annotations=anns, categories=KEYPOINT_CATEGORIES)
    with open(path, 'w') as f:
        json.dump(data, f)
    return data


def test_keypoint_ap_per_class(tmp_path):
    """Two keypoint categories: each class's OKS AP equals pycocotools on that category alone
    (the 'robot arm' keypoints are predicted far less precisely)."""
    ann_file = str(tmp_path / 'kp.json')
    data = keypoint_data(ann_file)
    rng = np.random.default_rng(3)
    samples = []
    for image in data['images']:
        boxes, scores, labels, points, point_scores = [], [], [], [], []
        for ann in (a for a in data['annotations'] if a['image_id'] == image['id']):
            x, y, w, h = ann['bbox']
            label = 0 if ann['category_id'] == 2 else 1
            noise = 2 if label == 0 else 9
            kps = np.array(ann['keypoints'], float).reshape(-1, 3)[:, :2] + rng.normal(0, noise, (K, 2))
            boxes.append([x, y, x + w, y + h])
            scores.append(float(rng.uniform(0.5, 1)))
            labels.append(label)
            points.append(kps + 0.5)
            point_scores.append(rng.uniform(0, 1, K))
        sample = DetDataSample(metainfo=dict(img_id=image['id'], ori_shape=(160, 200)))
        sample.pred_instances = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32), scores=torch.tensor(scores),
            labels=torch.tensor(labels), keypoints=torch.tensor(np.array(points), dtype=torch.float32),
            keypoint_scores=torch.tensor(np.array(point_scores), dtype=torch.float32))
        samples.append(sample.to_dict())
    prefix = str(tmp_path / 'kp_results')
    metric = CocoKeypointMetric(ann_file=ann_file, metric=['bbox', 'keypoints'], keypoint_sigmas=SIGMAS,
                                classwise=True, outfile_prefix=prefix)
    metric.dataset_meta = dict(classes=('figure', 'robot arm'))
    metric.process({}, samples)
    results = metric.evaluate(len(samples))
    for category in KEYPOINT_CATEGORIES:
        expected = per_category_ap(ann_file, f'{prefix}.keypoints.json', 'keypoints', category['id'], SIGMAS)
        assert results[f'coco/keypoints_{category["name"]}_precision'] == pytest.approx(expected, abs=1e-9)
        assert f'coco/bbox_{category["name"]}_precision' in results
    assert results['coco/keypoints_robot arm_precision'] < results['coco/keypoints_figure_precision']
