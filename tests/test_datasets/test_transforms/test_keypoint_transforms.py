"""Keypoint-aware transforms move keypoints exactly as mmdet moves boxes.

The reference is mmdet itself: the same transform, with the same random draws, is run on a
copy of the sample whose boxes are tiny squares around every keypoint; each keypoint must
land on the centre of its square (or, after a mirror, on the square of its left/right twin),
and a keypoint becomes invisible exactly when its square was cropped away.
"""
import copy

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

import direct_pretrain  # noqa: F401  (registers the transforms)
from direct_pretrain.datasets.transforms.keypoint_geometry import KeypointPipelineError
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes

init_default_scope('mmdet')

K = 5
FLIP = [0, 2, 1, 4, 3]  # 0 centre, (1, 2) and (3, 4) left/right pairs
EPS = 0.01


def sample(height=120, width=160, num=4, seed=0):
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(0, width * 0.6, num)
    y1 = rng.uniform(0, height * 0.6, num)
    w = rng.uniform(20, width * 0.4, num)
    h = rng.uniform(20, height * 0.4, num)
    boxes = np.stack([x1, y1, x1 + w, y1 + h], 1).astype(np.float32)
    kx = boxes[:, :1] + rng.uniform(0.05, 0.95, (num, K)) * w[:, None]
    ky = boxes[:, 1:2] + rng.uniform(0.05, 0.95, (num, K)) * h[:, None]
    v = rng.choice([0, 1, 2], (num, K), p=[0.2, 0.3, 0.5])
    keypoints = np.stack([kx, ky, v], -1).astype(np.float32)
    keypoints[v == 0, :2] = 0
    img = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    return dict(img=img, img_shape=(height, width), ori_shape=(height, width), img_path='synthetic.jpg',
                gt_bboxes=HorizontalBoxes(torch.from_numpy(boxes)),
                gt_bboxes_labels=np.arange(num, dtype=np.int64) + 7,
                gt_ignore_flags=np.zeros(num, dtype=bool), gt_keypoints=keypoints, keypoints_homography=None,
                flip_indices=list(FLIP))


def tiny_box_twin(results):
    """The sample's keypoints as boxes: instance i, keypoint k -> box i * K + k (labelled only kept
    track of by the caller), no keypoints."""
    twin = copy.deepcopy(results)
    kps = results['gt_keypoints'].reshape(-1, 3)
    boxes = np.concatenate([kps[:, :2] - EPS, kps[:, :2] + EPS], 1)
    twin['gt_bboxes'] = HorizontalBoxes(torch.from_numpy(boxes.astype(np.float32)))
    twin['gt_bboxes_labels'] = np.arange(len(kps), dtype=np.int64)
    twin['gt_ignore_flags'] = np.zeros(len(kps), dtype=bool)
    for key in ('gt_keypoints', 'keypoints_homography'):
        twin.pop(key)
    return twin


def run_twice(cfg, results, stock_cfg=None, **draws):
    """Run the keypoint transform on ``results`` and its stock counterpart on the tiny-box twin,
    with the same random draws (attributes set on both instances)."""
    ours, stock = TRANSFORMS.build(cfg), TRANSFORMS.build(stock_cfg or cfg)
    for name, value in draws.items():
        setattr(ours, name, value)
        setattr(stock, name, value)
    twin = tiny_box_twin(results)
    return ours(copy.deepcopy(results)), stock(twin)


def assert_keypoints_follow_boxes(before, after, twin_after, mirrored=False):
    labelled = before['gt_keypoints'][..., 2] > 0
    kept = np.searchsorted(before['gt_bboxes_labels'], after['gt_bboxes_labels'])  # surviving instances
    np.testing.assert_array_equal(after['gt_bboxes_labels'], before['gt_bboxes_labels'][kept])
    assert len(after['gt_keypoints']) == len(after['gt_bboxes']) == len(kept)
    survivors = {int(label): i for i, label in enumerate(twin_after['gt_bboxes_labels'])}
    centres = twin_after['gt_bboxes'].centers.numpy()
    checked = 0
    for row, inst in enumerate(kept):
        for k in range(K):
            src = FLIP[k] if mirrored else k  # after a mirror, slot k holds the old twin
            point = after['gt_keypoints'][row, k]
            if not labelled[inst, src]:
                assert point[2] == 0
                continue
            box = survivors.get(int(inst * K + src))
            if box is None:
                assert point[2] == 0, (inst, k)  # its square was cropped away: invisible
            else:
                assert point[2] == before['gt_keypoints'][inst, src, 2]
                np.testing.assert_allclose(point[:2], centres[box], atol=2 * EPS)
                checked += 1
    assert checked > 0


