"""Training images per second and peak GPU memory of a config's detector, on synthetic batches.

Why: the method's cost claims (a 448x448 pretrain step on 8 images fits an 11 GB GPU; AMP
roughly doubles the speed) are about one training step of the real detector, not about the
data pipeline. Here the detector is built through mmdet's registry from the real config,
exactly as a single-process Runner would build it (``revert_sync_batchnorm``: SyncBN flavours
that need a process group become BN; ``SyncBNAnyBackend`` already is plain BN in one process),
its optimizer wrapper comes from the config's ``optim_wrapper`` (paramwise settings, gradient
clipping) with the precision swapped, and ``model.train_step`` - data preprocessor, forward,
loss, backward, optimizer step - runs on one in-memory COCO-like batch
(:func:`~direct_pretrain.analysis_tools.stage_cost.synthetic_train_batch`: random pixels, 7
boxes per image over the detector's classes, and bitmap masks when the model has a mask head). The batch lives in host memory and is copied to the
device by the data preprocessor on every step, as from a data loader; decoding and
augmentation are not timed.

Timing: ``warmup`` steps first (cuDNN autotuning, allocator growth, lazy init), then
``steps`` steps each bracketed by device synchronisation; images/s is images over the summed
step time. Peak memory is ``torch.cuda.max_memory_allocated`` (tensors) and
``max_memory_reserved`` (what the caching allocator held) from the model's construction to
the last step. The learning rate is scaled down (``lr_scale``) because a random-init detector
at the config's full rate, with no warmup, can diverge within a few steps, and a diverged
fp16 run skips optimizer steps and would time less work.
"""
import copy
import gc
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from torch import nn

from .stage_cost import build_train_model, synthetic_train_batch, train_canvas

__all__ = [
    'PRECISIONS', 'GPU_11GB_MIB', 'ThroughputResult', 'optim_wrapper_cfg', 'norm_layer_counts',
    'measure_train_throughput', 'speedups'
]

logger = logging.getLogger(__name__)

# precision name -> AmpOptimWrapper dtype (None: fp32, a plain OptimWrapper)
PRECISIONS: Dict[str, Optional[str]] = {'fp32': None, 'fp16': 'float16', 'bf16': 'bfloat16'}
# What nvidia-smi reports as the memory of an 11 GB card (GTX 1080 Ti, RTX 2080 Ti).
GPU_11GB_MIB = 11178
OBJECTS_PER_IMAGE = 7


@dataclass
class ThroughputResult:
    """One configuration's figures; ``None`` where not measured (dry run, skipped, failed).

    ``image_size`` is (w, h) of the synthetic images; ``fits_11gb`` compares the reserved
    peak with :data:`GPU_11GB_MIB` (the CUDA context, a few hundred MiB, comes on top).
    """
    name: str
    config: str
    image_size: Tuple[int, int]
    batch_size: int
    precision: str
    channels_last: bool
    device: str
    warmup_steps: int
    timed_steps: int
    images_per_s: Optional[float] = None
    step_time_s: Optional[float] = None
    peak_memory_mib: Optional[float] = None
    peak_reserved_mib: Optional[float] = None
    fits_11gb: Optional[bool] = None
    final_loss: Optional[float] = None
    loss_finite: Optional[bool] = None
    norm_layers: Dict[str, int] = field(default_factory=dict)
    skipped: Optional[str] = None
    error: Optional[str] = None

    def to_dict(self) -> dict:
        out = asdict(self)
        out['image_size'] = list(self.image_size)
        return out


def optim_wrapper_cfg(optim_wrapper: Any, precision: str, lr_scale: float = 1.0) -> dict:
    """The config's ``optim_wrapper`` with its precision set and its LR scaled.

    Args:
        optim_wrapper (dict): ``cfg.optim_wrapper``.
        precision (str): One of :data:`PRECISIONS`: 'fp32' gives an ``OptimWrapper``,
            'fp16' / 'bf16' an ``AmpOptimWrapper`` of that dtype with dynamic loss scaling
            (what mmdet's ``--amp`` sets).
        lr_scale (float): Factor on ``optimizer.lr``. Defaults to 1.0.

    Returns:
        dict: A config for ``mmengine.optim.build_optim_wrapper``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision {precision!r} is not one of {sorted(PRECISIONS)}')
    cfg = copy.deepcopy(dict(optim_wrapper))
    cfg['optimizer'] = dict(cfg['optimizer'])
    if 'lr' in cfg['optimizer']:
        cfg['optimizer']['lr'] = cfg['optimizer']['lr'] * lr_scale
    dtype = PRECISIONS[precision]
    if dtype is None:
        cfg['type'] = 'OptimWrapper'
        cfg.pop('loss_scale', None)
        cfg.pop('dtype', None)
    else:
        cfg['type'] = 'AmpOptimWrapper'
        cfg['dtype'] = dtype
        cfg.setdefault('loss_scale', 'dynamic')
    return cfg


def norm_layer_counts(model: nn.Module) -> Dict[str, int]:
    """Class name -> count of the model's normalisation layers (BN / SyncBN / GN / LN flavours)."""
    counts: Dict[str, int] = {}
    norm_types = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
    for module in model.modules():
        if isinstance(module, norm_types):
            counts[type(module).__name__] = counts.get(type(module).__name__, 0) + 1
    return dict(sorted(counts.items()))


