"""Numerical checks of the CUDA code paths against CPU references, run by the GPU check.

Why: on a GPU the package runs kernels that no CPU test executes - mmcv's CUDA RoIAlign and
NMS, the torchvision fallback for them, torch's fused SyncBN kernel behind
``SyncBNAnyBackend``. Each check runs the candidate and an independent reference on the same
random inputs and returns one JSON-ready entry: ``passed``, ``max_abs_diff`` against
``tolerance``, or ``skipped`` / ``error`` with the reason. Every check also runs CPU-only where
that is meaningful (the fallback against mmcv, SyncBN's portable path against BN), which is
how the suite exercises them without a GPU.
"""
import math
from typing import Any, Callable, Dict, List, Tuple

import torch
import torch.distributed as dist
from mmcv.ops import RoIAlign, nms

from mmdet.registry import MODELS
from ..models.layers import SyncBNFunction
from ..runtime.torchvision_cuda_ops import routed_call_counts, torchvision_ops_routed

try:  # torch's fused SyncBN autograd function, the layer's path on CUDA; private, so optional
    from torch.nn.modules._functions import SyncBatchNorm as TorchSyncBNFunction
except ImportError:  # pragma: no cover - depends on the torch build
    TorchSyncBNFunction = None

__all__ = ['ROI_ALIGN_CASES', 'NMS_CASES', 'check_roi_align', 'check_nms', 'check_sync_bn', 'run_correctness']

# The RoIAlign settings of the configs: mmdet's extractors (aligned=True, sampling_ratio=0,
# 7x7 boxes / 14x14 masks, strides 4..32) and the Detectron-legacy ones (aligned=False,
# sampling_ratio=2).
ROI_ALIGN_CASES: Tuple[Dict[str, Any], ...] = tuple(
    dict(aligned=aligned, sampling_ratio=ratio, spatial_scale=1.0 / stride, output_size=size)
    for aligned in (True, False) for ratio in (0, 2) for stride in (4, 8, 16, 32) for size in (7, 14))
# RPN (0.7) and R-CNN (0.5) thresholds, mmdet's offset 0.
NMS_CASES: Tuple[Dict[str, Any], ...] = (dict(iou_threshold=0.7, offset=0), dict(iou_threshold=0.5, offset=0))
ROI_ALIGN_TOLERANCE = 1e-4
SYNC_BN_TOLERANCE = 1e-4


def _check_entry(name: str, reference: str, candidate: str, device: str, cases: int, tolerance: float) -> dict:
    return dict(name=name, reference=reference, candidate=candidate, device=device, cases=cases, tolerance=tolerance,
                passed=None, max_abs_diff=None, skipped=None, error=None)


def _roi_inputs(stride: int, seed: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Generator]:
    """Features of a 2-image 320x256 batch at ``stride`` and 24 RoIs: tiny, large, partly outside."""
    gen = torch.Generator().manual_seed(seed)
    width, height = 320, 256
    feats = torch.randn(2, 8, math.ceil(height / stride), math.ceil(width / stride), generator=gen)
    num = 24
    x1 = torch.rand(num, generator=gen) * width * 0.9
    y1 = torch.rand(num, generator=gen) * height * 0.9
    bw = torch.rand(num, generator=gen).pow(2) * width * 0.6 + 0.25
    bh = torch.rand(num, generator=gen).pow(2) * height * 0.6 + 0.25
    index = torch.randint(0, 2, (num, ), generator=gen).float()
    rois = torch.stack([index, x1, y1, x1 + bw, y1 + bh], dim=1)
    return feats, rois, gen


def _roi_align_run(feats: torch.Tensor, rois: torch.Tensor, grad_out: torch.Tensor, case: Dict[str, Any],
                   device: str) -> Tuple[torch.Tensor, torch.Tensor]:
    layer = RoIAlign(case['output_size'], case['spatial_scale'], case['sampling_ratio'], aligned=case['aligned'])
    x = feats.to(device).requires_grad_(True)
    out = layer(x, rois.to(device))
    out.backward(grad_out.to(device))
    return out.detach().cpu(), x.grad.detach().cpu()


def _check_routed(candidate: str, calls_before: int) -> None:
    """A torchvision entry whose calls never reached torchvision compared mmcv with itself."""
    if candidate == 'torchvision' and sum(routed_call_counts().values()) == calls_before:
        raise RuntimeError('no call was routed to torchvision, so mmcv was compared with itself')


