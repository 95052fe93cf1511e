"""Opt-in fallback: run mmcv's ``nms`` and ``RoIAlign`` on CUDA through torchvision's kernels.

Why: mmcv 2.1.0 has no wheel for torch 2.11, and a build without ``FORCE_CUDA=1`` (the
default on a machine without a visible GPU, or where ``nvcc`` is missing) compiles only the
CPU kernels. On a CUDA tensor such a build fails at the first RPN ``nms`` with
"nms_impl: implementation for device cuda:0 not found". torchvision, which every torch
install ships with CUDA kernels, implements the same two operators with the same
arithmetic (both descend from Detectron's RoIAlign and NMS). Routing them there lets a
user train on a GPU with a CPU-only mmcv while mmcv compiles, or where it cannot.

How: mmcv's Python wrappers (``mmcv.ops.nms`` / ``batched_nms`` through ``NMSop``, the
``RoIAlign`` module and the ``roi_align`` function used by ``BitmapMasks.crop_and_resize``)
all call three functions of the compiled module ``mmcv._ext``: ``nms``,
``roi_align_forward`` and ``roi_align_backward``. :func:`enable_torchvision_cuda_ops`
wraps exactly these three; a wrapped function hands tensors on a routed device (CUDA) to
``torch.ops.torchvision`` and everything else to mmcv's own kernel, so CPU results never
change. Equivalences kept by the wrappers:

* ``nms(offset=1)`` (legacy "+1" box sizes) is torchvision's NMS on boxes whose ``x2, y2``
  are shifted by the offset, which gives the same IoU;
* RoIAlign ``sampling_ratio=0`` (adaptive) is torchvision's ``sampling_ratio<=0``;
  ``aligned`` means the same in both; only ``pool_mode='avg'`` exists in torchvision
  (``'max'`` raises :class:`NotImplementedError`);
* torchvision's CUDA kernels take float16/32/64; bfloat16 inputs (AMP bf16) are computed in
  float32 and cast back.

It is never switched on implicitly. Switch it on in one of three ways (the train / test
entry points call :func:`setup_torchvision_cuda_ops` with the run's config):

* config key ``torchvision_cuda_ops = True``;
* environment variable ``DP_TORCHVISION_CUDA_OPS=1`` (``0`` switches it off, whatever the
  config says);
* a direct call of :func:`enable_torchvision_cuda_ops`.

When mmcv *has* CUDA kernels the switch logs that and changes nothing (``force=True``
routes anyway, e.g. to compare the two implementations on a GPU).
"""
import contextlib
import logging
import os
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

import torch
from torch import Tensor

__all__ = [
    'ENV_SWITCH', 'CONFIG_KEY', 'mmcv_has_cuda_ops', 'enable_torchvision_cuda_ops', 'disable_torchvision_cuda_ops',
    'torchvision_cuda_ops_enabled', 'setup_torchvision_cuda_ops', 'routed_call_counts', 'torchvision_ops_routed'
]

logger = logging.getLogger(__name__)

ENV_SWITCH = 'DP_TORCHVISION_CUDA_OPS'
CONFIG_KEY = 'torchvision_cuda_ops'
_ROUTED = ('nms', 'roi_align_forward', 'roi_align_backward')
_TORCHVISION_DTYPES = (torch.float16, torch.float32, torch.float64)

# Original mmcv functions while the routing is on; empty when off.
_originals: Dict[str, Callable] = {}
_route_device_types: Tuple[str, ...] = ()
_counts: Dict[str, int] = {name: 0 for name in _ROUTED}


def _mmcv_ext() -> Any:
    """mmcv's compiled module (the object that ``mmcv.ops.*.ext_module`` refers to)."""
    from mmcv.utils import ext_loader
    return ext_loader.load_ext('_ext', list(_ROUTED))


def mmcv_has_cuda_ops() -> bool:
    """Whether the installed mmcv was compiled with its CUDA kernels.

    mmcv reports the CUDA version it was compiled against, or ``'not available'`` for a
    CPU-only build; a build without ops at all (mmcv-lite) has neither.
    """
    try:
        from mmcv.ops import get_compiling_cuda_version
    except ImportError:
        return False
    version = str(get_compiling_cuda_version())
    return 'not available' not in version


