"""``dp-stage-cost`` / ``tools/stage_cost.py``: what a training step of each stage costs -
FLOPs per image at the stage's train resolution (forward + backward, per top module),
measured seconds per image on this machine, and the ratios.

``dp-stage-cost PRETRAIN_CFG FINETUNE_CFG [--batch-size 2] [--steps 3] [--no-timing]
[--threads N] [--out FILE.json]``

Replaces guessing from mmdet's ``get_flops.py``, which measures the *val* pipeline (the same for
both stages) and needs the dataset. No dataset is needed here: inputs are synthetic, shaped by
each config's train pipeline. FLOPs are machine-independent; seconds are not.
"""
import argparse
import json
import logging
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction

from ..analysis_tools.stage_cost import compare_stages, format_cost_table, measure_stage
from ..config.paths import resolve_config_path
from ..errors import ConfigInputError, StageCostError

__all__ = ['parse_args', 'main']


def _size(text: str):
    try:
        w, h = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r}: expected WxH, e.g. 1344x800')
    return w, h


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='FLOPs and time per image of a pretrain and a fine-tune step')
    parser.add_argument('pretrain_config')
    parser.add_argument('finetune_config')
    parser.add_argument('--batch-size', type=int, default=2, help='images per counted step (default 2)')
    parser.add_argument('--steps', type=int, default=3, help='timed steps after the counted one (default 3)')
    parser.add_argument('--no-timing', action='store_true', help='count FLOPs only (large models on CPU)')
    parser.add_argument('--threads', type=int, help='torch CPU threads for the timed steps (default: torch default)')
    parser.add_argument('--pretrain-size', type=_size, help='override the pretrain input, WxH')
    parser.add_argument('--finetune-size', type=_size, help='override the fine-tune input, WxH')
    parser.add_argument('--out', help='JSON result (default work_dirs/stage_cost/<finetune config>.json)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='overrides applied to both configs')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='[stage_cost] %(message)s')
    steps = 0 if args.no_timing else args.steps
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        stages = []
        for name, path, size in (('pretrain', args.pretrain_config, args.pretrain_size),
                                 ('finetune', args.finetune_config, args.finetune_size)):
            path = resolve_config_path(path)
            cfg = Config.fromfile(path)
            if args.cfg_options:
                cfg.merge_from_dict(args.cfg_options)
            stages.append(measure_stage(cfg, name, path, batch_size=args.batch_size, size=size, timed_steps=steps))
    except (ConfigInputError, StageCostError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    ratios = compare_stages(*stages)
    print(format_cost_table(stages))
    line = f'\nfine-tune / pretrain per image: pixels {ratios["pixels"]:.2f}x, FLOPs {ratios["flops"]:.2f}x'
    if ratios['seconds']:
        line += (f', measured time {ratios["seconds"]:.2f}x (this machine, {torch.get_num_threads()} CPU threads, '
                 f'best of {args.steps} steps)')
    print(line)
    out = args.out or osp.join('work_dirs', 'stage_cost',
                               osp.splitext(osp.basename(args.finetune_config))[0] + '.json')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(dict(stages=[s.to_dict() for s in stages], ratios=ratios), f, indent=1)
    print(f'written: {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
