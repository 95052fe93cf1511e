"""Swap BatchNorm flavours in a built model: BN <-> SyncBN, or to any configured BN type.

Why: a direct-pretrain checkpoint is trained with synchronized BN and fine-tuned or
exported with plain BN. The three helpers here rebuild only the norm layers and hand the
*same* parameter and buffer tensors to the new layers, so state-dict keys, values,
``requires_grad`` and any optimizer references survive the swap:

* :func:`convert_sync_batchnorm` - every BN flavour (BatchNorm1d/2d/3d, mmengine's
  ``_BatchNormXd``, ``torch.nn.SyncBatchNorm``, mmcv's ``SyncBatchNorm``, timm's
  ``BatchNormAct2d``/``SyncBatchNormAct``) to :class:`SyncBatchNormAnyBackend` (or its
  norm-act variant), e.g. to run a BN model with global statistics on gloo.
* :func:`revert_sync_batchnorm` - every synchronized flavour back to plain BN (timm
  norm-act layers to ``BatchNormAct2d``), for single-process tests and export. Unlike
  mmengine's helper of the same name it knows this package's layers and keeps the
  activation of fused norm-act layers.
* :func:`replace_batch_norm` - config driven: turn the BN layers of a third-party model
  (e.g. timm) into ``norm_cfg``'s BN type, so that the norm choice stays in configs.

Caveat: mmengine's Runner option ``cfg.sync_bn`` converts *every* ``_BatchNorm`` to
``torch.nn.SyncBatchNorm`` (CUDA only, and it discards fused activations); with this
package choose the norm through ``norm_cfg`` instead and leave ``sync_bn`` unset.
"""
import inspect
import logging
from typing import Any, Callable, Dict, Optional, Tuple, Type, Union

from mmengine.model.utils import _BatchNormXd
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS
from .sync_batch_norm_act_any_backend import SyncBatchNormActAnyBackend
from .sync_batch_norm_any_backend import SyncBatchNormAnyBackend

__all__ = ['convert_sync_batchnorm', 'revert_sync_batchnorm', 'replace_batch_norm', 'is_sync_batch_norm']

logger = logging.getLogger(__name__)


def _timm_norm_act_types() -> Tuple[type, ...]:
    """timm's fused BN + activation layers, when timm is installed."""
    try:
        from timm.layers import BatchNormAct2d, SyncBatchNormAct
    except ImportError:
        return ()
    return (BatchNormAct2d, SyncBatchNormAct)


def _mmcv_sync_bn_types() -> Tuple[type, ...]:
    """mmcv's CUDA SyncBN (not a ``_BatchNorm``), when mmcv's ops are compiled."""
    try:
        from mmcv.ops import SyncBatchNorm
    except ImportError:
        return ()
    return (SyncBatchNorm, )


def _is_norm_act(module: nn.Module) -> bool:
    return isinstance(module, (SyncBatchNormActAnyBackend, ) + _timm_norm_act_types())


def _is_plain_bn(module: nn.Module) -> bool:
    """A BN layer whose forward is plain (optionally synchronized) BatchNorm.

    ``_BatchNorm`` subclasses with their own ``forward`` (other than the known norm-act
    ones) do something extra that a swap would lose, so they are left alone.
    """
    if isinstance(module, _mmcv_sync_bn_types()):
        return True
    return isinstance(module, _BatchNorm) and type(module).forward in (
        _BatchNorm.forward, nn.SyncBatchNorm.forward, SyncBatchNormAnyBackend.forward)


def is_sync_batch_norm(module: nn.Module) -> bool:
    """Whether ``module`` synchronizes statistics across ranks (any implementation)."""
    sync_types = (nn.SyncBatchNorm, SyncBatchNormAnyBackend) + _mmcv_sync_bn_types()
    return isinstance(module, sync_types)


def _share_state(src: nn.Module, dst: nn.Module) -> nn.Module:
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
    return dst


def _bn_kwargs(module: nn.Module) -> Dict[str, Any]:
    return dict(eps=module.eps, momentum=module.momentum, affine=module.affine,
                track_running_stats=module.track_running_stats)


def _swap(module: nn.Module, make: Callable[[nn.Module], Optional[nn.Module]]) -> nn.Module:
    """Replace every module for which ``make`` returns a new one; recurse elsewhere."""
    new = make(module)
    if new is not None:
        return new
    for name, child in list(module.named_children()):
        new_child = _swap(child, make)
        if new_child is not child:
            module.add_module(name, new_child)
    return module


def _to_sync_norm_act(module: nn.Module, **kwargs: Any) -> SyncBatchNormActAnyBackend:
    return SyncBatchNormActAnyBackend(module.num_features, act=getattr(module, 'act', None),
                                      drop=getattr(module, 'drop', None), **kwargs)


def _to_plain_norm_act(module: nn.Module) -> nn.Module:
    from timm.layers import BatchNormAct2d
    new = BatchNormAct2d(module.num_features, apply_act=False, **_bn_kwargs(module))
    new.act = module.act
    new.drop = module.drop
    return new