def _routes(tensor: Tensor) -> bool:
    return tensor.device.type in _route_device_types


def _tv_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in _TORCHVISION_DTYPES else torch.float32


def _nms(boxes: Tensor, scores: Tensor, iou_threshold: float, offset: int = 0) -> Tensor:
    if not _routes(boxes):
        return _originals['nms'](boxes, scores, iou_threshold=iou_threshold, offset=offset)
    _counts['nms'] += 1
    boxes = boxes.float()
    if offset:
        boxes = torch.cat([boxes[:, :2], boxes[:, 2:4] + offset], dim=1)
    return torch.ops.torchvision.nms(boxes, scores.float(), float(iou_threshold))


def _check_avg(pool_mode: int) -> None:
    if pool_mode != 1:
        raise NotImplementedError(
            "RoIAlign with pool_mode='max' has no torchvision kernel; use pool_mode='avg' (the default of every "
            f'mmdet RoI extractor) or switch the fallback off ({ENV_SWITCH}=0) and install mmcv with CUDA ops.')


def _roi_align_forward(input: Tensor, rois: Tensor, output: Tensor, argmax_y: Tensor, argmax_x: Tensor,
                       aligned_height: int, aligned_width: int, spatial_scale: float, sampling_ratio: int,
                       pool_mode: int, aligned: bool) -> None:
    if not _routes(input):
        _originals['roi_align_forward'](input, rois, output, argmax_y, argmax_x, aligned_height=aligned_height,
                                        aligned_width=aligned_width, spatial_scale=spatial_scale,
                                        sampling_ratio=sampling_ratio, pool_mode=pool_mode, aligned=aligned)
        return
    _check_avg(pool_mode)
    _counts['roi_align_forward'] += 1
    dtype = _tv_dtype(input.dtype)
    out = torch.ops.torchvision.roi_align(input.to(dtype), rois.to(dtype), float(spatial_scale), int(aligned_height),
                                          int(aligned_width), int(sampling_ratio), bool(aligned))
    output.copy_(out)


def _roi_align_backward(grad_output: Tensor, rois: Tensor, argmax_y: Tensor, argmax_x: Tensor, grad_input: Tensor,
                        aligned_height: int, aligned_width: int, spatial_scale: float, sampling_ratio: int,
                        pool_mode: int, aligned: bool) -> None:
    if not _routes(grad_output):
        _originals['roi_align_backward'](grad_output, rois, argmax_y, argmax_x, grad_input,
                                         aligned_height=aligned_height, aligned_width=aligned_width,
                                         spatial_scale=spatial_scale, sampling_ratio=sampling_ratio,
                                         pool_mode=pool_mode, aligned=aligned)
        return
    _check_avg(pool_mode)
    _counts['roi_align_backward'] += 1
    dtype = _tv_dtype(grad_output.dtype)
    batch, channels, height, width = grad_input.shape
    grad = torch.ops.torchvision._roi_align_backward(grad_output.to(dtype), rois.to(dtype), float(spatial_scale),
                                                     int(aligned_height), int(aligned_width), batch, channels, height,
                                                     width, int(sampling_ratio), bool(aligned))
    # mmcv's kernels accumulate into the zero-initialised grad_input.
    grad_input.add_(grad.to(grad_input.dtype))


_WRAPPERS: Dict[str, Callable] = {
    'nms': _nms,
    'roi_align_forward': _roi_align_forward,
    'roi_align_backward': _roi_align_backward
}


def enable_torchvision_cuda_ops(force: bool = False, device_types: Sequence[str] = ('cuda', )) -> bool:
    """Route mmcv's ``nms`` and ``RoIAlign`` on ``device_types`` tensors to torchvision.

    Args:
        force (bool): Route even when mmcv has its own CUDA kernels, e.g. to compare the
            two on a GPU. Defaults to False.
        device_types (Sequence[str]): Device types whose tensors are routed; every other
            tensor keeps mmcv's kernel. ``('cpu',)`` routes CPU tensors, which lets the
            routing be tested on a machine without a GPU. Defaults to ``('cuda',)``.

    Returns:
        bool: Whether the routing is on after the call.
    """
    if not force and mmcv_has_cuda_ops():
        logger.info('torchvision CUDA ops requested, but mmcv has its own CUDA kernels: keeping mmcv\'s.')
        return torchvision_cuda_ops_enabled()
    was = (torchvision_cuda_ops_enabled(), _route_device_types)
    _route(device_types)
    if was != (True, _route_device_types):
        logger.info('mmcv nms / RoIAlign on %s tensors now run on torchvision kernels (%s).',
                    '/'.join(_route_device_types), 'forced' if force else 'mmcv has no CUDA ops')
    return True


