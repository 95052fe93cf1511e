"""``dp-browse-pipeline`` / ``tools/browse_pipeline.py``: what each stage's train pipeline
feeds the model, as one PNG grid per stage.

``dp-browse-pipeline CONFIG [--stage pretrain|finetune] --out DIR [-n N] [--data-root D]``

A fine-tune config that names its ``pretrain_config`` gives both stages (``DIR/pretrain.png``,
``DIR/finetune.png``, the same dataset indices in both); any other config its own stage.
Unlike mmdet's ``browse_dataset.py`` it ends on ``RepeatDataset`` configs: it draws N samples.
"""
import argparse
import logging
import os.path as osp
import sys

from mmengine.config import Config, DictAction

from ..analysis_tools.pipeline_browser import browse_stage, stage_configs
from ..config.data_root import set_data_root
from ..config.input_checks import check_dataset_paths
from ..config.paths import resolve_config_path
from ..errors import BrowseError, ConfigInputError

__all__ = ['parse_args', 'main']


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Browse the train pipeline of a stage (finite on wrapped datasets)')
    parser.add_argument('config', help='a train config; a fine-tune with pretrain_config shows both stages')
    parser.add_argument('--stage', choices=['pretrain', 'finetune'], help='only this stage (default: all the '
                        'config stands for)')
    parser.add_argument('--out', required=True, help='folder for <stage>.png')
    parser.add_argument('-n', '--num', type=int, default=6, help='samples per stage (default 6)')
    parser.add_argument('--seed', type=int, default=0, help="seed of the pipeline's random draws (default 0)")
    parser.add_argument('--cell', type=int, default=320, help='panel size in pixels (default 320)')
    parser.add_argument('--data-root', help='dataset folder, set wherever the config nests data_root')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings (key=value)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='[browse_pipeline] %(message)s')
    try:
        config = resolve_config_path(args.config)
        stages = stage_configs(config, Config.fromfile(config))
        if args.stage:
            if args.stage not in stages:
                raise BrowseError(f'{config} is a {"/".join(stages)} config and names no {args.stage} stage; '
                                  f'pass the {args.stage} config itself.')
            stages = {args.stage: stages[args.stage]}
        cfgs = {}
        for stage, path in stages.items():  # check every stage before writing anything
            cfg = cfgs[stage] = Config.fromfile(path)
            if args.cfg_options:
                cfg.merge_from_dict(args.cfg_options)
            if args.data_root:
                set_data_root(cfg, args.data_root)
            check_dataset_paths(cfg, ('train_dataloader', ))
        for stage, cfg in cfgs.items():
            out = osp.join(args.out, f'{stage}.png')
            result = browse_stage(cfg, out, args.num, args.seed, args.cell,
                                  title=f'{stage}: {osp.basename(stages[stage])}')
            print(f'{stage}: {len(result.samples)} samples -> {out}')
    except (ConfigInputError, BrowseError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
