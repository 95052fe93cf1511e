"""One run that says whether the package works on a CUDA machine, and how fast.

Why: every figure of this project came from CPU machines, while users train on GPUs, where
other code runs: mmcv's CUDA kernels (RoIAlign, NMS), the fused kernel path of
``SyncBNAnyBackend``, native AMP, cuDNN. A GPU is lent rarely and briefly, so a single
command has to answer everything at once and leave a machine-readable record:

* ``environment``: mmcv's ``collect_env`` (mmengine's plus mmcv and the CUDA version its ops
  were compiled with) in the summary's keys, and what it lacks: GPU properties and driver,
  mmdet and package versions, whether mmcv has CUDA kernels, whether the torchvision fallback
  is on;
* ``correctness`` (:mod:`direct_pretrain.analysis_tools.op_checks`): mmcv ``RoIAlign`` (forward and
  input gradient) and ``nms`` on CUDA against mmcv's CPU kernels on the same random inputs,
  for the settings the configs use; the torchvision fallback
  (:mod:`direct_pretrain.runtime.torchvision_cuda_ops`) against the same references;
  ``SyncBNAnyBackend`` built through the registry, and its two synchronized paths (torch's
  fused kernel, the portable function) on a one-process group, against ``nn.BatchNorm2d``;
* ``throughput``: train images/s and peak memory of the zoo's configs per precision and
  memory format (:mod:`direct_pretrain.analysis_tools.train_throughput`), the AMP speed-up against the
  goal of the issue (>= 1.8x for the pretrain stage) and the 11 GB claim;
* ``training``: the toy chain's pretrain and fine-tune stages for one short epoch each, then
  its test stage with ``--eval bbox segm``, run by the chain's own stage runners
  (:func:`~direct_pretrain.chain.run_train_stage`, :func:`~direct_pretrain.chain.run_test_stage`)
  on a toy set generated under the work dir and passed as ``--data-root``.

Dry run (``dry_run=True``, for machines without a GPU and for the test suite): every model
is still built from its config and takes one train step on CPU at a reduced size, the
correctness checks that need CUDA are recorded as skipped with the reason while the
CPU-side ones (torchvision fallback against mmcv, SyncBN against BN) run, and the training
stage only plans its commands. The JSON has the same schema, ``dry_run: true`` and null
figures. Without CUDA a non-dry run is refused rather than silently turned into a dry run,
so a GPU machine whose torch cannot see its GPU never reports an empty success.
"""
import copy
import datetime
import logging
import math
import os
import os.path as osp
import platform
import subprocess
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.utils import collect_env
from mmengine.config import Config

import mmdet
from ..chain import (StageProgress, estimate_train_cost, run_test_stage, run_train_stage, stage_config, test_stage_args,
                     tool_command, train_stage_args)
from ..chain.terminal import STAGE_LOG
from ..config import final_checkpoint_name, iter_leaf_datasets, resolve_config_path
from ..datasets import generate_toy_coco, toy_coco_is_complete
from ..errors import ConfigInputError, GpuCheckInputError
from ..runtime.torchvision_cuda_ops import (CONFIG_KEY as TORCHVISION_CUDA_OPS_KEY, enable_torchvision_cuda_ops,
                                            mmcv_has_cuda_ops, setup_torchvision_cuda_ops, torchvision_cuda_ops_enabled)
from ..version import __version__
from .op_checks import run_correctness
from .stage_cost import train_canvas
from .train_throughput import PRECISIONS, ThroughputResult, measure_train_throughput, speedups

