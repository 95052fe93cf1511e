"""Stop - or skip and count - a training step whose loss is NaN or infinite, before the
optimizer touches the weights.

Why: the original release's users report RetinaNet pre-training going to NaN/inf during
warmup for some seeds. mmdet's ``CheckInvalidLossHook`` looks at the loss in
``after_train_iter`` - after the optimizer step has written NaN into every weight - only
every 50 iterations, and then fails an ``assert``; the next checkpoint of a run that keeps
going holds NaN weights and every later iteration is wasted.

Mechanism: mmengine has no hook point between the loss and the optimizer step (the model's
``train_step`` runs forward, ``parse_losses`` and ``optim_wrapper.update_params`` in one
call). For the duration of the run this hook wraps two bound methods of *this runner's*
objects - the model's ``parse_losses`` (to keep the loss terms) and the optimizer
wrapper's ``update_params`` (backward + step) - and restores them after training. This
works with any optimizer wrapper a config or ``--amp`` selects, with gradient
accumulation, and under DDP: the finiteness flag is all-reduced, so every rank stops or
skips the same step. The check runs every iteration (one ``isfinite`` on a scalar, plus a
one-element all-reduce when distributed).

* ``action='stop'`` (default): raise :class:`NonFiniteLossError` at that iteration; its
  message is the one ``error:`` line the train tool prints: iteration, non-finite loss
  terms, the last complete checkpoint in the work dir and the command that resumes from it
  with a lower LR or another seed.
* ``action='skip'``: drop the step (a zero backward keeps DDP's reducer and the
  accumulation counter in step; the accumulation window's gradients are discarded and its
  optimizer step skipped), count it (``train/non_finite_skips``), and stop as above once
  more than ``max_skips`` steps were skipped.

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
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS
from ...errors import NonFiniteLossError, NonFiniteWeightsError, TrainingDivergedError
from ...runtime.atomic_save import find_resumable_checkpoint

__all__ = ['NonFiniteLossHook', 'TrainingDivergedError', 'NonFiniteLossError', 'NonFiniteWeightsError']

_ACTIONS = ('stop', 'skip')


def _non_finite_terms(log_vars: Optional[Dict[str, Any]]) -> Dict[str, float]:
    terms = {}
    for name, value in (log_vars or {}).items():
        number = value.detach().float().mean().item() if isinstance(value, torch.Tensor) else value
        if isinstance(number, float) and not math.isfinite(number):
            terms[name] = number
    return terms


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Detect a NaN/inf loss at the iteration it happens, before the optimizer step.

    Args:
        action (str): ``'stop'`` or ``'skip'``. Defaults to 'stop'.
        max_skips (int): With ``'skip'``, how many non-finite steps may be skipped before
            the run stops. Defaults to 0.
        check_checkpoints (bool): Refuse to save a checkpoint whose weights are not all
            finite. Defaults to True.
        resume_lr_mult (float, optional): When the run resumes (``--resume``), multiply
            the resumed LRs by this factor. Defaults to None.
        resume_seed (int, optional): When the run resumes, use this seed instead of the
            checkpoint's. Defaults to None.
    """
    priority = 'VERY_HIGH'

    def __init__(self,
                 action: str = 'stop',
                 max_skips: int = 0,
                 check_checkpoints: bool = True,
                 resume_lr_mult: Optional[float] = None,
                 resume_seed: Optional[int] = None) -> None:
        if action not in _ACTIONS:
            raise ValueError(f'NonFiniteLossHook: action={action!r}; choose one of {_ACTIONS}')
        if int(max_skips) < 0:
            raise ValueError(f'NonFiniteLossHook: max_skips={max_skips} must be >= 0')
        if resume_lr_mult is not None and not float(resume_lr_mult) > 0:
            raise ValueError(f'NonFiniteLossHook: resume_lr_mult={resume_lr_mult} must be > 0')
        self.action = action
        self.max_skips = int(max_skips)
        self.check_checkpoints = check_checkpoints
        self.resume_lr_mult = resume_lr_mult
        self.resume_seed = resume_seed
        self.skipped = 0
        self._log_vars: Optional[Dict[str, Any]] = None
        self._poisoned = False
        self._batch_idx = 0
        self._restore: List[Callable[[], None]] = []

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
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        optim_wrapper = runner.optim_wrapper
        if not hasattr(optim_wrapper, 'update_params') or not hasattr(model, 'parse_losses'):
            runner.logger.warning('NonFiniteLossHook: the model or optimizer wrapper has no parse_losses / '
                                  'update_params; non-finite losses are not checked')
            return
        parse_losses, update_params = model.parse_losses, optim_wrapper.update_params

        def keep_terms(losses):
            loss, log_vars = parse_losses(losses)
            self._log_vars = log_vars
            return loss, log_vars

        def guarded_update(loss: torch.Tensor, step_kwargs=None, zero_kwargs=None) -> None:
            bad_ranks = self._bad_ranks(runner, loss)
            if not bad_ranks and not self._poisoned:
                return update_params(loss, step_kwargs=step_kwargs, zero_kwargs=zero_kwargs)
            if bad_ranks:
                self._on_non_finite(runner, bad_ranks)
            self._skip_step(model, optim_wrapper, loss, zero_kwargs)

        model.parse_losses = keep_terms
        optim_wrapper.update_params = guarded_update
        self._restore = [lambda: delattr(model, 'parse_losses'), lambda: delattr(optim_wrapper, 'update_params')]

    def after_train(self, runner) -> None:
        for restore in self._restore:
            restore()
        self._restore = []

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._batch_idx = batch_idx

    @staticmethod
    def _bad_ranks(runner, loss: torch.Tensor) -> List[int]:
        local_bad = not bool(torch.isfinite(loss.detach()).all())
        if runner.world_size == 1:
            return [0] if local_bad else []
        from mmengine.dist import all_reduce
        flags = torch.zeros(runner.world_size, device=loss.device)
        flags[runner.rank] = float(local_bad)
        all_reduce(flags, op='sum')
        return [rank for rank, flag in enumerate(flags.tolist()) if flag]

    def _skip_step(self, model, optim_wrapper, loss: torch.Tensor, zero_kwargs) -> None:
        """Zero backward (keeps DDP's reducer and the accumulation count in step), no step;
        the window's gradients are discarded at its boundary."""
        self._poisoned = True
        params = [p for p in model.parameters() if p.requires_grad]
        zero = sum((p.sum() * 0 for p in params), loss.new_zeros(()))
        optim_wrapper.backward(zero)
        if optim_wrapper.should_update():
            optim_wrapper.zero_grad(**(zero_kwargs or {}))
            self._poisoned = False

    def _on_non_finite(self, runner, bad_ranks: Sequence[int]) -> None:
        terms = _non_finite_terms(self._log_vars)
        if self.action == 'skip' and self.skipped < self.max_skips:
            self.skipped += 1
            runner.message_hub.update_info('train/non_finite_skips', self.skipped)
            runner.logger.warning(f'NonFiniteLossHook: non-finite loss at {self._where(runner)} '
                                  f'({self._terms_text(terms, bad_ranks, runner.rank)}); step skipped '
                                  f'({self.skipped} of at most {self.max_skips})')
            return
        last = self._last_checkpoint(runner)
        skipped = f' after {self.skipped} skipped steps' if self.action == 'skip' else ''
        message = (f'non-finite loss at {self._where(runner)}{skipped}: '
                   f'{self._terms_text(terms, bad_ranks, runner.rank)}; the weights were not updated with it. '
                   f'{self._advice(runner, last)}')
        raise NonFiniteLossError(message, runner.iter + 1, last, terms, list(bad_ranks))

    # --- checkpoints -----------------------------------------------------------------------
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.check_checkpoints:
            return
        bad = [k for k, v in (checkpoint.get('state_dict') or {}).items()
               if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            last = self._last_checkpoint(runner)
            raise NonFiniteWeightsError(
                f'the weights hold NaN/inf at {self._where(runner)} ({len(bad)} tensors, e.g. {bad[:3]}); the '
                f'checkpoint was not written. {self._advice(runner, last)}', runner.iter, last)

    # --- messages --------------------------------------------------------------------------
    def _where(self, runner) -> str:
        where = f'iteration {runner.iter + 1}'
        loop = getattr(runner, 'train_loop', None)
        if hasattr(loop, 'max_epochs'):
            where += f' (epoch {runner.epoch + 1}, batch {self._batch_idx + 1}/{len(loop.dataloader)})'
        return where

    @staticmethod
    def _terms_text(terms: Dict[str, float], bad_ranks: Sequence[int], rank: int) -> str:
        ranks = '' if list(bad_ranks) in ([], [0]) else f' on rank(s) {list(bad_ranks)}'
        if len(terms) > 1:  # the parts, not their sum
            terms = {k: v for k, v in terms.items() if k != 'loss'}
        if terms:
            return ', '.join(f'{k}={v}' for k, v in terms.items()) + ranks
        if rank not in bad_ranks:
            return f'the loss is not finite{ranks} (that rank\'s log names the terms)'
        return 'the loss is not finite' + ranks

    @staticmethod
    def _last_checkpoint(runner) -> Optional[str]:
        try:
            return find_resumable_checkpoint(runner.work_dir)
        except Exception:  # an unreadable work dir must not mask the divergence itself
            return None

    def _advice(self, runner, last: Optional[str]) -> str:
        cfg = getattr(runner, 'cfg', None)
        config = f"{getattr(cfg, 'filename', None) or '<config>'} --work-dir {runner.work_dir}"
        index = self._index_in(cfg)
        seed = (runner.seed if isinstance(getattr(runner, 'seed', None), int) else 0) + 1
        if last and index is not None:
            return (f'Last good checkpoint: {last}. Resume from it with a lower LR: python tools/train.py {config} '
                    f'--resume {last} --cfg-options custom_hooks.{index}.resume_lr_mult=0.5 (or another seed: '
                    f'custom_hooks.{index}.resume_seed={seed})')
        if last:
            return (f'Last good checkpoint: {last}. Resume from it with a lower LR or another seed: python '
                    f'tools/train.py {config} --resume {last}, with NonFiniteLossHook(resume_lr_mult=0.5) or '
                    f'NonFiniteLossHook(resume_seed={seed}) in custom_hooks')
        lr = self._config_lr(cfg)
        lower = f'optim_wrapper.optimizer.lr={lr / 2:g} ' if lr else ''
        return (f'No checkpoint was written before it (work dir {osp.abspath(runner.work_dir)}). Restart with a lower '
                f'LR or another seed: python tools/train.py {config} --cfg-options {lower}randomness.seed={seed}')

    @staticmethod
    def _index_in(cfg) -> Optional[int]:
        hooks = (cfg.get('custom_hooks') if cfg is not None else None) or []
        for index, hook in enumerate(hooks):
            if isinstance(hook, NonFiniteLossHook) or (isinstance(hook, dict) and hook.get('type') in (
                    'NonFiniteLossHook', NonFiniteLossHook)):
                return index
        return None

    @staticmethod
    def _config_lr(cfg) -> Optional[float]:
        try:
            return float(cfg.optim_wrapper.optimizer.lr)
        except Exception:
            return None
