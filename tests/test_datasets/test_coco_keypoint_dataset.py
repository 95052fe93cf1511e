"""CocoKeypointDataset parsing and the toy keypoint generator."""
import json
import os.path as osp

import numpy as np
import pytest

import direct_pretrain  # noqa: F401  (registers the dataset)
from direct_pretrain.datasets import (COCO_PERSON_KEYPOINT_META, TOY_KEYPOINT_META, CocoKeypointDataset,
                                      flip_indices_from_names, generate_toy_keypoints, toy_keypoints_is_complete)
from direct_pretrain.datasets.transforms.keypoint_geometry import KeypointPipelineError
from keypoint_test_utils import make_tiny_keypoints

TOY_META = {k: v for k, v in TOY_KEYPOINT_META.items()}


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    return make_tiny_keypoints(str(tmp_path_factory.mktemp('toy_kp')), num_train=6, num_val=3)


def dataset(root, split='train', **kwargs):
    kwargs.setdefault('metainfo', TOY_META)
    return CocoKeypointDataset(data_root=root, ann_file=f'annotations/person_keypoints_{split}.json',
                               data_prefix=dict(img=f'{split}/'), pipeline=[], **kwargs)


def test_toy_files_are_coco_keypoint_files_and_deterministic(toy_root, tmp_path):
    assert toy_keypoints_is_complete(toy_root)
    with open(osp.join(toy_root, 'annotations', 'person_keypoints_train.json')) as f:
        data = json.load(f)
    cat = data['categories'][0]
    assert cat['keypoints'] == list(TOY_KEYPOINT_META['keypoint_names'])
    assert [tuple(link) for link in cat['skeleton']] == [(a + 1, b + 1) for a, b in TOY_KEYPOINT_META['skeleton']]
    for ann in data['annotations']:
        assert len(ann['keypoints']) == 3 * 13 and ann['num_keypoints'] == sum(v > 0 for v in ann['keypoints'][2::3])
        x, y, w, h = ann['bbox']
        kps = np.array(ann['keypoints']).reshape(-1, 3)
        assert ((kps[:, 0] >= x - 1) & (kps[:, 0] <= x + w) & (kps[:, 1] >= y - 1) & (kps[:, 1] <= y + h)).all()
    again = make_tiny_keypoints(str(tmp_path / 'again'), num_train=6, num_val=3)
    for name in ('annotations/person_keypoints_train.json', 'train/train_00000.jpg'):
        assert open(osp.join(toy_root, name), 'rb').read() == open(osp.join(again, name), 'rb').read()


def test_toy_figures_have_their_left_side_on_image_right(toy_root):
    """Left/right is decidable from the picture: with the head up, each left_* keypoint lies to the
    image-right of its right_* twin (figures face the viewer and lean at most ~23 degrees)."""
    with open(osp.join(toy_root, 'annotations', 'person_keypoints_val.json')) as f:
        anns = json.load(f)['annotations']
    names = TOY_KEYPOINT_META['keypoint_names']
    flip = TOY_KEYPOINT_META['flip_indices']
    assert flip == tuple(flip_indices_from_names(names))
    for ann in anns:
        kps = np.array(ann['keypoints'], float).reshape(-1, 3)
        head, hips = kps[0, :2], (kps[7, :2] + kps[8, :2]) / 2
        up = (head - hips) / np.linalg.norm(head - hips)
        right_of_figure = np.array([-up[1], up[0]])  # image-right when upright
        for k, name in enumerate(names):
            if name.startswith('left_'):
                assert np.dot(kps[k, :2] - kps[flip[k], :2], right_of_figure) > 0, (ann['id'], name)


def test_parsing_adds_keypoints_in_the_continuous_frame(toy_root):
    ds = dataset(toy_root)
    with open(osp.join(toy_root, 'annotations', 'person_keypoints_train.json')) as f:
        raw = json.load(f)
    first = ds.get_data_info(0)
    anns = [a for a in raw['annotations'] if a['image_id'] == first['img_id']]
    assert len(first['instances']) == len(anns)
    for inst, ann in zip(first['instances'], anns):
        kps = np.array(ann['keypoints'], np.float32).reshape(-1, 3)
        labelled = kps[:, 2] > 0
        np.testing.assert_array_equal(inst['keypoints'][labelled, :2], kps[labelled, :2] + 0.5)
        assert (inst['keypoints'][~labelled] == 0).all() and inst['num_keypoints'] == ann['num_keypoints']
    assert first['flip_indices'] == list(TOY_KEYPOINT_META['flip_indices'])
    assert ds.metainfo['keypoint_sigmas'] == TOY_KEYPOINT_META['keypoint_sigmas']