def test_resize_moves_keypoints_like_boxes():
    results = sample()
    cfg = dict(type='KeypointResize', scale=(300, 200), keep_ratio=True)
    ours, twin = run_twice(cfg, results, dict(type='Resize', scale=(300, 200), keep_ratio=True))
    assert ours['img_shape'] == twin['img_shape'] != results['img_shape']
    assert_keypoints_follow_boxes(results, ours, twin)


def test_multiscale_resize_through_random_choice_resize():
    results = sample(seed=1)
    ours = TRANSFORMS.build(dict(type='RandomChoiceResize', scales=[(200, 100), (400, 300)], keep_ratio=True,
                                 resize_type='KeypointResize'))
    out = ours(copy.deepcopy(results))
    scale = np.array(out['scale_factor'], np.float32)
    labelled = results['gt_keypoints'][..., 2] > 0
    np.testing.assert_allclose(out['gt_keypoints'][labelled][:, :2], results['gt_keypoints'][labelled][:, :2] * scale,
                               rtol=1e-5)
    TRANSFORMS.build(dict(type='PackKeypointDetInputs'))(out)  # in step with the image


@pytest.mark.parametrize('direction,mirrored', [('horizontal', True), ('vertical', True), ('diagonal', False)])
def test_flip_mirrors_keypoints_and_swaps_left_right(direction, mirrored):
    results = sample(seed=2)
    cfg = dict(type='KeypointRandomFlip', prob=1.0, direction=direction)
    ours, twin = run_twice(cfg, results, dict(type='RandomFlip', prob=1.0, direction=direction))
    assert ours['flip'] and ours['flip_direction'] == direction
    assert_keypoints_follow_boxes(results, ours, twin, mirrored=mirrored)
    # a horizontal flip puts the old right shoulder (slot 2) into slot 1, mirrored in x
    if direction == 'horizontal':
        w = results['img_shape'][1]
        src = results['gt_keypoints'][:, 2]
        has = src[:, 2] > 0
        np.testing.assert_allclose(ours['gt_keypoints'][has, 1, 0], w - src[has, 0], rtol=1e-6)


def test_crop_drops_instances_and_hides_keypoints_outside():
    results = sample(height=200, width=240, num=6, seed=3)
    # instance 0 straddles the crop window x 70..190, y 60..160: two labelled keypoints fall outside
    results['gt_bboxes'].tensor[0] = torch.tensor([50.0, 50.0, 150.0, 150.0])
    results['gt_keypoints'][0] = [[55.5, 55.5, 2], [100.5, 100.5, 2], [140.5, 65.5, 1], [60.5, 140.5, 2],
                                  [120.5, 120.5, 2]]
    cfg = dict(type='KeypointRandomCrop', crop_size=(120, 100), allow_negative_crop=True)
    ours, twin = run_twice(cfg, results, dict(type='RandomCrop', crop_size=(120, 100), allow_negative_crop=True),
                           _rand_offset=lambda margin: (60, 70))
    assert ours['img_shape'] == (100, 120)
    assert 0 < len(ours['gt_bboxes']) < len(results['gt_bboxes'])  # the draw drops some instances
    assert_keypoints_follow_boxes(results, ours, twin)
    first = ours['gt_keypoints'][list(ours['gt_bboxes_labels']).index(results['gt_bboxes_labels'][0])]
    np.testing.assert_array_equal(first[:, 2], [0, 2, 1, 0, 2])
    np.testing.assert_allclose(first[1, :2], [100.5 - 70, 100.5 - 60])


