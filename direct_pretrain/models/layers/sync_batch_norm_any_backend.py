"""Synchronized BatchNorm that works on every ``torch.distributed`` backend.

Why: direct pre-training trains BatchNorm from random init, so its statistics must come
from a large batch. ``torch.nn.SyncBatchNorm`` refuses CPU tensors ("SyncBatchNorm
expected input tensor to be on GPU"), which leaves large-batch BN untestable without
GPUs and unusable on CPU (gloo) clusters. :class:`SyncBatchNormAnyBackend` computes the
global-batch statistics with plain collectives (``all_gather`` in the forward,
``all_reduce`` in the backward) that every backend implements, and defers to torch's
fused kernel where that kernel exists (CUDA and other accelerators).

Semantics match ``torch.nn.SyncBatchNorm``:

* training, distributed (world size > 1): normalise with the mean and biased variance
  of the *global* batch; per-rank counts may differ, a rank may hold zero samples;
  running statistics use the unbiased global variance, ``momentum`` (or the cumulative
  average when ``momentum=None``) and ``num_batches_tracked``;
* gradients flow through an explicit backward that all-reduces ``sum(dy)`` and
  ``sum(dy * x_hat)``; the affine gradients stay local, the data-parallel wrapper
  reduces them like any other parameter gradient;
* eval mode, a single process or no initialised process group: plain BatchNorm
  (``F.batch_norm``), bit-identical to ``nn.BatchNorm2d``.

The layer is a ``_BatchNorm`` (abbreviation ``bn``), so mmcv names it ``bn1``/``norm1``
like BN and a checkpoint moves between a SyncBN pretrain and a BN fine-tune with
identical keys. It is deliberately *not* a ``torch.nn.SyncBatchNorm`` subclass: mmengine's
``revert_sync_batchnorm`` (run by every non-distributed Runner) would otherwise replace it
by a bare ``_BatchNormXd`` - harmless for this class, which already behaves as BN there,
but it would silently drop the activation of the norm-act variant
(:class:`~direct_pretrain.models.layers.SyncBatchNormActAnyBackend`).
"""
from typing import Any, List, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmengine.registry import MODELS as MMENGINE_MODELS
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS

try:  # torch's fused CUDA/XPU implementation; private, so optional
    from torch.nn.modules._functions import SyncBatchNorm as _TorchSyncBatchNormFunction
except ImportError:  # pragma: no cover - depends on the torch build
    _TorchSyncBatchNormFunction = None

__all__ = ['SyncBatchNormAnyBackend', 'SyncBatchNormFunction']


def _torch_kernel_devices() -> Tuple[str, ...]:
    """Device types on which ``torch.nn.SyncBatchNorm``'s fused kernel runs."""
    return ('cuda', 'hpu', 'xpu', torch._C._get_privateuse1_backend_name())


def _reduction_dtype(device: torch.device) -> torch.dtype:
    """Exchanged statistics are combined in float64 (MPS has no float64)."""
    return torch.float32 if device.type == 'mps' else torch.float64


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Half-precision inputs are normalised in float32, as torch's kernels do."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _channel_view(x: Tensor) -> Tuple[List[int], Tuple[int, ...]]:
    """Reduction dims and the broadcast shape of a per-channel vector for ``x``."""
    reduce_dims = [0] + list(range(2, x.dim()))
    shape = (1, x.size(1)) + (1, ) * (x.dim() - 2)
    return reduce_dims, shape


