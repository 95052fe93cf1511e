"""Synchronized BatchNorm that works on every ``torch.distributed`` backend.

Why: direct pre-training trains BatchNorm from random init, so its statistics must come
from a large batch. ``torch.nn.SyncBatchNorm`` refuses CPU tensors ("SyncBatchNorm
expected input tensor to be on GPU"), which leaves large-batch BN untestable without
GPUs and unusable on CPU (gloo) clusters. :class:`SyncBNAnyBackend` computes the
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
(:class:`~direct_pretrain.models.layers.SyncBNActAnyBackend`).

The module also holds the layer's norm-act variant (:class:`SyncBNActAnyBackend`, for
timm's fused ``BatchNormAct2d``) and the helpers that swap BN flavours in a built model
while keeping the very same parameter and buffer tensors:

* :func:`convert_to_sync_bn_any_backend` - every BN flavour (BatchNorm1d/2d/3d, mmengine's
  ``_BatchNormXd``, ``torch.nn.SyncBatchNorm``, mmcv's ``SyncBatchNorm``, timm's
  ``BatchNormAct2d``/``SyncBatchNormAct``) to :class:`SyncBNAnyBackend` (or its norm-act
  variant), e.g. to run a BN model with global statistics on gloo.
* :func:`convert_to_plain_batch_norm` - every synchronized flavour back to plain BN
  (timm norm-act layers to ``BatchNormAct2d``, activation kept), for single-process tests
  and export. mmengine's ``revert_sync_batchnorm`` does the same for torch's SyncBN only
  and drops fused activations.
* :func:`replace_batch_norm` - config driven: turn the BN layers of a third-party model
  (e.g. timm) into ``norm_cfg``'s BN type, so that the norm choice stays in configs.

All three are one module walker with three targets: torch's, mmengine's and timm's converters
each hard-code their target class and none keeps a fused activation on the way back.

Caveat: mmengine's Runner option ``cfg.sync_bn`` converts *every* ``_BatchNorm`` to
``torch.nn.SyncBatchNorm`` (CUDA only, and it discards fused activations); with this
package choose the norm through ``norm_cfg`` instead and leave ``sync_bn`` unset.
"""

import inspect
import logging
import sys
from typing import Any, Dict, List, Optional, Tuple, Type, Union

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmcv.ops import SyncBatchNorm as MMCVSyncBatchNorm
from mmengine.model.utils import _BatchNormXd
from mmengine.registry import MODELS as MMENGINE_MODELS
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS

try:  # torch's fused CUDA/XPU implementation; private, so optional
    from torch.nn.modules._functions import SyncBatchNorm as _TorchSyncBNFunction
except ImportError:  # pragma: no cover - depends on the torch build
    _TorchSyncBNFunction = None

__all__ = ['SyncBNAnyBackend', 'SyncBNActAnyBackend', 'SyncBNFunction', 'convert_to_sync_bn_any_backend',
           'convert_to_plain_batch_norm', 'replace_batch_norm', 'is_sync_batch_norm']

logger = logging.getLogger(__name__)


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


class SyncBNFunction(torch.autograd.Function):
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


@MODELS.register_module()
class SyncBNAnyBackend(_BatchNorm):
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
        if (self.prefer_torch_kernel and _TorchSyncBNFunction is not None
                and input.device.type in _torch_kernel_devices()):
            return _TorchSyncBNFunction.apply(input, self.weight, self.bias, running_mean, running_var,
                                                     self.eps, factor, group, world_size)
        return SyncBNFunction.apply(input, self.weight, self.bias, running_mean, running_var, self.eps,
                                           factor, group, world_size)


# mmcv's ``build_norm_layer`` resolves ``type`` in the registry of the *current default
# scope*; without one (a module built directly, outside a Runner or an mmdet registry
# build) that is mmengine's root registry, which does not see mmdet's children. Norm
# layers are therefore also registered at the root, as mmcv registers 'BN' and 'SyncBN'.
MMENGINE_MODELS.register_module(module=SyncBNAnyBackend)


