"""Stop - or skip and count - a training step whose loss is NaN/inf or far above its running
level, before the optimizer touches the weights.

Why: the original release's users report RetinaNet pre-training going to NaN/inf during
warmup for some seeds. mmdet's ``CheckInvalidLossHook`` looks at the loss in
``after_train_iter`` - after the optimizer step has written NaN into every weight - only
every 50 iterations, and then fails an ``assert``; the next checkpoint of a run that keeps
going holds NaN weights and every later iteration is wasted. A loss that explodes to 1e12
but stays finite is not even noticed.

Mechanism: the step is refused by the optimizer wrapper, mmengine's extension point for what
happens to a loss (:class:`~direct_pretrain.engine.optim_wrappers.LossGuardOptimWrapper`, or
``LossGuardAmpOptimWrapper`` with ``--amp``; the train tool selects them for configs with this
hook). This hook is the policy: it sets the wrapper's spike check (``before_train``) and, in
``after_train_iter`` (before the scheduler, logger and checkpoint hooks), acts on a refused
step with the loss terms of that iteration. The wrapper all-reduces its verdict, so under
DDP every rank stops or skips the same step. Cost per iteration: one loss value read and,
when distributed, one all-reduce of ``2 x world_size`` numbers.

* ``action='stop'`` (default): raise :class:`NonFiniteLossError` (NaN/inf) or
  :class:`LossSpikeError` at that iteration; the message is the one ``error:`` line the train
  tool prints (exit code 3): the iteration, the loss terms, the last complete checkpoint in
  the work dir and the run's own command line (``run_command`` in the config, recorded by the
  train tool) changed to resume from it with a lower LR or another seed.
* ``action='skip'``: the step was dropped (the accumulation window's gradients discarded and
  its optimizer step skipped); count it (``train/non_finite_skips``) and stop as above once
  more than ``max_skips`` steps were skipped.

Spikes: a finite loss above ``spike_factor`` x the median of the last ``spike_window`` losses,
once ``spike_warmup`` losses were seen, counts like a NaN. On by default with a factor of 100:
detection losses are averaged per image and per box, so one batch lands within a few times
its neighbours' level, while a diverging run leaves it by orders of magnitude (1e12-1e28 were
seen) within a few iterations; ``spike_factor=None`` turns the check off.

Checkpoints: ``before_save_checkpoint`` refuses to write a checkpoint whose weights hold
NaN/inf (possible when a finite loss has infinite gradients), stopping the run the same way.

Resuming with other settings: mmengine's resume restores the optimizer's LR and the seed
from the checkpoint, so ``--cfg-options optim_wrapper.optimizer.lr=...`` alone would be
ignored. With ``resume_lr_mult`` / ``resume_seed`` set, the hook edits the checkpoint as it
is resumed (``after_load_checkpoint``): LRs of the optimizer state and scheduler bases are
multiplied, the stored seed is replaced.
"""
import math
import os.path as osp
from typing import Any, Dict, Optional

import torch
from mmengine.dist import all_gather_object
from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from ...errors import LossSpikeError, NonFiniteLossError, NonFiniteWeightsError, TrainingDivergedError
from ...runtime.atomic_save import find_resumable_checkpoint
from ...runtime.run_command import restart_command
from ..optim_wrappers.loss_guard import LossGuardMixin, RejectedStep

__all__ = ['NonFiniteLossHook', 'TrainingDivergedError', 'NonFiniteLossError', 'LossSpikeError',
           'NonFiniteWeightsError']

_ACTIONS = ('stop', 'skip')


