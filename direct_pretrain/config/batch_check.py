"""One warning when the global batch differs from the batch the config's LR was set for.

Why: a config named ``1xb8`` run with ``./dist_train.sh CFG 2`` trains at a global batch of 16
with the LR chosen for 8, and nothing says so; mmengine only rescales the LR when
``--auto-scale-lr`` is given. The config states the batch its LR belongs to in
``auto_scale_lr.base_batch_size``, so the mismatch can be named before training starts,
together with the flag that fixes it.
"""
import logging
import os
from typing import Optional

from mmengine.config import Config

__all__ = ['check_batch_size', 'launcher_world_size']

logger = logging.getLogger(__name__)


def launcher_world_size(launcher: str) -> int:
    """Number of training processes the launcher starts, read from its environment.

    torchrun sets ``WORLD_SIZE`` and slurm ``SLURM_NTASKS``; a non-distributed run is 1.
    """
    if launcher in (None, 'none'):
        return 1
    for var in ('WORLD_SIZE', 'SLURM_NTASKS', 'OMPI_COMM_WORLD_SIZE'):
        if os.environ.get(var, '').isdigit():
            return int(os.environ[var])
    return 1


def check_batch_size(cfg: Config, world_size: int, auto_scale_lr: Optional[bool] = None,
                     accumulate: int = 1, warn: bool = True) -> Optional[str]:
    """Warn once when ``world_size`` x batch x accumulation differs from
    ``auto_scale_lr.base_batch_size`` and LR scaling is off; returns the message or None.

    Call it before ``--accumulate`` is applied to the config (that divides ``base_batch_size``).

    Args:
        cfg (Config): The training config.
        world_size (int): Number of training processes.
        auto_scale_lr (bool, optional): Whether ``--auto-scale-lr`` was given. Defaults to
            ``cfg.auto_scale_lr.enable``.
        accumulate (int): ``--accumulate N`` of the run. Defaults to 1.
        warn (bool): Log the message as a warning here. Defaults to True.
    """
    scale = cfg.get('auto_scale_lr') or {}
    base = scale.get('base_batch_size')
    enabled = scale.get('enable', False) if auto_scale_lr is None else (auto_scale_lr or scale.get('enable', False))
    loader = cfg.get('train_dataloader') or {}
    batch = loader.get('batch_size')
    if not base or enabled or not isinstance(batch, int):
        return None
    optim_wrapper = cfg.get('optim_wrapper') or {}
    in_config = int(optim_wrapper.get('accumulative_counts', 1) or 1)
    steps = in_config * int(accumulate)
    effective = world_size * batch * steps
    if effective == base:
        return None
    parts = f'{world_size} process{"es" if world_size != 1 else ""} x {batch} images'
    if steps != 1:
        parts += f' x {steps} accumulated steps'
    lr = (optim_wrapper.get('optimizer') or {}).get('lr')
    numeric = isinstance(lr, (int, float)) and not isinstance(lr, bool)
    message = (f'effective batch {effective} ({parts}) differs from auto_scale_lr.base_batch_size={base}, '
               f'the batch the config\'s LR{f" {lr:g}" if numeric else ""} was set for')
    if in_config == 1:  # --accumulate adjusts base_batch_size, so --auto-scale-lr counts it
        fixed = f' to {lr * effective / base:g}' if numeric else ''
        message += f'; add --auto-scale-lr to scale the LR linearly{fixed}'
    else:
        # mmengine's scaling ignores a config's own accumulative_counts: the flag would miss that factor.
        fixed = f'={lr * effective / base:g}' if numeric else '=<lr x effective / base>'
        message += (f'; set --cfg-options optim_wrapper.optimizer.lr{fixed} (--auto-scale-lr ignores the '
                    'config\'s accumulative_counts)')
    if warn:
        logger.warning(message)
    return message
