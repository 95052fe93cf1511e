"""``LossGuardOptimWrapper``: mmengine's ``OptimWrapper`` that refuses an optimizer step on a
NaN/inf loss or a loss spike.

Why: the step is where a diverging loss does its harm, and the optimizer wrapper is where
mmengine lets a project change what happens to a loss (see :mod:`.loss_guard`). The train tool
selects it for every fp32 run whose config has ``NonFiniteLossHook``.
"""
from mmengine.optim import OptimWrapper

from mmdet.registry import OPTIM_WRAPPERS
from .loss_guard import LossGuardMixin

__all__ = ['LossGuardOptimWrapper']


@OPTIM_WRAPPERS.register_module()
class LossGuardOptimWrapper(LossGuardMixin, OptimWrapper):
    """``OptimWrapper`` (same arguments) whose ``update_params`` refuses a NaN/inf loss or a loss
    spike before backward and step (:class:`~.loss_guard.LossGuardMixin`)::

        optim_wrapper = dict(type='LossGuardOptimWrapper', optimizer=dict(type='SGD', lr=0.02))
    """
