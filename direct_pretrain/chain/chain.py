"""The chained run: direct pre-training -> fine-tuning (``load_from``) -> test.

Each stage runs the installed train / test tools (``python -m direct_pretrain.cli.train``
/ ``.test``, i.e. ``dp-train`` / ``dp-test``) in a child process, exactly as a user would,
so the chain works from any working directory once the package is installed. A stage
whose final output exists is skipped, a stage with a checkpoint but no final output is
resumed with ``--resume``, so re-running the chain after an interruption continues where
it stopped. The fine-tune's ``load_from`` is the pretrain
stage's final checkpoint, found in the pretrain work dir. Each stage's output goes to
``<work dir>/stage.log`` and the terminal shows one progress bar per stage
(:mod:`.terminal`); stage progress is logged with the chain's ETA, and the run report
(tables + plots) is written at the end.

With ``launcher`` the stages run under torchrun with N processes, as ``dist_train.sh`` /
``dist_test.sh`` start them. With ``check_stage`` every training stage that is going to run is
first checked - the stage's own ``dp-train`` arguments with ``--check-only``, while the chain
holds the work dirs but before any stage writes into them - so bad input ends the chain with one
error line and no work dir; ``check_only`` stops there (``dp-chain --dry-run``).
"""
import argparse
import json
import logging
import os
import os.path as osp
import signal
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence

from mmengine.config import Config, DictAction
from mmengine.fileio import dump

from ..config.accumulation import apply_gradient_accumulation
from ..config.loading import load_config
from ..config.paths import default_work_dir, final_checkpoint_name, resolve_config_path
from ..errors import ConfigInputError, ReportInputError
from ..report import format_per_class_table, markdown_table, write_report
from ..runtime.process_lifetime import die_with_parent
from ..runtime.work_dir_lock import hold_work_dirs
from .progress import StageProgress, estimate_train_cost
from .terminal import StageFailed, run_stage

__all__ = ['StageResult', 'StageLauncher', 'run_chain', 'run_train_stage', 'run_test_stage', 'format_results_table',
           'tool_command', 'train_stage_args', 'test_stage_args']

logger = logging.getLogger(__name__)


@dataclass
class StageResult:
    name: str
    status: str  # 'ran', 'resumed', 'skipped'
    wall_time_s: float
    output: str
    metrics: Dict[str, float] = field(default_factory=dict)


def tool_command(tool: str) -> List[str]:
    """The command line that runs the package's ``tool`` ('train', 'test', ...) with this
    interpreter: the installed module, never a script path of a checkout."""
    return [sys.executable, '-m', f'direct_pretrain.cli.{tool}']


@dataclass
class StageLauncher:
    """How the chain starts a stage's tool: ``processes`` 1 with launcher 'none' is the tool
    itself; launcher 'pytorch' is torchrun with ``processes`` workers on this node, started the
    way ``tools/dist_launch.sh`` starts them (``NNODES``, ``NODE_RANK``, ``MASTER_ADDR``,
    ``PORT`` honoured; without CUDA the workers run on gloo)."""
    processes: int = 1
    launcher: str = 'none'

    @property
    def distributed(self) -> bool:
        return self.launcher == 'pytorch'

    @property
    def world_size(self) -> int:
        return self.processes * int(os.environ.get('NNODES', '1')) if self.distributed else 1

    def command(self, tool: str, args: Sequence[str]) -> List[str]:
        """The command line of ``tool`` with ``args``."""
        if not self.distributed:
            return [*tool_command(tool), *args]
        return [sys.executable, '-m', 'torch.distributed.run', f'--nnodes={os.environ.get("NNODES", "1")}',
                f'--node_rank={os.environ.get("NODE_RANK", "0")}',
                f'--master_addr={os.environ.get("MASTER_ADDR", "127.0.0.1")}', f'--nproc_per_node={self.processes}',
                f'--master_port={os.environ.get("PORT", "29500")}', '--module', f'direct_pretrain.cli.{tool}', *args,
                '--launcher', 'pytorch']

    def check_args(self) -> List[str]:
        """What a check of a stage adds to its arguments (the launcher it will run under)."""
        return ['--launcher', 'pytorch'] if self.distributed else []

    @contextmanager
    def check_environment(self) -> Iterator[None]:
        """The environment of a stage's check: dist_launch.sh's check before torchrun, as rank 0
        of the job's world size."""
        saved = {k: os.environ.get(k) for k in ('WORLD_SIZE', 'RANK')}
        if self.distributed:
            os.environ.update(WORLD_SIZE=str(self.world_size), RANK='0')
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


