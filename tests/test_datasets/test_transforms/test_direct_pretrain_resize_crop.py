"""DirectPretrainResizeCrop against the stock RandomResize / RandomCrop / RandomFlip / Pad chain."""
import numpy as np
import pytest

import direct_pretrain  # noqa: F401  (registers the transforms)
from direct_pretrain.datasets.transforms import AnnotationFrameError, DirectPretrainResizeCrop
from mmdet.structures.mask import BitmapMasks
from transform_test_utils import (COLOURS, data_info, instances_for, iou, mask_bbox, painted_image, run,
                                  write_jpeg)

SCALE = (448, 448)


@pytest.fixture(scope='module')
def jpeg_640(tmp_path_factory):
    img, rects = painted_image(640, 480)
    path = write_jpeg(str(tmp_path_factory.mktemp('jpeg') / 'a.jpg'), img)
    return path, instances_for(rects, ignore=(1, ))


@pytest.fixture(scope='module')
def jpeg_1600(tmp_path_factory):
    img, rects = painted_image(1600, 1200)
    path = write_jpeg(str(tmp_path_factory.mktemp('jpeg') / 'b.jpg'), img)
    return path, instances_for(rects, ignore=(1, ))


def stock_chain(poly2mask=True):
    return [dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=poly2mask),
            dict(type='RandomResize', scale=SCALE, ratio_range=(0.8, 1.2), keep_ratio=True),
            dict(type='RandomCrop', crop_size=SCALE, crop_type='absolute', allow_negative_crop=True),
            dict(type='RandomFlip', prob=0.5),
            dict(type='Pad', size=SCALE, pad_val=dict(img=(114, 114, 114)))]


def direct_chain(poly2mask_load=True, poly2mask=False, loader='LoadImageFromFile', **unit):
    if loader == 'LoadImageFromFile':
        head = [dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=poly2mask_load)]
    else:
        head = [dict(type='LoadImageReduced', scale=SCALE, ratio_range=(0.8, 1.2), sample_scale=False,
                     load_annotations=dict(type='LoadAnnotations', with_bbox=True, with_mask=True,
                                           poly2mask=poly2mask_load))]
    return head + [dict(type='DirectPretrainResizeCrop', scale=SCALE, ratio_range=(0.8, 1.2), crop_size=SCALE,
                        flip_prob=0.5, pad_val=dict(img=(114, 114, 114)), allow_negative_crop=True,
                        poly2mask=poly2mask, **unit)]


def fixed_draws(target, offset, flip):
    """The same random draws for both chains: resize scale, crop offset (y, x), flip."""
    stock = {2: dict(_random_scale=lambda: target), 3: dict(_rand_offset=lambda margin: offset),
             4: dict(_choose_direction=lambda: 'horizontal' if flip else None)}
    ours = {'_random_scale': lambda: target, 'random_crop._rand_offset': lambda margin: offset,
            'random_flip._choose_direction': lambda: 'horizontal' if flip else None}
    return stock, ours




@pytest.mark.parametrize('target, offset, flip', [
    ((538, 538), (0, 90), True),  # crop along x, flipped
    ((538, 538), (0, 0), False),
    ((400, 400), (0, 0), True),  # smaller than the crop: padding only
    ((448, 448), (0, 0), True),
])
def test_full_decode_equals_stock_chain_exactly(jpeg_640, target, offset, flip):
    path, instances = jpeg_640
    stock_over, ours_over = fixed_draws(target, offset, flip)
    ref = run(stock_chain(), data_info(path, instances), stock_over)
    out = run(direct_chain(), data_info(path, instances), {2: ours_over})
    np.testing.assert_array_equal(out['img'], ref['img'])
    for key in ('ori_shape', 'pad_shape', 'flip', 'flip_direction'):
        assert out[key] == ref[key], key
    # img_shape: the crop's content, where the stock Pad reports the padded canvas
    crop_only = run(stock_chain()[:-1], data_info(path, instances), stock_over)
    assert ref['img_shape'] == ref['pad_shape'][:2] and out['img_shape'] == crop_only['img_shape']
    np.testing.assert_allclose(out['scale_factor'], ref['scale_factor'], rtol=1e-6)
    np.testing.assert_allclose(out['gt_bboxes'].numpy(), ref['gt_bboxes'].numpy(), atol=1e-4)
    np.testing.assert_array_equal(out['gt_bboxes_labels'], ref['gt_bboxes_labels'])
    np.testing.assert_array_equal(out['gt_ignore_flags'], ref['gt_ignore_flags'])
    np.testing.assert_array_equal(out['gt_masks'].masks, ref['gt_masks'].masks)
    np.testing.assert_allclose(out['homography_matrix'], ref['homography_matrix'], atol=1e-5)


