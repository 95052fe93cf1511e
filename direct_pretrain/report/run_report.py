"""The run report: Markdown tables and PNG plots of one or more training stages.

Why: people judge a pre-training method by curves and tables, not by log lines. The
report is built only from what the runs wrote to their work dirs (see
:mod:`direct_pretrain.report.run_logs`), so it can be made after a chained run, for a run
somebody else did, or for a run that is still going.

Per stage it gives epochs, iterations, training wall time, images/s, peak memory, the
final losses and the COCO bbox / segm / keypoint metrics (mAP, AP50, AP75, APs/m/l) and, after
``dp-test --classwise``, each class's AP under the dataset's class names; the plots are
the losses of all stages on one time axis, mAP per evaluation and the LR schedule.
"""
import logging
import os
import os.path as osp
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

from mmengine.fileio import dump

from ..datasets.bad_image_log import BAD_IMAGE_LOG, read_bad_images
from ..errors import ReportInputError
from ..evaluation.metrics.coco_classwise_metric import PER_CLASS_SUFFIX
from .run_logs import StageLog, read_stage_log, stage_timeline
from .tables import format_duration, format_number, markdown_table

__all__ = ['METRIC_SUFFIXES', 'StageSummary', 'RunReport', 'summarize_stage', 'format_report', 'write_report',
           'metric_tasks', 'per_class_ap', 'format_per_class_table']

logger = logging.getLogger(__name__)

# mmdet CocoMetric keys are coco/<bbox|segm>_<suffix>; column title -> suffix.
METRIC_SUFFIXES = {'mAP': 'mAP', 'AP50': 'mAP_50', 'AP75': 'mAP_75', 'APs': 'mAP_s', 'APm': 'mAP_m', 'APl': 'mAP_l'}
LOSS_ORDER = ('loss', 'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask')


@dataclass
class StageSummary:
    """The numbers of one stage's table rows.

    Attributes:
        wall_s (float): Training wall time (validation excluded when ResourceStatsHook
            ran; all resumed segments added).
        wall_time_measured (bool): False when estimated from logged iteration times.
        images_per_s (float, optional): Training throughput over all segments.
        peak_rss_mb (float, optional): Peak host memory of the training process.
        peak_gpu_mb (float, optional): mmengine's ``memory`` (CUDA only).
        final_losses (dict): The last logged value of every loss.
        metrics (dict): The test metrics (``coco/*``).
        bad_images (dict): Image files the training pipeline skipped as bad, with the reason
            (``<work_dir>/bad_images.jsonl``).
    """
    name: str
    work_dir: str
    epochs: int
    iterations: int
    wall_s: float
    wall_time_measured: bool
    images: Optional[int]
    images_per_s: Optional[float]
    peak_rss_mb: Optional[float]
    peak_gpu_mb: Optional[float]
    final_losses: Dict[str, float]
    metrics: Dict[str, Optional[float]] = field(default_factory=dict)
    metrics_source: Optional[str] = None
    bad_images: Dict[str, str] = field(default_factory=dict)  # file -> reason, skipped during training

    @property
    def seconds_per_image(self) -> Optional[float]:
        return 1.0 / self.images_per_s if self.images_per_s else None


@dataclass
class RunReport:
    """What :func:`write_report` produced."""
    stages: List[StageSummary]
    markdown: str
    files: Dict[str, str]
    notes: List[str]


def _max(values) -> Optional[float]:
    values = [float(v) for v in values if v is not None]
    return max(values) if values else None


def summarize_stage(log: StageLog) -> StageSummary:
    """Reduce a stage's records to its table values."""
    train = log.train
    segments = [s for s in log.segments if s.train]
    last = train[-1]
    measured = all(s.uses_hook for s in segments)
    if measured:  # all segments, redone iterations included: that time was spent
        wall = sum(float(s.train[-1]['elapsed_s']) for s in segments)
        images = int(sum(float(s.train[-1].get('images_seen', 0)) for s in segments))
    else:
        wall = max(r['wall_s'] for r in stage_timeline([log])[0] if r['kind'] == 'train')
        images = last['iter'] * log.batch_size if log.batch_size else None
    return StageSummary(
        name=log.name, work_dir=log.work_dir, epochs=int(max(r.get('epoch', 0) for r in train)),
        iterations=int(last['iter']), wall_s=wall, wall_time_measured=measured, images=images,
        images_per_s=(images / wall) if images and wall > 0 else None,
        peak_rss_mb=_max(r.get('peak_rss_mb') for r in train), peak_gpu_mb=_max(r.get('memory') for r in train),
        final_losses={k: float(last[k]) for k in sorted(last, key=_loss_rank) if k.startswith('loss')},
        # None: a class without ground truth in the per-class AP (dp-test writes null)
        metrics={k: None if v is None else float(v) for k, v in log.test_metrics.items()
                 if v is None or isinstance(v, (int, float))},
        metrics_source=log.test_metrics_source)