def convert_sync_batchnorm(module: nn.Module, process_group: Any = None,
                           prefer_torch_kernel: bool = True) -> nn.Module:
    """Convert every BN layer of ``module`` to :class:`SyncBatchNormAnyBackend`.

    Args:
        module (nn.Module): Model (or a single BN layer) to convert in place.
        process_group (ProcessGroup, optional): Group to synchronise over.
            Defaults to None (the world).
        prefer_torch_kernel (bool): Let the new layers use torch's fused kernel on
            accelerators. Defaults to True.

    Returns:
        nn.Module: ``module`` itself, or the new layer if ``module`` was a BN layer.
    """
    sync_kwargs = dict(process_group=process_group, prefer_torch_kernel=prefer_torch_kernel)

    def make(m: nn.Module) -> Optional[nn.Module]:
        if isinstance(m, SyncBatchNormAnyBackend):
            return m
        if _is_norm_act(m):
            return _share_state(m, _to_sync_norm_act(m, **_bn_kwargs(m), **sync_kwargs))
        if _is_plain_bn(m):
            return _share_state(m, SyncBatchNormAnyBackend(m.num_features, **_bn_kwargs(m), **sync_kwargs))
        if isinstance(m, _BatchNorm):
            logger.warning('convert_sync_batchnorm: left %s unchanged: its forward is not plain BatchNorm',
                           type(m).__name__)
            return m
        return None

    return _swap(module, make)


def revert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Turn every synchronized BN layer of ``module`` back into plain BN.

    Synchronized layers (this package's, torch's, mmcv's) become mmengine's
    ``_BatchNormXd`` - exactly what a non-distributed Runner produces - and the
    norm-act variants become timm's ``BatchNormAct2d`` with their activation kept.

    Args:
        module (nn.Module): Model (or a single layer) to revert in place.

    Returns:
        nn.Module: ``module`` itself, or the new layer if ``module`` was a SyncBN layer.
    """

    def make(m: nn.Module) -> Optional[nn.Module]:
        if isinstance(m, SyncBatchNormActAnyBackend) or (_is_norm_act(m) and is_sync_batch_norm(m)):
            return _share_state(m, _to_plain_norm_act(m))
        if is_sync_batch_norm(m):
            return _share_state(m, _BatchNormXd(m.num_features, **_bn_kwargs(m)))
        if isinstance(m, _BatchNorm):
            return m
        return None

    return _swap(module, make)


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

    * target ``SyncBNAnyBackend``: as :func:`convert_sync_batchnorm`;
    * target a plain BN type (``BN``, ``BN2d``, ...): synchronized layers are reverted,
      plain ones are kept as they are (their dimensionality checks stay valid);
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
    if not (issubclass(target, _BatchNorm) and target.forward in (
            _BatchNorm.forward, nn.SyncBatchNorm.forward, SyncBatchNormAnyBackend.forward)):
        raise TypeError(
            f'norm_cfg type {layer_type!r} resolves to {target.__name__}, which is not a plain BatchNorm; '
            'replace_batch_norm only swaps BatchNorm flavours so that statistics and affine parameters carry '
            "over. Use 'BN', 'SyncBN' or 'SyncBNAnyBackend', or choose other norms through the model's own "
            'arguments.')
    to_ours = issubclass(target, SyncBatchNormAnyBackend)
    to_torch_sync = issubclass(target, nn.SyncBatchNorm)

    def kwargs_for(m: nn.Module) -> Dict[str, Any]:
        kwargs = _bn_kwargs(m)
        kwargs.update(cfg)
        return kwargs

    def make(m: nn.Module) -> Optional[nn.Module]:
        if not (_is_norm_act(m) or _is_plain_bn(m)):
            if isinstance(m, _BatchNorm):
                logger.warning('replace_batch_norm: left %s unchanged: its forward is not plain BatchNorm',
                               type(m).__name__)
                return m
            return None
        if to_ours:
            new = (_to_sync_norm_act(m, **kwargs_for(m)) if _is_norm_act(m) else target(
                m.num_features, **kwargs_for(m)))
        elif to_torch_sync:
            if _is_norm_act(m):
                raise TypeError(
                    f'replace_batch_norm: {type(m).__name__} fuses BN with an activation; torch.nn.SyncBatchNorm '
                    'cannot hold it, and mmengine reverts SyncBN in non-distributed runs to a BN that ignores '
                    "the activation. Use norm_cfg=dict(type='SyncBNAnyBackend') instead.")
            new = target(m.num_features, **kwargs_for(m))
        elif is_sync_batch_norm(m):  # plain target: revert synchronized layers
            new = _to_plain_norm_act(m) if _is_norm_act(m) else _BatchNormXd(m.num_features, **_bn_kwargs(m))
            for key in ('eps', 'momentum'):
                if key in cfg:
                    setattr(new, key, cfg[key])
        else:  # plain target, plain layer: keep it, apply the overrides
            new = m
            for key in ('eps', 'momentum'):
                if key in cfg:
                    setattr(new, key, cfg[key])
        if new is not m:
            _share_state(m, new)
        for param in new.parameters(recurse=False):
            param.requires_grad = requires_grad
        return new

    return _swap(module, make)