class SyncBatchNormFunction(torch.autograd.Function):
    """Global-batch normalisation with an explicit, backend-agnostic backward.

    Forward: every rank all-gathers ``(count, mean, M2)`` of its local batch (``M2`` is
    the sum of squared deviations from the local mean) and combines them with Chan's
    parallel update, which stays exact for uneven and empty per-rank batches and avoids
    the cancellation of ``E[x^2] - E[x]^2``. Backward: with ``x_hat`` the normalised
    input and ``n`` the global count,
    ``dx = w * invstd * (dy - sum(dy) / n - x_hat * sum(dy * x_hat) / n)``, where both
    sums are all-reduced over the group. Autograd is never run through collectives.
    """

    @staticmethod
    def forward(ctx: Any, input: Tensor, weight: Optional[Tensor], bias: Optional[Tensor],
                running_mean: Optional[Tensor], running_var: Optional[Tensor], eps: float, momentum: float,
                process_group: Any, world_size: int) -> Tensor:
        x = input.to(_compute_dtype(input.dtype))
        num_channels = x.size(1)
        reduce_dims, shape = _channel_view(x)
        stat_dtype = _reduction_dtype(x.device)
        count = x.numel() // num_channels
        if count > 0:
            xs = x.to(stat_dtype)
            local_mean = xs.mean(dim=reduce_dims)
            local_m2 = (xs - local_mean.view(shape)).pow(2).sum(dim=reduce_dims)
        else:  # an empty rank still joins the collective, contributing nothing
            local_mean = x.new_zeros(num_channels, dtype=stat_dtype)
            local_m2 = x.new_zeros(num_channels, dtype=stat_dtype)
        packed = torch.cat([local_mean.new_tensor([float(count)]), local_mean, local_m2])
        gathered = [torch.empty_like(packed) for _ in range(world_size)]
        dist.all_gather(gathered, packed, group=process_group)
        stats = torch.stack(gathered)
        counts = stats[:, :1]
        means = stats[:, 1:1 + num_channels]
        m2s = stats[:, 1 + num_channels:]
        total = float(counts.sum().item())
        if total <= 1:
            raise ValueError(
                f'Expected more than 1 value per channel when training, got {int(total)} over the whole '
                f'process group (input size {tuple(input.shape)} on this rank). Increase the batch size '
                'or put the layer in eval mode.')
        mean = (counts * means).sum(dim=0) / total
        m2 = m2s.sum(dim=0) + (counts * (means - mean).pow(2)).sum(dim=0)
        var = m2 / total
        invstd = torch.rsqrt(var + eps)

        with torch.no_grad():
            if running_mean is not None:
                running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)
            if running_var is not None:
                unbiased = m2 / (total - 1)
                running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)

        mean = mean.to(x.dtype)
        invstd = invstd.to(x.dtype)
        out = (x - mean.view(shape)) * invstd.view(shape)
        if weight is not None:
            out = out * weight.to(x.dtype).view(shape)
        if bias is not None:
            out = out + bias.to(x.dtype).view(shape)

        ctx.save_for_backward(input, weight, mean, invstd)
        ctx.total = total
        ctx.process_group = process_group
        ctx.bias_dtype = None if bias is None else bias.dtype
        return out.to(input.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tuple[Optional[Tensor], ...]:
        input, weight, mean, invstd = ctx.saved_tensors
        x = input.to(_compute_dtype(input.dtype))
        dy = grad_output.to(x.dtype)
        reduce_dims, shape = _channel_view(x)
        x_hat = (x - mean.view(shape)) * invstd.view(shape)
        sum_dy = dy.sum(dim=reduce_dims)
        sum_dy_xhat = (dy * x_hat).sum(dim=reduce_dims)

        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            # Every rank takes part, an empty one with zeros, or the others would block.
            stat_dtype = _reduction_dtype(x.device)
            packed = torch.cat([sum_dy, sum_dy_xhat]).to(stat_dtype)
            dist.all_reduce(packed, op=dist.ReduceOp.SUM, group=ctx.process_group)
            global_sum_dy, global_sum_dy_xhat = packed.to(x.dtype).chunk(2)
            scale = invstd if weight is None else invstd * weight.to(x.dtype)
            grad_input = (dy - (global_sum_dy / ctx.total).view(shape)
                          - x_hat * (global_sum_dy_xhat / ctx.total).view(shape)) * scale.view(shape)
            grad_input = grad_input.to(input.dtype)
        if weight is not None and ctx.needs_input_grad[1]:
            grad_weight = sum_dy_xhat.to(weight.dtype)
        if ctx.bias_dtype is not None and ctx.needs_input_grad[2]:
            grad_bias = sum_dy.to(ctx.bias_dtype)
        return grad_input, grad_weight, grad_bias, None, None, None, None, None, None


@MODELS.register_module('SyncBNAnyBackend')
class SyncBatchNormAnyBackend(_BatchNorm):
    """Synchronized BatchNorm for every distributed backend (gloo/CPU included).

    Select it with ``norm_cfg=dict(type='SyncBNAnyBackend')``. It takes the place of
    ``SyncBN`` wherever the batch statistics must cover all ranks but the ranks may run
    on CPU; on CUDA it uses torch's fused SyncBN kernel unless told otherwise.

    Args:
        num_features (int): Number of channels ``C`` of an ``(N, C, *)`` input.
        eps (float): Added to the variance for numerical stability. Defaults to 1e-5.
        momentum (float, optional): Weight of the current batch in the running
            statistics; ``None`` gives the cumulative average over all batches seen.
            Defaults to 0.1.
        affine (bool): Learn a per-channel scale and shift. Defaults to True.
        track_running_stats (bool): Keep running statistics for eval mode.
            Defaults to True.
        process_group (ProcessGroup, optional): Group whose ranks share statistics,
            e.g. to synchronise within a node only. Defaults to None (the world).
        prefer_torch_kernel (bool): On devices where ``torch.nn.SyncBatchNorm``'s fused
            kernel runs (CUDA, XPU, HPU), use it: it is faster and numerically the
            reference. Set False to force the portable path everywhere, e.g. to compare
            the two. Defaults to True.
        device (torch.device, optional): Device of parameters and buffers.
            Defaults to None.
        dtype (torch.dtype, optional): Dtype of parameters and buffers. Defaults to None.
    """

    _abbr_ = 'bn'

    def __init__(self,
                 num_features: int,
                 eps: float = 1e-5,
                 momentum: Optional[float] = 0.1,
                 affine: bool = True,
                 track_running_stats: bool = True,
                 process_group: Any = None,
                 prefer_torch_kernel: bool = True,
                 device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype)
        self.process_group = process_group
        self.prefer_torch_kernel = prefer_torch_kernel

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f'{type(self).__name__} expects an (N, C, *) input with at least 2 dims, '
                             f'got shape {tuple(input.shape)}')

    def _sync_world(self) -> Tuple[Any, int]:
        """The process group to synchronise over and its size (1: nothing to sync)."""
        if not (dist.is_available() and dist.is_initialized()):
            return None, 1
        group = self.process_group if self.process_group is not None else dist.group.WORLD
        return group, dist.get_world_size(group)

    def forward(self, input: Tensor) -> Tensor:
        """Normalise ``input`` of shape ``(N, C, *)``; see the class docstring."""
        self._check_input_dim(input)
        if input.size(1) != self.num_features:
            raise ValueError(f'{type(self).__name__}({self.num_features}) got an input with {input.size(1)} '
                             f'channels (shape {tuple(input.shape)}); check num_features / in_channels.')
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        # Batch statistics in training mode, and in eval mode when there are no buffers.
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        running_mean = self.running_mean if not self.training or self.track_running_stats else None
        running_var = self.running_var if not self.training or self.track_running_stats else None

        group, world_size = self._sync_world() if (self.training and bn_training) else (None, 1)
        if world_size <= 1:
            return F.batch_norm(input, running_mean, running_var, self.weight, self.bias, bn_training, factor,
                                self.eps)
        if (self.prefer_torch_kernel and _TorchSyncBatchNormFunction is not None
                and input.device.type in _torch_kernel_devices()):
            return _TorchSyncBatchNormFunction.apply(input, self.weight, self.bias, running_mean, running_var,
                                                     self.eps, factor, group, world_size)
        return SyncBatchNormFunction.apply(input, self.weight, self.bias, running_mean, running_var, self.eps,
                                           factor, group, world_size)


# mmcv's ``build_norm_layer`` resolves ``type`` in the registry of the *current default
# scope*; without one (a module built directly, outside a Runner or an mmdet registry
# build) that is mmengine's root registry, which does not see mmdet's children. Norm
# layers are therefore also registered at the root, as mmcv registers 'BN' and 'SyncBN'.
MMENGINE_MODELS.register_module('SyncBNAnyBackend', module=SyncBatchNormAnyBackend)