#: ``check_stage(argv)``: check a training stage given its ``dp-train`` arguments without
#: ``--check-only``; raises :class:`ConfigInputError` naming the problem (``dp-chain`` passes
#: ``dp-train``'s own argument parsing and config building).
StageCheck = Callable[[List[str]], None]


def _die_with_chain() -> None:
    """In the stage process before it starts: end it (SIGTERM) when the chain dies, so a
    killed chain leaves no stage training on in a work dir it no longer holds."""
    die_with_parent(signal.SIGTERM)


def _run(cmd: List[str], name: str, work_dir: str, verbose: bool = False,
         total_epochs: Optional[int] = None, env: Optional[Dict[str, str]] = None) -> float:
    """Run one stage's command: its output to ``<work_dir>/stage.log`` and a progress bar on the
    terminal, or with ``verbose`` the output itself (:func:`~.terminal.run_stage`)."""
    logger.info('running: %s', ' '.join(cmd))
    try:
        return run_stage(name, cmd, work_dir, env=env, total_epochs=total_epochs, verbose=verbose,
                         preexec_fn=_die_with_chain)
    except StageFailed as error:
        raise RuntimeError(str(error)) from error


def train_stage_args(config: str, work_dir: str, extra: Sequence[str] = ()) -> List[str]:
    """The ``dp-train`` arguments a training stage starts with (before any ``--resume``)."""
    return [config, '--work-dir', work_dir, *extra]


def test_stage_args(config: str, checkpoint: str, work_dir: str, eval_metrics: Sequence[str],
                    extra: Sequence[str] = ()) -> List[str]:
    """The ``dp-test`` arguments of a test stage: per-class AP, metrics into the work dir."""
    return [config, checkpoint, '--work-dir', work_dir, '--eval', *eval_metrics, '--classwise', '--metrics-out',
            osp.join(work_dir, 'test_metrics.json'), *extra]


def _train_args(config: str, cfg: Config, work_dir: str, extra: Sequence[str]) -> Optional[List[str]]:
    """The ``dp-train`` arguments of a training stage, None when its final checkpoint exists
    (skipped); with ``--resume`` when the work dir holds an earlier checkpoint."""
    if osp.isfile(osp.join(work_dir, final_checkpoint_name(cfg))):
        return None
    args = train_stage_args(config, work_dir, extra)
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        args.append('--resume')
    return args


# dp-train's flags that change what a stage trains for how long (and so its final checkpoint's name)
_LENGTH_FLAGS = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
_LENGTH_FLAGS.add_argument('--cfg-options', nargs='+', action=DictAction)
_LENGTH_FLAGS.add_argument('--data-root')
_LENGTH_FLAGS.add_argument('--accumulate', type=int, default=1)


def stage_config(config: str, args: Sequence[str]) -> Config:
    """A training stage's config as ``dp-train CONFIG ARGS`` trains it, as far as its length,
    its final checkpoint and its test metrics go: ``--cfg-options``, ``--data-root`` and
    ``--accumulate`` applied (the stage's checks are ``dp-train``'s own)."""
    flags, _ = _LENGTH_FLAGS.parse_known_args(list(args))
    cfg = load_config(config, cfg_options=flags.cfg_options, data_root=flags.data_root)
    if flags.accumulate > 1:
        apply_gradient_accumulation(cfg, flags.accumulate)
    return cfg


def run_train_stage(name: str, config: str, cfg: Config, work_dir: str, extra: Sequence[str] = (),
                    progress: Optional[StageProgress] = None, verbose: bool = False,
                    launcher: Optional[StageLauncher] = None, env: Optional[Dict[str, str]] = None) -> StageResult:
    """Train ``config`` into ``work_dir`` in a child process: skipped when its final
    checkpoint exists, resumed when the dir holds an earlier checkpoint.

    Args:
        name (str): Stage name for progress lines and the result.
        config (str): Config file.
        cfg (Config): The parsed config (for the final checkpoint's name).
        work_dir (str): The stage's work dir.
        extra (Sequence[str]): Further train-tool arguments.
        progress (StageProgress, optional): Receives start / finish of the stage.
        verbose (bool): Show the stage's output instead of a progress bar (it goes to
            ``<work_dir>/stage.log`` either way). Defaults to False.
        launcher (StageLauncher, optional): How the tool starts. Defaults to one process.
        env (dict, optional): The stage's environment. Defaults to this process's.
    """
    final = osp.join(work_dir, final_checkpoint_name(cfg))
    args = _train_args(config, cfg, work_dir, extra)
    if args is None:
        logger.info('%s: %s exists, skipping', name, final)
        if progress:
            progress.finish(name, 0.0, 'skipped')
        return StageResult(name, 'skipped', 0.0, final)
    status = 'resumed' if args[-1] == '--resume' else 'ran'
    if progress:
        progress.start(name)
    wall = _run((launcher or StageLauncher()).command('train', args), name, work_dir, verbose,
                (cfg.get('train_cfg') or {}).get('max_epochs'), env)
    if not osp.isfile(final):
        raise RuntimeError(f'{name}: training finished but {final} was not written')
    if progress:
        progress.finish(name, wall, status)
    return StageResult(name, status, wall, final)


