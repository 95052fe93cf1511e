"""Make every dataloader worker of a run die with the run.

Why: a training, validation or test process killed by SIGKILL or SIGTERM leaves its
dataloader workers running as orphans (see :mod:`direct_pretrain.runtime.process_lifetime`).
``EpochSeedHook``'s worker init already sets the parent-death signal for the training
loader; this hook does the same for any config, and for the validation and test loaders,
by wrapping whatever ``worker_init_fn`` the loader has (mmengine's seeding one, say).
The train and test tools add it to every run (:func:`add_worker_lifetime_hook`);
``dp-infer`` starts no worker (mmdet's ``DetInferencer`` runs its pipeline in-process).
"""
import functools
from typing import Callable, Optional

from mmengine.config import Config
from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from ...runtime.process_lifetime import die_with_parent

__all__ = ['WorkerLifetimeHook', 'worker_init_with_parent_death', 'add_worker_lifetime_hook']


def _init_with_parent_death(worker_id: int, inner: Optional[Callable] = None) -> None:
    die_with_parent()
    if inner is not None:
        inner(worker_id)


def worker_init_with_parent_death(inner: Optional[Callable] = None) -> Callable:
    """A picklable ``worker_init_fn`` that sets the parent-death signal, then calls ``inner``."""
    if isinstance(inner, functools.partial) and inner.func is _init_with_parent_death:
        return inner  # already wrapped
    return functools.partial(_init_with_parent_death, inner=inner)


def _wrap(loader) -> None:
    if loader is None or getattr(loader, 'num_workers', 0) == 0:
        return
    loader.worker_init_fn = worker_init_with_parent_death(loader.worker_init_fn)


@HOOKS.register_module()
class WorkerLifetimeHook(Hook):
    """Wrap each loader's ``worker_init_fn`` so that its workers die with the run (Linux).

    Add it with ``custom_hooks = [dict(type='WorkerLifetimeHook')]``; it needs no
    arguments. Its priority runs it after ``EpochSeedHook`` has installed its own worker
    init, which it then wraps.
    """
    priority = 'HIGHEST'  # before every hook that iterates a loader

    def before_train(self, runner) -> None:
        _wrap(runner.train_dataloader)

    def before_train_epoch(self, runner) -> None:
        # EpochSeedHook (VERY_HIGH) may have replaced the init in its own before_train.
        _wrap(runner.train_dataloader)

    def before_val(self, runner) -> None:
        _wrap(runner.val_loop.dataloader)

    def before_test(self, runner) -> None:
        _wrap(runner.test_loop.dataloader)


def add_worker_lifetime_hook(cfg: Config) -> None:
    """Append ``WorkerLifetimeHook`` to ``cfg.custom_hooks`` unless the config has it."""
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(isinstance(h, dict) and h.get('type') in ('WorkerLifetimeHook', 'mmdet.WorkerLifetimeHook')
               for h in hooks):
        hooks.append(dict(type='WorkerLifetimeHook'))
    cfg.custom_hooks = hooks
