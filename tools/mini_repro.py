"""The miniature reproduction (an experiment, not library code): does direct pre-training pay
off on the embedded toy set?

``python tools/mini_repro.py [--work-root work_dirs/mini_repro] [--out docs/mini_repro] [--arms a b c]``
from the repository root (the toy configs' ``data_root`` is ``data/toy_coco/``); it
generates the toy set if missing, skips finished stages and resumes an interrupted one.

Why: the paper's claim is about compute - pre-train the whole detector at low resolution,
where an image is cheap, then fine-tune briefly at high resolution - so the question is
asked against two from-scratch baselines on the same data and machine:

- (a) direct pretrain (192x192 crops) -> finetune (480x320), the main job's toy pair
  (the finetune validated after each epoch; training unchanged);
- (b) the same finetune config and budget, from scratch (no ``load_from``, backbone BN
  trainable, nothing frozen);
- (c) from scratch at 480x320 for (a)'s total training budget, matched in wall-clock.

Each arm's stages run as train / test child processes through the chain's public stage
runners (:func:`direct_pretrain.chain.run_train_stage` / ``run_test_stage``), so re-running skips finished stages and resumes interrupted
ones; progress lines carry the whole reproduction's ETA. Every arm gets a run report,
and the arms are compared in one table (wall time, mAP, the pretrain / finetune cost
per image) with loss and mAP plots on a shared wall-clock axis.
"""
import argparse
import functools
import json
import logging
import os
import os.path as osp
import sys
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from direct_pretrain.chain import StageProgress, StageResult, estimate_train_cost, run_test_stage, run_train_stage
from direct_pretrain.datasets import generate_toy_coco, toy_coco_is_complete
from direct_pretrain.errors import ConfigInputError
from direct_pretrain.report import (METRIC_SUFFIXES, RunReport, StageSummary, format_duration, markdown_table,
                                    read_stage_log, write_report)

logger = logging.getLogger('mini_repro')
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

_TOY = 'configs/toy/'


@dataclass(frozen=True)
class Arm:
    """One arm: its stage configs in order; a second stage loads the first's final checkpoint.

    Attributes:
        key (str): Short name ('a', 'b', 'c'), also the arm's work-dir name.
        title (str): What the arm is, for tables.
        stages (tuple[tuple[str, str], ...]): (stage name, config path) pairs.
    """
    key: str
    title: str
    stages: Tuple[Tuple[str, str], ...]


ARMS: Tuple[Arm, ...] = (
    Arm('a', 'direct pretrain 192x192 -> finetune 480x320',
        (('pretrain', _TOY + 'mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py'),
         ('finetune', _TOY + 'mask-rcnn_r18_fpn_1xb2-direct-finetune-val_toy.py'))),
    Arm('b', "finetune only, from scratch ((a)'s finetune config and budget)",
        (('scratch', _TOY + 'mask-rcnn_r18_fpn_1xb2-scratch-2e_toy.py'), )),
    Arm('c', "from scratch at 480x320 for (a)'s total wall-clock",
        (('scratch', _TOY + 'mask-rcnn_r18_fpn_1xb2-scratch-5e_toy.py'), )),
)


@dataclass
class ArmResult:
    """An arm's stages (as run by the chain's runner) and its report's stage summaries."""
    arm: Arm
    stages: List[StageResult]
    summaries: List[StageSummary]
    report: str

    @property
    def train_wall_s(self) -> float:
        return sum(s.wall_s for s in self.summaries)

    @property
    def metrics(self) -> Dict[str, float]:
        return self.summaries[-1].metrics


@functools.lru_cache(maxsize=None)
def _load_config(config: str) -> Config:
    """Each arm config is parsed once, for the plan's estimate and for its stage."""
    return Config.fromfile(osp.join(REPO_ROOT, config))


def _config_name(config: str) -> str:
    return osp.splitext(osp.basename(config))[0]