def check_roi_align(candidate: str, device: str, seed: int = 0) -> dict:
    """mmcv ``RoIAlign`` on ``device`` (``candidate='mmcv'``) or routed to torchvision
    (``candidate='torchvision'``) against mmcv's CPU kernel: outputs and input gradients
    over :data:`ROI_ALIGN_CASES`.

    Args:
        candidate (str): 'mmcv' or 'torchvision'.
        device (str): Device of the candidate ('cuda' or 'cpu').
        seed (int): Seed of the inputs. Defaults to 0.
    """
    entry = _check_entry(f'roi_align/{candidate}-{torch.device(device).type}-vs-mmcv-cpu', 'mmcv-cpu',
                         f'{candidate}-{device}', device, len(ROI_ALIGN_CASES), ROI_ALIGN_TOLERANCE)
    worst = 0.0
    calls_before = sum(routed_call_counts().values())
    try:
        for index, case in enumerate(ROI_ALIGN_CASES):
            feats, rois, gen = _roi_inputs(int(round(1 / case['spatial_scale'])), seed + index)
            size = case['output_size']
            grad_out = torch.randn(rois.size(0), feats.size(1), size, size, generator=gen)
            ref_out, ref_grad = _roi_align_run(feats, rois, grad_out, case, 'cpu')
            if candidate == 'torchvision':
                with torchvision_ops_routed(device_types=(torch.device(device).type, )):
                    out, grad = _roi_align_run(feats, rois, grad_out, case, device)
            else:
                out, grad = _roi_align_run(feats, rois, grad_out, case, device)
            worst = max(worst, (out - ref_out).abs().max().item(), (grad - ref_grad).abs().max().item())
        _check_routed(candidate, calls_before)
        entry['max_abs_diff'] = worst
        entry['passed'] = worst <= ROI_ALIGN_TOLERANCE
    except Exception as error:  # e.g. mmcv without CUDA kernels
        entry['error'] = f'{type(error).__name__}: {error}'
        entry['passed'] = False
    return entry


