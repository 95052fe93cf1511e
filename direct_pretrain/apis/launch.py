"""Distributed launch on machines without CUDA.

Why: mmengine's PyTorch launcher calls ``torch.cuda.set_device`` and wraps the model in
DDP with ``device_ids=[LOCAL_RANK]``; both fail on CPU. Here the process group is
initialised on gloo first (mmengine then skips its own init) and DDP gets
``device_ids=None``, so ``./dist_train.sh CFG 2`` runs two CPU processes.
"""
import datetime
import os

import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict

from ..runtime.torchvision_cuda_ops import setup_torchvision_cuda_ops

__all__ = ['prepare_distributed', 'prepare_runtime']


def prepare_distributed(cfg: Config, launcher: str) -> None:
    """Adapt ``cfg`` for ``launcher`` when no CUDA device is present. No-op otherwise."""
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(f'--launcher {launcher} needs CUDA devices here; on CPU use the pytorch launcher '
                           '(./dist_train.sh, i.e. torchrun).')
    env_cfg = cfg.setdefault('env_cfg', ConfigDict())
    dist_cfg = env_cfg.setdefault('dist_cfg', ConfigDict())
    dist_cfg['backend'] = 'gloo'
    if not dist.is_initialized():
        timeout = datetime.timedelta(seconds=int(dist_cfg.get('timeout', 1800)))
        dist.init_process_group(backend='gloo', timeout=timeout, rank=int(os.environ['RANK']),
                                world_size=int(os.environ['WORLD_SIZE']))
    wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def prepare_runtime(cfg: Config) -> None:
    """What every train / test process does before building its Runner: the CPU (gloo)
    adaptation of :func:`prepare_distributed`, and the opt-in torchvision route for mmcv's
    CUDA ops (config key ``torchvision_cuda_ops`` or ``DP_TORCHVISION_CUDA_OPS``)."""
    prepare_distributed(cfg, cfg.get('launcher', 'none'))
    setup_torchvision_cuda_ops(cfg)
