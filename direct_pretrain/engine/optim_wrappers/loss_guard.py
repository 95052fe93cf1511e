"""What the loss-guarding optimizer wrappers share: check each loss before its backward and step.

Why: mmengine runs forward, ``parse_losses`` and ``optim_wrapper.update_params`` (backward and
step) in one ``train_step`` call, so no hook sees a loss between its forward and its optimizer
step - and a step with a NaN/inf loss, or with a loss thousands of times its usual size,
writes garbage into every weight. The optimizer wrapper is mmengine's extension point for
what happens to a loss; :class:`LossGuardMixin` overrides ``update_params`` of whichever
wrapper it is mixed into (``OptimWrapper``, ``AmpOptimWrapper``):

- a NaN/inf loss, or a finite one above ``spike_factor`` x the median of the recent losses
  (after ``spike_warmup`` of them), is not back-propagated. A zero backward takes its place,
  which keeps DDP's reducer and the accumulation count in step. The accumulation window it
  falls in is dropped: its gradients are discarded and its optimizer step skipped;
- the verdict is all-reduced (one small tensor), so every rank refuses the same step;
- the refused step is kept in :attr:`LossGuardMixin.rejected` for
  :class:`~direct_pretrain.engine.hooks.NonFiniteLossHook`, which stops the run with the loss
  terms and a restart command, or skips and counts. A wrapper no hook has taken over stops
  the run itself, so a refused step never passes unnoticed.

:func:`apply_loss_guard` is how the train tool selects the wrappers.
"""
import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
from mmengine.config import Config
from mmengine.dist import all_reduce, get_dist_info

from ...errors import LossSpikeError, NonFiniteLossError

__all__ = ['RejectedStep', 'LossGuardMixin', 'GUARDED_OPTIM_WRAPPERS', 'apply_loss_guard']

#: The loss-guarding type of each optimizer wrapper type the train tool can guard.
GUARDED_OPTIM_WRAPPERS: Dict[str, str] = {
    'OptimWrapper': 'LossGuardOptimWrapper',
    'AmpOptimWrapper': 'LossGuardAmpOptimWrapper',
}


@dataclass
class RejectedStep:
    """An optimizer step the guard refused.

    Attributes:
        kind (str): ``'non-finite'`` (NaN/inf) or ``'spike'``.
        iteration (int): 1-based training iteration.
        ranks (list[int]): Ranks whose loss was refused.
        loss (float): This rank's loss.
        level (float, optional): This rank's running level (median of its recent losses).
    """
    kind: str
    iteration: int
    ranks: List[int] = field(default_factory=list)
    loss: float = math.nan
    level: Optional[float] = None