class SyncBNActAnyBackend(SyncBNAnyBackend):
    """:class:`SyncBNAnyBackend`, then ``drop``, then ``act`` (timm's order).

    Why: many timm models (EfficientNet, RegNet, CSP nets, ...) fuse BN with its activation
    in ``timm.layers.BatchNormAct2d``; swapping such a layer for a plain SyncBN would drop
    the activation, and timm's own ``SyncBatchNormAct`` subclasses ``torch.nn.SyncBatchNorm``
    (CUDA only; mmengine's non-distributed revert turns it into a BN that ignores ``act``).
    Created by :func:`convert_to_sync_bn_any_backend` / :func:`replace_batch_norm`, not from
    configs, so it is not registered; its parameter and buffer names equal
    ``BatchNormAct2d``'s.

    Args:
        num_features (int): Number of channels ``C``.
        act (nn.Module, optional): Activation taken over from the replaced layer.
            Defaults to None (identity).
        drop (nn.Module, optional): Dropout taken over from the replaced layer.
            Defaults to None (identity).
        **kwargs: The arguments of :class:`SyncBNAnyBackend`.
    """

    def __init__(self,
                 num_features: int,
                 act: Optional[nn.Module] = None,
                 drop: Optional[nn.Module] = None,
                 **kwargs: Any) -> None:
        super().__init__(num_features, **kwargs)
        self.drop = drop if drop is not None else nn.Identity()
        self.act = act if act is not None else nn.Identity()

    def forward(self, input: Tensor) -> Tensor:
        """Normalise over the global batch, then apply dropout and activation."""
        return self.act(self.drop(super().forward(input)))


# ---------------------------------------------------------------------------- BN swaps
# torch (``nn.SyncBatchNorm.convert_sync_batchnorm``), mmengine (``convert_sync_batchnorm``,
# ``revert_sync_batchnorm``) and timm (``timm.layers.convert_sync_batchnorm``) each walk a model
# towards one fixed class: CUDA SyncBN, mmcv's SyncBN, ``_BatchNormXd`` or timm's CUDA-only
# ``SyncBatchNormAct``. None converts to a layer of the caller's choosing, keeps a fused
# activation when reverting, or leaves alone a BN subclass whose forward does something else.
# So there is one walker here, :func:`_swap_batch_norm`, and the three public conversions are
# three targets for it.

# Forwards that compute plain (optionally synchronized) BatchNorm and nothing else.
_PLAIN_BN_FORWARDS = (_BatchNorm.forward, nn.SyncBatchNorm.forward, SyncBNAnyBackend.forward)


def _timm_norm_act_types() -> Tuple[type, ...]:
    """timm's fused BN + activation layers, looked up in ``sys.modules``: a model that holds
    one has imported timm, and importing timm here would add ~2 s to every conversion."""
    timm_layers = sys.modules.get('timm.layers')
    if timm_layers is None:
        return ()
    return (timm_layers.BatchNormAct2d, timm_layers.SyncBatchNormAct)


def _is_norm_act(module: nn.Module) -> bool:
    return isinstance(module, (SyncBNActAnyBackend, ) + _timm_norm_act_types())


def _is_plain_bn(module: nn.Module) -> bool:
    """A BN layer whose forward is plain (optionally synchronized) BatchNorm.

    ``_BatchNorm`` subclasses with their own ``forward`` (other than the known norm-act
    ones) do something extra that a swap would lose, so they are left alone.
    """
    return isinstance(module, MMCVSyncBatchNorm) or (isinstance(module, _BatchNorm)
                                                    and type(module).forward in _PLAIN_BN_FORWARDS)


def is_sync_batch_norm(module: nn.Module) -> bool:
    """Whether ``module`` synchronizes statistics across ranks (any implementation)."""
    return isinstance(module, (nn.SyncBatchNorm, SyncBNAnyBackend, MMCVSyncBatchNorm))


def _bn_kwargs(module: nn.Module) -> Dict[str, Any]:
    return dict(eps=module.eps, momentum=module.momentum, affine=module.affine,
                track_running_stats=module.track_running_stats)


def _share_state(src: nn.Module, dst: nn.Module) -> None:
    """Hand ``src``'s parameters, buffers and mode to ``dst`` (same tensors, no copy)."""
    if getattr(src, 'affine', False) and getattr(dst, 'affine', False):
        dst.weight = src.weight
        dst.bias = src.bias
    if getattr(src, 'track_running_stats', False) and getattr(dst, 'track_running_stats', False):
        dst.running_mean = src.running_mean
        dst.running_var = src.running_var
        dst.num_batches_tracked = src.num_batches_tracked
    dst.training = src.training
    if hasattr(src, 'qconfig'):
        dst.qconfig = src.qconfig