def _build_model(cfg: Config, seed: int) -> nn.Module:
    model = build_train_model(cfg, seed)
    model.init_weights()
    return model


def _describe(error: BaseException) -> str:
    text = f'{type(error).__name__}: {error}'
    return text if len(text) < 600 else text[:600] + '...'


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def measure_train_throughput(cfg: Config,
                             name: str,
                             config_path: str,
                             precision: str = 'fp32',
                             channels_last: bool = False,
                             batch_size: Optional[int] = None,
                             size: Optional[Tuple[int, int]] = None,
                             warmup: int = 5,
                             steps: int = 20,
                             device: str = 'cuda',
                             lr_scale: float = 0.01,
                             seed: int = 0,
                             report_figures: bool = True) -> ThroughputResult:
    """Build ``cfg``'s detector and time ``model.train_step`` on a synthetic batch.

    Failures (an op without a kernel for a dtype, out of memory) are caught and recorded in
    ``error``, so one configuration cannot end a whole check.

    Args:
        cfg (Config): A training config.
        name (str): Name of the configuration in the result.
        config_path (str): Shown in the result.
        precision (str): 'fp32', 'fp16' or 'bf16'. Defaults to 'fp32'.
        channels_last (bool): Put the model's 4-D weights in channels-last memory format
            (convolutions then run channels-last). Defaults to False.
        batch_size (int, optional): Images per step. Defaults to
            ``cfg.train_dataloader.batch_size`` (per GPU).
        size (tuple[int, int], optional): (w, h) of the images. Defaults to the train
            pipeline's canvas (:func:`~direct_pretrain.analysis_tools.stage_cost.train_canvas`).
        warmup (int): Untimed steps first. Defaults to 5.
        steps (int): Timed steps. Defaults to 20.
        device (str): Device to run on. Defaults to 'cuda'.
        lr_scale (float): Factor on the config's LR (see the module docstring). Defaults to 0.01.
        seed (int): Seed of the random init. Defaults to 0.
        report_figures (bool): False (a dry run) runs the steps but reports no timing or
            memory figures, only the loss. Defaults to True.
    """
    dev = torch.device(device)
    batch_size = int(batch_size or cfg.train_dataloader.batch_size)
    size = tuple(size) if size else train_canvas(cfg)
    result = ThroughputResult(name=name, config=config_path, image_size=size, batch_size=batch_size,
                              precision=precision, channels_last=channels_last, device=str(dev), warmup_steps=warmup,
                              timed_steps=steps)
    model = optim = None
    try:
        if dev.type == 'cuda':
            _release(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        model = _build_model(cfg, seed)
        result.norm_layers = norm_layer_counts(model)
        model = model.to(dev)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        optim = build_optim_wrapper(model, optim_wrapper_cfg(cfg.optim_wrapper, precision, lr_scale))
        torch.manual_seed(seed)
        batch = synthetic_train_batch(model, size, batch_size, OBJECTS_PER_IMAGE)
        log_vars: Dict[str, Any] = {}
        for _ in range(warmup):
            log_vars = model.train_step(batch, optim)
        _sync(dev)
        times: List[float] = []
        for _ in range(steps):
            start = time.perf_counter()
            log_vars = model.train_step(batch, optim)
            _sync(dev)
            times.append(time.perf_counter() - start)
        loss = float(torch.as_tensor(log_vars['loss']).detach()) if 'loss' in log_vars else None
        result.final_loss = loss
        result.loss_finite = loss is not None and math.isfinite(loss)
        if report_figures and times:
            result.step_time_s = sorted(times)[len(times) // 2]
            result.images_per_s = batch_size * len(times) / sum(times)
            if dev.type == 'cuda':
                result.peak_memory_mib = torch.cuda.max_memory_allocated(dev) / 2**20
                result.peak_reserved_mib = torch.cuda.max_memory_reserved(dev) / 2**20
                result.fits_11gb = result.peak_reserved_mib <= GPU_11GB_MIB
    except Exception as error:  # recorded per configuration; the check goes on
        logger.warning('%s (%s, channels_last=%s) failed: %s', name, precision, channels_last, _describe(error))
        result.error = _describe(error)
    finally:
        del model, optim
        _release(dev)
    if result.images_per_s is not None:
        logger.info('%s %s%s: %.1f img/s, peak %.0f MiB', name, precision, ' channels_last' if channels_last else '',
                    result.images_per_s, result.peak_memory_mib or float('nan'))
    return result


def speedups(results: Sequence[ThroughputResult]) -> Dict[str, Dict[str, Optional[float]]]:
    """Per configuration name: images/s of each variant over its fp32 (contiguous) variant."""
    table: Dict[str, Dict[str, Optional[float]]] = {}
    base = {r.name: r.images_per_s for r in results if r.precision == 'fp32' and not r.channels_last}
    for r in results:
        key = r.precision + ('+channels_last' if r.channels_last else '')
        ref = base.get(r.name)
        table.setdefault(r.name, {})[key] = (r.images_per_s / ref if r.images_per_s and ref else None)
    return table