@pytest.mark.parametrize('target, offset, flip', [((538, 538), (0, 90), True), ((400, 400), (0, 0), False)])
def test_polygons_rasterised_late_match_stock_bitmaps(jpeg_640, target, offset, flip):
    path, instances = jpeg_640
    stock_over, ours_over = fixed_draws(target, offset, flip)
    ref = run(stock_chain(), data_info(path, instances), stock_over)
    out = run(direct_chain(poly2mask_load=False, poly2mask=True), data_info(path, instances), {2: ours_over})
    assert isinstance(out['gt_masks'], BitmapMasks)
    assert out['gt_masks'].masks.shape == ref['gt_masks'].masks.shape == (len(ref['gt_bboxes']), 448, 448)
    for ours, theirs in zip(out['gt_masks'].masks, ref['gt_masks'].masks):
        assert iou(ours, theirs) > 0.95


def test_reduced_decode_composes_scale_factor(jpeg_1600):
    """Loader at 1/2 + unit: same shapes as the stock chain, boxes within 1 px, and a
    scale_factor relative to the original file."""
    path, instances = jpeg_1600
    stock_over, ours_over = fixed_draws((538, 538), (0, 45), True)
    ref = run(stock_chain(), data_info(path, instances), stock_over)
    out = run(direct_chain(loader='LoadImageReduced'), data_info(path, instances), {1: ours_over})
    assert out['decode_reduction'] == 2
    assert out['img'].shape == ref['img'].shape and out['ori_shape'] == ref['ori_shape'] == (1200, 1600)
    np.testing.assert_allclose(out['scale_factor'], ref['scale_factor'], rtol=1e-6)
    assert out['scale_factor'][0] == pytest.approx(538 / 1600)
    np.testing.assert_allclose(out['gt_bboxes'].numpy(), ref['gt_bboxes'].numpy(), atol=1.0)
    np.testing.assert_array_equal(out['gt_bboxes_labels'], ref['gt_bboxes_labels'])
    for ours, theirs in zip(out['gt_masks'].masks, ref['gt_masks'].masks):
        assert iou(ours, theirs) > 0.9
    np.testing.assert_allclose(out['homography_matrix'], ref['homography_matrix'], atol=1e-3)
    assert np.abs(out['img'].astype(np.int16) - ref['img']).mean() < 4.0


@pytest.mark.parametrize('seed', range(8))
@pytest.mark.parametrize('masks', ['bitmap', 'polygon', 'polygon->bitmap'])
def test_image_boxes_masks_labels_ignore_flags_stay_together(jpeg_1600, seed, masks):
    """Each instance is a rectangle filled with its own colour: after any draw, its box, mask
    and the pixels under them must still agree, and label / ignore flag must follow."""
    path, instances = jpeg_1600
    np.random.seed(seed)
    out = run(direct_chain(loader='LoadImageReduced', poly2mask_load=(masks == 'bitmap'),
                           poly2mask=(masks == 'polygon->bitmap'), recompute_bbox=False),
              data_info(path, instances))
    img, boxes = out['img'], out['gt_bboxes'].numpy()
    assert img.shape == (448, 448, 3) and out['pad_shape'] == (448, 448, 3)
    content_h, content_w = out['img_shape']  # the padding (value 114) lies exactly outside it
    assert (img[content_h:] == 114).all() and (img[:, content_w:] == 114).all()
    assert not (img[content_h - 1, :content_w] == 114).all() and not (img[:content_h, content_w - 1] == 114).all()
    bitmaps = out['gt_masks'] if isinstance(out['gt_masks'], BitmapMasks) else out['gt_masks'].to_bitmap()
    assert bitmaps.masks.shape == (len(boxes), 448, 448)
    assert len(out['gt_bboxes_labels']) == len(out['gt_ignore_flags']) == len(boxes) >= 1
    for box, mask, label, ignore in zip(boxes, bitmaps.masks, out['gt_bboxes_labels'], out['gt_ignore_flags']):
        assert ignore == (label == 1)
        tight = mask_bbox(mask)
        assert tight is not None
        np.testing.assert_allclose(tight, box, atol=1.5)
        inner = mask.astype(bool)
        inner[[0, -1], :] = False  # ignore resampled edges
        colour = np.median(img[inner], axis=0)
        assert np.abs(colour - COLOURS[label]).max() < 25, (label, colour)
    # Padding sits at the bottom / right even when flipped: flip happens before the pad.
    sx, sy = out['scale_factor']
    content_h, content_w = min(round(1200 * sy), 448), min(round(1600 * sx), 448)
    assert np.all(img[content_h:] == 114) and np.all(img[:, content_w:] == 114)
    assert not np.all(img[:content_h, :content_w][-1] == 114)


