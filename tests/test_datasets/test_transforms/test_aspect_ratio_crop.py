"""AspectRatioCrop: Detectron's aspect cropping into [ASPECT_LO, ASPECT_HI]."""
import numpy as np
import pytest

import direct_pretrain  # noqa: F401  (registers the transforms)
from direct_pretrain.datasets.transforms import AspectRatioCrop, aspect_crop_size
from mmdet.structures.mask import BitmapMasks, PolygonMasks
from transform_test_utils import data_info, instances_for, mask_bbox, run, textured, write_jpeg


def loaded(tmp_path, width, height, rects, poly2mask=True, ignore=()):
    path = write_jpeg(str(tmp_path / f'{width}x{height}.jpg'), textured(height, width))
    return run([dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=poly2mask)],
               data_info(path, instances_for(rects, ignore)))


@pytest.mark.parametrize('size, expected', [((200, 600), (200, 400)), ((1000, 300), (600, 300)),
                                            ((300, 300), (300, 300)), ((100, 200), (100, 200)),
                                            ((201, 700), (201, 402)), ((999, 333), (666, 333))])
def test_aspect_crop_size(size, expected):
    assert aspect_crop_size(*size, (0.5, 2.0)) == expected
    w, h = aspect_crop_size(*size, (0.5, 2.0))
    assert 0.5 <= w / h <= 2.0


@pytest.mark.parametrize('poly2mask', [True, False])
def test_tall_image_is_cropped_and_cropped_out_boxes_dropped(tmp_path, poly2mask):
    # 200x600 (aspect 0.33): boxes span y 20..560, more than the 400-px window, so the
    # window is centred on them (y 90..490): box 0 is cropped out, 1 and 3 are cut.
    rects = [(10, 20, 60, 80), (20, 100, 180, 300), (50, 320, 150, 380), (100, 450, 190, 560)]
    results = loaded(tmp_path, 200, 600, rects, poly2mask, ignore=(2, ))
    source = results['img']
    out = AspectRatioCrop()(results)
    assert out['img'].shape == (400, 200, 3) and out['img_shape'] == (400, 200)
    np.testing.assert_array_equal(out['aspect_crop_bbox'], [0, 90, 200, 490])
    np.testing.assert_array_equal(out['gt_bboxes_labels'], [1, 2, 3])
    np.testing.assert_array_equal(out['gt_ignore_flags'], [False, True, False])
    np.testing.assert_allclose(out['gt_bboxes'].numpy(), [[20, 10, 180, 210], [50, 230, 150, 290],
                                                          [100, 360, 190, 400]])
    masks = out['gt_masks']
    assert isinstance(masks, BitmapMasks if poly2mask else PolygonMasks)
    assert (masks.height, masks.width) == (400, 200) and len(masks) == 3
    bitmaps = masks.masks if poly2mask else masks.to_ndarray()
    for mask, box in zip(bitmaps, out['gt_bboxes'].numpy()):
        np.testing.assert_allclose(mask_bbox(mask), box, atol=1.0)
    np.testing.assert_array_equal(out['img'], source[90:490])
    np.testing.assert_allclose(out['homography_matrix'], [[1, 0, 0], [0, 1, -90], [0, 0, 1]])


def test_wide_image_window_contains_all_boxes_when_they_fit(tmp_path):
    rects = [(300, 50, 420, 200), (500, 100, 700, 250)]  # x extent 300..700 fits in 600
    source = loaded(tmp_path, 1000, 300, rects)
    starts = set()
    for seed in range(10):
        np.random.seed(seed)
        out = AspectRatioCrop()(dict(source, gt_bboxes=source['gt_bboxes'].clone(),
                                     gt_masks=source['gt_masks']))
        x1 = int(out['aspect_crop_bbox'][0])
        assert out['img'].shape == (300, 600, 3) and 100 <= x1 <= 300
        np.testing.assert_array_equal(out['img'], source['img'][:, x1:x1 + 600])
        np.testing.assert_allclose(out['gt_bboxes'].numpy(), np.array(rects, float) - [x1, 0, x1, 0])
        starts.add(x1)
    assert len(starts) > 1  # random among the windows that keep every box


def test_in_band_image_passes_through(tmp_path):
    results = loaded(tmp_path, 400, 300, [(10, 10, 100, 100)])
    img = results['img']
    out = AspectRatioCrop()(results)
    assert out['img'] is img and 'aspect_crop_bbox' not in out


def test_no_boxes_random_window(tmp_path):
    results = loaded(tmp_path, 100, 500, [])
    out = AspectRatioCrop(aspect_range=(0.5, 2.0))(results)
    assert out['img'].shape == (200, 100, 3) and len(out['gt_bboxes']) == 0


def test_reduced_loader_sizes_for_the_cropped_image(tmp_path):
    """A 1200x4000 JPEG cropped to 1200x2400 and resized to long side 448 needs 448/2400 of
    it: 1/4 is allowed (1/8 would be too small). Without the aspect plan the loader would
    take 1/8 of the uncropped 4000 px and the resize would have to enlarge."""
    path = write_jpeg(str(tmp_path / 'tall.jpg'), textured(4000, 1200))
    rects = [(100, 1500, 800, 2500)]
    pipeline = [dict(type='LoadImageReduced', scale=(448, 448), aspect_range=(0.5, 2.0),
                     load_annotations=dict(type='LoadAnnotations', with_bbox=True)),
                dict(type='AspectRatioCrop'),
                dict(type='DirectPretrainResizeCrop', scale=(448, 448), ratio_range=None, flip_prob=0, pad=False)]
    out = run(pipeline, data_info(path, instances_for(rects)))
    assert out['decode_reduction'] == 4
    assert out['img'].shape[:2] == (448, 224)  # 2400x1200 crop at 448 / 2400
    sx, sy = out['scale_factor']
    assert sx == pytest.approx(448 / 2400, rel=2e-3) and sy == pytest.approx(448 / 2400, rel=2e-3)
    unplanned = dict(pipeline[0], aspect_range=None)
    assert run([unplanned], data_info(path))['decode_reduction'] == 8


def test_repr_and_errors():
    assert repr(AspectRatioCrop((0.4, 2.5))) == 'AspectRatioCrop(aspect_range=(0.4, 2.5), allow_negative_crop=False)'
    with pytest.raises(ValueError, match='aspect_range'):
        AspectRatioCrop((0, 2))