def _route(device_types: Sequence[str]) -> None:
    """Wrap mmcv's three ext functions (once) and set the routed device types."""
    global _route_device_types
    ext = _mmcv_ext()
    import torchvision  # noqa: F401  (registers torch.ops.torchvision)
    for name in _ROUTED:
        if name not in _originals:
            _originals[name] = getattr(ext, name)
            setattr(ext, name, _WRAPPERS[name])
    _route_device_types = tuple(device_types)


def disable_torchvision_cuda_ops() -> None:
    """Give mmcv its own kernels back (no-op when the routing is off)."""
    global _route_device_types
    if not _originals:
        return
    ext = _mmcv_ext()
    for name, original in _originals.items():
        setattr(ext, name, original)
    _originals.clear()
    _route_device_types = ()


@contextlib.contextmanager
def torchvision_ops_routed(device_types: Sequence[str] = ('cuda', ), force: bool = True) -> Iterator[bool]:
    """Route mmcv's ``nms`` / ``RoIAlign`` to torchvision inside a ``with`` block only.

    The routing state from before the block (on or off, and for which devices) is restored
    afterwards, so a comparison of the two implementations leaves a user's switch alone.

    Args:
        device_types (Sequence[str]): Device types routed inside the block.
            Defaults to ``('cuda',)``.
        force (bool): Route even when mmcv has CUDA kernels. Defaults to True.

    Yields:
        bool: Whether the routing is on inside the block.
    """
    was_on, previous_devices = torchvision_cuda_ops_enabled(), _route_device_types
    try:
        if force or not mmcv_has_cuda_ops():
            _route(device_types)
        yield torchvision_cuda_ops_enabled()
    finally:
        if was_on:
            _route(previous_devices)
        else:
            disable_torchvision_cuda_ops()


def torchvision_cuda_ops_enabled() -> bool:
    """Whether mmcv's ``nms`` / ``RoIAlign`` are currently routed to torchvision."""
    return bool(_originals)


def routed_call_counts() -> Dict[str, int]:
    """How many ``nms`` / RoIAlign forward / backward calls went to torchvision so far."""
    return dict(_counts)


def _env_switch() -> Optional[bool]:
    value = os.environ.get(ENV_SWITCH)
    if value is None or value.strip() == '':
        return None
    lowered = value.strip().lower()
    if lowered in ('1', 'true', 'yes', 'on'):
        return True
    if lowered in ('0', 'false', 'no', 'off'):
        return False
    raise ValueError(f'{ENV_SWITCH}={value!r} is not a switch value; set it to 1 (route mmcv nms / RoIAlign on CUDA '
                     'to torchvision) or 0 (never), or unset it to follow the config key '
                     f'{CONFIG_KEY!r}.')


def setup_torchvision_cuda_ops(cfg: Any = None) -> bool:
    """Apply the documented switch for a run: env var first, then the config key.

    Call it once per process before the model runs (the train and test entry points do).

    Args:
        cfg (Config | dict, optional): The run's config; its top-level key
            ``torchvision_cuda_ops`` (bool) enables the routing. Defaults to None.

    Returns:
        bool: Whether the routing is on after the call. An explicit off (env ``0`` or
        the key set to False) switches an earlier routing off.

    Raises:
        ValueError: ``DP_TORCHVISION_CUDA_OPS`` holds something other than a 0/1 switch,
            or the config key is not a bool.
    """
    wanted = _env_switch()
    if wanted is None and cfg is not None:
        value = cfg.get(CONFIG_KEY, False)
        if not isinstance(value, bool):
            raise ValueError(f'config key {CONFIG_KEY!r} must be True or False, got {value!r}.')
        wanted = value
    if wanted:
        return enable_torchvision_cuda_ops()
    if wanted is False:
        disable_torchvision_cuda_ops()
    return torchvision_cuda_ops_enabled()