def _plain_norm_act(layer: nn.Module) -> nn.Module:
    """timm's ``BatchNormAct2d`` holding ``layer``'s activation and dropout."""
    # Imported here: timm costs ~2 s to import and only fused norm-act layers need it.
    from timm.layers import BatchNormAct2d
    new = BatchNormAct2d(layer.num_features, apply_act=False, **_bn_kwargs(layer))
    new.act = layer.act
    new.drop = layer.drop
    return new


def _replacement(layer: nn.Module, target: Type[nn.Module], overrides: Dict[str, Any]) -> nn.Module:
    """The layer that takes ``layer``'s place when BN becomes ``target`` (``layer`` itself
    where it stays); the caller hands over the tensors.

    * ``SyncBNAnyBackend``: rebuilt with ``layer``'s settings plus ``overrides``; fused
      norm-act layers become :class:`SyncBNActAnyBackend`, activation kept;
    * torch's ``SyncBatchNorm``: rebuilt likewise; fused norm-act layers are refused;
    * a plain BN type: synchronized layers are reverted to mmengine's ``_BatchNormXd`` (what a
      non-distributed Runner produces; norm-act ones to timm's ``BatchNormAct2d``), plain
      ones are kept (their dimensionality checks stay valid); ``eps``/``momentum`` overrides
      are applied to both.
    """
    kwargs = {**_bn_kwargs(layer), **overrides}
    if issubclass(target, SyncBNAnyBackend):
        if _is_norm_act(layer):
            return SyncBNActAnyBackend(layer.num_features, act=getattr(layer, 'act', None),
                                       drop=getattr(layer, 'drop', None), **kwargs)
        return target(layer.num_features, **kwargs)
    if issubclass(target, nn.SyncBatchNorm):
        if _is_norm_act(layer):
            raise TypeError(
                f'replace_batch_norm: {type(layer).__name__} fuses BN with an activation; torch.nn.SyncBatchNorm '
                'cannot hold it, and '
                'mmengine reverts SyncBN in non-distributed runs to a BN that ignores the activation. Use '
                "norm_cfg=dict(type='SyncBNAnyBackend') instead.")
        return target(layer.num_features, **kwargs)
    if not is_sync_batch_norm(layer):
        new = layer
    elif _is_norm_act(layer):
        new = _plain_norm_act(layer)
    else:
        new = _BatchNormXd(layer.num_features, **_bn_kwargs(layer))
    for key in ('eps', 'momentum'):
        if key in overrides:
            setattr(new, key, overrides[key])
    return new


def _swap_batch_norm(module: nn.Module, target: Type[nn.Module], overrides: Optional[Dict[str, Any]] = None,
                     requires_grad: Optional[bool] = None, path: str = '') -> nn.Module:
    """The one walker: replace every BN layer of ``module`` by :func:`_replacement`.

    The new layers get the old layers' parameter and buffer tensors (no copy) and training
    mode; ``requires_grad`` (None: unchanged) applies to their own parameters. A
    ``_BatchNorm`` whose forward is not plain BN is left alone, with a warning naming it.
    Returns ``module``, or its replacement if ``module`` is itself a BN layer.
    """
    if _is_norm_act(module) or _is_plain_bn(module):
        new = _replacement(module, target, overrides or {})
        if new is not module:
            _share_state(module, new)
        if requires_grad is not None:
            for param in new.parameters(recurse=False):
                param.requires_grad = requires_grad
        return new
    if isinstance(module, _BatchNorm):
        logger.warning('%s (%s) left unchanged: its forward is not plain BatchNorm', path or 'the module',
                       type(module).__name__)
        return module
    for name, child in list(module.named_children()):
        new_child = _swap_batch_norm(child, target, overrides, requires_grad, f'{path}.{name}' if path else name)
        if new_child is not child:
            module.add_module(name, new_child)
    return module


