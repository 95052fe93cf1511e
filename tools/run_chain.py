"""The main job: direct pretrain -> finetune -> test, with a results table.

``python tools/run_chain.py PRETRAIN_CFG FINETUNE_CFG [--work-root D] [--toy-data]
[--report DIR | --no-report] [--tensorboard]``.
Re-running skips finished stages and resumes an interrupted one. Stage progress with the
chain's ETA is logged; the run report (tables, loss / mAP / LR plots) goes to
``<finetune work dir>/report`` unless ``--report DIR`` says elsewhere.
"""
import argparse
import logging
import os.path as osp
import sys

from direct_pretrain.apis import ConfigInputError, format_results_table, run_chain
from direct_pretrain.datasets import generate_toy_coco, toy_coco_is_complete

TOY_PRETRAIN = 'configs/toy/mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py'
TOY_FINETUNE = 'configs/toy/mask-rcnn_r18_fpn_1xb2-direct-finetune_toy.py'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('pretrain_config', nargs='?', default=TOY_PRETRAIN)
    parser.add_argument('finetune_config', nargs='?', default=TOY_FINETUNE)
    parser.add_argument('--work-root', help='parent of the stage work dirs (default: work_dirs/<config name>)')
    parser.add_argument('--eval', nargs='+', default=['bbox', 'segm'], help='test metrics')
    parser.add_argument('--toy-data', metavar='ROOT', nargs='?', const='data/toy_coco',
                        help='generate the embedded toy dataset at ROOT (default data/toy_coco) if missing')
    parser.add_argument('--report', metavar='DIR', help='run report folder (default: <finetune work dir>/report)')
    parser.add_argument('--no-report', action='store_true', help='do not write the run report')
    parser.add_argument('--tensorboard', action='store_true', help='also log both training stages to TensorBoard')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='[run_chain] %(message)s')
    if args.toy_data and not toy_coco_is_complete(args.toy_data):
        generate_toy_coco(args.toy_data)
    try:
        train_args = ['--tensorboard'] if args.tensorboard else []
        results = run_chain(args.pretrain_config, args.finetune_config, args.work_root, args.eval,
                            pretrain_args=train_args, finetune_args=train_args, report_dir=args.report,
                            make_report=not args.no_report)
    except (ConfigInputError, RuntimeError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    print(format_results_table(results))
    report = args.report or osp.join(osp.dirname(results[-1].output), 'report')
    if not args.no_report and osp.isfile(osp.join(report, 'report.md')):
        print(f'\nrun report: {osp.join(report, "report.md")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
