"""Testing as plain functions: build the validated test config, then evaluate.

The semantics are those of MMDetection 3.3's ``tools/test.py`` (``--out``, ``--show``,
``--show-dir``, ``--tta``, ...); ``eval_metrics`` selects the COCO metrics as the original
release's ``--eval bbox segm`` did, and the returned metrics can be written as JSON for
reports. Argument parsing lives in :mod:`direct_pretrain.cli.test`.
"""
import copy
import logging
import math
import os
import warnings
from argparse import Namespace
from typing import Any, Dict, Optional, Sequence

from mmengine.config import Config, ConfigDict
from mmengine.fileio import dump
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmdet.engine.hooks.utils import trigger_visualization_hook
from mmdet.evaluation import DumpDetResults
from ..config.consistency_checks import check_test_consistency
from ..config.dataset_cfg import iter_evaluators, leaf_dataset
from ..config.input_checks import check_test_inputs
from ..config.loading import load_config
from ..engine.hooks.worker_lifetime_hook import add_worker_lifetime_hook
from ..errors import ConfigInputError
from ..evaluation.metrics.coco_classwise_metric import use_classwise_metric
from .launch import prepare_runtime

__all__ = ['COCO_METRICS', 'build_test_config', 'set_classwise', 'test']

COCO_METRICS = ('bbox', 'segm', 'proposal', 'proposal_fast', 'keypoints')
# 'keypoints' (OKS AP) is evaluated by CocoKeypointMetric, which also evaluates the others.
COCO_METRIC_TYPES = ('CocoMetric', 'CocoKeypointMetric', 'CocoClasswiseMetric')
# Evaluators with a ``classwise`` switch (per-class AP).
CLASSWISE_METRIC_TYPES = ('CocoMetric', 'mmdet.CocoMetric', 'CocoKeypointMetric', 'CocoClasswiseMetric')

logger = logging.getLogger(__name__)


def _apply_tta(cfg: Config) -> None:
    if 'tta_model' not in cfg:
        warnings.warn('no tta_model in the config; using flip TTA with NMS 0.5, 100 detections')
        cfg.tta_model = dict(type='DetTTAModel', tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5),
                                                              max_per_img=100))
    if 'tta_pipeline' not in cfg:
        _, dataset = leaf_dataset(cfg, 'test_dataloader')
        pipeline = copy.deepcopy(dataset.pipeline)
        pipeline[-1] = dict(type='TestTimeAug', transforms=[
            [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
            [dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                                                   'flip', 'flip_direction'))],
        ])
        cfg.tta_pipeline = pipeline
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def set_classwise(cfg: Config, config: str, classwise: bool) -> None:
    """Switch per-class AP on for the test evaluators (``classwise``), and evaluate every COCO
    evaluator that computes it as :class:`~direct_pretrain.evaluation.CocoClasswiseMetric`, so
    that box and mask AP per class do not overwrite each other under mmdet's ``coco/<class>_precision``.

    Raises:
        ConfigInputError: ``classwise`` and no test evaluator is a COCO metric.
    """
    evaluators = [e for _, e in iter_evaluators(cfg, 'test_evaluator') if e.get('type') in CLASSWISE_METRIC_TYPES]
    if classwise:
        if not evaluators:
            raise ConfigInputError(f'--classwise: test_evaluator in {config} is not a CocoMetric / CocoKeypointMetric; '
                                   'per-class AP is computed by those. Drop --classwise or use a COCO evaluator.')
        for evaluator in evaluators:
            evaluator.classwise = True
    for evaluator in evaluators:
        if use_classwise_metric(evaluator):
            logger.info('per-class AP: test_evaluator CocoMetric evaluated as CocoClasswiseMetric (keys '
                        'coco/<task>_<class>_precision)')