__all__ = [
    'SCHEMA_VERSION', 'BenchmarkSpec', 'BENCHMARKS', 'GpuCheckOptions', 'collect_environment',
    'run_throughput', 'training_plan', 'run_training', 'run_gpu_check', 'count_failures', 'format_summary'
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
AMP_SPEEDUP_GOAL = 1.8
TOY_PRETRAIN = 'toy/mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py'
TOY_FINETUNE = 'toy/mask-rcnn_r18_fpn_1xb2-direct-finetune_toy.py'
TEST_METRICS = ('bbox', 'segm')


@dataclass(frozen=True)
class BenchmarkSpec:
    """A throughput configuration: a zoo config and the variants to time.

    Image size and images per step come from the config itself (train pipeline canvas,
    ``train_dataloader.batch_size``).

    Args:
        config (str): Config name relative to the package's configs folder.
        precisions (tuple[str]): Precisions to time ('fp32', 'fp16', 'bf16').
        channels_last (tuple[bool]): Memory formats to time.
    """
    config: str
    precisions: Tuple[str, ...] = ('fp32', 'bf16', 'fp16')
    channels_last: Tuple[bool, ...] = (False, True)


BENCHMARKS: Dict[str, BenchmarkSpec] = {
    # 448x448, 8 images per GPU
    'faster-rcnn-pretrain': BenchmarkSpec('direct_pretraining/faster-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py'),
    # 1333x800, 2 images per GPU
    'faster-rcnn-finetune': BenchmarkSpec('direct_pretraining/faster-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py'),
    # the config trains with AMP (fp16); bf16 is the alternative
    'mask-rcnn-swin-t-pretrain': BenchmarkSpec(
        'direct_pretraining/mask-rcnn_swin-t-p4-w7_fpn_amp_8xb8-direct-pretrain-448-p1x_coco.py',
        precisions=('fp16', 'bf16'), channels_last=(False, )),
}



@dataclass
class GpuCheckOptions:
    """What one check runs.

    Args:
        dry_run (bool): Exercise everything on CPU, no figures (see the module docstring).
            Defaults to False.
        benchmarks (tuple[str]): Names from :data:`BENCHMARKS`. Defaults to all.
        precisions (tuple[str], optional): Keep only these precisions of each benchmark.
            Defaults to None (each benchmark's own).
        warmup (int): Untimed steps per configuration. Defaults to 5.
        steps (int): Timed steps per configuration. Defaults to 20.
        dry_size (int): Long side (px) of the dry run's images. Defaults to 128.
        correctness (bool): Run the correctness checks. Defaults to True.
        training (bool): Run (or, dry, plan) the short real training. Defaults to True.
        work_dir (str): Work folder of the short training and its toy dataset.
            Defaults to 'work_dirs/gpu_check'.
        pretrain_images (int): Training images of the short pretrain stage. Defaults to 40.
        finetune_images (int): Training images of the short fine-tune stage. Defaults to 20.
        torchvision_cuda_ops (bool): Route mmcv's nms / RoIAlign on CUDA to torchvision in
            this process even where mmcv has CUDA ops, and set the config key
            ``torchvision_cuda_ops=True`` for the training stages (routed there when mmcv
            lacks CUDA ops). Defaults to False.
        seed (int): Seed of inputs and random init. Defaults to 0.
    """
    dry_run: bool = False
    benchmarks: Tuple[str, ...] = tuple(BENCHMARKS)
    precisions: Optional[Tuple[str, ...]] = None
    warmup: int = 5
    steps: int = 20
    dry_size: int = 128
    correctness: bool = True
    training: bool = True
    work_dir: str = 'work_dirs/gpu_check'
    pretrain_images: int = 40
    finetune_images: int = 20
    torchvision_cuda_ops: bool = False
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`GpuCheckInputError` naming the first bad option."""
        unknown = [b for b in self.benchmarks if b not in BENCHMARKS]
        if unknown or not self.benchmarks:
            raise GpuCheckInputError(f'unknown benchmark {unknown[0] if unknown else "(none given)"!r}; '
                                     f'choose from {", ".join(BENCHMARKS)}')
        bad = [p for p in self.precisions or () if p not in PRECISIONS]
        if bad:
            raise GpuCheckInputError(f'unknown precision {bad[0]!r}; choose from {", ".join(PRECISIONS)}')
        for name in ('warmup', 'steps', 'dry_size', 'pretrain_images', 'finetune_images'):
            value = getattr(self, name)
            minimum = 0 if name == 'warmup' else 1
            if not isinstance(value, int) or value < minimum:
                raise GpuCheckInputError(f'{name.replace("_", "-")} must be an integer >= {minimum}, got {value!r}')
        if self.dry_size % 32:
            raise GpuCheckInputError(f'dry-size must be a multiple of 32 (the FPN stride), got {self.dry_size}')


# ---------------------------------------------------------------------------- environment
def _nvidia_driver() -> Optional[str]:
    try:
        out = subprocess.run(['nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader'],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def collect_environment() -> Dict[str, Any]:
    """Versions, the GPU and the state of mmcv's CUDA ops and of the torchvision fallback.

    The versions come from mmcv's ``collect_env`` (mmengine's, plus mmcv and the CUDA version
    mmcv's ops were compiled with); added here is what it lacks: platform, CPU count, torch's
    CUDA and cuDNN, mmdet and package versions, GPU capability, memory and driver, and the
    state of mmcv's CUDA kernels and of the torchvision route.
    """
    base = collect_env()
    env: Dict[str, Any] = dict(
        python=base['Python'].split()[0], platform=platform.platform(), cpu_count=os.cpu_count(),
        torch=base['PyTorch'], torch_cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
        torchvision=base.get('TorchVision'), mmcv=base['MMCV'], mmengine=base['MMEngine'], mmdet=mmdet.__version__,
        direct_pretrain=__version__, mmcv_compiling_cuda=str(base['MMCV CUDA Compiler']),
        mmcv_cuda_ops=mmcv_has_cuda_ops(), torchvision_cuda_ops_enabled=torchvision_cuda_ops_enabled(),
        cuda_available=bool(base['CUDA available']))
    env['gpu_count'] = torch.cuda.device_count() if env['cuda_available'] else 0
    env['gpu_name'] = env['gpu_capability'] = env['gpu_memory_mib'] = env['driver'] = None
    if env['cuda_available']:
        props = torch.cuda.get_device_properties(0)
        env['gpu_name'] = props.name
        env['gpu_capability'] = f'{props.major}.{props.minor}'
        env['gpu_memory_mib'] = round(props.total_memory / 2**20)
        env['driver'] = _nvidia_driver()
    return env


# ---------------------------------------------------------------------------- throughput
def _reduced_size(size: Tuple[int, int], long_side: int) -> Tuple[int, int]:
    """``size`` (w, h) scaled to ``long_side`` with both sides rounded up to multiples of 32."""
    scale = long_side / max(size)
    return tuple(max(32, int(math.ceil(s * scale / 32) * 32)) for s in size)  # type: ignore[return-value]


# Caps on the sampling sizes of a dry run's detector: its one CPU step exercises the code
# path; at the configs' 512 RoIs per image the 4conv1fc box head alone takes tens of seconds.
_DRY_CAPS = dict(num=16, max_per_img=64, nms_pre=256)


def _shrink_for_dry_run(node: Any) -> None:
    """Cap sampler sizes and proposal counts of ``model.train_cfg`` in place (any nesting)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _DRY_CAPS and isinstance(value, int) and value > _DRY_CAPS[key]:
                node[key] = _DRY_CAPS[key]
            else:
                _shrink_for_dry_run(value)
    elif isinstance(node, (list, tuple)):
        for item in node:
            _shrink_for_dry_run(item)


def _config_path(name: str) -> str:
    try:
        return resolve_config_path(name)
    except ConfigInputError as error:
        raise GpuCheckInputError(str(error)) from error


def run_throughput(options: GpuCheckOptions) -> List[dict]:
    """Time every variant of the selected benchmarks (one dry CPU step each in a dry run)."""
    entries = []
    for name in options.benchmarks:
        spec = BENCHMARKS[name]
        path = _config_path(spec.config)
        cfg = Config.fromfile(path)
        precisions = [p for p in spec.precisions if options.precisions is None or p in options.precisions]
        ran_dry = False
        for precision in precisions:
            for channels_last in spec.channels_last:
                if not options.dry_run:
                    entries.append(measure_train_throughput(
                        cfg, name, spec.config, precision, channels_last, warmup=options.warmup,
                        steps=options.steps, device='cuda', seed=options.seed).to_dict())
                elif not ran_dry and not channels_last:
                    # One step in the config's own precision where the CPU can run it (fp32);
                    # the AMP wrapper needs CUDA, so an AMP-only benchmark steps in fp32.
                    ran_dry = True
                    dry_cfg = copy.deepcopy(cfg)
                    _shrink_for_dry_run(dry_cfg.model.get('train_cfg'))
                    result = measure_train_throughput(
                        dry_cfg, name, spec.config, 'fp32', False, batch_size=1,
                        size=_reduced_size(train_canvas(cfg), options.dry_size), warmup=0, steps=1, device='cpu',
                        seed=options.seed, report_figures=False)
                    if precision != 'fp32':
                        result.precision = precision  # the variant this entry stands for
                        result.skipped = f'dry run: {precision} needs CUDA, stepped in fp32'
                    entries.append(result.to_dict())
                else:
                    entries.append(ThroughputResult(
                        name=name, config=spec.config, image_size=train_canvas(cfg),
                        batch_size=int(cfg.train_dataloader.batch_size), precision=precision,
                        channels_last=channels_last, device='cuda', warmup_steps=options.warmup,
                        timed_steps=options.steps, skipped='dry run: no CUDA calls').to_dict())
    return entries


def summarize_speedups(entries: Sequence[dict]) -> Dict[str, Any]:
    """AMP / channels-last speed-ups over fp32 per benchmark, and the issue's two claims."""
    results = [ThroughputResult(**{**e, 'image_size': tuple(e['image_size'])}) for e in entries]
    table = speedups(results)
    pretrain = table.get('faster-rcnn-pretrain', {})
    amp = [v for k, v in pretrain.items() if not k.startswith('fp32') and v is not None]
    fp32 = next((e for e in entries if e['name'] == 'faster-rcnn-pretrain' and e['precision'] == 'fp32'
                 and not e['channels_last']), None)
    return dict(speedup_over_fp32=table, pretrain_amp_goal=AMP_SPEEDUP_GOAL,
                pretrain_amp_best=max(amp) if amp else None,
                pretrain_amp_goal_met=(max(amp) >= AMP_SPEEDUP_GOAL) if amp else None,
                pretrain_fp32_fits_11gb=fp32.get('fits_11gb') if fp32 else None)


# ---------------------------------------------------------------------------- training
def _short_epoch(cfg: Config, images: int) -> Dict[str, Any]:
    """``--cfg-options`` for one epoch over the first ``images`` training images: ``indices`` on
    every training dataset (wherever the config nests it) and no ``RepeatDataset`` repeats."""
    options: Dict[str, Any] = {'train_cfg.max_epochs': 1}
    for key, _ in iter_leaf_datasets(cfg, ('train_dataloader', )):
        options[f'{key}.indices'] = images
        parts = key.split('.')
        node = cfg
        for depth, part in enumerate(parts[:-1], start=1):  # the wrappers above the leaf
            node = node[int(part)] if isinstance(node, list) else node[part]
            if isinstance(node, dict) and 'times' in node:
                options['.'.join(parts[:depth]) + '.times'] = 1
    return options


def _option_args(options: Dict[str, Any]) -> List[str]:
    return ['--cfg-options', *(f'{key}={value}' for key, value in options.items())] if options else []


def _train_stage(name: str, path: str, work_dir: str, stage_options: Dict[str, Any], data_root: str) -> dict:
    """One planned training stage: what :func:`~direct_pretrain.chain.run_train_stage` takes, and
    the command it starts (the config as the stage trains it, to know its output)."""
    extra = ['--data-root', data_root, *_option_args(stage_options)]
    try:
        cfg = stage_config(path, extra)
    except ConfigInputError as error:
        raise GpuCheckInputError(str(error)) from error
    return dict(stage=name, tool='train', config=path, cfg=cfg, work_dir=work_dir, extra=extra,
                output=osp.join(work_dir, final_checkpoint_name(cfg)),
                argv=[*tool_command('train'), *train_stage_args(path, work_dir, extra)])


def training_plan(options: GpuCheckOptions) -> Dict[str, Any]:
    """The toy chain in a few iterations: its stages, their commands (argv) and the paths they use.

    Pretrain and fine-tune run one epoch over the first ``pretrain_images`` /
    ``finetune_images`` training images of the toy set generated under ``work_dir`` (given to
    every stage as ``--data-root``); the fine-tune loads the pretrain checkpoint; the test
    evaluates bbox and segm on the toy validation set. The commands are those the chain's
    stage runners start (the installed tools, absolute paths), so they run from any directory.
    Planning writes nothing.
    """
    work = osp.abspath(options.work_dir)
    data_root = osp.join(work, 'toy_coco') + '/'
    routed = {TORCHVISION_CUDA_OPS_KEY: True} if options.torchvision_cuda_ops else {}
    pre_path, ft_path = osp.abspath(_config_path(TOY_PRETRAIN)), osp.abspath(_config_path(TOY_FINETUNE))
    pretrain = _train_stage('pretrain', pre_path, osp.join(work, 'pretrain'),
                            {**_short_epoch(Config.fromfile(pre_path), options.pretrain_images), **routed}, data_root)
    finetune = _train_stage('finetune', ft_path, osp.join(work, 'finetune'), {
        **_short_epoch(Config.fromfile(ft_path), options.finetune_images), 'load_from': pretrain['output'], **routed
    }, data_root)
    work_dir, checkpoint = finetune['work_dir'], finetune['output']
    metrics = osp.join(work_dir, 'test_metrics.json')
    extra = ['--data-root', data_root, *_option_args(routed)]
    test = dict(stage='test', tool='test', config=ft_path, checkpoint=checkpoint, work_dir=work_dir, extra=extra,
                output=metrics, argv=[*tool_command('test'), *test_stage_args(ft_path, checkpoint, work_dir, TEST_METRICS,
                                                                             extra)])
    return dict(work_dir=work, data_root=data_root, commands=[pretrain, finetune, test])


def run_training(plan: Dict[str, Any]) -> List[dict]:
    """Run the planned stages in order through the chain's stage runners; stops at the first
    failure. Returns one entry per stage (skipped ones say why).

    As in ``dp-chain``, a stage whose output exists is skipped and one with a checkpoint but no
    final output is resumed; each stage's output goes to ``<its work dir>/stage.log``.
    """
    os.makedirs(plan['work_dir'], exist_ok=True)
    if not toy_coco_is_complete(plan['data_root']):
        generate_toy_coco(plan['data_root'])
    stages = plan['commands']
    progress = StageProgress([(s['stage'], estimate_train_cost(s['cfg']) if s['tool'] == 'train' else None)
                              for s in stages], 'gpu check')
    results = []
    failed = False
    for stage in stages:
        entry = dict(stage=stage['stage'], argv=stage['argv'], returncode=None, wall_s=None, output=None,
                     log=osp.join(stage['work_dir'], STAGE_LOG), skipped=None, error=None)
        results.append(entry)
        if failed:
            entry['skipped'] = 'an earlier stage failed'
            continue
        try:
            if stage['tool'] == 'test':
                result = run_test_stage(stage['stage'], stage['config'], stage['checkpoint'], stage['work_dir'],
                                        TEST_METRICS, progress, stage['extra'])
                entry['metrics'] = result.metrics
            else:
                result = run_train_stage(stage['stage'], stage['config'], stage['cfg'], stage['work_dir'],
                                         stage['extra'], progress)
        except RuntimeError as error:  # the stage failed: exit code and log tail, or its output missing
            failed = True
            entry['returncode'] = getattr(error.__cause__, 'returncode', None)
            entry['error'] = str(error)
            continue
        entry['wall_s'] = round(result.wall_time_s, 2)
        entry['output'] = result.output
        if result.status == 'skipped':
            entry['skipped'] = f'{result.output} exists (from an earlier run); use another --work-dir to run it again'
        else:
            entry['returncode'] = 0
            if result.status == 'resumed':
                entry['argv'] = [*stage['argv'], '--resume']
    return results


# ---------------------------------------------------------------------------- the whole check
def run_gpu_check(options: GpuCheckOptions) -> Dict[str, Any]:
    """Run the check described in the module docstring; returns the JSON-ready summary.

    Raises:
        GpuCheckInputError: a bad option, a config that cannot be found, or no CUDA device
            for a non-dry run.
    """
    options.validate()
    if not options.dry_run and not torch.cuda.is_available():
        raise GpuCheckInputError('no CUDA device is visible to torch (torch.cuda.is_available() is False, torch '
                                 f'{torch.__version__}, built for CUDA {torch.version.cuda}); run on a GPU machine, '
                                 'or pass --dry-run to exercise the code paths on CPU.')
    setup_torchvision_cuda_ops()  # honours DP_TORCHVISION_CUDA_OPS
    if options.torchvision_cuda_ops:  # forced: also measures the fallback where mmcv has CUDA ops
        enable_torchvision_cuda_ops(force=True)
    started = time.perf_counter()
    summary: Dict[str, Any] = dict(
        schema_version=SCHEMA_VERSION, dry_run=options.dry_run,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        options=asdict(options), environment=collect_environment())
    timing: Dict[str, float] = {}
    mark = time.perf_counter()
    summary['correctness'] = run_correctness(options.dry_run, options.seed) if options.correctness else []
    timing['correctness_s'], mark = round(time.perf_counter() - mark, 1), time.perf_counter()
    summary['throughput'] = run_throughput(options)
    summary['speedup'] = summarize_speedups(summary['throughput'])
    timing['throughput_s'], mark = round(time.perf_counter() - mark, 1), time.perf_counter()
    training: Dict[str, Any] = dict(planned=None, results=[], skipped=None)
    if options.training:
        plan = training_plan(options)
        training['planned'] = [c['argv'] for c in plan['commands']]
        if options.dry_run:
            training['skipped'] = 'dry run: commands planned, not run'
        else:
            training['results'] = run_training(plan)
    else:
        training['skipped'] = 'switched off'
    summary['training'] = training
    timing['training_s'] = round(time.perf_counter() - mark, 1)
    summary['timing'] = timing
    summary['wall_s'] = round(time.perf_counter() - started, 1)
    summary['failures'] = count_failures(summary)
    return summary


def count_failures(summary: Dict[str, Any]) -> int:
    """Failed checks, throughput configurations that raised, non-finite losses, failed stages."""
    failures = sum(1 for e in summary.get('correctness', []) if e.get('passed') is False)
    failures += sum(1 for e in summary.get('throughput', []) if e.get('error') or e.get('loss_finite') is False)
    failures += sum(1 for e in summary.get('training', {}).get('results', []) if e.get('error'))
    return failures


def _fmt(value: Any, spec: str = '.1f') -> str:
    return '-' if value is None else format(value, spec)


def format_summary(summary: Dict[str, Any]) -> str:
    """A short plain-text table of the summary (for the end of a console log)."""
    env = summary['environment']
    lines = [f"gpu check{' (dry run)' if summary['dry_run'] else ''}: {env.get('gpu_name') or 'no GPU'}, "
             f"torch {env['torch']}, mmcv {env['mmcv']} (CUDA ops: {env['mmcv_cuda_ops']}), mmdet {env['mmdet']}"]
    for e in summary['correctness']:
        state = 'skipped' if e['skipped'] else ('ok' if e['passed'] else 'FAILED')
        lines.append(f"  check {e['name']:<45} {state:<8} {_fmt(e['max_abs_diff'], '.2g')} "
                     f"{e['skipped'] or e['error'] or ''}".rstrip())
    lines.append(f"  {'benchmark':<26} {'precision':<20} {'size':>9} {'batch':>5} {'img/s':>7} {'peak MiB':>9}")
    for e in summary['throughput']:
        variant = e['precision'] + ('+channels_last' if e['channels_last'] else '')
        size = 'x'.join(map(str, e['image_size']))
        note = e['error'] or e['skipped'] or ''
        lines.append(f"  {e['name']:<26} {variant:<20} {size:>9} {e['batch_size']:>5} {_fmt(e['images_per_s']):>7} "
                     f"{_fmt(e['peak_memory_mib'], '.0f'):>9} {note[:80]}".rstrip())
    speed = summary['speedup']
    lines.append(f"  pretrain AMP speed-up: {_fmt(speed['pretrain_amp_best'], '.2f')} (goal {speed['pretrain_amp_goal']}),"
                 f" fp32 fits 11 GB: {speed['pretrain_fp32_fits_11gb']}")
    training = summary['training']
    if training['skipped']:
        lines.append(f"  training: {training['skipped']}")
    for e in training['results']:
        state = e['skipped'] or e['error'] or 'ok'
        lines.append(f"  training {e['stage']:<9} {_fmt(e['wall_s'])} s  {state.splitlines()[0]}")
        if e.get('metrics'):
            lines.append('    ' + ', '.join(f'{k}={v}' for k, v in e['metrics'].items() if k.endswith('mAP')))
    timing = ', '.join(f'{k[:-2]} {v} s' for k, v in summary.get('timing', {}).items())
    lines.append(f"  failures: {summary['failures']}, wall {summary['wall_s']} s ({timing})")
    return '\n'.join(lines)