def _plan(arms: Sequence[Arm]) -> List[Tuple[str, Optional[float]]]:
    plan: List[Tuple[str, Optional[float]]] = []
    for arm in arms:
        plan += [(f'{arm.key}/{stage}', estimate_train_cost(_load_config(config))) for stage, config in arm.stages]
        plan.append((f'{arm.key}/test', None))
    return plan


def _run_arm(arm: Arm, work_root: str, out_dir: str, eval_metrics: Sequence[str], train_args: Sequence[str],
             progress: StageProgress) -> ArmResult:
    results: List[StageResult] = []
    work_dirs = []
    for stage, config in arm.stages:
        work_dir = osp.join(work_root, arm.key, _config_name(config))
        extra = list(train_args)
        if results:  # the next stage starts from the previous stage's whole detector
            extra = ['--cfg-options', f'load_from={results[-1].output}', *extra]
        results.append(run_train_stage(f'{arm.key}/{stage}', config, _load_config(config), work_dir, extra, progress))
        work_dirs.append(work_dir)
    results.append(run_test_stage(f'{arm.key}/test', arm.stages[-1][1], results[-1].output, work_dirs[-1],
                               eval_metrics, progress))
    results = _keep_earlier_wall_times(results, osp.join(work_root, arm.key, 'arm_results.json'))
    report: RunReport = write_report(work_dirs, osp.join(out_dir, f'arm_{arm.key}'),
                                     names=[stage for stage, _ in arm.stages], title=f'Arm ({arm.key}): {arm.title}')
    return ArmResult(arm, results, report.stages, report.files['markdown'])


def _keep_earlier_wall_times(results: List[StageResult], record: str) -> List[StageResult]:
    """Skipped stages report 0 s; take their process wall time from the run that did them."""
    if osp.isfile(record):
        with open(record) as f:
            earlier = {r['name']: r for r in json.load(f)}
        for result in results:
            if result.status == 'skipped' and result.name in earlier:
                result.wall_time_s = earlier[result.name]['wall_time_s']
    with open(record, 'w') as f:
        json.dump([asdict(r) for r in results], f, indent=1)
    return results


def _cost_ratio(results: Sequence[ArmResult]) -> Optional[dict]:
    """Seconds per image of the pretrain vs the finetune stage of the two-stage arm."""
    for result in results:
        if len(result.summaries) == 2 and all(s.seconds_per_image for s in result.summaries):
            pre, ft = result.summaries
            return dict(arm=result.arm.key, pretrain_s_per_image=pre.seconds_per_image,
                        finetune_s_per_image=ft.seconds_per_image,
                        ratio=pre.seconds_per_image / ft.seconds_per_image)
    return None


def format_comparison(results: Sequence[ArmResult]) -> str:
    """Markdown: one row per arm (training wall time, process wall time, test mAPs)."""
    keys = [f'{task}_{suffix}' for task in ('bbox', 'segm') for suffix in ('mAP', 'mAP_50')]
    rows = []
    for r in results:
        stages = ' -> '.join(f'{s.name} ({s.epochs} ep, {s.iterations} it, {format_duration(s.wall_s)})'
                             for s in r.summaries)
        values = [r.metrics.get(f'coco/{k}') for k in keys]
        rows.append([f'({r.arm.key}) {r.arm.title}', stages, format_duration(r.train_wall_s),
                     format_duration(sum(s.wall_time_s for s in r.stages)),
                     *('—' if v is None else f'{v:.3f}' for v in values)])
    return markdown_table(['arm', 'stages', 'train wall time', 'wall time incl. start-up and test', *keys], rows)


