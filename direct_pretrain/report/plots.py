"""PNG plots of training stages and of compared runs (matplotlib, no display needed).

Why separate from the tables: plotting pulls in matplotlib, and the figures are drawn
with the object-oriented API (:class:`matplotlib.figure.Figure` renders PNG through Agg)
so nothing here touches pyplot's global backend or needs a display.

All time axes are cumulative *training* wall time in minutes from the start of the first
stage (validation excluded when ResourceStatsHook ran), so a cheap low-resolution stage
takes the room it cost, not the room its iteration count suggests.
"""
from typing import Dict, List, Optional, Sequence

from .run_logs import StageLog, stage_timeline

__all__ = ['plot_losses', 'plot_map', 'plot_learning_rate', 'plot_runs_loss', 'plot_runs_map']

_COMPONENTS = ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask')
_TASKS = (('bbox', '-o'), ('segm', '--s'), ('keypoints', ':^'))


def _figure(rows: int = 1, cols: int = 1, width: float = 8.0, height: float = 4.5):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), layout='constrained')
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _stage_bounds(ax, timeline: List[List[dict]], stages: Sequence[StageLog]) -> None:
    """Dashed lines between stages and the stage names along the top."""
    start = 0.0
    for rows, stage in zip(timeline, stages):
        train = [r['wall_s'] / 60 for r in rows if r['kind'] == 'train']
        end = max(train) if train else start
        ax.text((start + end) / 2, 1.01, stage.name, transform=ax.get_xaxis_transform(), ha='center',
                va='bottom', fontsize=8)
        if stage is not stages[-1]:
            ax.axvline(end, color='grey', linestyle='--', linewidth=1)
        start = end


def _label_last(ax, xs, ys) -> None:
    ax.annotate(f'{ys[-1]:.3f}', (xs[-1], ys[-1]), textcoords='offset points', xytext=(4, 4), fontsize=7)


def _evaluations(stages: Sequence[StageLog], timeline: List[List[dict]]) -> Dict[str, List[tuple]]:
    """Per task, (minutes, mAP) of every validation record and of each stage's test metrics."""
    points: Dict[str, List[tuple]] = {task: [] for task, _ in _TASKS}
    for rows, stage in zip(timeline, stages):
        for record in rows:
            for task in points:
                if record['kind'] == 'val' and f'coco/{task}_mAP' in record:
                    points[task].append((record['wall_s'] / 60, float(record[f'coco/{task}_mAP'])))
        train = [r['wall_s'] / 60 for r in rows if r['kind'] == 'train']
        for task in points:
            if f'coco/{task}_mAP' in stage.test_metrics and train:
                points[task].append((max(train), float(stage.test_metrics[f'coco/{task}_mAP'])))
    return {k: sorted(v) for k, v in points.items() if v}


def plot_losses(stages: Sequence[StageLog], path: str) -> str:
    """Total loss (top) and its components (bottom) of all stages on one time axis."""
    timeline = stage_timeline(stages)
    fig, axes = _figure(2, 1, height=6.5)
    top, bottom = axes[0][0], axes[1][0]
    for rows, stage in zip(timeline, stages):
        train = [r for r in rows if r['kind'] == 'train']
        x = [r['wall_s'] / 60 for r in train]
        top.plot(x, [r['loss'] for r in train], label=stage.name)
        for index, key in enumerate(k for k in _COMPONENTS if any(k in r for r in train)):
            bottom.plot(x, [r.get(key, float('nan')) for r in train], color=f'C{index}',
                        label=key if stage is stages[0] else None)
    top.set_ylabel('loss (total)')
    top.legend(fontsize=8)
    bottom.set_ylabel('loss components')
    bottom.set_xlabel('cumulative training wall time (min)')
    bottom.legend(fontsize=8, ncol=3)
    for ax in (top, bottom):
        ax.set_xlim(left=0)
        _stage_bounds(ax, timeline, stages)
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100)
    return path


def plot_map(stages: Sequence[StageLog], path: str) -> Optional[str]:
    """bbox / segm mAP per evaluation on the loss plot's time axis; None if none exist."""
    timeline = stage_timeline(stages)
    points = _evaluations(stages, timeline)
    if not points:
        return None
    fig, axes = _figure()
    ax = axes[0][0]
    for task, style in _TASKS:
        if task in points:
            xs, ys = zip(*points[task])
            ax.plot(xs, ys, style, label=f'{task} mAP')
            _label_last(ax, xs, ys)
    ax.set_xlabel('cumulative training wall time (min)')
    ax.set_ylabel('COCO mAP')
    ax.set_xlim(left=0)
    _stage_bounds(ax, timeline, stages)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    return path


def plot_learning_rate(stages: Sequence[StageLog], path: str) -> str:
    """The LR schedule, one panel per stage, x = iteration of that stage."""
    fig, axes = _figure(1, len(stages), width=4.0 * len(stages) + 1, height=3.5)
    for ax, stage in zip(axes[0], stages):
        train = stage.train
        ax.plot([r['iter'] for r in train], [r.get('lr', float('nan')) for r in train], '.-', markersize=3)
        ax.set_title(stage.name, fontsize=9)
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel('learning rate')
    fig.savefig(path, dpi=100)
    return path


def plot_runs_loss(runs: Dict[str, Sequence[StageLog]], path: str) -> str:
    """Total loss of several runs (each a sequence of stages) against their wall time."""
    fig, axes = _figure()
    ax = axes[0][0]
    for index, (label, stages) in enumerate(runs.items()):
        timeline = stage_timeline(stages)
        for number, rows in enumerate(timeline):
            train = [r for r in rows if r['kind'] == 'train']
            style = '-' if number == len(timeline) - 1 else ':'
            name = f'{label}: {stages[number].name}'
            ax.plot([r['wall_s'] / 60 for r in train], [r['loss'] for r in train], style, color=f'C{index}',
                    label=name)
    ax.set_xlabel('cumulative training wall time (min)')
    ax.set_ylabel('loss (total)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    return path


def plot_runs_map(runs: Dict[str, Sequence[StageLog]], path: str) -> Optional[str]:
    """bbox (solid) and segm (dashed) mAP per evaluation of several runs against wall time."""
    fig, axes = _figure()
    ax = axes[0][0]
    drawn = False
    for index, (label, stages) in enumerate(runs.items()):
        points = _evaluations(stages, stage_timeline(stages))
        for task, style in _TASKS:
            if task in points:
                xs, ys = zip(*points[task])
                ax.plot(xs, ys, style, color=f'C{index}', label=f'{label} {task}')
                _label_last(ax, xs, ys)
                drawn = True
    if not drawn:
        return None
    ax.set_xlabel('cumulative training wall time (min)')
    ax.set_ylabel('COCO mAP')
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    return path
