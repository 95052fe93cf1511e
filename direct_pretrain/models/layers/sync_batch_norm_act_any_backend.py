"""Synchronized BatchNorm followed by timm's fused dropout and activation.

Why: many timm models (EfficientNet, RegNet, CSP nets, ...) fuse BN with its activation in
``timm.layers.BatchNormAct2d`` (a ``BatchNorm2d`` subclass holding ``drop`` and ``act``).
Swapping such a layer for a plain SyncBN would drop the activation; timm's own
``SyncBatchNormAct`` subclasses ``torch.nn.SyncBatchNorm``, which is CPU-incapable and
which mmengine's non-distributed ``revert_sync_batchnorm`` turns into a bare BN that
ignores the ``act`` child. This layer keeps the activation and syncs on every backend.
It is created by :func:`~direct_pretrain.models.layers.convert_sync_batchnorm` /
:func:`~direct_pretrain.models.layers.replace_batch_norm`, not from configs, so it is not
registered; its parameter and buffer names equal ``BatchNormAct2d``'s.
"""
from typing import Any, Optional

from torch import Tensor, nn

from .sync_batch_norm_any_backend import SyncBatchNormAnyBackend

__all__ = ['SyncBatchNormActAnyBackend']


class SyncBatchNormActAnyBackend(SyncBatchNormAnyBackend):
    """:class:`SyncBatchNormAnyBackend`, then ``drop``, then ``act`` (timm's order).

    Args:
        num_features (int): Number of channels ``C``.
        eps (float): Added to the variance for numerical stability. Defaults to 1e-5.
        momentum (float, optional): Running-statistics momentum; None for the
            cumulative average. Defaults to 0.1.
        affine (bool): Learn a per-channel scale and shift. Defaults to True.
        track_running_stats (bool): Keep running statistics. Defaults to True.
        process_group (ProcessGroup, optional): Group to synchronise over.
            Defaults to None (the world).
        prefer_torch_kernel (bool): Use torch's fused kernel on accelerators.
            Defaults to True.
        act (nn.Module, optional): Activation taken over from the replaced layer.
            Defaults to None (identity).
        drop (nn.Module, optional): Dropout taken over from the replaced layer.
            Defaults to None (identity).
    """

    def __init__(self,
                 num_features: int,
                 eps: float = 1e-5,
                 momentum: Optional[float] = 0.1,
                 affine: bool = True,
                 track_running_stats: bool = True,
                 process_group: Any = None,
                 prefer_torch_kernel: bool = True,
                 act: Optional[nn.Module] = None,
                 drop: Optional[nn.Module] = None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, process_group,
                         prefer_torch_kernel)
        self.drop = drop if drop is not None else nn.Identity()
        self.act = act if act is not None else nn.Identity()

    def forward(self, input: Tensor) -> Tensor:
        """Normalise over the global batch, then apply dropout and activation."""
        return self.act(self.drop(super().forward(input)))
