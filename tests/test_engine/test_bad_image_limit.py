"""BadImageCountHook names the files the loaders skipped in their worker processes and
stops the run above ``max_bad_images``."""
import logging
import os

import pytest
import torch
from mmengine.logging import MessageHub
from torch.utils.data import DataLoader, Dataset

from direct_pretrain.datasets.bad_image_log import TooManyBadImagesError, read_bad_images
from direct_pretrain.datasets.transforms import LoadImageFromFileOrSkip
from direct_pretrain.engine.hooks import BadImageCountHook


class _Files(Dataset):
    """Runs the pipeline (one skipping loader) on each file, as a BaseDataset would."""

    def __init__(self, paths):
        self.paths = paths
        self.pipeline = [LoadImageFromFileOrSkip()]

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return torch.tensor(int(self.pipeline[0](dict(img_path=self.paths[index])) is None))


class _Runner:
    def __init__(self, work_dir, dataset, resume=False):
        self.work_dir, self.rank, self._resume, self.epoch = work_dir, 0, resume, 0
        self.train_dataloader = DataLoader(dataset, batch_size=2, num_workers=2)
        self.message_hub = MessageHub.get_instance('bad_image_limit_test')
        self.logger = logging.getLogger('bad_image_limit_test')


@pytest.fixture()
def paths(tmp_path):
    import cv2
    import numpy as np
    good = str(tmp_path / 'good.jpg')
    cv2.imwrite(good, np.full((32, 48, 3), 127, np.uint8))
    empty, cut = str(tmp_path / 'empty.jpg'), str(tmp_path / 'cut.jpg')
    open(empty, 'wb').close()
    with open(cut, 'wb') as f:
        f.write(open(good, 'rb').read()[:200])
    return good, empty, cut


def test_files_are_named_and_the_run_stops_above_the_limit(tmp_path, paths, caplog):
    good, empty, cut = paths
    work_dir = str(tmp_path / 'wd')
    os.makedirs(work_dir)
    open(os.path.join(work_dir, 'bad_images.jsonl'), 'w').write('{"path": "old.jpg", "reason": "x"}\n')
    runner = _Runner(work_dir, _Files([good, empty, good, empty, good, cut]))
    hook = BadImageCountHook(max_bad_images=1)
    hook.before_train(runner)  # a new run: the old list is dropped
    assert runner.train_dataloader.dataset.pipeline[0].bad_image_log == os.path.join(work_dir, 'bad_images.jsonl')
    skipped = sum(int(b.sum()) for b in runner.train_dataloader)  # two worker processes write the log
    assert skipped == 3
    assert sorted(read_bad_images(hook._path)) == sorted([empty, cut])
    with caplog.at_level(logging.WARNING, logger='bad_image_limit_test'), pytest.raises(TooManyBadImagesError) as info:
        hook.after_train_iter(runner, 0)
    assert empty in str(info.value) and cut in str(info.value) and 'max_bad_images' in str(info.value)
    assert empty in caplog.text and 'the run stops above 1' in caplog.text

    # a resumed run keeps the list; under the limit the run goes on
    resumed = _Runner(work_dir, _Files([good]), resume=True)
    tolerant = BadImageCountHook(max_bad_images=2)
    tolerant.before_train(resumed)
    tolerant.after_train_iter(resumed, 0)
    assert sorted(tolerant.bad) == sorted([empty, cut])
    with pytest.raises(TooManyBadImagesError):
        BadImageCountHook(max_bad_images=1).before_train(resumed)
