"""One run that says whether the package works on a CUDA machine, and how fast.

Why: every figure of this project came from CPU machines, while users train on GPUs, where
other code runs: mmcv's CUDA kernels (RoIAlign, NMS), the fused kernel path of
``SyncBNAnyBackend``, native AMP, cuDNN. A GPU is lent rarely and briefly, so a single
command has to answer everything at once and leave a machine-readable record:

* ``environment``: GPU, driver, torch / mmcv / mmengine / mmdet versions, whether mmcv was
  compiled with CUDA ops, whether the torchvision fallback is on;
* ``correctness`` (:mod:`direct_pretrain.analysis_tools.op_checks`): mmcv ``RoIAlign`` (forward and
  input gradient) and ``nms`` on CUDA against mmcv's CPU kernels on the same random inputs,
  for the settings the configs use; the torchvision fallback
  (:mod:`direct_pretrain.runtime.torchvision_cuda_ops`) against the same references;
  ``SyncBNAnyBackend`` built through the registry, and its two synchronized paths (torch's
  fused kernel, the portable function) on a one-process group, against ``nn.BatchNorm2d``;
* ``throughput``: train images/s and peak memory of the zoo's configs per precision and
  memory format (:mod:`direct_pretrain.analysis_tools.train_throughput`), the AMP speed-up against the
  goal of the issue (>= 1.8x for the pretrain stage) and the 11 GB claim;
* ``training``: the toy chain's pretrain and fine-tune stages for a few iterations through
  the real train entry point, then its test entry point with ``--eval bbox segm``.

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
import importlib
import json
import logging
import math
import os
import os.path as osp
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

__all__ = [
    'SCHEMA_VERSION', 'BenchmarkSpec', 'BENCHMARKS', 'GpuCheckInputError', 'GpuCheckOptions', 'collect_environment',
    'run_throughput', 'training_plan', 'run_training', 'run_gpu_check', 'count_failures', 'format_summary'
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
AMP_SPEEDUP_GOAL = 1.8
TOY_PRETRAIN = 'toy/mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py'
TOY_FINETUNE = 'toy/mask-rcnn_r18_fpn_1xb2-direct-finetune_toy.py'
TRAIN_MODULE = 'direct_pretrain.cli.train'
TEST_MODULE = 'direct_pretrain.cli.test'


class GpuCheckInputError(ValueError):
    """A bad option or a machine that cannot run the requested check; the message says what to do."""


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
        train_timeout_s (int): Limit of each training / test process. Defaults to 900.
        torchvision_cuda_ops (bool): Route mmcv's nms / RoIAlign on CUDA to torchvision in
            this process even where mmcv has CUDA ops, and set ``DP_TORCHVISION_CUDA_OPS=1``
            for the training processes (routed there when mmcv lacks CUDA ops).
            Defaults to False.
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
    train_timeout_s: int = 900
    torchvision_cuda_ops: bool = False
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`GpuCheckInputError` naming the first bad option."""
        from .train_throughput import PRECISIONS
        unknown = [b for b in self.benchmarks if b not in BENCHMARKS]
        if unknown or not self.benchmarks:
            raise GpuCheckInputError(f'unknown benchmark {unknown[0] if unknown else "(none given)"!r}; '
                                     f'choose from {", ".join(BENCHMARKS)}')
        bad = [p for p in self.precisions or () if p not in PRECISIONS]
        if bad:
            raise GpuCheckInputError(f'unknown precision {bad[0]!r}; choose from {", ".join(PRECISIONS)}')
        for name in ('warmup', 'steps', 'dry_size', 'pretrain_images', 'finetune_images', 'train_timeout_s'):
            value = getattr(self, name)
            minimum = 0 if name == 'warmup' else 1
            if not isinstance(value, int) or value < minimum:
                raise GpuCheckInputError(f'{name.replace("_", "-")} must be an integer >= {minimum}, got {value!r}')
        if self.dry_size % 32:
            raise GpuCheckInputError(f'dry-size must be a multiple of 32 (the FPN stride), got {self.dry_size}')


# ---------------------------------------------------------------------------- environment
def _version(module: str) -> Optional[str]:
    try:
        return getattr(importlib.import_module(module), '__version__', None)
    except Exception:  # a missing or broken package is reported as None
        return None


