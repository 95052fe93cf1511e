"""LoadImageReduced against the stock path (LoadImageFromFile + LoadAnnotations + Resize)."""
import io
import math

import cv2
import numpy as np
import pytest
from PIL import Image

import direct_pretrain  # noqa: F401  (registers the transforms)
from direct_pretrain.datasets.transforms import LoadImageReduced
from transform_test_utils import data_info, instances_for, iou, painted_image, run, write_jpeg


@pytest.fixture(scope='module')
def big_jpeg(tmp_path_factory):
    img, rects = painted_image(1600, 1200)
    path = write_jpeg(str(tmp_path_factory.mktemp('jpeg') / 'big.jpg'), img)
    return path, instances_for(rects, ignore=(2, ))


def stock(scale, poly2mask=True):
    return [dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=poly2mask),
            dict(type='Resize', scale=scale, keep_ratio=True)]


def direct(scale, poly2mask=True, backend='cv2', **loader):
    return [dict(type='LoadImageReduced', scale=scale, backend=backend, **loader,
                 load_annotations=dict(type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=poly2mask)),
            # fixed scale, no crop / flip / pad: a plain keep-ratio resize
            dict(type='DirectPretrainResizeCrop', scale=scale, ratio_range=None, crop_size=(2000, 2000), flip_prob=0,
                 pad=False)]


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
@pytest.mark.parametrize('scale, reduction', [((1000, 1000), 1), ((700, 700), 2), ((400, 400), 4), ((200, 200), 8)])
@pytest.mark.parametrize('poly2mask', [True, False])
def test_reduced_decode_matches_stock_path(big_jpeg, backend, scale, reduction, poly2mask):
    path, instances = big_jpeg
    ref = run(stock(scale, poly2mask=True), data_info(path, instances))
    out = run(direct(scale, poly2mask=poly2mask, backend=backend), data_info(path, instances))
    assert out['decode_reduction'] == reduction
    assert out['img'].shape == ref['img'].shape and out['img'].dtype == np.uint8
    assert out['img_shape'] == ref['img_shape'] and out['ori_shape'] == ref['ori_shape'] == (1200, 1600)
    np.testing.assert_allclose(out['scale_factor'], ref['scale_factor'], rtol=1e-6)
    np.testing.assert_allclose(out['gt_bboxes'].numpy(), ref['gt_bboxes'].numpy(), atol=1.0)
    np.testing.assert_array_equal(out['gt_bboxes_labels'], ref['gt_bboxes_labels'])
    np.testing.assert_array_equal(out['gt_ignore_flags'], ref['gt_ignore_flags'])
    masks = out['gt_masks'] if poly2mask else out['gt_masks'].to_bitmap()
    assert masks.masks.shape == ref['gt_masks'].masks.shape
    for ours, theirs in zip(masks.masks, ref['gt_masks'].masks):
        assert iou(ours, theirs) > 0.9
    # Same picture up to resampling: DCT-domain reduction vs bilinear shrink of the full decode.
    assert np.abs(out['img'].astype(np.int16) - ref['img']).mean() < 4.0


def test_annotations_rescaled_by_the_factor_obtained(tmp_path):
    """1001x751 at 1/4 decodes to ceil(...) = 251x188: the factor is 251/1001, not 1/4."""
    img, rects = painted_image(1001, 751)
    path = write_jpeg(str(tmp_path / 'odd.jpg'), img)
    loader = LoadImageReduced(scale=(240, 240), load_annotations=dict(
        type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=False))
    out = loader(data_info(path, instances_for(rects)))
    assert out['decode_reduction'] == 4
    assert out['img'].shape == (188, 251, 3) and out['ori_shape'] == (751, 1001)
    sx, sy = out['scale_factor']
    assert (sx, sy) == (251 / 1001, 188 / 751)
    expected = np.array(rects, dtype=np.float32) * np.array([sx, sy, sx, sy], dtype=np.float32)
    np.testing.assert_allclose(out['gt_bboxes'].numpy(), expected, rtol=1e-6)
    assert (out['gt_masks'].height, out['gt_masks'].width) == (188, 251)
    np.testing.assert_allclose(out['gt_masks'].masks[0][0][:2], expected[0, :2], rtol=1e-5)
    assert out['decode_rescaled_keys'] == ('gt_bboxes', 'gt_masks')
    np.testing.assert_allclose(out['homography_matrix'], np.diag([sx, sy, 1.0]), rtol=1e-6)


def test_sampled_scale_drives_the_reduction(big_jpeg):
    path, _ = big_jpeg
    loader = LoadImageReduced(scale=(448, 448), ratio_range=(0.8, 1.2))
    seen = set()
    for seed in range(12):
        np.random.seed(seed)
        out = loader(data_info(path))
        target = out['target_scale']
        assert 358 <= target[0] <= 537 and target[0] == target[1]
        factor = min(max(target) / 1600, min(target) / 1200)
        d = out['decode_reduction']
        assert factor <= 1 / d  # never decoded smaller than the resize keeps
        assert d == 8 or factor > 1 / (2 * d)  # and the largest reduction that allows it
        seen.add(d)
    # 1600x1200 to a long side of 358-537 px: 1/4 (400 px) serves the draws up to 400 px,
    # 1/2 the rest; with the largest ratio planned it would always be 1/2.
    assert seen == {2, 4}
    # With the largest ratio planned (no sampling) there is no target_scale to hand on.
    out = LoadImageReduced(scale=(448, 448), ratio_range=(0.8, 1.2), sample_scale=False)(data_info(path))
    assert 'target_scale' not in out and out['decode_reduction'] == 2


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
@pytest.mark.parametrize('orientation', [3, 6, 8])
def test_exif_orientation_matches_stock_loader(tmp_path, backend, orientation):
    img, _ = painted_image(1200, 800)
    pil = Image.fromarray(img[..., ::-1])
    exif = pil.getexif()
    exif[0x0112] = orientation
    path = str(tmp_path / f'exif{orientation}.jpg')
    pil.save(path, quality=92, exif=exif.tobytes())
    ref = run([dict(type='LoadImageFromFile')], data_info(path))  # stock: OpenCV applies EXIF
    out = LoadImageReduced(scale=(300, 300), backend=backend)(data_info(path))
    assert out['decode_reduction'] == 4
    assert out['ori_shape'] == ref['img'].shape[:2]
    assert out['img'].shape[:2] == tuple(math.ceil(s / 4) for s in ref['img'].shape[:2])
    shrunk = cv2.resize(ref['img'], out['img'].shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk.astype(np.int16) - out['img']).mean() < 3.0


