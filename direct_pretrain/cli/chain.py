"""``dp-chain`` / ``tools/run_chain.py``: direct pretrain -> finetune -> test, with a results table.

``dp-chain [PRETRAIN_CFG FINETUNE_CFG] [--work-root D] [--toy-data [ROOT]]
[--report DIR | --no-report] [--tensorboard] [--data-root D] [--verbose]``. Without configs it
runs the embedded toy pair installed with the package (``direct_pretrain::toy/...``), from any
directory. Re-running skips finished stages and resumes an interrupted one. Each stage shows one
progress bar (iterations, loss, ETA) and writes its full output to ``<work dir>/stage.log``
(``--verbose``: the output on the terminal as well); stage progress with the chain's ETA is
logged; the run report (tables, loss / mAP / LR plots) goes to
``<finetune work dir>/report`` unless ``--report DIR`` says elsewhere.
"""
import argparse
import logging
import os.path as osp
import sys
from typing import List, Optional

from ..chain import format_results_table, run_chain
from ..config.paths import resolve_config_path
from ..datasets.toy_coco import (generate_toy_coco, generate_toy_keypoints, toy_coco_is_complete,
                                 toy_keypoints_is_complete)
from ..errors import ConfigInputError
from ..runtime.work_dir_lock import WorkDirLockedError

__all__ = ['TOY_PRETRAIN', 'TOY_FINETUNE', 'main']

TOY_PRETRAIN = 'toy/mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py'
TOY_FINETUNE = 'toy/mask-rcnn_r18_fpn_1xb2-direct-finetune_toy.py'


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('pretrain_config', nargs='?', default=TOY_PRETRAIN,
                        help='pretrain config: a path, or a name under the installed configs (default: the toy pair)')
    parser.add_argument('finetune_config', nargs='?', default=TOY_FINETUNE, help='finetune config (path or name)')
    parser.add_argument('--work-root', help='parent of the stage work dirs (default: work_dirs/<config name>)')
    parser.add_argument('--eval', nargs='+', help="test metrics (default: the finetune config's test_evaluator "
                        'metrics, e.g. bbox segm, or bbox keypoints for Keypoint R-CNN)')
    parser.add_argument('--toy-data', metavar='ROOT', nargs='?', const='data/toy_coco',
                        help='generate the embedded toy dataset at ROOT (default data/toy_coco) if missing')
    parser.add_argument('--toy-keypoints', metavar='ROOT', nargs='?', const='data/toy_keypoints',
                        help='generate the embedded toy keypoint dataset (stick figures) at ROOT (default '
                        'data/toy_keypoints) if missing, for the toy Keypoint R-CNN pair')
    parser.add_argument('--report', metavar='DIR', help='run report folder (default: <finetune work dir>/report)')
    parser.add_argument('--no-report', action='store_true', help='do not write the run report')
    parser.add_argument('--tensorboard', action='store_true', help='also log both training stages to TensorBoard')
    parser.add_argument('--data-root', metavar='DIR', help='dataset folder of every stage (train --data-root)')
    parser.add_argument('--verbose', action='store_true',
                        help="show the stages' full output instead of one progress bar per stage (the output "
                        'goes to <work dir>/stage.log either way)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='[chain] %(message)s')
    if args.toy_data and not toy_coco_is_complete(args.toy_data):
        generate_toy_coco(args.toy_data)
    if args.toy_keypoints:
        if not toy_keypoints_is_complete(args.toy_keypoints):
            generate_toy_keypoints(args.toy_keypoints)
    try:
        pretrain_config, finetune_config = (resolve_config_path(args.pretrain_config),
                                            resolve_config_path(args.finetune_config))
        train_args = ['--tensorboard'] if args.tensorboard else []
        results = run_chain(pretrain_config, finetune_config, args.work_root, args.eval,
                            pretrain_args=train_args, finetune_args=train_args, report_dir=args.report,
                            make_report=not args.no_report, data_root=args.data_root, verbose=args.verbose)
    except (ConfigInputError, WorkDirLockedError) as error:  # bad input; a stage dir in use by another run
        print(f'error: {error}', file=sys.stderr)
        return 2
    except RuntimeError as error:  # a stage failed; its own output said why
        print(f'error: {error}', file=sys.stderr)
        return 1
    print(format_results_table(results))
    report = args.report or osp.join(osp.dirname(results[-1].output), 'report')
    if not args.no_report and osp.isfile(osp.join(report, 'report.md')):
        print(f'\nrun report: {osp.join(report, "report.md")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