def test_filter_annotations_keeps_keypoints_aligned():
    results = sample(seed=4)
    results['gt_bboxes'].tensor[1, 2:] = results['gt_bboxes'].tensor[1, :2] + 0.5  # too small
    out = TRANSFORMS.build(dict(type='KeypointFilterAnnotations', min_gt_bbox_wh=(1, 1)))(copy.deepcopy(results))
    np.testing.assert_array_equal(out['gt_bboxes_labels'], results['gt_bboxes_labels'][[0, 2, 3]])
    np.testing.assert_array_equal(out['gt_keypoints'], results['gt_keypoints'][[0, 2, 3]])


def test_pad_keeps_keypoints_and_pack_carries_them():
    results = TRANSFORMS.build(dict(type='KeypointRandomFlip', prob=1.0))(sample(seed=5))
    padded = TRANSFORMS.build(dict(type='Pad', size=(256, 256)))(copy.deepcopy(results))
    np.testing.assert_array_equal(padded['gt_keypoints'], results['gt_keypoints'])  # bottom/right padding
    results['gt_ignore_flags'][1] = True
    packed = TRANSFORMS.build(dict(type='PackKeypointDetInputs'))(results)
    gt, ignored = packed['data_samples'].gt_instances, packed['data_samples'].ignored_instances
    assert gt.keypoints.shape == (3, K, 3) and ignored.keypoints.shape == (1, K, 3)
    torch.testing.assert_close(ignored.keypoints[0], torch.from_numpy(results['gt_keypoints'][1]))


@pytest.mark.parametrize('stock', [dict(type='Resize', scale=(300, 200), keep_ratio=True),
                                   dict(type='RandomFlip', prob=1.0)])
def test_a_stock_geometric_transform_is_caught_at_packing(stock):
    moved = TRANSFORMS.build(stock)(sample(seed=6))
    with pytest.raises(KeypointPipelineError, match='does not move keypoints'):
        TRANSFORMS.build(dict(type='PackKeypointDetInputs'))(moved)


def test_stock_filter_is_caught_at_packing():
    results = sample(seed=7)
    results['gt_bboxes'].tensor[0, 2:] = results['gt_bboxes'].tensor[0, :2] + 0.5
    filtered = TRANSFORMS.build(dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1)))(results)
    with pytest.raises(KeypointPipelineError, match='KeypointFilterAnnotations'):
        TRANSFORMS.build(dict(type='PackKeypointDetInputs'))(filtered)


def test_mirror_without_flip_indices_is_an_error():
    results = sample(seed=8)
    del results['flip_indices']
    with pytest.raises(KeypointPipelineError, match='flip_indices'):
        TRANSFORMS.build(dict(type='KeypointRandomFlip', prob=1.0))(results)


def test_load_keypoint_annotations():
    instances = [dict(bbox=[0, 0, 10, 10], bbox_label=0, ignore_flag=0,
                      keypoints=np.arange(K * 3, dtype=np.float32).reshape(K, 3))]
    loader = TRANSFORMS.build(dict(type='LoadKeypointAnnotations', with_bbox=True))
    out = loader(dict(instances=copy.deepcopy(instances), flip_indices=FLIP, img_path='a.jpg'))
    np.testing.assert_array_equal(out['gt_keypoints'][0], instances[0]['keypoints'])
    assert out['keypoints_homography'] is None and len(out['gt_bboxes']) == 1
    empty = loader(dict(instances=[], flip_indices=FLIP, img_path='b.jpg'))
    assert empty['gt_keypoints'].shape == (0, K, 3)
    with pytest.raises(KeypointPipelineError, match='no "keypoints"'):
        loader(dict(instances=[dict(bbox=[0, 0, 1, 1], bbox_label=0, ignore_flag=0)], img_path='c.jpg'))


# ---------------------------------------------------------------------------------------------
# The package's own transforms
# ---------------------------------------------------------------------------------------------
def fixed(transform, scale=None, offset=None, direction=False):
    """Fix the random draws of a DirectPretrainResizeCrop / AspectRatioCrop instance
    (``direction`` None: no flip; False: leave the flip random)."""
    if scale is not None:
        transform._random_scale = lambda: scale
    if offset is not None and hasattr(transform, 'random_crop'):
        transform.random_crop._rand_offset = lambda margin: offset
    elif offset is not None:
        transform._rand_offset = lambda low, high: min(max(offset, low), high)
    if direction is not False:
        transform.random_flip._choose_direction = lambda: direction
    return transform


