"""``dp-train`` / ``tools/train.py``: train a detector (direct pre-training or fine-tuning).

``dp-train CONFIG [--work-dir D] [--resume [CKPT]] [--amp] [--auto-scale-lr] [--tensorboard]
[--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]`` - MMDetection 3.3's flags - and
``--accumulate N`` (gradient accumulation). A run that diverges (``NonFiniteLossHook``) ends
with one ``error:`` line and exit code 3.
"""
import argparse
import logging
import os
import sys
from typing import List, Optional

from mmengine.config import DictAction
from torch.distributed.elastic.multiprocessing.errors import record

from ..apis.training import build_train_config, train
from ..datasets.bad_image_log import TooManyBadImagesError
from ..errors import ConfigInputError, TrainingDivergedError
from ..runtime.work_dir_lock import WorkDirLockedError

__all__ = ['add_common_args', 'parse_args', 'build_config', 'main']


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


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
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
    args = parser.parse_args(argv)
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


@record  # under torchrun, a failing rank's traceback is shown in the job's error summary
def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    rank0 = os.environ.get('RANK', '0') == '0'
    logging.basicConfig(level=logging.INFO if rank0 else logging.WARNING, format='[%(name)s] %(message)s')
    try:
        cfg = build_config(args)
    except ConfigInputError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    if args.check_only:
        return 0
    try:
        train(cfg)
    except TrainingDivergedError as error:  # NaN/inf loss or weights: stopped before any harm
        if rank0:
            print(f'error: {error}', file=sys.stderr)
        return 3
    except (WorkDirLockedError, TooManyBadImagesError) as error:  # another live run; too many bad images
        if rank0:
            print(f'error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
