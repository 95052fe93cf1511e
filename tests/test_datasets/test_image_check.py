"""The up-front image check finds empty, truncated and non-image files from a few bytes,
agrees with the decoder on good files, and the skipping stock loader uses the same test."""
import logging
import os
import time

import cv2
import numpy as np
import pytest

from direct_pretrain.datasets.bad_image_log import read_bad_images
from direct_pretrain.datasets.image_check import check_image_file, check_images, image_bytes_problem
from direct_pretrain.datasets.transforms import BadImageError, LoadImageFromFileOrSkip


def _image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), (0, 0), 3)
    return img


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('images')
    ok, jpg = cv2.imencode('.jpg', _image())
    ok2, png = cv2.imencode('.png', _image(1))
    assert ok and ok2
    jpg, png = jpg.tobytes(), png.tobytes()
    # a progressive JPEG ends in several scans: truncation inside a later scan must be seen too
    ok3, prog = cv2.imencode('.jpg', _image(2), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    prog = prog.tobytes()
    contents = {
        'good.jpg': jpg, 'good.png': png, 'progressive.jpg': prog,
        'trailer.jpg': jpg + b'SEFT' * 2000,  # camera trailers after the end-of-image marker
        'empty.jpg': b'', 'half.jpg': jpg[:len(jpg) // 2], 'no_eoi.jpg': jpg[:-2],
        'prog_cut.jpg': prog[:int(len(prog) * 0.9)], 'half.png': png[:len(png) // 2],
        'html.jpg': b'<html><body>404 not found</body></html>',
        'crc.png': png[:60] + bytes([png[60] ^ 0xFF]) + png[61:],  # a flipped byte inside a chunk
    }
    paths = {}
    for name, data in contents.items():
        paths[name] = str(root / name)
        with open(paths[name], 'wb') as f:
            f.write(data)
    return paths


@pytest.mark.parametrize('name, reason', [
    ('empty.jpg', 'empty file'), ('half.jpg', 'truncated JPEG'), ('no_eoi.jpg', 'truncated JPEG'),
    ('prog_cut.jpg', 'truncated JPEG'), ('half.png', 'truncated PNG'), ('html.jpg', 'not an image'),
])
@pytest.mark.parametrize('mode', ['quick', 'full'])
def test_bad_files_are_found(files, name, reason, mode):
    assert reason in check_image_file(files[name], mode)


@pytest.mark.parametrize('name', ['good.jpg', 'good.png', 'progressive.jpg', 'trailer.jpg'])
@pytest.mark.parametrize('mode', ['quick', 'full'])
def test_good_files_pass_and_decode(files, name, mode):
    assert check_image_file(files[name], mode) is None
    assert cv2.imread(files[name]) is not None


def test_full_mode_also_checks_structure(files):
    assert check_image_file(files['crc.png'], 'quick') is None  # markers intact
    assert 'header cannot be decoded' in check_image_file(files['crc.png'], 'full')


def test_quick_check_reads_a_few_bytes(files, tmp_path):
    """A 20 MB JPEG is checked from its head and tail only."""
    big = tmp_path / 'big.jpg'
    data = open(files['good.jpg'], 'rb').read()
    big.write_bytes(data[:-2] + b'\x00' * 20_000_000 + b'\xff\xd9')  # padding inside the last scan
    start = time.perf_counter()
    assert check_image_file(str(big), 'quick') is None
    assert time.perf_counter() - start < 0.05


def test_check_images_reports_in_order(files):
    paths = [files[n] for n in ('good.jpg', 'empty.jpg', 'good.png', 'half.png', 'good.jpg')] + ['/no/such.jpg']
    report = check_images(paths, 'quick', num_threads=3)
    assert report.num_checked == 5
    assert [p for p, _ in report.bad] == [files['empty.jpg'], files['half.png'], '/no/such.jpg']
    assert '3 bad' in report.summary() and files['empty.jpg'] in report.summary()
    assert check_images(paths, 'off').num_checked == 0


def test_bytes_check_matches_the_file_check(files):
    for name, path in files.items():
        data = open(path, 'rb').read()
        assert (image_bytes_problem(data) is None) == (check_image_file(path, 'quick') is None), name


def test_stock_loader_skips_counts_and_records(files, tmp_path, caplog):
    loader = LoadImageFromFileOrSkip()
    loader.bad_image_log = str(tmp_path / 'bad_images.jsonl')
    with caplog.at_level(logging.DEBUG, logger='direct_pretrain'):
        for name in ('empty.jpg', 'half.jpg', 'html.jpg', 'half.jpg'):
            assert loader(dict(img_path=files[name])) is None
    good = loader(dict(img_path=files['good.jpg']))
    assert good['img'].shape == (120, 160, 3) and good['ori_shape'] == (120, 160)
    assert loader.skip_counter.total == 4
    recorded = read_bad_images(loader.bad_image_log)
    assert list(recorded) == [files['empty.jpg'], files['half.jpg'], files['html.jpg']]
    assert 'truncated JPEG' in recorded[files['half.jpg']]
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 1
    strict = LoadImageFromFileOrSkip(on_bad_image='raise')
    with pytest.raises(BadImageError, match='empty file'):
        strict(dict(img_path=files['empty.jpg']))
    assert not os.path.exists(str(tmp_path / 'other.jsonl'))


def _huge_header(data: bytes, width: int, height: int) -> bytes:
    """``data`` (a JPEG or PNG) with a header that claims ``width`` x ``height``."""
    import struct
    if data.startswith(b'\x89PNG'):
        return data[:16] + struct.pack('>II', width, height) + data[24:]
    sof = next(i for i in range(2, len(data)) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2))
    return data[:sof + 5] + struct.pack('>HH', height, width) + data[sof + 9:]


@pytest.mark.parametrize('orientation', range(1, 9))
def test_header_size_is_what_opencv_decodes(tmp_path, orientation):
    """The header size (EXIF orientation applied, as the decoders apply it) is the decoded size."""
    from PIL import Image

    from direct_pretrain.datasets.image_header import image_size_from_bytes, image_size_from_file
    path = str(tmp_path / 'o.jpg')
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(_image()[:, :, ::-1]).save(path, exif=exif)  # 160 x 120 stored
    height, width = cv2.imread(path).shape[:2]
    assert image_size_from_file(path) == (width, height) == image_size_from_bytes(open(path, 'rb').read())
    assert (width, height) == ((120, 160) if orientation > 4 else (160, 120))
    assert check_image_file(path, 'quick', expected_size=(width, height)) is None
    if orientation > 4:  # the stored size is not what training sees
        assert 'the file is 120x160 but the annotation file says 160x120' in \
            check_image_file(path, 'quick', expected_size=(160, 120))


def test_size_mismatch_and_pixel_limit_from_the_header(files, tmp_path):
    assert check_image_file(files['good.png'], 'quick', expected_size=(160, 120)) is None
    assert check_image_file(files['good.jpg'], 'full', expected_size=(160.0, 120.0)) is None
    smaller = 'the file is 160x120 but the annotation file says 320x240'
    assert smaller in check_image_file(files['good.jpg'], 'quick', expected_size=(320, 240))
    for name in ('good.jpg', 'good.png'):
        huge = tmp_path / name
        huge.write_bytes(_huge_header(open(files[name], 'rb').read(), 20000, 20000))
        for mode in ('quick', 'full'):
            reason = check_image_file(str(huge), mode, expected_size=(160, 120), max_pixels=89478485)
            assert reason == '20000x20000 = 400.0 MP, above dataset_check.max_image_pixels=89478485 (not decoded)'
    report = check_images([files['good.jpg'], files['good.png'], str(tmp_path / 'good.png')], 'quick',
                          sizes=[(160, 120), (100, 100), (160, 120)], max_pixels=10**6)
    assert [p for p, _ in report.bad] == [files['good.png'], str(tmp_path / 'good.png')]


def test_stock_loader_skips_wrong_sizes_and_huge_files_without_decoding(files, tmp_path, monkeypatch):
    """The training loader makes the up-front check's header tests before decoding: a file the
    check lists is skipped, and a 20000 x 20000 file is never handed to the decoder."""
    import mmcv
    huge = tmp_path / 'huge.jpg'
    huge.write_bytes(_huge_header(open(files['good.jpg'], 'rb').read(), 20000, 20000))
    loader = LoadImageFromFileOrSkip(max_image_pixels=89478485, check_size=True)
    loader.bad_image_log = str(tmp_path / 'bad_images.jsonl')
    decoded = []
    real = mmcv.imfrombytes
    monkeypatch.setattr(mmcv, 'imfrombytes', lambda *a, **k: decoded.append(1) or real(*a, **k))
    assert loader(dict(img_path=str(huge), width=160, height=120)) is None
    assert loader(dict(img_path=files['good.jpg'], width=320, height=240)) is None
    assert not decoded
    assert loader(dict(img_path=files['good.jpg'], width=160, height=120))['img'].shape == (120, 160, 3)
    recorded = read_bad_images(loader.bad_image_log)
    assert 'above dataset_check.max_image_pixels=89478485 (not decoded)' in recorded[str(huge)]
    assert 'but the annotation file says 320x240' in recorded[files['good.jpg']]
    assert loader.skip_counter.total == 2
