"""Log peak host memory, training wall time and images seen as training scalars.

Why: mmengine logs ``memory`` only on CUDA devices and never the time a run has spent
or how many images it has processed, so a report built from ``vis_data/scalars.json``
alone could not give peak memory, wall time or images/s for a CPU run. This hook puts
three scalars into the message hub before :class:`~mmengine.hooks.LoggerHook` writes
the log line, so they land in every logged record:

- ``peak_rss_mb``: peak resident set size of this process (``resource.getrusage``), MB.
  Dataloader workers are separate processes and are not included.
- ``elapsed_s``: seconds since ``before_train`` of this process, validation excluded
  (a resumed run starts again from 0; the report adds the segments up).
- ``images_seen``: images trained on by this process, all ranks together (the local
  batch times the world size).

None of the names match the log processor's ``mean_pattern`` (``loss|time|...``), so
the logged values are the current ones, not window means.
"""
import resource
import sys
import time
from typing import Optional

from mmengine.hooks import Hook

from mmdet.registry import HOOKS

__all__ = ['ResourceStatsHook', 'peak_rss_mb']


def peak_rss_mb() -> float:
    """Peak resident set size of the current process in MB (1e6 bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return peak / 1e6 if sys.platform == 'darwin' else peak * 1024 / 1e6


def _batch_len(data_batch) -> int:
    if isinstance(data_batch, dict):
        inputs = data_batch.get('inputs')
        if inputs is not None:
            return len(inputs)
    if isinstance(data_batch, (list, tuple)):
        return len(data_batch)
    return 0


@HOOKS.register_module()
class ResourceStatsHook(Hook):
    """Add ``peak_rss_mb``, ``elapsed_s`` and ``images_seen`` to the training log.

    Put it in ``custom_hooks``; it needs no arguments. Its priority (NORMAL) runs it
    before the LoggerHook (BELOW_NORMAL), so the values appear in the same record.
    """
    priority = 'NORMAL'

    def __init__(self) -> None:
        self._start: Optional[float] = None
        self._val_start: Optional[float] = None
        self._val_seconds = 0.0
        self._images = 0

    def before_train(self, runner) -> None:
        self._start = time.perf_counter()
        self._val_seconds = 0.0
        self._images = 0

    def before_val(self, runner) -> None:
        self._val_start = time.perf_counter()

    def after_val(self, runner) -> None:
        if self._val_start is not None:
            self._val_seconds += time.perf_counter() - self._val_start
            self._val_start = None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._start is None:  # train loop entered without before_train (should not happen)
            self._start = time.perf_counter()
        self._images += _batch_len(data_batch) * runner.world_size
        hub = runner.message_hub
        hub.update_scalar('train/peak_rss_mb', peak_rss_mb())
        hub.update_scalar('train/elapsed_s', time.perf_counter() - self._start - self._val_seconds)
        hub.update_scalar('train/images_seen', self._images)