def build_test_config(config: str,
                      checkpoint: str,
                      work_dir: Optional[str] = None,
                      cfg_options: Optional[Dict[str, Any]] = None,
                      launcher: str = 'none',
                      eval_metrics: Optional[Sequence[str]] = None,
                      out: Optional[str] = None,
                      show: bool = False,
                      show_dir: Optional[str] = None,
                      wait_time: float = 2,
                      tta: bool = False,
                      data_root: Optional[str] = None,
                      classwise: bool = False) -> Config:
    """The config a test run uses, validated before anything is written.

    Args:
        config (str): Config file path.
        checkpoint (str): Checkpoint to evaluate (becomes ``load_from``).
        work_dir (str, optional): Work dir; defaults as in mmdet's test tool.
        cfg_options (dict, optional): ``key=value`` overrides merged into the config.
        launcher (str): Job launcher. Defaults to 'none'.
        eval_metrics (Sequence[str], optional): COCO metrics (``bbox``, ``segm``, ...)
            replacing the test evaluator's. Defaults to the config's.
        out (str, optional): ``.pkl`` file for the raw predictions (checked here).
        show (bool): Show painted predictions. Defaults to False.
        show_dir (str, optional): Save painted predictions there.
        wait_time (float): Interval of ``show`` in seconds. Defaults to 2.
        tta (bool): Flip test-time augmentation. Defaults to False.
        data_root (str, optional): Dataset folder, set on every dataset and the evaluators'
            ``ann_file`` (``--data-root``). Defaults to the config's.
        classwise (bool): Per-class AP of every COCO task, under the dataset's class names
            (``--classwise``; :func:`set_classwise`). Defaults to False.

    Raises:
        ConfigInputError: the config, checkpoint, a dataset path or an option is unusable.
    """
    if out is not None and not out.endswith(('.pkl', '.pickle')):
        raise ConfigInputError(f'--out {out!r}: predictions are dumped as a pickle; use a .pkl file name.')
    cfg = load_config(config, work_dir, cfg_options, launcher, data_root)
    if eval_metrics:
        unknown = [m for m in eval_metrics if m not in COCO_METRICS]
        if unknown:
            raise ConfigInputError(f'--eval: unknown metric(s) {", ".join(unknown)}; choose from '
                                   f'{", ".join(COCO_METRICS)}.')
        evaluator = cfg.get('test_evaluator')
        if not isinstance(evaluator, dict) or evaluator.get('type') not in COCO_METRIC_TYPES:
            raise ConfigInputError('--eval selects CocoMetric metrics, but test_evaluator in '
                                   f'{config} is not a single CocoMetric.')
        if 'keypoints' in eval_metrics and evaluator.get('type') != 'CocoKeypointMetric':
            raise ConfigInputError(f'--eval keypoints: test_evaluator in {config} is a {evaluator.get("type")}; '
                                   'keypoint AP needs a keypoint config (test_evaluator type CocoKeypointMetric).')
        evaluator.metric = list(eval_metrics)
    set_classwise(cfg, config, classwise)
    check_test_inputs(cfg, checkpoint)
    check_test_consistency(cfg)  # heads vs the test set's classes, the test evaluator's files
    cfg.load_from = checkpoint
    if show or show_dir:
        cfg = trigger_visualization_hook(cfg, Namespace(show=show, show_dir=show_dir, wait_time=wait_time))
    if tta:
        _apply_tta(cfg)
    return cfg


def _json_value(value: Any) -> Any:
    """A metric as JSON: a number; null for NaN (the per-class AP of a class without ground truth,
    which strict JSON cannot hold); anything else as text."""
    if isinstance(value, (int, float)):
        return None if math.isnan(value) else float(value)
    return str(value)


def test(cfg: Config, out: Optional[str] = None, metrics_out: Optional[str] = None) -> Dict:
    """Build the Runner and evaluate; returns the metrics dict."""
    prepare_runtime(cfg)
    add_worker_lifetime_hook(cfg)  # the test loader's workers die with this process, however it dies
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if out is not None:
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=out))
    metrics = runner.test()
    if metrics_out and runner.rank == 0:
        os.makedirs(os.path.dirname(os.path.abspath(metrics_out)), exist_ok=True)
        dump({k: _json_value(v) for k, v in metrics.items()}, metrics_out + '.tmp', file_format='json', indent=1)
        os.replace(metrics_out + '.tmp', metrics_out)
        logger.info('test metrics written to %s', metrics_out)
    return metrics