def run_test_stage(name: str, config: str, checkpoint: str, work_dir: str, eval_metrics: Sequence[str],
                   progress: StageProgress, extra: Sequence[str] = (), verbose: bool = False,
                   launcher: Optional[StageLauncher] = None) -> StageResult:
    """Evaluate ``checkpoint`` in a child process, metrics to ``<work_dir>/test_metrics.json``;
    skipped when those metrics are newer than the checkpoint."""
    metrics_file = osp.join(work_dir, 'test_metrics.json')
    if osp.isfile(metrics_file) and osp.getmtime(metrics_file) >= osp.getmtime(checkpoint):
        logger.info('%s: %s is up to date, skipping', name, metrics_file)
        status, wall = 'skipped', 0.0
    else:
        status = 'ran'
        progress.start(name)
        wall = _run((launcher or StageLauncher()).command(
            'test', test_stage_args(config, checkpoint, work_dir, eval_metrics, extra)), name, work_dir, verbose)
    progress.finish(name, wall, status)
    with open(metrics_file) as f:
        return StageResult(name, status, wall, metrics_file, json.load(f))


def _check_stages(check_stage: StageCheck, launcher: StageLauncher, stages: Sequence[tuple]) -> None:
    """Check each training stage that is going to run with its own arguments, as rank 0 under
    the launcher it will run with; the first problem is raised naming the stage and its config."""
    for name, config, cfg, work_dir, extra in stages:
        args = _train_args(config, cfg, work_dir, extra)
        if args is None:
            continue  # finished: it will be skipped
        with launcher.check_environment():
            try:
                check_stage([*args, *launcher.check_args()])
            except ConfigInputError as error:
                raise ConfigInputError(f'{name} stage ({config}): {error}') from error
        logger.info('%s: checks passed (%s)', name, config)