def _nms_inputs(seed: int, num: int = 400) -> Tuple[torch.Tensor, torch.Tensor]:
    """Boxes in 30 clusters (so NMS has work to do) with distinct random scores."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.rand(30, 2, generator=gen) * torch.tensor([320.0, 256.0])
    pick = torch.randint(0, 30, (num, ), generator=gen)
    centre = centres[pick] + torch.randn(num, 2, generator=gen) * 6
    half = (torch.rand(num, 2, generator=gen) * 44 + 4)
    boxes = torch.cat([centre - half, centre + half], dim=1)
    scores = torch.rand(num, generator=gen)
    return boxes, scores


def check_nms(candidate: str, device: str, seed: int = 0) -> dict:
    """mmcv ``nms`` on ``device`` (or routed to torchvision) keeps exactly the boxes, in the
    order, that mmcv's CPU kernel keeps, over :data:`NMS_CASES`.

    Args:
        candidate (str): 'mmcv' or 'torchvision'.
        device (str): Device of the candidate ('cuda' or 'cpu').
        seed (int): Seed of the inputs. Defaults to 0.
    """
    entry = _check_entry(f'nms/{candidate}-{torch.device(device).type}-vs-mmcv-cpu', 'mmcv-cpu',
                         f'{candidate}-{device}', device, len(NMS_CASES), 0)
    mismatches = 0
    calls_before = sum(routed_call_counts().values())
    try:
        for index, case in enumerate(NMS_CASES):
            boxes, scores = _nms_inputs(seed + index)
            _, ref_keep = nms(boxes, scores, case['iou_threshold'], offset=case['offset'])
            if candidate == 'torchvision':
                with torchvision_ops_routed(device_types=(torch.device(device).type, )):
                    _, keep = nms(boxes.to(device), scores.to(device), case['iou_threshold'], offset=case['offset'])
            else:
                _, keep = nms(boxes.to(device), scores.to(device), case['iou_threshold'], offset=case['offset'])
            keep = keep.cpu()
            if keep.shape != ref_keep.shape:
                mismatches += abs(keep.numel() - ref_keep.numel()) + 1
            else:
                mismatches += int((keep != ref_keep).sum())
        _check_routed(candidate, calls_before)
        entry['max_abs_diff'] = mismatches  # kept indices that differ
        entry['passed'] = mismatches == 0
    except Exception as error:
        entry['error'] = f'{type(error).__name__}: {error}'
        entry['passed'] = False
    return entry


# The two synchronized paths of ``SyncBNAnyBackend``: torch's fused autograd function and the
# package's portable one.
_SYNC_BN_FUNCTIONS: Dict[str, Any] = {'torch-fused': TorchSyncBNFunction, 'portable': SyncBNFunction}


def _bn_pair(device: str, channels: int, seed: int) -> Tuple[torch.nn.Module, torch.nn.Module]:
    """The layer built through mmdet's registry, as a config builds it, and ``nn.BatchNorm2d``
    with the same affine parameters."""
    gen = torch.Generator().manual_seed(seed)
    layer = MODELS.build(dict(type='SyncBNAnyBackend', num_features=channels))
    with torch.no_grad():
        layer.weight.copy_(torch.rand(channels, generator=gen) + 0.5)
        layer.bias.copy_(torch.randn(channels, generator=gen))
    reference = torch.nn.BatchNorm2d(channels)
    reference.load_state_dict(layer.state_dict())
    return layer.to(device).train(), reference.to(device).train()


def _bn_compare(run: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor], layer: torch.nn.Module,
                reference: torch.nn.Module, device: str, seed: int) -> float:
    """Max abs difference of output, input / weight / bias gradients and running stats."""
    gen = torch.Generator().manual_seed(seed + 1)
    x = (torch.randn(4, layer.num_features, 9, 7, generator=gen) * 3 + 1).to(device)
    grad = torch.randn(x.shape, generator=gen).to(device)
    diffs = []
    outs = []
    for module, fn in ((layer, run), (reference, lambda m, t: m(t))):
        xi = x.clone().requires_grad_(True)
        out = fn(module, xi)
        out.backward(grad)
        outs.append((out.detach(), xi.grad, module.weight.grad, module.bias.grad, module.running_mean,
                     module.running_var))
    for a, b in zip(*outs):
        diffs.append((a.double() - b.double()).abs().max().item())
    return max(diffs)


def check_sync_bn(device: str, seed: int = 0) -> List[dict]:
    """``SyncBNAnyBackend`` on ``device`` in one process against ``nn.BatchNorm2d``.

    Three entries: the layer as a model gets it from the registry (no process group: plain
    BN), then torch's fused SyncBN function and the portable function, each run on a
    one-process group (NCCL on CUDA, gloo on CPU) so their collectives and kernels execute.
    """
    dev_type = torch.device(device).type
    entries = []
    layer_entry = _check_entry(f'sync_bn/layer-{dev_type}-vs-batchnorm2d', 'nn.BatchNorm2d',
                               'SyncBNAnyBackend (registry)', device, 1, SYNC_BN_TOLERANCE)
    try:
        layer, reference = _bn_pair(device, 6, seed)
        diff = _bn_compare(lambda m, t: m(t), layer, reference, device, seed)
        layer_entry.update(max_abs_diff=diff, passed=diff <= SYNC_BN_TOLERANCE)
    except Exception as error:
        layer_entry.update(error=f'{type(error).__name__}: {error}', passed=False)
    entries.append(layer_entry)

    backend = 'nccl' if dev_type == 'cuda' else 'gloo'
    own_group = False
    for name in ('torch-fused', 'portable'):
        entry = _check_entry(f'sync_bn/{name}-{dev_type}-vs-batchnorm2d', 'nn.BatchNorm2d',
                             f'{name} SyncBN function, 1-process {backend} group', device, 1, SYNC_BN_TOLERANCE)
        entries.append(entry)
        fn = _SYNC_BN_FUNCTIONS[name]
        if fn is None:
            entry['skipped'] = f'{name} function not found in this torch / package'
            continue
        if name == 'torch-fused' and dev_type != 'cuda':
            entry['skipped'] = "torch's fused SyncBN kernel runs on CUDA only"
            continue
        if not dist.is_available() or (backend == 'nccl' and not dist.is_nccl_available()):
            entry['skipped'] = f'torch.distributed backend {backend} not available'
            continue
        try:
            if not dist.is_initialized():
                kwargs = dict(device_id=torch.device('cuda', torch.cuda.current_device())) if backend == 'nccl' else {}
                dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1, **kwargs)
                own_group = True
            group = dist.group.WORLD
            layer, reference = _bn_pair(device, 6, seed)

            def run(m: torch.nn.Module, t: torch.Tensor, fn: Any = fn) -> torch.Tensor:
                return fn.apply(t, m.weight, m.bias, m.running_mean, m.running_var, m.eps, m.momentum, group, 1)

            diff = _bn_compare(run, layer, reference, device, seed)
            entry.update(max_abs_diff=diff, passed=diff <= SYNC_BN_TOLERANCE)
        except Exception as error:
            entry.update(error=f'{type(error).__name__}: {error}', passed=False)
    if own_group:
        dist.destroy_process_group()
    return entries


def run_correctness(dry_run: bool, seed: int = 0) -> List[dict]:
    """All correctness entries; CUDA ones skipped with the reason in a dry run."""
    entries: List[dict] = []
    for op, check in (('roi_align', check_roi_align), ('nms', check_nms)):
        for candidate in ('mmcv', 'torchvision'):
            if dry_run:
                entry = _check_entry(f'{op}/{candidate}-cuda-vs-mmcv-cpu', 'mmcv-cpu', f'{candidate}-cuda', 'cuda',
                                     0, 0)
                entry['skipped'] = 'dry run: no CUDA calls'
                entries.append(entry)
            else:
                entries.append(check(candidate, 'cuda', seed))
        # The fallback against mmcv on CPU: same arithmetic, independent implementations.
        entries.append(check('torchvision', 'cpu', seed))
    entries += check_sync_bn('cpu' if dry_run else 'cuda', seed)
    return entries