def _nvidia_driver() -> Optional[str]:
    try:
        out = subprocess.run(['nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader'],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def collect_environment() -> Dict[str, Any]:
    """Versions, the GPU and the state of mmcv's CUDA ops and of the torchvision fallback."""
    from ..runtime.torchvision_cuda_ops import mmcv_has_cuda_ops, torchvision_cuda_ops_enabled
    env: Dict[str, Any] = dict(
        python=platform.python_version(), platform=platform.platform(), cpu_count=os.cpu_count(),
        torch=torch.__version__, torch_cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
        torchvision=_version('torchvision'), mmcv=_version('mmcv'), mmengine=_version('mmengine'),
        mmdet=_version('mmdet'), direct_pretrain=_version('direct_pretrain'))
    try:
        from mmcv.ops import get_compiling_cuda_version
        env['mmcv_compiling_cuda'] = str(get_compiling_cuda_version())
    except ImportError as error:
        env['mmcv_compiling_cuda'] = f'mmcv.ops not importable: {error}'
    env['mmcv_cuda_ops'] = mmcv_has_cuda_ops()
    env['torchvision_cuda_ops_enabled'] = torchvision_cuda_ops_enabled()
    env['cuda_available'] = torch.cuda.is_available()
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
    from ..config.paths import resolve_config_path
    from ..errors import ConfigInputError
    try:
        return resolve_config_path(name)
    except ConfigInputError as error:
        raise GpuCheckInputError(str(error)) from error


def run_throughput(options: GpuCheckOptions) -> List[dict]:
    """Time every variant of the selected benchmarks (one dry CPU step each in a dry run)."""
    from mmengine.config import Config

    from .stage_cost import train_canvas
    from .train_throughput import ThroughputResult, measure_train_throughput
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
    from .train_throughput import ThroughputResult, speedups
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
def _leaf_overrides(cfg: Any, loader: str, data_root: str, images: Optional[int]) -> List[str]:
    """``--cfg-options`` pointing ``loader``'s datasets at ``data_root`` (and, with
    ``images``, keeping the first ``images`` samples and no repeats)."""
    from ..config.dataset_cfg import iter_leaf_datasets
    options = []
    for key, dataset in iter_leaf_datasets(cfg, (loader, )):
        options.append(f'{key}.data_root={data_root}')
        if images is not None:
            options.append(f'{key}.indices={images}')
            parts = key.split('.')
            for depth in range(2, len(parts)):  # wrappers between the loader and the leaf
                wrapper_key = '.'.join(parts[:depth])
                wrapper = cfg
                for part in parts[:depth]:
                    wrapper = wrapper[int(part)] if isinstance(wrapper, list) else wrapper[part]
                if isinstance(wrapper, dict) and 'times' in wrapper:
                    options.append(f'{wrapper_key}.times=1')
    return options


def _evaluator_override(cfg: Any, data_root: str) -> List[str]:
    """Move ``test_evaluator.ann_file`` under ``data_root`` when it lies under the config's data_root."""
    evaluator = cfg.get('test_evaluator')
    old_root = cfg.get('data_root')
    if not isinstance(evaluator, dict) or not evaluator.get('ann_file') or not old_root:
        return []
    ann_file = evaluator['ann_file']
    if not ann_file.startswith(old_root):
        return []
    return [f'test_evaluator.ann_file={osp.join(data_root, ann_file[len(old_root):].lstrip("/"))}']


def training_plan(options: GpuCheckOptions, python: str = sys.executable) -> Dict[str, Any]:
    """The toy chain in a few iterations: the commands (argv) and the paths they use.

    Pretrain and fine-tune run one epoch over the first ``pretrain_images`` /
    ``finetune_images`` training images of the toy set generated under ``work_dir``; the
    fine-tune loads the pretrain checkpoint; the test evaluates bbox and segm on the toy
    validation set. All paths are absolute, so the commands run from any directory.
    """
    from mmengine.config import Config
    work = osp.abspath(options.work_dir)
    data_root = osp.join(work, 'toy_coco') + '/'
    pre_cfg_path, ft_cfg_path = _config_path(TOY_PRETRAIN), _config_path(TOY_FINETUNE)
    pre_cfg, ft_cfg = Config.fromfile(pre_cfg_path), Config.fromfile(ft_cfg_path)
    pre_dir, ft_dir = osp.join(work, 'pretrain'), osp.join(work, 'finetune')
    pre_ckpt, ft_ckpt = osp.join(pre_dir, 'epoch_1.pth'), osp.join(ft_dir, 'epoch_1.pth')
    metrics = osp.join(ft_dir, 'test_metrics.json')
    commands = [
        dict(stage='pretrain', output=pre_ckpt, argv=[
            python, '-m', TRAIN_MODULE, osp.abspath(pre_cfg_path), '--work-dir', pre_dir, '--cfg-options',
            'train_cfg.max_epochs=1', *_leaf_overrides(pre_cfg, 'train_dataloader', data_root,
                                                        options.pretrain_images)]),
        dict(stage='finetune', output=ft_ckpt, argv=[
            python, '-m', TRAIN_MODULE, osp.abspath(ft_cfg_path), '--work-dir', ft_dir, '--cfg-options',
            'train_cfg.max_epochs=1', f'load_from={pre_ckpt}',
            *_leaf_overrides(ft_cfg, 'train_dataloader', data_root, options.finetune_images)]),
        dict(stage='test', output=metrics, argv=[
            python, '-m', TEST_MODULE, osp.abspath(ft_cfg_path), ft_ckpt, '--work-dir', osp.join(ft_dir, 'test'),
            '--eval', 'bbox', 'segm', '--metrics-out', metrics, '--cfg-options',
            *_leaf_overrides(ft_cfg, 'test_dataloader', data_root, None), *_evaluator_override(ft_cfg, data_root)]),
    ]
    return dict(work_dir=work, data_root=data_root, commands=commands)


def _tail(path: str, lines: int = 25) -> str:
    with open(path, errors='replace') as f:
        return ''.join(f.readlines()[-lines:])


def run_training(plan: Dict[str, Any], timeout_s: int = 900, env: Optional[Dict[str, str]] = None) -> List[dict]:
    """Run the planned commands in order, each logged to ``<work_dir>/<stage>.log``; stops at
    the first failure. Returns one entry per command (skipped ones say why)."""
    from ..datasets import generate_toy_coco, toy_coco_is_complete
    os.makedirs(plan['work_dir'], exist_ok=True)
    if not toy_coco_is_complete(plan['data_root']):
        generate_toy_coco(plan['data_root'])
    results = []
    failed = False
    for command in plan['commands']:
        entry = dict(stage=command['stage'], argv=command['argv'], returncode=None, wall_s=None, output=None,
                     log=osp.join(plan['work_dir'], f'{command["stage"]}.log'), skipped=None, error=None)
        results.append(entry)
        if failed:
            entry['skipped'] = 'an earlier stage failed'
            continue
        logger.info('gpu check training: %s', ' '.join(command['argv']))
        start = time.perf_counter()
        try:
            with open(entry['log'], 'w') as log:
                completed = subprocess.run(command['argv'], stdout=log, stderr=subprocess.STDOUT, env=env,
                                           timeout=timeout_s)
            entry['returncode'] = completed.returncode
        except subprocess.TimeoutExpired:
            entry['error'] = f'timed out after {timeout_s} s'
        entry['wall_s'] = round(time.perf_counter() - start, 2)
        if entry['returncode'] == 0 and osp.isfile(command['output']):
            entry['output'] = command['output']
        else:
            failed = True
            entry['error'] = entry['error'] or (f'exit code {entry["returncode"]}, {command["output"]} not written; '
                                                f'log tail:\n{_tail(entry["log"])}')
    test = results[-1]
    if test['output']:
        with open(test['output']) as f:
            test['metrics'] = json.load(f)
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
    from ..runtime.torchvision_cuda_ops import enable_torchvision_cuda_ops, setup_torchvision_cuda_ops
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
    from .op_checks import run_correctness
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
            env = dict(os.environ)
            if options.torchvision_cuda_ops:
                env['DP_TORCHVISION_CUDA_OPS'] = '1'
            training['results'] = run_training(plan, options.train_timeout_s, env)
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
