"""Miniature reproduction on the embedded toy set: (a) direct pretrain -> finetune,
(b) finetune-only from scratch, (c) from scratch at high resolution for (a)'s wall-clock.

``python tools/mini_repro.py [--work-root work_dirs/mini_repro] [--out docs/mini_repro] [--arms a b c]``

Run from the repository root. Generates data/toy_coco if missing. Re-running skips
finished stages (and resumes an interrupted one), then rewrites the reports.
"""
import argparse
import logging
import os
import sys

from direct_pretrain.apis import ConfigInputError
from direct_pretrain.apis.chain import REPO_ROOT
from direct_pretrain.apis.mini_repro import ARMS, format_comparison, run_mini_repro
from direct_pretrain.datasets import generate_toy_coco, toy_coco_is_complete


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-root', default='work_dirs/mini_repro', help='parent of the arms\' work dirs')
    parser.add_argument('--out', default='docs/mini_repro', help='folder for results.md/json, plots, arm reports')
    parser.add_argument('--arms', nargs='+', choices=[a.key for a in ARMS], default=[a.key for a in ARMS])
    parser.add_argument('--tensorboard', action='store_true', help='also log the training stages to TensorBoard')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='[mini_repro] %(message)s')
    if os.path.abspath(os.getcwd()) != REPO_ROOT:
        print(f'error: run from the repository root ({REPO_ROOT}); the toy configs use data_root data/toy_coco/.',
              file=sys.stderr)
        return 2
    if not toy_coco_is_complete('data/toy_coco'):
        generate_toy_coco('data/toy_coco')
    try:
        results = run_mini_repro(args.work_root, args.out, [a for a in ARMS if a.key in args.arms],
                                 train_args=['--tensorboard'] if args.tensorboard else [])
    except (ConfigInputError, RuntimeError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    print(format_comparison(results))
    print(f'\nresults: {os.path.join(args.out, "results.md")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
