"""Report, once per epoch, how many bad images the training pipeline skipped.

Why: with ``LoadImageReduced(on_bad_image='skip')`` a broken file makes the dataset draw
another index instead of killing a dataloader worker. That must not become silent data
loss, so the loader counts every skip in a counter shared by all worker processes
(:class:`SkipCounter`) and this hook reads and resets it after each training epoch.

The loaders also record each skipped file with its reason in ``<work_dir>/bad_images.jsonl``
(the hook tells them the path before the workers start); the hook names the files, and
with ``max_bad_images`` stops the run once more distinct files than that were skipped,
instead of training on with an ever smaller dataset. The run report lists the file.
"""
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional

from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from ...datasets.bad_image_log import (BAD_IMAGE_LOG, TooManyBadImagesError, format_bad_images,
                                       read_bad_images_since)
from ...datasets.transforms import SkipCounter

__all__ = ['BadImageCountHook', 'find_skip_counters', 'find_skipping_transforms']

# Attributes through which dataset wrappers, pipelines and wrapper transforms reach
# the transforms they contain (RepeatDataset.dataset, ConcatDataset.datasets,
# BaseDataset.pipeline, Compose.transforms, RandomApply.transforms, ...).
_CHILD_ATTRS = ('dataset', 'datasets', 'pipeline', 'transforms', 'transform')


def _walk(obj, seen: set) -> Iterator:
    """Yield every object reachable from ``obj`` that owns a :class:`SkipCounter`."""
    if obj is None or id(obj) in seen or isinstance(obj, (str, bytes, int, float, dict)):
        return
    seen.add(id(obj))
    counter = getattr(obj, 'skip_counter', None)
    if isinstance(counter, SkipCounter):
        yield obj
    if isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _walk(item, seen)
        return
    for attr in _CHILD_ATTRS:
        yield from _walk(getattr(obj, attr, None), seen)


def find_skipping_transforms(dataset) -> list:
    """Every transform reachable from ``dataset`` (wrappers included) that counts skips."""
    return list(_walk(dataset, set()))


def find_skip_counters(dataset) -> List[SkipCounter]:
    """Every distinct :class:`SkipCounter` reachable from ``dataset`` (wrappers included)."""
    counters, ids = [], set()
    for owner in _walk(dataset, set()):
        counter = owner.skip_counter
        if id(counter) not in ids:
            ids.add(id(counter))
            counters.append(counter)
    return counters


@HOOKS.register_module()
class BadImageCountHook(Hook):
    """Log the number of training images skipped as bad in the epoch that just ended.

    Counts from all dataloader workers are summed (they share one counter per loader
    transform) and the epoch count is reset. Logged at WARNING when anything was skipped,
    at INFO otherwise; the count is also stored in the message hub as
    ``train/bad_images_skipped``.

    Add it with ``custom_hooks = [dict(type='BadImageCountHook')]`` (the train tool adds it,
    with ``max_bad_images`` from ``dataset_check``).

    Args:
        max_bad_images (int, optional): Stop the run (:class:`TooManyBadImagesError`
            naming the files) as soon as more distinct files than this were skipped.
            None never stops. Defaults to None.
        log_file (str): File in the work dir where the loaders record skipped files.
            Defaults to 'bad_images.jsonl'.
    """
    priority = 'LOW'

    def __init__(self, max_bad_images: Optional[int] = None, log_file: str = BAD_IMAGE_LOG) -> None:
        if max_bad_images is not None and max_bad_images < 0:
            raise ValueError(f'BadImageCountHook: max_bad_images must be >= 0 or None, got {max_bad_images}')
        self.max_bad_images = max_bad_images
        self.log_file = log_file
        self._path: Optional[str] = None
        self._offset = 0
        self._size = 0
        self.bad: Dict[str, str] = {}  # every distinct file recorded in this work dir
        self._reported = 0

    def before_train(self, runner) -> None:
        """Point the skipping loaders at the log (before any worker starts) and read what an
        interrupted run of this work dir already recorded."""
        self._path = osp.join(runner.work_dir, self.log_file)
        if runner.rank == 0 and not getattr(runner, '_resume', False) and osp.isfile(self._path):
            os.remove(self._path)  # a new run: the old list belongs to a previous one
        for transform in find_skipping_transforms(runner.train_dataloader.dataset):
            transform.bad_image_log = self._path
        self._offset, self._size, self.bad = 0, 0, {}
        self._read()
        self._reported = len(self.bad)
        self._check(runner)

    def _read(self) -> None:
        if self._path is None:
            return
        try:
            size = os.stat(self._path).st_size
        except FileNotFoundError:
            return
        if size == self._size:
            return
        new, self._offset = read_bad_images_since(self._path, self._offset)
        self._size = size
        for path, reason in new.items():
            self.bad.setdefault(path, reason)

    def _check(self, runner) -> None:
        if self.max_bad_images is not None and len(self.bad) > self.max_bad_images:
            raise TooManyBadImagesError(self.bad, self.max_bad_images, 'were skipped during training')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """One ``stat`` per iteration; the log is read only when it grew."""
        self._read()
        if len(self.bad) > self._reported:
            new = dict(list(self.bad.items())[self._reported:])
            runner.logger.warning(f'bad image(s) skipped by the training pipeline: {format_bad_images(new)} '
                                  f'({len(self.bad)} distinct file(s) in this run'
                                  + (f', the run stops above {self.max_bad_images})'
                                     if self.max_bad_images is not None else ')'))
            self._reported = len(self.bad)
        self._check(runner)

    def after_train_epoch(self, runner) -> None:
        counters = find_skip_counters(runner.train_dataloader.dataset)
        if not counters:
            return
        epoch_count = total = 0
        for counter in counters:
            count, seen = counter.pop_epoch()
            epoch_count += count
            total += seen
        runner.message_hub.update_info('train/bad_images_skipped', epoch_count)
        message = (f'Epoch {runner.epoch + 1}: {epoch_count} bad image(s) skipped by the training pipeline '
                   f'({total} since the start of the run)')
        if epoch_count:
            where = (f'; files: {format_bad_images(self.bad)} (all in {self._path})' if self.bad else
                     '; see the first skip logged by each worker for the file and reason')
            runner.logger.warning(message + where)
        else:
            runner.logger.info(message)
