"""``LossGuardAmpOptimWrapper``: mmengine's ``AmpOptimWrapper`` that refuses an optimizer step on
a NaN/inf loss or a loss spike.

Why: ``--amp`` swaps the optimizer wrapper for ``AmpOptimWrapper``; its dynamic loss scaling
skips steps whose *gradients* overflow in fp16, which is routine, but it trains on with a NaN
or exploding *loss*. The guard (see :mod:`.loss_guard`) checks the unscaled loss before the
scaled backward, so the two do not interfere. The train tool selects it for ``--amp`` runs
whose config has ``NonFiniteLossHook``.
"""
from mmengine.optim import AmpOptimWrapper

from mmdet.registry import OPTIM_WRAPPERS
from .loss_guard import LossGuardMixin

__all__ = ['LossGuardAmpOptimWrapper']


@OPTIM_WRAPPERS.register_module()
class LossGuardAmpOptimWrapper(LossGuardMixin, AmpOptimWrapper):
    """``AmpOptimWrapper`` (same arguments: ``loss_scale``, ``dtype``...) whose ``update_params``
    refuses a NaN/inf loss or a loss spike before the scaled backward and the step
    (:class:`~.loss_guard.LossGuardMixin`)."""