def _write_summary(results: Sequence[ArmResult], out_dir: str) -> Dict[str, str]:
    from direct_pretrain.report.plots import plot_runs_loss, plot_runs_map
    runs = {f'({r.arm.key})': [read_stage_log(s.work_dir, s.name) for s in r.summaries] for r in results}
    files = dict(loss=plot_runs_loss(runs, osp.join(out_dir, 'compare_loss.png')))
    map_plot = plot_runs_map(runs, osp.join(out_dir, 'compare_map.png'))
    if map_plot:
        files['map'] = map_plot
    ratio = _cost_ratio(results)
    lines = ['# Miniature reproduction: results', '', format_comparison(results), '']
    if ratio:
        lines += [f'Cost per training image, arm ({ratio["arm"]}): pretrain {ratio["pretrain_s_per_image"]:.3f} s '
                  f'(192x192 crops, batch 8) vs finetune {ratio["finetune_s_per_image"]:.3f} s (480x320, batch 2): '
                  f'ratio {ratio["ratio"]:.2f}.', '']
    lines += ['Full COCO metrics (test stage):', '', markdown_table(
        ['arm', 'task', *METRIC_SUFFIXES],
        [[f'({r.arm.key})', task, *('—' if v is None else f'{v:.3f}'
                                    for v in (r.metrics.get(f'coco/{task}_{s}') for s in METRIC_SUFFIXES.values()))]
         for r in results for task in ('bbox', 'segm')])]
    lines += ['', f'![loss]({osp.basename(files["loss"])})', '',
              '*Total loss per arm against cumulative training wall time (dotted: pretrain stage).*', '']
    if 'map' in files:
        lines += [f'![mAP]({osp.basename(files["map"])})', '',
                  '*Test mAP per arm at the training wall time it cost (bbox solid, segm dashed).*', '']
    lines += ['Per-arm reports: ' + ', '.join(f'[({r.arm.key})](arm_{r.arm.key}/report.md)' for r in results), '']
    files['markdown'] = osp.join(out_dir, 'results.md')
    with open(files['markdown'], 'w') as f:
        f.write('\n'.join(lines))
    files['json'] = osp.join(out_dir, 'results.json')
    with open(files['json'], 'w') as f:
        json.dump(dict(arms=[dict(key=r.arm.key, title=r.arm.title, configs=[c for _, c in r.arm.stages],
                                  train_wall_s=r.train_wall_s, metrics=r.metrics,
                                  stages=[dict(asdict(s), seconds_per_image=s.seconds_per_image) for s in r.summaries],
                                  process_wall_s=[s.wall_time_s for s in r.stages])
                             for r in results], cost_ratio=ratio), f, indent=1)
    return files


def run_mini_repro(work_root: str = 'work_dirs/mini_repro', out_dir: str = 'docs/mini_repro',
                   arms: Sequence[Arm] = ARMS, eval_metrics: Sequence[str] = ('bbox', 'segm'),
                   train_args: Sequence[str] = ()) -> List[ArmResult]:
    """Run the arms one after the other (finished stages are skipped), write a report per
    arm under ``out_dir/arm_<key>`` and the comparison to ``out_dir/results.{md,json}``.

    Config paths are relative to the repository root, which must be the working
    directory (the toy configs' ``data_root`` is ``data/toy_coco/``).
    """
    os.makedirs(out_dir, exist_ok=True)
    progress = StageProgress(_plan(arms), 'mini-repro')
    results = []
    for arm in arms:
        logger.info('arm (%s): %s', arm.key, arm.title)
        results.append(_run_arm(arm, work_root, out_dir, eval_metrics, train_args, progress))
    files = _write_summary(results, out_dir)
    logger.info('mini reproduction written to %s', files['markdown'])
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-root', default='work_dirs/mini_repro', help='parent of the arms\' work dirs')
    parser.add_argument('--out', default='docs/mini_repro', help='folder for results.md/json, plots, arm reports')
    parser.add_argument('--arms', nargs='+', choices=[a.key for a in ARMS], default=[a.key for a in ARMS])
    parser.add_argument('--tensorboard', action='store_true', help='also log the training stages to TensorBoard')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='[mini_repro] %(message)s')
    if osp.abspath(os.getcwd()) != REPO_ROOT:
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
    print(f'\nresults: {osp.join(args.out, "results.md")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