class LossGuardMixin:
    """Mixed in before an mmengine ``OptimWrapper`` class (``class X(LossGuardMixin, OptimWrapper)``).

    The spike check is off until :meth:`watch_loss` turns it on; ``NonFiniteLossHook`` does
    so with its own settings.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.spike_factor: Optional[float] = None
        self.spike_warmup = 0
        self.recent_losses: deque = deque(maxlen=1)
        self.rejected: Optional[RejectedStep] = None  # the last refused step, until taken
        self.handled_by_hook = False
        self._model: Optional[torch.nn.Module] = None
        self._discarding_window = False

    def watch_loss(self, spike_factor: Optional[float], spike_window: int, spike_warmup: int) -> None:
        """Let a hook handle refused steps (:meth:`take_rejected`) and set the spike check.

        Args:
            spike_factor (float, optional): Refuse a loss above this many times the median of
                the recent losses; None turns the spike check off.
            spike_window (int): How many recent losses the median is taken over.
            spike_warmup (int): How many losses must have been seen before the check starts.
        """
        self.handled_by_hook = True
        self.spike_factor = spike_factor
        self.spike_warmup = max(1, int(spike_warmup))
        self.recent_losses = deque(self.recent_losses, maxlen=max(1, int(spike_window)))

    def take_rejected(self) -> Optional[RejectedStep]:
        """The step refused since the last call (None if none)."""
        rejected, self.rejected = self.rejected, None
        return rejected

    def initialize_count_status(self, model: torch.nn.Module, init_counts: int, max_counts: int) -> None:
        self._model = model  # its parameters get the zero backward of a refused step
        super().initialize_count_status(model, init_counts, max_counts)

    def update_params(self, loss: torch.Tensor, step_kwargs: Optional[Dict] = None,
                      zero_kwargs: Optional[Dict] = None) -> None:
        rejected = self._judge(loss)
        if rejected is None and not self._discarding_window:
            super().update_params(loss, step_kwargs=step_kwargs, zero_kwargs=zero_kwargs)
            return
        if rejected is not None:
            self.rejected = rejected
            if not self.handled_by_hook:
                raise self._error(rejected)
        self._skip_step(loss, zero_kwargs)

    def _judge(self, loss: torch.Tensor) -> Optional[RejectedStep]:
        """The refused step for ``loss`` (all ranks agree), or None; remembers accepted losses."""
        value = float(loss.detach().float().mean())
        non_finite = not math.isfinite(value)
        level = None
        if self.spike_factor and len(self.recent_losses) >= self.spike_warmup:
            level = statistics.median(self.recent_losses)
        spike = not non_finite and level is not None and level > 0 and value > self.spike_factor * level
        rank, world_size = get_dist_info()
        if world_size > 1:
            flags = torch.zeros(2, world_size, device=loss.device)
            flags[0, rank], flags[1, rank] = float(non_finite), float(spike)
            all_reduce(flags, op='sum')
            bad = [[r for r, flag in enumerate(row) if flag] for row in flags.tolist()]
        else:
            bad = [[0] if non_finite else [], [0] if spike else []]
        iteration = self._inner_count + 1
        if bad[0]:
            return RejectedStep('non-finite', iteration, bad[0], value, level)
        if bad[1]:
            return RejectedStep('spike', iteration, bad[1], value, level)
        self.recent_losses.append(value)
        return None

    def _skip_step(self, loss: torch.Tensor, zero_kwargs: Optional[Dict]) -> None:
        """Zero backward instead of the loss's (DDP's reducer and the accumulation count stay in
        step), no optimizer step; the window's gradients are discarded at its boundary."""
        self._discarding_window = True
        params = ([p for p in self._model.parameters() if p.requires_grad] if self._model is not None else
                  [p for group in self.optimizer.param_groups for p in group['params'] if p.requires_grad])
        zero = sum((p.sum() * 0 for p in params), loss.new_zeros(()))
        self.backward(zero)
        if self.should_update():
            self.zero_grad(**(zero_kwargs or {}))
            self._discarding_window = False

    @staticmethod
    def _error(rejected: RejectedStep):
        advice = ('the weights were not updated with it. Add NonFiniteLossHook to custom_hooks for the loss terms, '
                  'the last good checkpoint and the command that restarts the run.')
        ranks = '' if rejected.ranks in ([], [0]) else f' on rank(s) {rejected.ranks}'
        if rejected.kind == 'spike':
            return LossSpikeError(f'loss spike at iteration {rejected.iteration}{ranks}: loss={rejected.loss:.4g}, '
                                  f'above the running level {rejected.level:.4g}; {advice}', rejected.iteration, None,
                                  rejected.loss, rejected.level, rejected.ranks)
        return NonFiniteLossError(f'non-finite loss at iteration {rejected.iteration}{ranks}: loss={rejected.loss}; '
                                  f'{advice}', rejected.iteration, None, {'loss': rejected.loss}, rejected.ranks)


def apply_loss_guard(cfg: Config) -> Optional[str]:
    """Select the loss-guarding optimizer wrapper for a training config with ``NonFiniteLossHook``.

    ``optim_wrapper.type`` ``OptimWrapper`` (the default) / ``AmpOptimWrapper`` (``--amp``)
    becomes ``LossGuardOptimWrapper`` / ``LossGuardAmpOptimWrapper``, same arguments. Any
    other type is left as it is; the hook then warns that the loss is not checked before the
    step. Returns the type selected, or None when nothing changed.
    """
    hooks = cfg.get('custom_hooks') or []
    if not any(isinstance(h, dict) and h.get('type') in ('NonFiniteLossHook', 'mmdet.NonFiniteLossHook')
               for h in hooks):
        return None
    wrapper = cfg.get('optim_wrapper')
    if not isinstance(wrapper, dict):
        return None
    current = wrapper.get('type', 'OptimWrapper')
    guarded = GUARDED_OPTIM_WRAPPERS.get(current.split('.')[-1] if isinstance(current, str) else None)
    if guarded is None:
        return None
    wrapper['type'] = guarded
    return guarded
