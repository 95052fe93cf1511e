"""``dp-train`` / ``tools/train.py``: train a detector (direct pre-training or fine-tuning).

``dp-train CONFIG [--work-dir D] [--resume [CKPT]] [--amp] [--auto-scale-lr] [--tensorboard]
[--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]`` - MMDetection 3.3's flags - and
``--accumulate N`` (gradient accumulation). A run that diverges (``NonFiniteLossHook``) ends
with one ``error:`` line - under torchrun too, printed by rank 0 - and exit code 3; the line
holds this very command line, changed to resume with a lower LR or another seed.
"""
import argparse
import logging
import os
import sys
from typing import List, Optional

import torch.distributed as dist
from mmengine.config import DictAction
from torch.distributed.elastic.multiprocessing.errors import record

from ..apis.training import build_train_config, train
from ..datasets.bad_image_log import TooManyBadImagesError
from ..errors import ConfigInputError, LossSpikeError, NonFiniteLossError, TrainingDivergedError
from ..runtime.run_command import record_run_command
from ..runtime.work_dir import check_work_dir
from ..runtime.work_dir_lock import WorkDirLockedError

__all__ = ['add_common_args', 'build_parser', 'parse_args', 'build_config', 'main']


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The flags mmdet's train and test tools share."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs merged into the config '
                        '(lists as key="[a,b]" or key=a,b, no white space)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--data-root', metavar='DIR',
                        help='dataset folder: set as data_root on every dataset of the config (also inside '
                        "RepeatDataset / ConcatDataset wrappers) and in the evaluators' ann_file")
    parser.add_argument('--check-only', action='store_true',
                        help='check the inputs (config, options, data, checkpoints) and exit; writes nothing')


def build_parser() -> argparse.ArgumentParser:
    """The train tool's argument parser."""
    parser = argparse.ArgumentParser(description='Train a detector (direct pre-training or fine-tuning)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training (CUDA only)')
    parser.add_argument('--auto-scale-lr', action='store_true', help='enable automatically scaling LR')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or with no path from the latest one in the work dir')
    parser.add_argument('--tensorboard', action='store_true',
                        help='also log to TensorBoard (event files under <work_dir>/<timestamp>/vis_data)')
    parser.add_argument('--check-images', choices=['quick', 'full', 'off'],
                        help='up-front check of the training images: quick (size, start and end markers; the '
                        "default, or the config's dataset_check.images), full (also parse every header), off")
    parser.add_argument('--accumulate', type=int, default=1, metavar='N',
                        help='sum the gradients of N batches per optimizer step (effective batch = GPUs x '
                        'batch x N; --auto-scale-lr and iteration-based warmups count it)')
    add_common_args(parser)
    return parser


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args: argparse.Namespace):
    """The validated training config for parsed ``args`` (raises ``ConfigInputError``)."""
    if getattr(args, 'check_images', None):
        args.cfg_options = dict(args.cfg_options or {}, **{'dataset_check.images': args.check_images})
    return build_train_config(args.config, work_dir=args.work_dir, cfg_options=args.cfg_options,
                              launcher=args.launcher, amp=args.amp, auto_scale_lr=args.auto_scale_lr,
                              resume=args.resume, tensorboard=args.tensorboard, accumulate=args.accumulate,
                              data_root=args.data_root)


def _leave_together(error: TrainingDivergedError) -> None:
    """Under torchrun, hold every rank until rank 0 has printed the error line: torchrun stops
    the other workers as soon as one exits. Only for what every rank raises at once (the loss
    guard's verdict is all-reduced); NaN weights are found by rank 0 alone, which saves."""
    if isinstance(error, (NonFiniteLossError, LossSpikeError)) and dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        except Exception:  # a broken process group: leave anyway
            pass


@record  # under torchrun, a failing rank's traceback is shown in the job's error summary
def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    rank0 = os.environ.get('RANK', '0') == '0'
    logging.basicConfig(level=logging.INFO if rank0 else logging.WARNING, format='[%(name)s] %(message)s')
    try:
        cfg = build_config(args)
        check_work_dir(cfg.work_dir)  # a file, not writable, a .lock that is a link or a folder
    except ConfigInputError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    if args.check_only:
        return 0
    # the command line as typed, for the restart command of a diverged run (NonFiniteLossHook)
    cfg.run_command = record_run_command(build_parser(), argv, 'direct_pretrain.cli.train')
    try:
        train(cfg)
    except TrainingDivergedError as error:  # NaN/inf loss, a loss spike or NaN weights: stopped before any harm
        if rank0:
            print(f'error: {error}', file=sys.stderr, flush=True)
        _leave_together(error)
        return 3
    except (ConfigInputError, WorkDirLockedError, TooManyBadImagesError) as error:
        # the work dir turned unusable; another live run; too many bad images
        if rank0:
            print(f'error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