def test_min_keypoints_per_image_filters_training_images(tmp_path, toy_root):
    path = osp.join(toy_root, 'annotations', 'person_keypoints_train.json')
    with open(path) as f:
        raw = json.load(f)
    first_image = raw['images'][0]['id']
    for ann in raw['annotations']:
        if ann['image_id'] == first_image:  # labelled nothing on the first image
            ann['keypoints'] = [0] * 39
            ann['num_keypoints'] = 0
    (tmp_path / 'annotations').mkdir()
    with open(tmp_path / 'annotations' / 'person_keypoints_train.json', 'w') as f:
        json.dump(raw, f)
    (tmp_path / 'train').symlink_to(osp.join(toy_root, 'train'))
    root = str(tmp_path) + '/'
    keep_all = dataset(root, filter_cfg=dict(filter_empty_gt=True))
    filtered = dataset(root, filter_cfg=dict(filter_empty_gt=True, min_keypoints_per_image=1))
    assert len(filtered) == len(keep_all) - 1
    assert first_image not in {filtered.get_data_info(i)['img_id'] for i in range(len(filtered))}


def test_metainfo_must_match_the_file(toy_root):
    with pytest.raises(KeypointPipelineError, match='has keypoints'):
        dataset(toy_root, metainfo=dict(COCO_PERSON_KEYPOINT_META, classes=('figure', )))
    with pytest.raises(KeypointPipelineError, match='keypoint_sigmas'):
        dataset(toy_root, metainfo=dict(TOY_META, keypoint_sigmas=(0.1, ) * 3))
    with pytest.raises(KeypointPipelineError, match='not symmetric'):
        dataset(toy_root, metainfo=dict(TOY_META, flip_indices=(0, 2, 3, 1) + tuple(range(4, 13))))


def test_coco_person_defaults():
    meta = COCO_PERSON_KEYPOINT_META
    assert len(meta['keypoint_names']) == len(meta['flip_indices']) == len(meta['keypoint_sigmas']) == 17
    assert meta['flip_indices'][:5] == (0, 2, 1, 4, 3) and len(meta['skeleton']) == 19
    from pycocotools.cocoeval import Params
    np.testing.assert_allclose(meta['keypoint_sigmas'], Params(iouType='keypoints').kpt_oks_sigmas)


def test_pipeline_through_the_dataset(toy_root):
    """The finetune pipeline of the toy config, run by the dataset: packed keypoints line up."""
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadKeypointAnnotations', with_bbox=True),
                dict(type='RandomChoiceResize', scales=[(200, 150)], keep_ratio=True, resize_type='KeypointResize'),
                dict(type='KeypointRandomFlip', prob=1.0), dict(type='PackKeypointDetInputs')]
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    ds = CocoKeypointDataset(data_root=toy_root, ann_file='annotations/person_keypoints_train.json',
                             data_prefix=dict(img='train/'), metainfo=TOY_META, pipeline=pipeline)
    item = ds[0]
    gt = item['data_samples'].gt_instances
    assert gt.keypoints.shape[1:] == (13, 3) and len(gt.keypoints) == len(gt.bboxes) > 0
    visible = gt.keypoints[..., 2] > 0
    boxes = gt.bboxes.tensor if hasattr(gt.bboxes, 'tensor') else gt.bboxes
    inside = ((gt.keypoints[..., 0] >= boxes[:, None, 0] - 1) & (gt.keypoints[..., 0] <= boxes[:, None, 2] + 1))
    assert inside[visible].all()


def test_generate_writes_both_splits(tmp_path):
    from direct_pretrain.datasets import ToyKeypointSpec
    files = generate_toy_keypoints(str(tmp_path), ToyKeypointSpec(num_train=2, num_val=1, min_long_side=96,
                                                                 max_long_side=96, seed=5))
    assert set(files) == {'train', 'val'}
    with open(files['val']) as f:
        assert len(json.load(f)['images']) == 1