def test_scale_factor_and_homography_map_back_to_original(jpeg_1600):
    path, instances = jpeg_1600
    for seed in range(6):
        np.random.seed(seed)
        out = run(direct_chain(loader='LoadImageReduced', poly2mask_load=False), data_info(path, instances))
        inverse = np.linalg.inv(out['homography_matrix'])
        original = {inst['bbox_label']: np.array(inst['bbox']) for inst in instances}
        for box, label in zip(out['gt_bboxes'].numpy(), out['gt_bboxes_labels']):
            corners = inverse @ np.array([[box[0], box[2]], [box[1], box[3]], [1, 1]])
            x1, x2 = sorted(corners[0])
            y1, y2 = sorted(corners[1])
            ref = original[label]
            # Boxes cut by the crop only shrink; uncut sides map back within a pixel.
            assert ref[0] - 1 <= x1 and x2 <= ref[2] + 1 and ref[1] - 1 <= y1 and y2 <= ref[3] + 1
        sx, sy = out['scale_factor']
        np.testing.assert_allclose(np.abs(np.diag(out['homography_matrix'])[:2]), (sx, sy), rtol=1e-5)


def test_test_time_resize_maps_predictions_back(jpeg_1600):
    """Used as a plain resize after a reduced decode, dividing by scale_factor (what mmdet's
    heads do with rescale=True) returns original coordinates."""
    path, instances = jpeg_1600
    out = run([dict(type='LoadImageReduced', scale=(300, 300),
                    load_annotations=dict(type='LoadAnnotations', with_bbox=True)),
               dict(type='DirectPretrainResizeCrop', scale=(300, 300), ratio_range=None, crop_size=(4000, 4000),
                    flip_prob=0, pad=False)], data_info(path, instances))
    assert out['decode_reduction'] == 4 and out['img'].shape == (225, 300, 3)
    sx, sy = out['scale_factor']
    back = out['gt_bboxes'].numpy() / np.array([sx, sy, sx, sy])
    np.testing.assert_allclose(back, [inst['bbox'] for inst in instances], atol=1.0)


def test_seg_map_follows_the_image(jpeg_640):
    path, instances = jpeg_640
    seg = np.zeros((480, 640), np.uint8)
    seg[:, 320:] = 7
    results = run([dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)],
                  data_info(path, instances))
    results['gt_seg_map'] = seg
    transform = DirectPretrainResizeCrop(scale=SCALE, ratio_range=None, flip_prob=1.0)
    out = transform(results)
    assert out['gt_seg_map'].shape == (448, 448)
    assert np.all(out['gt_seg_map'][336:] == 255)  # 640x480 -> 448x336, padded with seg=255
    assert np.all(out['gt_seg_map'][:336, :200] == 7) and np.all(out['gt_seg_map'][:336, 250:] == 0)


def test_target_scale_from_a_mismatched_loader_is_rejected(jpeg_640):
    path, instances = jpeg_640
    results = run([dict(type='LoadImageReduced', scale=(800, 800), ratio_range=(0.8, 1.2))], data_info(path))
    with pytest.raises(ValueError, match='same scale and ratio_range'):
        DirectPretrainResizeCrop(scale=SCALE, ratio_range=(0.8, 1.2))(results)