def _loss_rank(key: str):
    return (LOSS_ORDER.index(key) if key in LOSS_ORDER else len(LOSS_ORDER), key)


def format_training_table(summaries: Sequence[StageSummary]) -> str:
    rows = [[s.name, s.epochs, s.iterations,
             format_duration(s.wall_s) + ('' if s.wall_time_measured else ' (est.)'),
             format_number(s.images_per_s, '.2f'), format_number(s.seconds_per_image, '.3f'),
             format_number(s.peak_rss_mb, '.0f'), format_number(s.peak_gpu_mb, '.0f')] for s in summaries]
    return markdown_table(['stage', 'epochs', 'iterations', 'wall time', 'images/s', 's/image', 'peak RSS (MB)',
                           'peak GPU (MB)'], rows)


def format_loss_table(summaries: Sequence[StageSummary]) -> str:
    keys = sorted({k for s in summaries for k in s.final_losses}, key=_loss_rank)
    return markdown_table(['stage', *keys],
                          [[s.name, *(format_number(s.final_losses.get(k), '.4f') for k in keys)] for s in summaries])


def metric_tasks(metrics: Dict[str, float]) -> List[str]:
    """The COCO tasks (``bbox``, ``segm``, ``keypoints``, ...) that ``metrics`` has an mAP for."""
    return [k[len('coco/'):-len('_mAP')] for k in metrics if k.startswith('coco/') and k.endswith('_mAP')]


def format_metrics_table(summaries: Sequence[StageSummary]) -> Optional[str]:
    rows = [[s.name, task, *(format_number(s.metrics.get(f'coco/{task}_{suffix}'), '.3f')
                             for suffix in METRIC_SUFFIXES.values())]
            for s in summaries for task in metric_tasks(s.metrics)]
    return markdown_table(['stage', 'task', *METRIC_SUFFIXES], rows) if rows else None


def per_class_ap(metrics: Dict[str, Optional[float]]) -> Dict[str, Dict[str, Optional[float]]]:
    """Each class's AP per task, ``{class: {task: AP}}`` in the metrics' order, from the per-class
    keys: ``coco/<task>_<class>_precision`` (:class:`~direct_pretrain.evaluation.CocoClasswiseMetric`,
    ``CocoKeypointMetric``) and mmdet's own ``coco/<class>_precision``. mmdet writes the latter
    once per task, each over the previous one, so they hold its last evaluated task; that is the
    task they are shown under. None (or NaN): no instance of the class in the ground truth."""
    tasks = metric_tasks(metrics)
    fallback = tasks[-1] if tasks else '?'
    table: Dict[str, Dict[str, Optional[float]]] = {}
    for key, value in metrics.items():
        if not (key.startswith('coco/') and key.endswith(PER_CLASS_SUFFIX)):
            continue
        name = key[len('coco/'):-len(PER_CLASS_SUFFIX)]
        task = next((t for t in tasks if name.startswith(f'{t}_')), None)
        if task is not None:
            name = name[len(task) + 1:]
        table.setdefault(name, {})[task or fallback] = value
    return table


def _ap_cell(value: Optional[float]) -> str:
    return '—' if value is None or value != value else f'{value:.3f}'  # NaN: no ground truth


def format_per_class_table(metrics_by_stage: Dict[str, Dict[str, Optional[float]]]) -> Optional[str]:
    """A Markdown table of per-class AP (rows: stage and class; columns: the tasks), or None
    when no stage has per-class metrics (``dp-test --classwise``)."""
    tables = {stage: per_class_ap(metrics) for stage, metrics in metrics_by_stage.items()}
    tasks = [t for t in ('bbox', 'segm', 'keypoints') if any(t in row for table in tables.values()
                                                              for row in table.values())]
    tasks += sorted({t for table in tables.values() for row in table.values() for t in row} - set(tasks))
    rows = [[stage, name, *(_ap_cell(row.get(task)) for task in tasks)]
            for stage, table in tables.items() for name, row in table.items()]
    return markdown_table(['stage', 'class', *(f'{task} AP' for task in tasks)], rows) if rows else None


