"""Gradient accumulation (``tools/train.py --accumulate N``) as one config transformation.

Why: the recipe's batch is 8 GPUs x 8 images per optimizer step; Detectron's ``iter_size``
and the original release's ``update_interval`` let a smaller machine reach it by summing
the gradients of N micro-batches before each step. mmengine provides the mechanism
(``optim_wrapper.accumulative_counts``: each micro-batch loss is divided by N, the
optimizer steps every N iterations) but leaves three things counting micro-batches:

* ``auto_scale_lr``: mmengine scales the LR by ``world_size x batch_size /
  base_batch_size`` and ignores ``accumulative_counts``. Here ``base_batch_size`` is divided
  by N, so the ratio becomes ``world_size x batch_size x N / base_batch_size`` - the
  effective batch per optimizer step.
* iteration-based parameter schedulers (``by_epoch=False``: the warmups) step once per
  iteration, i.e. per micro-batch. Their positions are rewritten in micro-batch
  iterations so that they stay in optimizer steps: ``begin -> begin x N + N - 1``,
  ``end -> end x N``, ``milestones -> m x N``. Then the value used by optimizer step ``j``
  (taken at its last micro-batch, iteration ``j x N + N - 1``) is the one the un-accumulated
  run uses at iteration ``j``. Epoch-based schedulers are unchanged (an epoch is the same
  data either way). Supported: Linear*, Constant*, MultiStep* (LR, momentum, param);
  others raise, naming the scheduler.
* ``IterBasedTrainLoop``: ``max_iters``, ``val_begin`` / ``val_interval`` and an
  iteration-based checkpoint interval are multiplied by N (they count micro-batches).

What accumulation cannot reproduce: BatchNorm statistics still come from each forward's
micro-batch (per GPU, or per step with SyncBN), so batch 2 x accumulate 4 normalises over
2 (or 2 x world) images, not 8 - accumulation is no substitute for SyncBN over many GPUs.
Anything else that looks at one forward's batch (RoI sampling per image is unaffected;
batch-level losses or normalisations are not) differs the same way.
"""
import logging
from typing import Any, Dict, List, Optional

from mmengine.config import Config, ConfigDict

from ..errors import ConfigInputError
from .schedulers import OPEN_END, iter_schedulers

__all__ = ['apply_gradient_accumulation', 'effective_batch_size', 'ITER_SCHEDULERS']

logger = logging.getLogger(__name__)

_FAMILIES = ('Linear', 'Constant', 'MultiStep')
#: Iteration-based scheduler types whose positions can be expressed in optimizer steps exactly.
ITER_SCHEDULERS = tuple(f'{family}{kind}' for family in _FAMILIES for kind in ('LR', 'Momentum', 'ParamScheduler'))


def _convert_scheduler(scheduler: Dict[str, Any], n: int) -> Optional[str]:
    """Rewrite one iteration-based scheduler's positions in micro-batch iterations."""
    if scheduler.get('by_epoch', True):
        return None  # epoch-based (also when converted to iterations by the runner)
    kind = scheduler['type'] if isinstance(scheduler['type'], str) else scheduler['type'].__name__
    if kind not in ITER_SCHEDULERS:
        raise ConfigInputError(f'--accumulate {n}: the iteration-based scheduler {kind} (by_epoch=False) cannot be kept in '
                     f'optimizer steps automatically (supported: {", ".join(ITER_SCHEDULERS)}). Make it '
                     'epoch-based, or write its positions in micro-batch iterations yourself.')
    before = {k: scheduler.get(k) for k in ('begin', 'end', 'milestones') if k in scheduler}
    begin = int(scheduler.get('begin', 0))
    end = int(scheduler.get('end', OPEN_END))
    scheduler['begin'] = begin * n + n - 1
    if end < OPEN_END:
        scheduler['end'] = end * n
    if 'milestones' in scheduler:
        scheduler['milestones'] = [int(m) * n for m in scheduler['milestones']]
    after = {k: scheduler.get(k) for k in before}
    after['begin'] = scheduler['begin']
    return f'{kind} {before} -> {after}'


def effective_batch_size(cfg: Config, world_size: int) -> int:
    """Images per optimizer step: ``world_size x train batch_size x accumulative_counts``."""
    counts = int((cfg.get('optim_wrapper') or {}).get('accumulative_counts', 1))
    return world_size * int(cfg.train_dataloader.batch_size) * counts


def apply_gradient_accumulation(cfg: Config, n: int) -> List[str]:
    """Make ``cfg`` accumulate gradients over ``n`` micro-batches per optimizer step, in place.

    Args:
        cfg (Config): A training config (``optim_wrapper``, ``train_dataloader`` and
            optionally ``auto_scale_lr``, ``param_scheduler``, an iteration-based ``train_cfg``).
        n (int): Micro-batches per optimizer step; 1 changes nothing.

    Returns:
        list[str]: What was changed, one line each (also logged).

    Raises:
        ConfigInputError: ``n < 1``, the config already accumulates, there is no
            ``optim_wrapper``, or an iteration-based scheduler cannot be converted.
    """
    if not isinstance(n, int) or n < 1:
        raise ConfigInputError(f'--accumulate must be a positive integer, got {n!r}')
    if n == 1:
        return []
    optim_wrapper = cfg.get('optim_wrapper')
    if not isinstance(optim_wrapper, dict):
        raise ConfigInputError('--accumulate needs an optim_wrapper dict in the config (mmengine accumulative_counts)')
    if int(optim_wrapper.get('accumulative_counts', 1)) != 1:
        raise ConfigInputError(f'--accumulate {n}: the config already sets optim_wrapper.accumulative_counts='
                     f'{optim_wrapper["accumulative_counts"]}; drop one of the two.')
    changes = [f'optim_wrapper.accumulative_counts = {n} (effective batch = world size x '
               f'{cfg.train_dataloader.batch_size} x {n} images per optimizer step)']
    optim_wrapper['accumulative_counts'] = n

    scale = cfg.get('auto_scale_lr')
    if isinstance(scale, dict) and 'base_batch_size' in scale:
        base = scale['base_batch_size']
        scale['base_batch_size'] = base / n
        changes.append(f'auto_scale_lr.base_batch_size {base} -> {base / n:g}: --auto-scale-lr then scales the LR by '
                       f'world size x batch x {n} / {base}')

    for _, scheduler in iter_schedulers(cfg.get('param_scheduler')):
        change = _convert_scheduler(scheduler, n)
        if change:
            changes.append(f'param_scheduler {change} (micro-batch iterations; unchanged in optimizer steps)')

    train_cfg = cfg.get('train_cfg') or {}
    if train_cfg.get('type') == 'IterBasedTrainLoop' or train_cfg.get('by_epoch') is False:
        for key in ('max_iters', 'val_begin', 'val_interval'):
            if key in train_cfg:
                changes.append(f'train_cfg.{key} {train_cfg[key]} -> {train_cfg[key] * n}')
                train_cfg[key] = train_cfg[key] * n
        checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
        if isinstance(checkpoint, (dict, ConfigDict)) and checkpoint.get('by_epoch') is False \
                and 'interval' in checkpoint:
            changes.append(f'default_hooks.checkpoint.interval {checkpoint["interval"]} -> {checkpoint["interval"] * n}')
            checkpoint['interval'] = checkpoint['interval'] * n
    for line in changes:
        logger.info('--accumulate %d: %s', n, line)
    return changes
