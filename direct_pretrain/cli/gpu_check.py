"""``dp-gpu-check`` / ``tools/gpu_check.py``: check and measure the package on a CUDA machine.

``dp-gpu-check [--dry-run] [--out summary.json] [--benchmarks NAME ...] [--precisions fp32 bf16 fp16]
[--warmup N] [--steps N] [--no-correctness] [--no-training] [--work-dir D] [--torchvision-cuda-ops]``

Prints the JSON summary on stdout (and writes it to ``--out``), a short table on stderr.
Exit code 0: everything ran and passed; 1: the summary records failures; 2: bad input
(one ``error:`` line, nothing written). What is checked: :mod:`direct_pretrain.analysis_tools.gpu_check`
and docs/gpu.md.
"""
import argparse
import contextlib
import json
import logging
import os.path as osp
import sys
from typing import List, Optional

from mmengine.logging import MMLogger

from ..analysis_tools.gpu_check import BENCHMARKS, GpuCheckOptions, format_summary, run_gpu_check
from ..errors import GpuCheckInputError

__all__ = ['parse_args', 'main']


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    defaults = GpuCheckOptions()
    parser = argparse.ArgumentParser(description='Check and measure direct_pretrain on a CUDA machine '
                                     '(JSON summary on stdout).')
    parser.add_argument('--dry-run', action='store_true',
                        help='no CUDA calls: build every model and take one small train step on CPU, run the CPU '
                        'checks, plan the training commands; figures are null. Required without a GPU.')
    parser.add_argument('--out', help='also write the JSON summary to this file')
    parser.add_argument('--benchmarks', nargs='+', default=list(defaults.benchmarks), metavar='NAME',
                        help=f'throughput configurations, any of: {", ".join(BENCHMARKS)} (default: all)')
    parser.add_argument('--precisions', nargs='+', metavar='P', help='keep only these of fp32, bf16, fp16')
    parser.add_argument('--warmup', type=int, default=defaults.warmup, help='untimed steps per configuration')
    parser.add_argument('--steps', type=int, default=defaults.steps, help='timed steps per configuration')
    parser.add_argument('--dry-size', type=int, default=defaults.dry_size,
                        help='long side (px, multiple of 32) of the dry run\'s images')
    parser.add_argument('--no-correctness', action='store_true', help='skip the RoIAlign / nms / SyncBN checks')
    parser.add_argument('--no-training', action='store_true', help='skip the short toy-chain training')
    parser.add_argument('--work-dir', default=defaults.work_dir, help='work folder of the short training')
    parser.add_argument('--pretrain-images', type=int, default=defaults.pretrain_images,
                        help='training images of the short pretrain stage (one epoch)')
    parser.add_argument('--finetune-images', type=int, default=defaults.finetune_images,
                        help='training images of the short fine-tune stage (one epoch)')
    parser.add_argument('--torchvision-cuda-ops', action='store_true',
                        help='route mmcv nms / RoIAlign on CUDA to torchvision in the benchmarks, even where mmcv '
                        'has CUDA ops, and switch the route on for the training stages (config key '
                        'torchvision_cuda_ops=True)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='[%(name)s] %(message)s', stream=sys.stderr)

    options = GpuCheckOptions(
        dry_run=args.dry_run, benchmarks=tuple(args.benchmarks),
        precisions=tuple(args.precisions) if args.precisions else None, warmup=args.warmup, steps=args.steps,
        dry_size=args.dry_size, correctness=not args.no_correctness, training=not args.no_training,
        work_dir=args.work_dir, pretrain_images=args.pretrain_images, finetune_images=args.finetune_images,
        torchvision_cuda_ops=args.torchvision_cuda_ops)
    try:
        if args.out and not osp.isdir(osp.dirname(osp.abspath(args.out))):
            raise GpuCheckInputError(f'--out {args.out!r}: folder {osp.dirname(osp.abspath(args.out))!r} does not '
                                     'exist; create it or write elsewhere.')
        options.validate()
        # stdout is for the JSON alone: what the run prints goes to stderr, and mmengine's logger
        # (created here, so its handler writes to stderr) speaks from WARNING up - at INFO it
        # reports every parameter's init.
        with contextlib.redirect_stdout(sys.stderr):
            MMLogger.get_instance('mmengine', log_level='WARNING')
            summary = run_gpu_check(options)
    except GpuCheckInputError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    text = json.dumps(summary, indent=1, default=str)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    print(text)
    print(format_summary(summary), file=sys.stderr)
    return 1 if summary['failures'] else 0


if __name__ == '__main__':
    sys.exit(main())
