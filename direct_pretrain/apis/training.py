"""``tools/train.py``: MMDetection 3.3's training entry point plus up-front input checks.

Flags and semantics follow mmdet's tool (``--work-dir``, ``--amp``, ``--auto-scale-lr``,
``--resume [path]``, ``--cfg-options``, ``--launcher``). Additions: configs, dataset paths
and ``load_from`` are checked before the work dir is created, distributed runs work
on CPU (gloo), and ``--tensorboard`` adds TensorBoard logging (the original ``--use_tfboard``).
"""
import argparse
import logging
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction

__all__ = ['parse_train_args', 'add_tensorboard_backend', 'build_train_config', 'train']

logger = logging.getLogger(__name__)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs merged into the config '
                        '(lists as key="[a,b]" or key=a,b, no white space)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_train_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a detector (direct pre-training or fine-tuning)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training (CUDA only)')
    parser.add_argument('--auto-scale-lr', action='store_true', help='enable automatically scaling LR')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or with no path from the latest one in the work dir')
    parser.add_argument('--tensorboard', action='store_true',
                        help='also log to TensorBoard (event files under <work_dir>/<timestamp>/vis_data)')
    add_common_args(parser)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def load_config(path: str, args: argparse.Namespace) -> Config:
    """Load ``path``, apply ``--cfg-options`` and resolve the work dir the mmdet way."""
    from .config_checks import check_config_file
    check_config_file(path)
    cfg = Config.fromfile(path)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def add_tensorboard_backend(cfg: Config) -> None:
    """Append ``TensorboardVisBackend`` to ``cfg.visualizer.vis_backends`` (the original
    ``--use_tfboard``); the local JSON backend stays, so reports keep working."""
    from .config_checks import ConfigInputError
    visualizer = cfg.get('visualizer')
    if not isinstance(visualizer, dict):
        raise ConfigInputError('--tensorboard adds a vis backend to cfg.visualizer, but the config defines no '
                               "visualizer; add visualizer=dict(type='DetLocalVisualizer', vis_backends=[]).")
    backends = list(visualizer.get('vis_backends') or [])
    if not any(b.get('type') == 'TensorboardVisBackend' for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    visualizer.vis_backends = backends


def build_train_config(args: argparse.Namespace) -> Config:
    """The config a training run uses, validated; raises ConfigInputError on bad input."""
    import torch

    from ..checkpoint.atomic_save import find_resumable_checkpoint
    from .config_checks import ConfigInputError, check_train_inputs, validate_training_data
    cfg = load_config(args.config, args)
    if args.amp:
        if not torch.cuda.is_available():
            raise ConfigInputError('--amp uses AmpOptimWrapper, which needs a CUDA device; none is visible. '
                                   'Drop --amp to train in fp32 on this machine.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        scale = cfg.get('auto_scale_lr')
        if not scale or 'enable' not in scale or 'base_batch_size' not in scale:
            raise ConfigInputError(f'--auto-scale-lr needs auto_scale_lr=dict(enable=False, base_batch_size=N) '
                                   f'in {args.config}.')
        cfg.auto_scale_lr.enable = True
    if getattr(args, 'tensorboard', False):
        add_tensorboard_backend(cfg)
    if args.resume == 'auto':
        # Unlike mmengine's own lookup, never pick a partial file; and with nothing to
        # resume keep load_from, so a restarted fine-tune still starts from the pretrain.
        latest = find_resumable_checkpoint(cfg.work_dir)
        if latest:
            cfg.resume = True
            cfg.load_from = latest
        else:
            logger.warning('--resume: no complete checkpoint in %s; starting a new run', cfg.work_dir)
            cfg.resume = False
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    check_train_inputs(cfg)
    validate_training_data(cfg)
    return cfg


def train(cfg: Config):
    """Build the Runner from a prepared config and train; returns the runner."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from .launch import prepare_distributed
    prepare_distributed(cfg, cfg.get('launcher', 'none'))
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()
    return runner