def convert_to_sync_bn_any_backend(module: nn.Module, process_group: Any = None,
                                   prefer_torch_kernel: bool = True) -> nn.Module:
    """Convert every BN layer of ``module`` to :class:`SyncBNAnyBackend`.

    Every flavour (BatchNorm1d/2d/3d, ``_BatchNormXd``, torch's and mmcv's SyncBN, this
    layer with another process group) becomes :class:`SyncBNAnyBackend`, timm's fused
    norm-act layers :class:`SyncBNActAnyBackend` with their activation; ``requires_grad``
    stays as it was.

    Args:
        module (nn.Module): Model (or a single BN layer) to convert in place.
        process_group (ProcessGroup, optional): Group to synchronise over.
            Defaults to None (the world).
        prefer_torch_kernel (bool): Let the new layers use torch's fused kernel on
            accelerators. Defaults to True.

    Returns:
        nn.Module: ``module`` itself, or the new layer if ``module`` was a BN layer.
    """
    return _swap_batch_norm(module, SyncBNAnyBackend,
                            dict(process_group=process_group, prefer_torch_kernel=prefer_torch_kernel))


def convert_to_plain_batch_norm(module: nn.Module) -> nn.Module:
    """Turn every synchronized BN layer of ``module`` back into plain BN.

    Synchronized layers (this package's, torch's, mmcv's) become mmengine's
    ``_BatchNormXd`` - exactly what a non-distributed Runner produces - and the
    norm-act variants become timm's ``BatchNormAct2d`` with their activation kept (where
    mmengine's ``revert_sync_batchnorm`` drops it). Plain layers stay as they are.

    Args:
        module (nn.Module): Model (or a single layer) to revert in place.

    Returns:
        nn.Module: ``module`` itself, or the new layer if ``module`` was a SyncBN layer.
    """
    return _swap_batch_norm(module, _BatchNormXd)


def _resolve_norm_type(layer_type: Union[str, Type[nn.Module]]) -> Type[nn.Module]:
    if inspect.isclass(layer_type):
        return layer_type
    norm_cls = MODELS.get(layer_type)  # mmdet's registry, then mmengine's root (mmcv's 'BN', 'SyncBN', ...)
    if norm_cls is None:
        raise KeyError(f'norm type {layer_type!r} is not registered in mmdet or mmengine MODELS; use a '
                       "registered norm such as 'BN', 'SyncBN' or 'SyncBNAnyBackend' (import direct_pretrain).")
    return norm_cls


def replace_batch_norm(module: nn.Module, norm_cfg: Dict[str, Any]) -> nn.Module:
    """Make every BN layer of ``module`` the BatchNorm type of ``norm_cfg``.

    The layers keep their statistics and affine parameters (shared tensors), so the swap
    also works on pretrained weights; ``eps``/``momentum`` are kept unless ``norm_cfg``
    sets them and ``requires_grad`` (default True) applies to every BN parameter.

    * target ``SyncBNAnyBackend``: as :func:`convert_to_sync_bn_any_backend`, with the
      other ``norm_cfg`` keys as constructor arguments;
    * target a plain BN type (``BN``, ``BN2d``, ...): as :func:`convert_to_plain_batch_norm`;
    * target ``torch.nn.SyncBatchNorm`` (``SyncBN``): plain layers are converted; fused
      norm-act layers are refused, see below.

    Args:
        module (nn.Module): Model whose BN layers to replace, in place.
        norm_cfg (dict): Norm config with a BatchNorm ``type`` and optionally
            ``requires_grad``, ``eps``, ``momentum`` and constructor arguments.

    Returns:
        nn.Module: ``module``, or the new layer if ``module`` was a BN layer.

    Raises:
        TypeError: ``norm_cfg`` is not a BatchNorm type, or it is torch's ``SyncBN``
            while the model has fused norm-act layers.
    """
    cfg = dict(norm_cfg)
    layer_type = cfg.pop('type')
    requires_grad = cfg.pop('requires_grad', True)
    target = _resolve_norm_type(layer_type)
    if not (issubclass(target, _BatchNorm) and target.forward in _PLAIN_BN_FORWARDS):
        raise TypeError(
            f'norm_cfg type {layer_type!r} resolves to {target.__name__}, which is not a plain BatchNorm; '
            'replace_batch_norm only swaps BatchNorm flavours so that statistics and affine parameters carry '
            "over. Use 'BN', 'SyncBN' or 'SyncBNAnyBackend', or choose other norms through the model's own "
            'arguments.')
    return _swap_batch_norm(module, target, cfg, requires_grad)