def format_report(summaries: Sequence[StageSummary], notes: Sequence[str], plots: Dict[str, str],
                  title: str = 'Run report') -> str:
    """The Markdown report (plots referenced by file name, relative to the report)."""
    parts = [f'# {title}', '',
             'Stages, in order: ' + ', '.join(f'{s.name} (`{s.work_dir}`)' for s in summaries) + '.', '',
             '## Training', '', format_training_table(summaries), '',
             'Wall time: training only (validation excluded, resumed segments added), measured by '
             'ResourceStatsHook ("est.": estimated from the logged iteration times); images/s = images trained '
             'on / that wall time; peak RSS = the training process (dataloader workers not included); peak GPU = '
             'mmengine `memory` (CUDA only).', '',
             '### Final losses (last logged value)', '', format_loss_table(summaries), '']
    metrics = format_metrics_table(summaries)
    parts += ['## Evaluation (COCO)', '', metrics if metrics else 'No test metrics found.', '']
    per_class = format_per_class_table({s.name: s.metrics for s in summaries})
    if per_class:
        parts += ['### Per-class AP', '', per_class, '',
                  'AP at IoU 0.50:0.95 of each class under the dataset\'s class names (`dp-test --classwise`); '
                  '"—": no instance of the class in the test annotations.', '']
    bad = [[s.name, f'`{path}`', reason] for s in summaries for path, reason in s.bad_images.items()]
    if bad:
        parts += ['## Bad images skipped during training', '', markdown_table(['stage', 'file', 'reason'], bad), '',
                  'Skipped and counted by the training pipeline (dataset_check.max_bad_images sets how many a run '
                  'tolerates); fix or replace the files.', '']
    if plots:
        parts += ['## Plots', '']
        captions = {'loss': 'Losses of all stages, x = cumulative training wall time (minutes, validation '
                            'excluded), stages separated by dashed lines',
                    'map': 'bbox / segm mAP per evaluation, same x axis (validation during training and the '
                           'test stage at the end of its stage)',
                    'lr': 'Learning rate per iteration, one panel per stage'}
        for key, path in plots.items():
            parts += [f'![{key}]({osp.basename(path)})', '', f'*{captions.get(key, key)}.*', '']
    if notes:
        parts += ['## Notes', ''] + [f'- {n}' for n in notes] + ['']
    return '\n'.join(parts)


def write_report(work_dirs: Sequence[str], out_dir: str, names: Optional[Sequence[str]] = None,
                 title: str = 'Run report', expect_test: Optional[Sequence[bool]] = None) -> RunReport:
    """Read the work dirs (stages in training order) and write ``report.md``,
    ``report.json`` and the plots to ``out_dir``.

    Args:
        work_dirs (Sequence[str]): Work dirs of the stages, in order (pretrain, finetune).
        out_dir (str): Where the report goes; created if needed.
        names (Sequence[str], optional): Stage names. Defaults to the dirs' base names.
        title (str): Report title. Defaults to 'Run report'.
        expect_test (Sequence[bool], optional): Per stage, whether a missing
            test_metrics.json deserves a note. Defaults to the last stage only.

    Raises:
        ReportInputError: A work dir is missing or holds no training logs.
    """
    # not at module level: plots import matplotlib (about a second), only needed when drawing
    from .plots import plot_learning_rate, plot_losses, plot_map
    if not work_dirs:
        raise ReportInputError('no work dir given; pass the work dirs of the stages in order '
                               '(e.g. work_dirs/<pretrain config> work_dirs/<finetune config>).')
    names = list(names) if names else [None] * len(work_dirs)
    if len(names) != len(work_dirs):
        raise ReportInputError(f'{len(names)} names for {len(work_dirs)} work dirs; give one name per work dir.')
    expect = list(expect_test) if expect_test is not None else [i == len(work_dirs) - 1 for i in range(len(work_dirs))]
    logs = [read_stage_log(d, n, e) for d, n, e in zip(work_dirs, names, expect)]
    summaries = [summarize_stage(log) for log in logs]
    for summary in summaries:
        summary.bad_images = read_bad_images(osp.join(summary.work_dir, BAD_IMAGE_LOG))
    notes = [n for log in logs for n in log.notes]
    os.makedirs(out_dir, exist_ok=True)
    plots = {'loss': plot_losses(logs, osp.join(out_dir, 'loss_curves.png'))}
    map_plot = plot_map(logs, osp.join(out_dir, 'map.png'))
    if map_plot:
        plots['map'] = map_plot
    else:
        notes.append('no evaluation in any stage (no validation during training, no test metrics): '
                     'map.png not drawn.')
    plots['lr'] = plot_learning_rate(logs, osp.join(out_dir, 'lr.png'))
    markdown = format_report(summaries, notes, plots, title)
    files = dict(markdown=osp.join(out_dir, 'report.md'), json=osp.join(out_dir, 'report.json'), **plots)
    with open(files['markdown'], 'w') as f:
        f.write(markdown)
    dump(dict(title=title, stages=[dict(asdict(s), seconds_per_image=s.seconds_per_image) for s in summaries],
              notes=notes, plots={k: osp.basename(v) for k, v in plots.items()}), files['json'], indent=1)
    for note in notes:
        logger.warning('report: %s', note)
    logger.info('report written to %s', files['markdown'])
    return RunReport(summaries, markdown, files, notes)
