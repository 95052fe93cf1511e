"""Report, once per epoch, how many bad images the training pipeline skipped.

Why: with ``LoadImageReduced(on_bad_image='skip')`` a broken file makes the dataset draw
another index instead of killing a dataloader worker. That must not become silent data
loss, so the loader counts every skip in a counter shared by all worker processes
(:class:`SkipCounter`) and this hook reads and resets it after each training epoch.
"""
from typing import Iterator, List

from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from ...datasets.transforms import SkipCounter

__all__ = ['BadImageCountHook', 'find_skip_counters']

# Attributes through which dataset wrappers, pipelines and wrapper transforms reach
# the transforms they contain (RepeatDataset.dataset, ConcatDataset.datasets,
# BaseDataset.pipeline, Compose.transforms, RandomApply.transforms, ...).
_CHILD_ATTRS = ('dataset', 'datasets', 'pipeline', 'transforms', 'transform')


def _walk(obj, seen: set) -> Iterator[SkipCounter]:
    if obj is None or id(obj) in seen or isinstance(obj, (str, bytes, int, float, dict)):
        return
    seen.add(id(obj))
    counter = getattr(obj, 'skip_counter', None)
    if isinstance(counter, SkipCounter):
        yield counter
    if isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _walk(item, seen)
        return
    for attr in _CHILD_ATTRS:
        yield from _walk(getattr(obj, attr, None), seen)


def find_skip_counters(dataset) -> List[SkipCounter]:
    """Every distinct :class:`SkipCounter` reachable from ``dataset`` (wrappers included)."""
    counters, ids = [], set()
    for counter in _walk(dataset, set()):
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

    Add it with ``custom_hooks = [dict(type='BadImageCountHook')]``.
    """
    priority = 'LOW'

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
            runner.logger.warning(message + '; see the first skip logged by each worker for the file and reason')
        else:
            runner.logger.info(message)