def _png(path, array):
    ok, buf = cv2.imencode('.png', array)
    assert ok
    with open(path, 'wb') as f:
        f.write(buf.tobytes())
    return path


@pytest.mark.parametrize('kind', ['rgb', 'gray', 'gray16', 'rgb16', 'rgba', 'palette'])
def test_non_jpeg_falls_back_to_full_decode(tmp_path, kind):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    if kind == 'palette':
        path = str(tmp_path / 'p.png')
        Image.fromarray(rgb).convert('P').save(path)
    else:
        array = {'rgb': rgb, 'gray': rgb[..., 0], 'rgba': np.dstack([rgb, rgb[..., :1]]),
                 'gray16': rng.integers(0, 65536, (300, 400), dtype=np.uint16),
                 'rgb16': rng.integers(0, 65536, (300, 400, 3), dtype=np.uint16)}[kind]
        path = _png(str(tmp_path / f'{kind}.png'), array)
    out = LoadImageReduced(scale=(50, 50))(data_info(path))
    ref = run([dict(type='LoadImageFromFile')], data_info(path))
    assert out['decode_reduction'] == 1 and out['scale_factor'] == (1.0, 1.0)
    assert out['img'].shape == (300, 400, 3) and out['img'].dtype == np.uint8
    np.testing.assert_array_equal(out['img'], ref['img'])
    if kind == 'gray16':  # 16-bit keeps its top byte in all three channels
        np.testing.assert_array_equal(out['img'], np.repeat((array >> 8).astype(np.uint8)[..., None], 3, -1))
    if kind == 'gray':
        np.testing.assert_array_equal(out['img'][..., 0], out['img'][..., 2])


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
@pytest.mark.parametrize('mode', ['CMYK', 'L'])
def test_cmyk_and_grayscale_jpeg_become_bgr(tmp_path, backend, mode):
    img, _ = painted_image(800, 600)
    path = str(tmp_path / f'{mode}.jpg')
    Image.fromarray(img[..., ::-1]).convert(mode).save(path, quality=95)
    out = LoadImageReduced(scale=(300, 300), backend=backend)(data_info(path))
    assert out['decode_reduction'] == 2 and out['img'].shape == (300, 400, 3)
    reference = np.asarray(Image.open(path).convert('RGB'))[..., ::-1]  # Pillow's own conversion
    shrunk = cv2.resize(reference, (400, 300), interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk.astype(np.int16) - out['img']).mean() < 3.0


def test_no_scale_is_a_plain_loader(big_jpeg):
    path, _ = big_jpeg
    out = LoadImageReduced()(data_info(path))
    ref = run([dict(type='LoadImageFromFile')], data_info(path))
    assert out['decode_reduction'] == 1
    np.testing.assert_array_equal(out['img'], ref['img'])


def test_constructor_errors_and_repr():
    with pytest.raises(ValueError, match='max_reduction'):
        LoadImageReduced(scale=(448, 448), max_reduction=3)
    with pytest.raises(ValueError, match='on_bad_image'):
        LoadImageReduced(on_bad_image='ignore')
    with pytest.raises(ValueError, match='aspect_range'):
        LoadImageReduced(aspect_range=(2.0, 0.5))
    text = repr(LoadImageReduced(scale=(448, 448), ratio_range=(0.8, 1.2), backend='pillow', on_bad_image='skip'))
    for part in ('scale=(448, 448)', 'ratio_range=(0.8, 1.2)', "backend='pillow'", "on_bad_image='skip'",
                 'max_reduction=8', 'load_annotations=None'):
        assert part in text


def test_pillow_and_cv2_agree(big_jpeg):
    path, _ = big_jpeg
    a = LoadImageReduced(scale=(400, 400), backend='cv2')(data_info(path))
    b = LoadImageReduced(scale=(400, 400), backend='pillow')(data_info(path))
    assert a['img'].shape == b['img'].shape == (300, 400, 3)
    assert np.abs(a['img'].astype(np.int16) - b['img']).mean() < 2.0
    buf = io.BytesIO()
    Image.fromarray(a['img']).save(buf, 'PNG')  # a real 3-channel uint8 image


@pytest.mark.parametrize('hint, reduction', [((100, 75), 1), ((1600, 1200), 4), ((16000, 12000), 4)])
def test_size_hint_only_saves_work(big_jpeg, hint, reduction):
    """The annotation file's width/height may skip the header parse when it rules a reduction
    out; shapes always come from the file itself, so a wrong hint never corrupts them."""
    path, _ = big_jpeg
    out = LoadImageReduced(scale=(400, 400))(data_info(path, width=hint[0], height=hint[1]))
    assert out['decode_reduction'] == reduction
    assert out['ori_shape'] == (1200, 1600)
    assert out['img'].shape[:2] == (1200 // reduction, 1600 // reduction)