def test_annotations_loaded_after_a_reduced_decode_are_rejected(jpeg_1600):
    path, instances = jpeg_1600
    pipeline = [dict(type='LoadImageReduced', scale=SCALE, ratio_range=(0.8, 1.2)),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                dict(type='DirectPretrainResizeCrop', scale=SCALE)]
    with pytest.raises(AnnotationFrameError, match='load_annotations'):
        run(pipeline, data_info(path, instances))


def test_negative_crop_returns_none_unless_allowed(jpeg_640):
    path, _ = jpeg_640
    far = [dict(bbox=[600.0, 20.0, 630.0, 40.0], bbox_label=0, ignore_flag=0, mask=[[600, 20, 630, 20, 630, 40]])]
    results = run([dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)],
                  data_info(path, far))
    unit = dict(scale=(640, 640), ratio_range=None, crop_size=(100, 100), flip_prob=0)
    transform = DirectPretrainResizeCrop(**unit)
    transform.random_crop._rand_offset = lambda margin: (300, 0)
    assert transform(dict(results)) is None
    transform = DirectPretrainResizeCrop(allow_negative_crop=True, **unit)
    transform.random_crop._rand_offset = lambda margin: (300, 0)
    out = transform(dict(results))
    assert out['img'].shape == (100, 100, 3) and len(out['gt_bboxes']) == 0


def test_repr_and_argument_errors():
    text = repr(DirectPretrainResizeCrop(scale=(448, 448), ratio_range=(0.8, 1.2), flip_prob=0.5, poly2mask=True))
    for part in ('scale=(448, 448)', 'ratio_range=(0.8, 1.2)', 'crop_size=(448, 448)', 'flip_prob=0.5',
                 'poly2mask=True', 'allow_negative_crop=False'):
        assert part in text
    with pytest.raises(ValueError, match='crop_size'):
        DirectPretrainResizeCrop(crop_size=(448.0, 448))
    with pytest.raises(ValueError, match='flip_prob'):
        DirectPretrainResizeCrop(flip_prob=2)


def test_rpn_proposals_stay_out_of_the_padding(jpeg_640):
    """A wide image resized for the 448 pretrain is 448x336 of content on a 448x448 canvas:
    a real RPN (random init, so its boxes go anywhere) proposes nothing below row 336,
    because img_shape is the content and mmdet clips proposals to it."""
    import torch
    from mmengine.registry import init_default_scope

    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    path, instances = jpeg_640
    pipeline = direct_chain() + [dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                                                      'pad_shape', 'scale_factor', 'flip',
                                                                      'flip_direction'))]
    over = {'_random_scale': lambda: (448, 448), 'random_crop._rand_offset': lambda margin: (0, 0),
            'random_flip._choose_direction': lambda: None}
    packed = run(pipeline, data_info(path, instances), {2: over})
    meta = packed['data_samples'].metainfo
    assert meta['img_shape'] == (336, 448) and meta['pad_shape'] == (448, 448, 3)
    torch.manual_seed(0)
    from mmengine.config import ConfigDict
    model = MODELS.build(ConfigDict(
        type='RPN',
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[0, 0, 0], std=[255, 255, 255], pad_size_divisor=32),
        backbone=dict(type='ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), init_cfg=None),
        neck=dict(type='FPN', in_channels=[64, 128, 256, 512], out_channels=32, num_outs=5),
        rpn_head=dict(type='RPNHead', in_channels=32, feat_channels=32,
                      anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                                            strides=[4, 8, 16, 32, 64]),
                      bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                                      target_stds=[1.0, 1.0, 1.0, 1.0])),
        train_cfg=None,
        test_cfg=dict(rpn=dict(nms_pre=2000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.9), min_bbox_size=0))))
    model.eval()
    data = model.data_preprocessor(dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]), False)
    assert tuple(data['inputs'].shape[-2:]) == (448, 448)
    with torch.no_grad():
        (result, ) = model.predict(data['inputs'], data['data_samples'], rescale=False)
    boxes = result.pred_instances.bboxes
    assert len(boxes) > 100
    assert float(boxes[:, 3].max()) <= 336 and float(boxes[:, 2].max()) <= 448