def run_chain(pretrain_config: str, finetune_config: str, work_root: Optional[str] = None,
              eval_metrics: Optional[Sequence[str]] = None, pretrain_args: Sequence[str] = (),
              finetune_args: Sequence[str] = (), report_dir: Optional[str] = None,
              make_report: bool = True, data_root: Optional[str] = None,
              verbose: bool = False, test_args: Sequence[str] = (), launcher: Optional[StageLauncher] = None,
              check_stage: Optional[StageCheck] = None, check_only: bool = False) -> List[StageResult]:
    """Run pretrain -> finetune -> test; returns one :class:`StageResult` per stage.

    Args:
        pretrain_config (str): Pretrain-stage config.
        finetune_config (str): Finetune-stage config.
        work_root (str, optional): Parent of the stage work dirs. Defaults to the mmdet
            default, ``work_dirs/<config name>`` per stage.
        eval_metrics (Sequence[str], optional): ``--eval`` metrics of the test stage. Defaults
            to the finetune config's ``test_evaluator`` metrics (``bbox segm`` for Mask R-CNN,
            ``bbox keypoints`` for Keypoint R-CNN).
        pretrain_args / finetune_args (Sequence[str]): Extra ``tools/train.py`` arguments.
        report_dir (str, optional): Where the run report goes. Defaults to
            ``<finetune work dir>/report``.
        make_report (bool): Write the run report at the end. Defaults to True.
        data_root (str, optional): ``--data-root`` of every stage. Defaults to the configs'.
        verbose (bool): Show the stages' output instead of one progress bar per stage (each
            stage's output goes to ``<work dir>/stage.log`` either way). Defaults to False.
        test_args (Sequence[str]): Extra ``tools/test.py`` arguments.
        launcher (StageLauncher, optional): How the stages start (torchrun with N processes).
            Defaults to one process each.
        check_stage (StageCheck, optional): Checks a training stage from its ``dp-train``
            arguments; given, both training stages are checked before either runs (the
            fine-tune with ``load_from=None`` while the pretrain checkpoint does not exist yet).
        check_only (bool): Return after the checks (needs ``check_stage``); nothing is trained
            and no work dir is left behind. Defaults to False.

    Raises:
        ConfigInputError: a check failed (the message names the stage and its config).
        RuntimeError: a stage failed.
    """
    if check_only and check_stage is None:
        raise ValueError('run_chain(check_only=True) needs check_stage')
    pretrain_config, finetune_config = resolve_config_path(pretrain_config), resolve_config_path(finetune_config)
    launcher = launcher or StageLauncher()

    pre_dir, ft_dir = (default_work_dir(config, work_root or 'work_dirs') for config in (pretrain_config, finetune_config))
    data_args = ['--data-root', data_root] if data_root else []
    pre_args = [*pretrain_args, *data_args]
    pre_cfg = stage_config(pretrain_config, pre_args)
    pre_final = osp.join(pre_dir, final_checkpoint_name(pre_cfg))
    ft_args = ['--cfg-options', f'load_from={pre_final}', *finetune_args, *data_args]
    ft_cfg = stage_config(finetune_config, ft_args)
    if not eval_metrics:
        metric = (ft_cfg.get('test_evaluator') or {}).get('metric', 'bbox')
        eval_metrics = [metric] if isinstance(metric, str) else list(metric)
    # One live run per work dir: the chain holds both stage dirs across all stages; its stage
    # processes run under its lock (they carry its token) and die with it.
    with hold_work_dirs([pre_dir, ft_dir]):
        env = None
        if check_stage is not None:
            # The fine-tune's load_from is the pretrain's output: checked once it exists.
            pending = [] if osp.isfile(pre_final) else ['--cfg-options', 'load_from=None']
            _check_stages(check_stage, launcher, [
                ('pretrain', pretrain_config, pre_cfg, pre_dir, pre_args),
                ('finetune', finetune_config, ft_cfg, ft_dir, [*ft_args, *pending])])
            env = dict(os.environ, DP_INPUTS_CHECKED='1')  # the stages skip what the checks said once
        if check_only:
            return []
        progress = StageProgress([('pretrain', estimate_train_cost(pre_cfg)),
                                  ('finetune', estimate_train_cost(ft_cfg)), ('test', None)], 'chain')
        results = [run_train_stage('pretrain', pretrain_config, pre_cfg, pre_dir, pre_args, progress, verbose,
                                   launcher, env)]
        finetune = run_train_stage('finetune', finetune_config, ft_cfg, ft_dir, ft_args, progress, verbose, launcher,
                                   env)  # its load_from: pre_final, the pretrain's output
        results.append(finetune)

        results.append(run_test_stage('test', finetune_config, finetune.output, ft_dir, eval_metrics, progress,
                                      [*data_args, *test_args], verbose, launcher))
        dump([asdict(r) for r in results], osp.join(ft_dir, 'chain_results.json'), indent=1)
        if make_report:
            _write_chain_report([pre_dir, ft_dir], report_dir or osp.join(ft_dir, 'report'))
    return results


def _write_chain_report(work_dirs: List[str], out_dir: str) -> None:
    """The run report of the chain; a report problem is logged, never fails the trained chain."""
    try:
        write_report(work_dirs, out_dir, names=['pretrain', 'finetune'], title='Chain report: pretrain -> finetune')
    except ReportInputError as error:
        logger.warning('chain: no run report: %s', error)


def format_results_table(results: Sequence[StageResult]) -> str:
    """Markdown tables of the stages, of the test metrics and, when the test computed them, of
    each class's AP under the dataset's class names."""
    text = markdown_table(['stage', 'status', 'wall time (s)', 'output'],
                          [[r.name, r.status, f'{r.wall_time_s:.1f}', r.output] for r in results])
    metrics = results[-1].metrics if results else {}
    keys = [k.split('/', 1)[1] for k in metrics
            if k.startswith('coco/') and k.endswith(('_mAP', '_mAP_50', '_mAP_75'))]
    if keys:
        text += '\n\n' + markdown_table(keys, [[f'{metrics["coco/" + k]:.3f}' for k in keys]])
    per_class = format_per_class_table({results[-1].name: metrics}) if results else None
    if per_class:
        text += '\n\n' + per_class
    return text
