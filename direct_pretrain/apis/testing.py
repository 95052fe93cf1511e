"""``tools/test.py``: MMDetection 3.3's test entry point plus the original ``--eval``.

Flags follow mmdet's tool (``--work-dir``, ``--out``, ``--show``, ``--show-dir``,
``--wait-time``, ``--tta``, ``--cfg-options``, ``--launcher``). ``--eval bbox segm``
selects the COCO metrics as the original release did; ``--metrics-out`` writes the
returned metrics as JSON for scripts.
"""
import argparse
import copy
import json
import os
import warnings
from typing import Dict, List, Optional

from mmengine.config import Config, ConfigDict

from .training import add_common_args, load_config

__all__ = ['COCO_METRICS', 'parse_test_args', 'build_test_config', 'test']

COCO_METRICS = ('bbox', 'segm', 'proposal', 'proposal_fast')


def parse_test_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', type=str, help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument('--eval', nargs='+', metavar='METRIC',
                        help=f'COCO metrics to evaluate, any of {", ".join(COCO_METRICS)} (e.g. --eval bbox segm)')
    parser.add_argument('--metrics-out', help='write the evaluated metrics to this JSON file')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='save painted images under work_dir/timestamp/show_dir')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation (flip)')
    add_common_args(parser)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def _apply_tta(cfg: Config) -> None:
    if 'tta_model' not in cfg:
        warnings.warn('no tta_model in the config; using flip TTA with NMS 0.5, 100 detections')
        cfg.tta_model = dict(type='DetTTAModel', tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5),
                                                              max_per_img=100))
    if 'tta_pipeline' not in cfg:
        dataset = cfg.test_dataloader.dataset
        while 'dataset' in dataset:
            dataset = dataset['dataset']
        pipeline = copy.deepcopy(dataset.pipeline)
        pipeline[-1] = dict(type='TestTimeAug', transforms=[
            [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
            [dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                                                   'flip', 'flip_direction'))],
        ])
        cfg.tta_pipeline = pipeline
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def build_test_config(args: argparse.Namespace) -> Config:
    from mmdet.engine.hooks.utils import trigger_visualization_hook

    from .config_checks import ConfigInputError, check_test_inputs
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise ConfigInputError(f'--out {args.out!r}: predictions are dumped as a pickle; use a .pkl file name.')
    cfg = load_config(args.config, args)
    if args.eval:
        unknown = [m for m in args.eval if m not in COCO_METRICS]
        if unknown:
            raise ConfigInputError(f'--eval: unknown metric(s) {", ".join(unknown)}; choose from '
                                   f'{", ".join(COCO_METRICS)}.')
        evaluator = cfg.get('test_evaluator')
        if not isinstance(evaluator, dict) or evaluator.get('type') != 'CocoMetric':
            raise ConfigInputError('--eval selects CocoMetric metrics, but test_evaluator in '
                                   f'{args.config} is not a single CocoMetric.')
        evaluator.metric = list(args.eval)
    check_test_inputs(cfg, args.checkpoint)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        _apply_tta(cfg)
    return cfg


def test(cfg: Config, out: Optional[str] = None, metrics_out: Optional[str] = None) -> Dict:
    """Build the Runner and evaluate; returns the metrics dict."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from mmdet.evaluation import DumpDetResults

    from .launch import prepare_distributed
    prepare_distributed(cfg, cfg.get('launcher', 'none'))
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if out is not None:
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=out))
    metrics = runner.test()
    if metrics_out and runner.rank == 0:
        os.makedirs(os.path.dirname(os.path.abspath(metrics_out)), exist_ok=True)
        with open(metrics_out + '.tmp', 'w') as f:
            json.dump({k: float(v) if isinstance(v, (int, float)) else str(v) for k, v in metrics.items()}, f, indent=1)
        os.replace(metrics_out + '.tmp', metrics_out)
    return metrics
