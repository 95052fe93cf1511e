from .loss_guard import GUARDED_OPTIM_WRAPPERS, LossGuardMixin, RejectedStep, apply_loss_guard
from .loss_guard_amp_optim_wrapper import LossGuardAmpOptimWrapper
from .loss_guard_optim_wrapper import LossGuardOptimWrapper

__all__ = ['GUARDED_OPTIM_WRAPPERS', 'LossGuardMixin', 'RejectedStep', 'apply_loss_guard', 'LossGuardAmpOptimWrapper',
           'LossGuardOptimWrapper']
