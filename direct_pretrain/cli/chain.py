"""``dp-chain`` / ``tools/run_chain.py``: direct pretrain -> finetune -> test, with a results table.

``dp-chain [PRETRAIN_CFG FINETUNE_CFG | --arch NAME] [--data DIR] [--work-root D] [--dry-run]
[--gpus N] [--accumulate N] [--auto-scale-lr] [--cfg-options k=v ...] [--toy-data [ROOT]]
[--report DIR | --no-report] [--tensorboard] [--data-root D] [--verbose]``. Without configs it
runs the embedded toy pair installed with the package (``direct_pretrain::toy/...``), from any
directory; ``--arch`` picks a zoo pair (the SyncBN P1x pretrain and its P1x-1x fine-tune).

Your own dataset in one command: ``--data DIR`` finds the COCO-format train / val files in DIR,
reads the classes in label order and writes the pair as two configs on that dataset into the
work root (thin overlays you can edit and rerun with ``dp-train``), then checks both stages and
runs them; ``--dry-run`` stops after the checks. Re-running skips finished stages and resumes an
interrupted one. Each stage shows one progress bar (iterations, loss, ETA) and writes its full
output to ``<work dir>/stage.log`` (``--verbose``: the output on the terminal as well); the run
report (tables, loss / mAP / LR plots) goes to ``<finetune work dir>/report`` unless ``--report
DIR`` says elsewhere.
"""
import argparse
import logging
import os.path as osp
import shlex
import sys
from typing import Any, Dict, List, Optional

from mmengine.config import DictAction

from ..chain import format_results_table, run_chain
from ..chain.chain import StageLauncher
from ..config.dataset_layout import LAYOUTS
from ..config.own_dataset import (ARCHITECTURES, OwnDatasetRequest, arch_pair, default_own_work_root,
                                  write_own_dataset_configs)
from ..config.paths import resolve_config_path
from ..datasets.toy_coco import (generate_toy_coco, generate_toy_keypoints, toy_coco_is_complete,
                                 toy_keypoints_is_complete)
from ..errors import ConfigInputError
from ..runtime.work_dir_lock import WorkDirLockedError
from .train import build_config, parse_args

__all__ = ['TOY_PRETRAIN', 'TOY_FINETUNE', 'build_parser', 'main']

TOY_PRETRAIN = 'toy/mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py'
TOY_FINETUNE = 'toy/mask-rcnn_r18_fpn_1xb2-direct-finetune_toy.py'
_OPTION_FLAGS = ('cfg_options', 'pretrain_cfg_options', 'finetune_cfg_options')