def _loss_terms(log_vars: Optional[Dict[str, Any]]) -> Dict[str, float]:
    terms = {}
    for name, value in (log_vars or {}).items():
        number = value.detach().float().mean().item() if isinstance(value, torch.Tensor) else value
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            terms[name] = float(number)
    return terms


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop (or skip) the iteration whose loss is NaN/inf or spikes, before the optimizer step.

    Needs a loss-guarding optimizer wrapper (``LossGuardOptimWrapper`` /
    ``LossGuardAmpOptimWrapper``, which the train tool selects); with another wrapper it warns
    and only refuses checkpoints with NaN/inf weights.

    Args:
        action (str): ``'stop'`` or ``'skip'``. Defaults to 'stop'.
        max_skips (int): With ``'skip'``, how many refused steps may be skipped before the
            run stops. Defaults to 0.
        check_checkpoints (bool): Refuse to save a checkpoint whose weights are not all
            finite. Defaults to True.
        resume_lr_mult (float, optional): When the run resumes (``--resume``), multiply
            the resumed LRs by this factor. Defaults to None.
        resume_seed (int, optional): When the run resumes, use this seed instead of the
            checkpoint's. Defaults to None.
        spike_factor (float, optional): Refuse a finite loss above this many times the
            median of the recent losses; None turns the spike check off. Defaults to 100.
        spike_window (int): How many recent losses the median is taken over. Defaults to 50.
        spike_warmup (int): How many losses must have been seen before spikes are looked
            for (the first iterations of a run from scratch fall fast). Defaults to 50.
    """
    priority = 'VERY_HIGH'

    def __init__(self,
                 action: str = 'stop',
                 max_skips: int = 0,
                 check_checkpoints: bool = True,
                 resume_lr_mult: Optional[float] = None,
                 resume_seed: Optional[int] = None,
                 spike_factor: Optional[float] = 100.0,
                 spike_window: int = 50,
                 spike_warmup: int = 50) -> None:
        if action not in _ACTIONS:
            raise ValueError(f'NonFiniteLossHook: action={action!r}; choose one of {_ACTIONS}')
        if int(max_skips) < 0:
            raise ValueError(f'NonFiniteLossHook: max_skips={max_skips} must be >= 0')
        if resume_lr_mult is not None and not float(resume_lr_mult) > 0:
            raise ValueError(f'NonFiniteLossHook: resume_lr_mult={resume_lr_mult} must be > 0')
        if spike_factor is not None and not float(spike_factor) > 1:
            raise ValueError(f'NonFiniteLossHook: spike_factor={spike_factor} must be > 1 (or None: no spike check)')
        if int(spike_window) < 1 or int(spike_warmup) < 1:
            raise ValueError(f'NonFiniteLossHook: spike_window={spike_window} and spike_warmup={spike_warmup} must '
                             'be >= 1')
        self.action = action
        self.max_skips = int(max_skips)
        self.check_checkpoints = check_checkpoints
        self.resume_lr_mult = resume_lr_mult
        self.resume_seed = resume_seed
        self.spike_factor = None if spike_factor is None else float(spike_factor)
        self.spike_window = int(spike_window)
        self.spike_warmup = int(spike_warmup)
        self.skipped = 0
        self._done_iteration = 0  # iterations finished, and where the last one was
        self._done_where = 'the start of training'

    # --- resume overrides ----------------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return
        if self.resume_seed is not None:
            checkpoint.setdefault('meta', {})['seed'] = int(self.resume_seed)
            runner.logger.warning(f'NonFiniteLossHook: resuming with seed {self.resume_seed} instead of the '
                                  "checkpoint's")
        if self.resume_lr_mult is not None:
            self._scale_resumed_lr(runner, checkpoint, float(self.resume_lr_mult))

    @staticmethod
    def _scale_resumed_lr(runner, checkpoint: dict, mult: float) -> None:
        optimizer = checkpoint.get('optimizer')
        groups = optimizer.get('param_groups', []) if isinstance(optimizer, dict) else []
        for group in groups:
            for key in ('lr', 'initial_lr'):
                if key in group:
                    group[key] = group[key] * mult
        schedulers = checkpoint.get('param_schedulers') or []
        for state in schedulers if isinstance(schedulers, list) else []:
            if isinstance(state, dict) and state.get('param_name') == 'lr':
                for key in ('base_values', '_last_value'):
                    if isinstance(state.get(key), list):
                        state[key] = [v * mult for v in state[key]]
        lrs = sorted({g.get('lr') for g in groups}, key=str)
        runner.logger.warning(f'NonFiniteLossHook: resuming with the LR multiplied by {mult} (now {lrs})')

    # --- the guard -------------------------------------------------------------------------
    def before_train(self, runner) -> None:
        wrapper = runner.optim_wrapper
        if isinstance(wrapper, LossGuardMixin):
            wrapper.watch_loss(self.spike_factor, self.spike_window, self.spike_warmup)
            return
        runner.logger.warning(
            f'NonFiniteLossHook: optim_wrapper {type(wrapper).__name__} does not check the loss before the optimizer '
            'step, so a NaN/inf loss or a loss spike reaches the weights unnoticed (only a checkpoint with NaN/inf '
            "weights is refused). Set optim_wrapper.type='LossGuardOptimWrapper' ('LossGuardAmpOptimWrapper' with "
            'AMP); dp-train selects it.')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._done_iteration, self._done_where = runner.iter + 1, self._where(runner, batch_idx)
        wrapper = runner.optim_wrapper
        rejected = wrapper.take_rejected() if isinstance(wrapper, LossGuardMixin) else None
        if rejected is not None:
            self._on_rejected(runner, rejected, _loss_terms(outputs))

    def _on_rejected(self, runner, rejected: RejectedStep, terms: Dict[str, float]) -> None:
        # Every rank is here (the wrapper's verdict is all-reduced): gather what the first
        # refused rank saw, so that rank 0's message names it.
        report = dict(terms=terms, loss=rejected.loss, level=rejected.level)
        reports = all_gather_object(report) if runner.world_size > 1 else [report]
        first = reports[rejected.ranks[0]] if rejected.ranks else report
        what = 'loss spike' if rejected.kind == 'spike' else 'non-finite loss'
        detail = self._detail(rejected, first)
        if self.action == 'skip' and self.skipped < self.max_skips:
            self.skipped += 1
            runner.message_hub.update_info('train/non_finite_skips', self.skipped)
            runner.logger.warning(f'NonFiniteLossHook: {what} at {self._done_where} ({detail}); step skipped '
                                  f'({self.skipped} of at most {self.max_skips})')
            return
        last = self._last_checkpoint(runner)
        skipped = f' after {self.skipped} skipped steps' if self.action == 'skip' else ''
        message = (f'{what} at {self._done_where}{skipped}: {detail}; the weights were not updated with it. '
                   f'{self._advice(runner, last)}')
        if rejected.kind == 'spike':
            raise LossSpikeError(message, self._done_iteration, last, first['loss'], first['level'],
                                 list(rejected.ranks))
        bad_terms = {k: v for k, v in first['terms'].items() if not math.isfinite(v)}
        raise NonFiniteLossError(message, self._done_iteration, last, bad_terms, list(rejected.ranks))

    def _detail(self, rejected: RejectedStep, report: dict) -> str:
        """The loss terms that made the step refused (those of the first refused rank)."""
        ranks = '' if list(rejected.ranks) in ([], [0]) else f' on rank(s) {list(rejected.ranks)}'
        terms = report['terms']
        parts = {k: v for k, v in terms.items() if k != 'loss'} or terms  # the parts, not their sum
        if rejected.kind == 'spike':
            loss, level = report['loss'], report['level']
            top = sorted(parts.items(), key=lambda kv: -abs(kv[1]))[:4]
            return (f'loss={loss:.4g}, {loss / level:.3g} x its running level {level:.4g} (median of the last '
                    f'{self.spike_window} losses; spike_factor={self.spike_factor:g}); largest terms: ' +
                    ', '.join(f'{k}={v:.4g}' for k, v in top) + ranks)
        bad = {k: v for k, v in parts.items() if not math.isfinite(v)}
        if bad:
            return ', '.join(f'{k}={v}' for k, v in bad.items()) + ranks
        return 'the loss is not finite' + ranks

    # --- checkpoints -----------------------------------------------------------------------
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.check_checkpoints:
            return
        bad = [k for k, v in (checkpoint.get('state_dict') or {}).items()
               if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            last = self._last_checkpoint(runner)
            raise NonFiniteWeightsError(
                f'the weights hold NaN/inf after {self._done_where} ({len(bad)} tensors, e.g. {bad[:3]}); the '
                f'checkpoint was not written. {self._advice(runner, last)}', self._done_iteration, last)

    # --- messages --------------------------------------------------------------------------
    @staticmethod
    def _where(runner, batch_idx: int) -> str:
        where = f'iteration {runner.iter + 1}'
        loop = getattr(runner, 'train_loop', None)
        if hasattr(loop, 'max_epochs'):
            where += f' (epoch {runner.epoch + 1}, batch {batch_idx + 1}/{len(loop.dataloader)})'
        return where

    @staticmethod
    def _last_checkpoint(runner) -> Optional[str]:
        try:
            return find_resumable_checkpoint(runner.work_dir)
        except Exception:  # an unreadable work dir must not mask the divergence itself
            return None

    @staticmethod
    def _command(runner, resume: Optional[str] = None, cfg_options: Optional[Dict[str, Any]] = None) -> str:
        """The run's own command line (``run_command``, recorded by the train tool) with the
        changes; for a Runner built otherwise, the train tool's command for its config."""
        cfg = getattr(runner, 'cfg', None)
        record = cfg.get('run_command') if cfg is not None else None
        if not isinstance(record, dict):
            config = getattr(cfg, 'filename', None) or '<config>'
            record = dict(prefix=['dp-train'], args=[dict(dest='positional', words=[config]),
                                                     dict(dest='work_dir', words=['--work-dir', runner.work_dir])])
        return restart_command(record, resume, cfg_options)

    def _advice(self, runner, last: Optional[str]) -> str:
        cfg = getattr(runner, 'cfg', None)
        index = self._index_in(cfg)
        seed = (runner.seed if isinstance(getattr(runner, 'seed', None), int) else 0) + 1
        if last and index is not None:
            command = self._command(runner, last, {f'custom_hooks.{index}.resume_lr_mult': 0.5})
            return (f'Last good checkpoint: {last}. Resume from it with a lower LR: {command} (or another seed: '
                    f'custom_hooks.{index}.resume_seed={seed} in place of its last option)')
        if last:
            return (f'Last good checkpoint: {last}. Resume from it with a lower LR or another seed: '
                    f'{self._command(runner, last)}, with NonFiniteLossHook(resume_lr_mult=0.5) or '
                    f'NonFiniteLossHook(resume_seed={seed}) in custom_hooks')
        lr = self._config_lr(cfg)
        changes = {'optim_wrapper.optimizer.lr': f'{lr / 2:g}'} if lr else {}
        changes['randomness.seed'] = seed
        return (f'No checkpoint was written before it (work dir {osp.abspath(runner.work_dir)}). Restart with a lower '
                f'LR or another seed: {self._command(runner, None, changes)}')

    @staticmethod
    def _index_in(cfg) -> Optional[int]:
        hooks = (cfg.get('custom_hooks') if cfg is not None else None) or []
        for index, hook in enumerate(hooks):
            if isinstance(hook, NonFiniteLossHook) or (isinstance(hook, dict) and hook.get('type') in (
                    'NonFiniteLossHook', 'mmdet.NonFiniteLossHook', NonFiniteLossHook)):
                return index
        return None

    @staticmethod
    def _config_lr(cfg) -> Optional[float]:
        try:
            return float(cfg.optim_wrapper.optimizer.lr)
        except Exception:
            return None
