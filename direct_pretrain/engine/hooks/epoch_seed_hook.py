"""Reseed every random generator at the start of each epoch, for exact resume.

Why: mmengine seeds once at start-up and does not store RNG states in checkpoints, so a
run resumed from ``epoch_N.pth`` draws different augmentations and RoI samples than the
uninterrupted run would have. Seeding python, numpy and torch from (seed, epoch, rank)
at every epoch start - and the dataloader workers from the torch seed the main process
hands them - makes epoch N+1 identical whether or not the run was killed in between.
The worker init also makes each worker die with the training process (Linux
``PR_SET_PDEATHSIG``), so a killed run leaves no orphaned worker behind.
"""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import FUNCTIONS

from mmdet.registry import HOOKS
from ...runtime.process_lifetime import die_with_parent

__all__ = ['EpochSeedHook', 'seed_worker_from_torch']


@FUNCTIONS.register_module()
def seed_worker_from_torch(worker_id: int) -> None:
    """Dataloader ``worker_init_fn``: seed python and numpy from the worker's torch seed,
    which torch derives from the main process's generator when the workers start, and
    have the kernel kill the worker when the training process dies (SIGKILL or SIGTERM)."""
    die_with_parent()
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Seed python/numpy/torch from (``runner.seed``, epoch, rank) before each train epoch.

    Exact resume also needs ``persistent_workers=False`` when ``num_workers > 0`` (workers
    that live across epochs carry their generator state over); the hook warns otherwise.
    """
    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        loader.worker_init_fn = seed_worker_from_torch
        if loader.num_workers > 0 and loader.persistent_workers:
            runner.logger.warning('EpochSeedHook: persistent_workers=True keeps worker RNG state across epochs; '
                                  'set train_dataloader.persistent_workers=False for exact resume.')

    def before_train_epoch(self, runner) -> None:
        base = runner.seed if runner.seed is not None else 0
        seed = (int(base) * 1_000_003 + runner.epoch * 7_919 + runner.rank * 104_729) % 2**32
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