def build_parser() -> argparse.ArgumentParser:
    layouts = '\n'.join(f'  {layout.description}' for layout in LAYOUTS)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=f'--data looks for one of these layouts:\n{layouts}')
    parser.add_argument('pretrain_config', nargs='?',
                        help='pretrain config: a path, or a name under the installed configs (default: the toy pair)')
    parser.add_argument('finetune_config', nargs='?', help='finetune config (path or name)')
    parser.add_argument('--arch', choices=list(ARCHITECTURES),
                        help='run a zoo pair instead of configs: the SyncBN P1x pretrain and its P1x-1x fine-tune')
    data = parser.add_argument_group('your own dataset')
    data.add_argument('--data', metavar='DIR',
                      help='a COCO-format dataset folder: write the pair as two configs on it into the work root, '
                      'then check and run them')
    for split in ('train', 'val'):
        data.add_argument(f'--{split}-ann', metavar='FILE', help=f'the {split} annotation file (instead of finding it)')
        data.add_argument(f'--{split}-img', metavar='DIR', help='the folder its file_name entries are relative to')
    data.add_argument('--val-split', type=float, metavar='FRACTION',
                      help='no val set: hold out this share of the training images (deterministic; the split files '
                      'go into the work root)')
    data.add_argument('--keypoint-flip-pairs', nargs='+', metavar='NAME:MIRROR', default=[],
                      help='left/right keypoint pairs when the names do not say left_*/right_*')
    parser.add_argument('--dry-run', action='store_true',
                        help='write the configs (with --data) and run every check of both stages; train nothing')
    parser.add_argument('--work-root', help='parent of the stage work dirs (default: work_dirs/<config name>; with '
                        '--data: work_dirs/<dataset folder name>, where the generated configs go as well)')
    parser.add_argument('--eval', nargs='+', help="test metrics (default: the finetune config's test_evaluator "
                        'metrics, e.g. bbox segm, or bbox keypoints for Keypoint R-CNN)')
    parser.add_argument('--cfg-options', nargs='+', action='extend', metavar='KEY=VALUE',
                        help='override settings of both stages (as dp-train --cfg-options)')
    parser.add_argument('--pretrain-cfg-options', nargs='+', action='extend', metavar='KEY=VALUE',
                        help='override settings of the pretrain stage')
    parser.add_argument('--finetune-cfg-options', nargs='+', action='extend', metavar='KEY=VALUE',
                        help='override settings of the fine-tune stage (and its test)')
    parser.add_argument('--gpus', type=int, default=1, metavar='N',
                        help='processes per stage: N > 1 runs each stage under torchrun, as dist_train.sh does '
                        '(CPU processes on gloo without CUDA)')
    parser.add_argument('--launcher', choices=['none', 'pytorch'],
                        help='how the stages start (default: pytorch with --gpus > 1, else none)')
    parser.add_argument('--accumulate', type=int, default=1, metavar='N',
                        help='sum the gradients of N batches per optimizer step in both training stages')
    parser.add_argument('--auto-scale-lr', action=argparse.BooleanOptionalAction, default=None,
                        help='scale the LR to GPUs x batch x --accumulate (default: on with --data, else off)')
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
    return parser


def _parse_options(flag: str, values: Optional[List[str]]) -> Dict[str, Any]:
    """``KEY=VALUE`` strings parsed as ``dp-train --cfg-options`` parses them."""
    if not values:
        return {}
    bad = [value for value in values if '=' not in value]
    if bad:
        raise ConfigInputError(f'{flag}: write each option as KEY=VALUE (got {bad[0]!r}).')
    parser = argparse.ArgumentParser(prog=f'dp-chain {flag}', add_help=False)
    parser.add_argument('--options', nargs='+', action=DictAction)
    return parser.parse_args(['--options', *values]).options


def _check_args(args: argparse.Namespace) -> None:
    """Flags that contradict each other; one error naming them."""
    if args.arch and args.pretrain_config:
        raise ConfigInputError('--arch picks the pair; pass either --arch or PRETRAIN_CFG FINETUNE_CFG, not both.')
    if args.pretrain_config and not args.finetune_config:
        raise ConfigInputError('pass both configs of the pair: PRETRAIN_CFG FINETUNE_CFG (or --arch NAME).')
    own = [f'--{name.replace("_", "-")}' for name in ('train_ann', 'train_img', 'val_ann', 'val_img', 'val_split')
           if getattr(args, name) is not None] + (['--keypoint-flip-pairs'] if args.keypoint_flip_pairs else [])
    if own and not args.data:
        raise ConfigInputError(f'{own[0]} describes the dataset of --data DIR; add --data.')
    if args.data and args.data_root:
        raise ConfigInputError('--data writes configs on that dataset; --data-root would move them elsewhere. Drop '
                               '--data-root.')
    if args.data and not (args.arch or args.pretrain_config):
        raise ConfigInputError(f'--data needs the pair to put it on: --arch {{{",".join(ARCHITECTURES)}}}, or '
                               'PRETRAIN_CFG FINETUNE_CFG (the toy pair: direct_pretrain::' + TOY_PRETRAIN +
                               ' direct_pretrain::' + TOY_FINETUNE + ').')
    for flag in ('gpus', 'accumulate'):
        if getattr(args, flag) < 1:
            raise ConfigInputError(f'--{flag} {getattr(args, flag)}: give a positive integer.')
    if args.launcher == 'none' and args.gpus > 1:
        raise ConfigInputError(f'--gpus {args.gpus} starts {args.gpus} processes per stage under torchrun; drop '
                               '--launcher none (or use --gpus 1).')


