"""Bad input to LoadImageReduced: a clear error by default, a counted skip when configured."""
import copy
import logging
import os
import os.path as osp
import pickle
import shutil

import pytest
import torch
from mmengine.dataset import RepeatDataset
from mmengine.logging import MessageHub
from torch.utils.data import DataLoader, Dataset
from transform_test_utils import data_info, painted_image, write_jpeg

from mmdet.datasets import CocoDataset
import direct_pretrain  # noqa: F401  (registers the transforms)
from direct_pretrain.datasets.transforms import BadImageError, LoadImageReduced
from direct_pretrain.engine.hooks import BadImageCountHook


@pytest.fixture(scope='module')
def bad_files(tmp_path_factory):
    root = tmp_path_factory.mktemp('bad')
    img, _ = painted_image(640, 480)
    good = write_jpeg(str(root / 'good.jpg'), img)
    data = open(good, 'rb').read()
    files = {'good': good, 'missing': str(root / 'missing.jpg')}
    for name, content in (('truncated', data[:len(data) // 2]), ('empty', b''),
                          ('corrupt_header', data[:3] + bytes(range(256)) * 4),
                          ('garbage', b'this is not an image' * 50)):
        files[name] = str(root / f'{name}.jpg')
        with open(files[name], 'wb') as f:
            f.write(content)
    return files


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
@pytest.mark.parametrize('kind, reason', [('truncated', 'truncated JPEG'), ('missing', 'file not found'),
                                          ('empty', 'file is empty'), ('corrupt_header', 'JPEG'),
                                          ('garbage', 'could not decode')])
def test_bad_image_raises_naming_the_file(bad_files, backend, kind, reason):
    loader = LoadImageReduced(scale=(200, 200), backend=backend)
    with pytest.raises(BadImageError) as info:
        loader(data_info(bad_files[kind]))
    message = str(info.value)
    assert bad_files[kind] in message and reason in message and "on_bad_image='skip'" in message
    assert info.value.path == bad_files[kind]
    assert loader.skip_counter.total == 0


@pytest.mark.parametrize('kind', ['truncated', 'missing', 'empty', 'corrupt_header', 'garbage'])
def test_bad_image_skipped_and_counted(bad_files, kind, caplog):
    loader = LoadImageReduced(scale=(200, 200), on_bad_image='skip')
    with caplog.at_level(logging.DEBUG, logger='direct_pretrain'):
        assert loader(data_info(bad_files[kind])) is None
        assert loader(data_info(bad_files[kind])) is None
        assert loader(data_info(bad_files['good'])) is not None
    assert (loader.skip_counter.epoch, loader.skip_counter.total) == (2, 2)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and bad_files[kind] in warnings[0].getMessage()  # once, then DEBUG
    assert loader.skip_counter.pop_epoch() == (2, 2) and loader.skip_counter.epoch == 0


def test_copies_of_the_counter_are_detached():
    loader = LoadImageReduced(on_bad_image='skip')
    loader.skip_counter.increment()
    clone = copy.deepcopy(loader)
    restored = pickle.loads(pickle.dumps(loader))
    clone.skip_counter.increment()
    assert loader.skip_counter.total == 1 and clone.skip_counter.total == 2 and restored.skip_counter.total == 1


class _BadFileDataset(Dataset):
    """Every item runs the shared loader on a bad file."""

    def __init__(self, loader, path, length):
        self.loader, self.path, self.length = loader, path, length

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return torch.tensor(int(self.loader(dict(img_path=self.path)) is None))


def test_skips_in_worker_processes_add_up_in_the_main_process(bad_files):
    loader = LoadImageReduced(on_bad_image='skip')
    batches = list(DataLoader(_BadFileDataset(loader, bad_files['truncated'], 8), batch_size=2, num_workers=2))
    assert int(sum(b.sum() for b in batches)) == 8
    assert loader.skip_counter.total == 8 and loader.skip_counter.epoch == 8


class _Runner:
    """The parts of mmengine's Runner that BadImageCountHook reads."""

    def __init__(self, dataloader):
        self.train_dataloader = dataloader
        self.message_hub = MessageHub.get_instance('bad_image_hook_test')
        self.logger = logging.getLogger('bad_image_hook_test')
        self.epoch = 0  # mmengine's 0-based epoch during after_train_epoch


def test_hook_reports_skips_per_epoch_through_dataset_wrappers(tmp_path, tiny_coco_root, caplog):
    root = str(tmp_path / 'coco')
    shutil.copytree(tiny_coco_root, root)
    bad = sorted(os.listdir(osp.join(root, 'train')))[:2]
    for name in bad:  # truncate two training images
        path = osp.join(root, 'train', name)
        data = open(path, 'rb').read()
        with open(path, 'wb') as f:
            f.write(data[:len(data) // 3])
    pipeline = [dict(type='LoadImageReduced', scale=(96, 96), ratio_range=(0.8, 1.2), on_bad_image='skip',
                     load_annotations=dict(type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=False)),
                dict(type='DirectPretrainResizeCrop', scale=(96, 96), ratio_range=(0.8, 1.2), allow_negative_crop=True,
                     poly2mask=True),
                dict(type='PackDetInputs')]
    dataset = RepeatDataset(CocoDataset(data_root=root, ann_file='annotations/instances_train.json',
                                        data_prefix=dict(img='train/'), pipeline=pipeline,
                                        metainfo=dict(classes=('circle', 'rectangle', 'triangle', 'star'))), times=2)
    loader = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=lambda batch: batch)
    samples = [s for batch in loader for s in batch]
    assert len(samples) == len(dataset) == 16  # every index still yields a sample
    assert all(osp.basename(s['data_samples'].img_path) not in bad for s in samples)
    assert all(tuple(s['inputs'].shape) == (3, 96, 96) for s in samples)

    runner, hook = _Runner(loader), BadImageCountHook()
    with caplog.at_level(logging.INFO, logger='bad_image_hook_test'):
        hook.after_train_epoch(runner)
        hook.after_train_epoch(runner)
    first, second = caplog.records[-2:]
    assert first.levelno == logging.WARNING and first.getMessage().startswith('Epoch 1: ')
    assert 'bad image(s) skipped' in first.getMessage()
    skipped = int(first.getMessage().split(': ')[1].split(' ')[0])
    assert skipped >= 4  # both bad files hit in both repeats, plus unlucky re-draws
    assert second.levelno == logging.INFO and ': 0 bad image(s)' in second.getMessage()
    assert f'({skipped} since the start' in second.getMessage()
    assert runner.message_hub.get_info('train/bad_images_skipped') == 0



def _png_with_broken_ancillary_crc(path: str) -> str:
    """A PNG whose tEXt chunk has a wrong CRC: OpenCV decodes it (libpng only warns), Pillow's
    structure check - what --check-images full runs up front - rejects it."""
    import struct
    import zlib

    import cv2
    ok, png = cv2.imencode('.png', painted_image(320, 240)[0])
    png = png.tobytes()
    body = b'tEXt' + b'Comment\x00hello'
    chunk = struct.pack('>I', len(body) - 4) + body + struct.pack('>I', (zlib.crc32(body) ^ 1) & 0xFFFFFFFF)
    with open(path, 'wb') as f:
        f.write(png[:33] + chunk + png[33:])
    return path


def test_full_check_and_loader_agree(tmp_path):
    """What --check-images full reports as bad (and says will be skipped) is skipped by the
    loader with verify=True (set by the train tool for that mode), though OpenCV decodes it."""
    from direct_pretrain.datasets.image_check import check_image_file
    path = _png_with_broken_ancillary_crc(str(tmp_path / 'crc.png'))
    assert check_image_file(path, 'quick') is None
    reason = check_image_file(path, 'full')
    assert reason.startswith('header cannot be decoded')
    assert LoadImageReduced(scale=(200, 200))(data_info(path)) is not None  # the decoder takes it
    loader = LoadImageReduced(scale=(200, 200), on_bad_image='skip', verify=True)
    loader.bad_image_log = str(tmp_path / 'bad_images.jsonl')
    assert loader(data_info(path)) is None and loader.skip_counter.total == 1
    from direct_pretrain.datasets.bad_image_log import read_bad_images
    assert read_bad_images(loader.bad_image_log) == {path: reason}


def test_reduced_loader_refuses_wrong_sizes_and_huge_headers_before_decoding(bad_files, tmp_path, monkeypatch):
    import struct

    import cv2
    data = open(bad_files['good'], 'rb').read()
    sof = next(i for i in range(2, len(data)) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2))
    huge = tmp_path / 'huge.jpg'
    huge.write_bytes(data[:sof + 5] + struct.pack('>HH', 20000, 20000) + data[sof + 9:])
    decoded = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, 'imdecode', lambda *a: decoded.append(1) or real(*a))
    loader = LoadImageReduced(scale=(200, 200), on_bad_image='skip', max_image_pixels=89478485, check_size=True)
    assert loader(data_info(str(huge), width=640, height=480)) is None
    assert loader(data_info(bad_files['good'], width=320, height=240)) is None
    assert not decoded and loader.skip_counter.total == 2
    strict = LoadImageReduced(scale=(200, 200), max_image_pixels=89478485, check_size=True)
    with pytest.raises(BadImageError, match=r'20000x20000 = 400.0 MP, above dataset_check.max_image_pixels'):
        strict(data_info(str(huge), width=640, height=480))
    with pytest.raises(BadImageError, match='the file is 640x480 but the annotation file says 320x240'):
        strict(data_info(bad_files['good'], width=320, height=240))
    assert not decoded
    assert strict(data_info(bad_files['good'], width=640, height=480))['ori_shape'] == (480, 640)
