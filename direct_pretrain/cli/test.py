"""``dp-test`` / ``tools/test.py``: test (and evaluate) a detector.

``dp-test CONFIG CHECKPOINT [--eval bbox segm] [--metrics-out m.json] [--out r.pkl]
[--show] [--show-dir D] [--tta] [--classwise] [--work-dir D] [--cfg-options k=v ...] [--launcher ...]``
- MMDetection 3.3's flags plus the original release's ``--eval``.
"""
import argparse
import logging
import os
import sys
from typing import List, Optional

from torch.distributed.elastic.multiprocessing.errors import record

from ..apis.testing import COCO_METRICS, build_test_config, test
from ..errors import ConfigInputError
from ..runtime.work_dir import check_work_dir
from .train import add_common_args

__all__ = ['parse_args', 'build_config', 'main']


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', type=str, help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument('--eval', nargs='+', metavar='METRIC',
                        help=f'COCO metrics to evaluate, any of {", ".join(COCO_METRICS)} (e.g. --eval bbox segm, '
                        '--eval bbox keypoints)')
    parser.add_argument('--metrics-out', help='write the evaluated metrics to this JSON file (default: '
                        '<work_dir>/test_metrics.json, where report.py looks for them)')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='save painted images under work_dir/timestamp/show_dir')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation (flip)')
    parser.add_argument('--classwise', action='store_true', help='per-class AP (box, mask, keypoints) under the '
                        "dataset's class names, in the metrics and test_metrics.json")
    add_common_args(parser)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args: argparse.Namespace):
    """The validated test config for parsed ``args`` (raises ``ConfigInputError``)."""
    return build_test_config(args.config, args.checkpoint, work_dir=args.work_dir, cfg_options=args.cfg_options,
                             launcher=args.launcher, eval_metrics=args.eval, out=args.out, show=args.show,
                             show_dir=args.show_dir, wait_time=args.wait_time, tta=args.tta,
                             data_root=args.data_root, classwise=args.classwise)


@record  # under torchrun, a failing rank's traceback is shown in the job's error summary
def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    rank0 = os.environ.get('RANK', '0') == '0'
    logging.basicConfig(level=logging.INFO if rank0 else logging.WARNING, format='[%(name)s] %(message)s')
    try:
        cfg = build_config(args)
        check_work_dir(cfg.work_dir, lock=False)  # logs and metrics go there: a file or read-only is refused
    except ConfigInputError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    if args.check_only:
        return 0
    # rank 0 writes the metrics into the work dir unless --metrics-out says elsewhere
    test(cfg, out=args.out, metrics_out=args.metrics_out or os.path.join(cfg.work_dir, 'test_metrics.json'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