def _stage_args(args: argparse.Namespace, options: Dict[str, List[str]], stage: str, baked: bool) -> List[str]:
    """``dp-train`` / ``dp-test`` arguments of a stage; options already in generated configs are not repeated."""
    out = ['--tensorboard'] if args.tensorboard and stage != 'test' else []
    if stage != 'test':
        if args.auto_scale_lr and not baked:
            out.append('--auto-scale-lr')
        if args.accumulate > 1:
            out += ['--accumulate', str(args.accumulate)]
    if not baked:
        values = (options['cfg_options'] +
                  options['pretrain_cfg_options' if stage == 'pretrain' else 'finetune_cfg_options'])
        if values:
            out += ['--cfg-options', *values]
    return out


def _check_stage(argv: List[str]) -> None:
    """A training stage's checks: ``dp-train``'s own parsing and config building (what
    ``dp-train ARGS --check-only`` runs), in this process."""
    build_config(parse_args(argv))


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='[chain] %(message)s')
    if args.toy_data and not toy_coco_is_complete(args.toy_data):
        generate_toy_coco(args.toy_data)
    if args.toy_keypoints:
        if not toy_keypoints_is_complete(args.toy_keypoints):
            generate_toy_keypoints(args.toy_keypoints)
    try:
        _check_args(args)
        options = {name: list(getattr(args, name) or []) for name in _OPTION_FLAGS}
        parsed = {name: _parse_options(f'--{name.replace("_", "-")}', values) for name, values in options.items()}
        if args.arch:
            pretrain_config, finetune_config = arch_pair(args.arch)
        else:
            pretrain_config, finetune_config = (resolve_config_path(args.pretrain_config or TOY_PRETRAIN),
                                                resolve_config_path(args.finetune_config or TOY_FINETUNE))
        launcher = StageLauncher(args.gpus, args.launcher or ('pytorch' if args.gpus > 1 else 'none'))
        work_root = args.work_root
        if args.data:
            args.auto_scale_lr = True if args.auto_scale_lr is None else args.auto_scale_lr
            work_root = work_root or default_own_work_root(args.data)
            request = OwnDatasetRequest(
                args.data, args.train_ann, args.train_img, args.val_ann, args.val_img, args.val_split,
                args.keypoint_flip_pairs, launcher.world_size, args.accumulate, args.auto_scale_lr,
                parsed['cfg_options'], parsed['pretrain_cfg_options'], parsed['finetune_cfg_options'],
                command='dp-chain ' + ' '.join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)))
            generated = write_own_dataset_configs(pretrain_config, finetune_config, request, work_root)
            for line in generated.summary:
                logging.info(line)
            pretrain_config, finetune_config = generated.pretrain, generated.finetune
        baked = bool(args.data)
        results = run_chain(pretrain_config, finetune_config, work_root, args.eval,
                            pretrain_args=_stage_args(args, options, 'pretrain', baked),
                            finetune_args=_stage_args(args, options, 'finetune', baked),
                            test_args=_stage_args(args, options, 'test', baked), report_dir=args.report,
                            make_report=not args.no_report, data_root=args.data_root, verbose=args.verbose,
                            launcher=launcher, check_stage=_check_stage if (args.data or args.dry_run) else None,
                            check_only=args.dry_run)
    except (ConfigInputError, WorkDirLockedError) as error:  # bad input; a stage dir in use by another run
        print(f'error: {error}', file=sys.stderr)
        return 2
    except RuntimeError as error:  # a stage failed; its own output said why
        print(f'error: {error}', file=sys.stderr)
        return 1
    if args.dry_run:
        print(f'dry run: both stages pass their checks ({pretrain_config}, {finetune_config}); nothing was trained. '
              'Run the same command without --dry-run to train.')
        return 0
    print(format_results_table(results))
    report = args.report or osp.join(osp.dirname(results[-1].output), 'report')
    if not args.no_report and osp.isfile(osp.join(report, 'report.md')):
        print(f'\nrun report: {osp.join(report, "report.md")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