@pytest.mark.parametrize('direction', ['horizontal', None])
def test_direct_pretrain_resize_crop_moves_keypoints_like_boxes(direction):
    results = sample(height=300, width=400, num=6, seed=9)
    cfg = dict(type='DirectPretrainResizeCrop', scale=(200, 200), crop_size=(160, 160), flip_prob=0.5,
               allow_negative_crop=True)
    ours = fixed(TRANSFORMS.build(cfg), scale=(200, 200), offset=(20, 30), direction=direction)
    ref = fixed(TRANSFORMS.build(cfg), scale=(200, 200), offset=(20, 30), direction=direction)
    out, twin = ours(copy.deepcopy(results)), ref(tiny_box_twin(results))
    assert out['img_shape'] == twin['img_shape'] and out['flip'] == (direction is not None)
    assert_keypoints_follow_boxes(results, out, twin, mirrored=direction is not None)
    TRANSFORMS.build(dict(type='PackKeypointDetInputs'))(out)


def test_aspect_ratio_crop_moves_keypoints_like_boxes():
    results = sample(height=100, width=400, num=5, seed=10)  # aspect 4 -> cropped to 200 x 100
    ours = fixed(TRANSFORMS.build(dict(type='AspectRatioCrop', allow_negative_crop=True)), offset=90)
    out = ours(copy.deepcopy(results))
    assert out['img_shape'] == (100, 200)
    # the window depends on the boxes' extent: give the tiny-box run the same window
    ref = TRANSFORMS.build(dict(type='AspectRatioCrop', allow_negative_crop=True))
    ref._window_start = lambda length, size, span: int(out['aspect_crop_bbox'][0])
    twin = ref(tiny_box_twin(results))
    assert_keypoints_follow_boxes(results, out, twin)


def test_load_image_reduced_rescales_keypoints(tmp_path):
    import cv2
    from direct_pretrain.datasets.transforms import AnnotationFrameError
    rng = np.random.default_rng(11)
    path = str(tmp_path / 'big.jpg')
    cv2.imwrite(path, rng.integers(0, 255, (600, 800, 3), dtype=np.uint8))
    keypoints = np.array([[[100.5, 200.5, 2], [700.5, 50.5, 1], [0, 0, 0], [400.5, 599.5, 2], [10.5, 10.5, 2]]],
                         np.float32)
    info = dict(img_path=path, img_id=0, instances=[dict(bbox=[0, 0, 800, 600], bbox_label=0, ignore_flag=0,
                                                         keypoints=keypoints[0])], flip_indices=FLIP)
    loader = TRANSFORMS.build(dict(type='LoadImageReduced', scale=(200, 150),
                                   load_annotations=dict(type='LoadKeypointAnnotations', with_bbox=True)))
    out = loader(copy.deepcopy(info))
    assert out['decode_reduction'] >= 2 and 'gt_keypoints' in out['decode_rescaled_keys']
    sx, sy = out['scale_factor']
    np.testing.assert_allclose(out['gt_keypoints'][..., :2], keypoints[..., :2] * [sx, sy], rtol=1e-5)
    np.testing.assert_array_equal(out['gt_keypoints'][..., 2], keypoints[..., 2])
    TRANSFORMS.build(dict(type='PackKeypointDetInputs'))(out)
    # keypoints loaded by a separate step after the reduced decode are caught
    stale = TRANSFORMS.build(dict(type='LoadImageReduced', scale=(200, 150)))(copy.deepcopy(info))
    stale = TRANSFORMS.build(dict(type='LoadKeypointAnnotations', with_bbox=False))(stale)
    with pytest.raises(AnnotationFrameError, match='gt_keypoints'):
        TRANSFORMS.build(dict(type='DirectPretrainResizeCrop', scale=(200, 150)))(stale)
