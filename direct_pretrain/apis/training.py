"""Training as plain functions: build the validated config of a run, then train it.

The semantics are those of MMDetection 3.3's ``tools/train.py`` (work dir default,
``--amp``, ``--auto-scale-lr``, ``--resume [path]``, ``--cfg-options``, ``--launcher``);
what is added is checked *before* the Runner creates the work dir: the config, dataset
paths and ``load_from`` exist, and the training annotations are usable. Distributed runs
work on CPU (gloo), and ``tensorboard`` adds TensorBoard logging (the original
``--use_tfboard``). Argument parsing lives in :mod:`direct_pretrain.cli.train`.
"""
import logging
from typing import Any, Dict, Optional

import torch
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..config.accumulation import apply_gradient_accumulation
from ..config.batch_check import check_batch_size, launcher_world_size
from ..config.consistency_checks import check_train_consistency
from ..config.input_checks import (check_train_inputs, checked_once_per_job, record_dataset_checks,
                                   validate_training_data)
from ..config.loading import load_config
from ..config.training_guards import apply_fault_tolerance
from ..errors import ConfigInputError
from ..runtime.atomic_save import find_resumable_checkpoint
from ..runtime.work_dir import prepare_work_dir
from .launch import prepare_runtime

__all__ = ['add_tensorboard_backend', 'build_train_config', 'train']

logger = logging.getLogger(__name__)


def add_tensorboard_backend(cfg: Config) -> None:
    """Append ``TensorboardVisBackend`` to ``cfg.visualizer.vis_backends`` (the original
    ``--use_tfboard``); the local JSON backend stays, so reports keep working."""
    visualizer = cfg.get('visualizer')
    if not isinstance(visualizer, dict):
        raise ConfigInputError('--tensorboard adds a vis backend to cfg.visualizer, but the config defines no '
                               "visualizer; add visualizer=dict(type='DetLocalVisualizer', vis_backends=[]).")
    backends = list(visualizer.get('vis_backends') or [])
    if not any(b.get('type') == 'TensorboardVisBackend' for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    visualizer.vis_backends = backends


def build_train_config(config: str,
                       work_dir: Optional[str] = None,
                       cfg_options: Optional[Dict[str, Any]] = None,
                       launcher: str = 'none',
                       amp: bool = False,
                       auto_scale_lr: bool = False,
                       resume: Optional[str] = None,
                       tensorboard: bool = False,
                       accumulate: int = 1,
                       data_root: Optional[str] = None) -> Config:
    """The config a training run uses, validated before anything is written.

    Args:
        config (str): Config file path.
        work_dir (str, optional): Work dir; defaults as in mmdet's train tool.
        cfg_options (dict, optional): ``key=value`` overrides merged into the config.
        launcher (str): 'none', 'pytorch', 'slurm' or 'mpi'. Defaults to 'none'.
        amp (bool): Train with ``AmpOptimWrapper`` (CUDA only). Defaults to False.
        auto_scale_lr (bool): Enable the config's ``auto_scale_lr``. Defaults to False.
        resume (str, optional): 'auto' (newest complete checkpoint in the work dir) or a
            checkpoint path. Defaults to None (no resume).
        tensorboard (bool): Add ``TensorboardVisBackend``. Defaults to False.
        accumulate (int): Sum the gradients of this many batches per optimizer step
            (:func:`~.accumulation.apply_gradient_accumulation`: ``auto_scale_lr`` and
            iteration-based schedules count the effective batch). Defaults to 1.
        data_root (str, optional): Dataset folder, set on every dataset of the config
            (``--data-root``). Defaults to the config's.

    Raises:
        ConfigInputError: the config, a path it names or an option is unusable.
    """
    cfg = load_config(config, work_dir, cfg_options, launcher, data_root)
    if amp:
        if not torch.cuda.is_available():
            raise ConfigInputError('--amp uses AmpOptimWrapper, which needs a CUDA device; none is visible. '
                                   'Drop --amp to train in fp32 on this machine.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if auto_scale_lr:
        scale = cfg.get('auto_scale_lr')
        if not scale or 'enable' not in scale or 'base_batch_size' not in scale:
            raise ConfigInputError(f'--auto-scale-lr needs auto_scale_lr=dict(enable=False, base_batch_size=N) '
                                   f'in {config}.')
        cfg.auto_scale_lr.enable = True
    batch_warning = check_batch_size(cfg, launcher_world_size(launcher), auto_scale_lr, accumulate, warn=False)
    if accumulate != 1:
        apply_gradient_accumulation(cfg, accumulate)
    if tensorboard:
        add_tensorboard_backend(cfg)
    if resume == 'auto':
        # Unlike mmengine's own lookup, never pick a partial file; and with nothing to
        # resume keep load_from, so a restarted fine-tune still starts from the pretrain.
        latest = find_resumable_checkpoint(cfg.work_dir)
        if latest:
            cfg.resume = True
            cfg.load_from = latest
        else:
            logger.warning('--resume: no complete checkpoint in %s; starting a new run', cfg.work_dir)
            cfg.resume = False
    elif resume is not None:
        cfg.resume = True
        cfg.load_from = resume
    check_train_inputs(cfg)
    # heads vs classes, the val evaluator's files, warmup vs the run (sized by the dataset check's image counts)
    check_train_consistency(cfg, validate_training_data(cfg))
    if batch_warning and not checked_once_per_job(cfg):
        # once per job, after the checks passed: rank 0, or dist_launch.sh's check before torchrun
        logger.warning(batch_warning)
    apply_fault_tolerance(cfg)  # bad images skipped and counted, workers die with the run
    return cfg


def train(cfg: Config):
    """Build the Runner from a prepared config and train; returns the runner.

    Raises:
        WorkDirLockedError: another live run owns the work dir (nothing was written).
    """
    lock = prepare_work_dir(cfg.work_dir)  # one live run per work dir, taken before anything is written
    try:
        record_dataset_checks(cfg)  # the passed dataset check, for --resume (written only now the lock is held)
        prepare_runtime(cfg)
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
        runner.train()
    finally:
        if lock is not None:
            lock.release()
    return runner
