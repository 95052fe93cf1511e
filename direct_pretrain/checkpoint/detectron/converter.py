"""Convert Detectron (Caffe2) blobs into an MMDetection state dict, with a full report.

Why: mmengine loads ``load_from``/``init_cfg`` non-strictly, so a renaming mistake
silently leaves random weights. This converter applies the explicit tables of
:mod:`.c2_mapping`, proves the renaming one-to-one, and refuses to return a partial
result unless asked: blobs it does not consume (other than known leftovers such as the
ImageNet classifier) and targets it cannot fill are errors by default. The
:class:`ConversionReport` keeps the source of every target key, the synthesised BN
statistics, the dropped momentum, ignored leftovers, and every meaning-changing edit:

* AffineChannel -> frozen BN: ``weight = s``, ``bias = b``, ``running_mean = 0``,
  ``running_var = 1 - eps`` (``eps`` of the target BN, mmdet default 1e-5), so
  ``(x - 0) / sqrt(1 - eps + eps) * s + b`` is exactly the AffineChannel in float32
  with stock BN configs (no ``eps=0`` needed).
* Softmax classes: Detectron's background is row 0, mmdet's is last -> ``cls_score``
  row 0 moves to the end; ``bbox_pred`` drops its 4 background rows (class-agnostic
  ``(8, C)`` keeps rows 4:8); ``mask_fcn_logits`` drops channel 0.
* Keypoint R-CNN: ``conv_fcn1..N`` and ``kps_score_lowres`` are copied (Caffe2 and torch
  transposed convs share the (in, out, k, k) layout); ``kps_score_w/b``, Detectron's fixed
  bilinear upsampling, are checked to be that kernel and listed as ``fixed_blobs`` - the
  head's ``upsample_method='caffe2_bilinear'`` computes them.
* RetinaNet: the per-anchor channel blocks of ``retnet_{cls,bbox}_pred`` are permuted
  from Detectron's octave-outer/ratio-inner order to mmdet's ratio-outer/octave-inner
  order (``AnchorGenerator`` with ``scale_major=True``), so converted weights work with
  stock-ordered anchor configs; anchor *coordinates* are matched by
  ``DetectronAnchorGenerator``.

Summary at INFO, the full key table at DEBUG; :meth:`ConversionReport.to_json` writes it.
"""
import logging
from collections import OrderedDict
from typing import Any, BinaryIO, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ...structures.keypoints import bilinear_upsample_kernel
from ..conversion_report import ConversionReport, ConvertedEntry, Shape
from .c2_mapping import (KEYPOINT_FIXED_BLOBS, KNOWN_LEFTOVERS, C2Arch, MappingTable, build_mapping, infer_arch,
                         parse_arch, unsupported_reason)
from .errors import DetectronArchError, MappingConflictError, MissingTargetError, ShapeMismatchError, UnmappedBlobsError
from .reader import DetectronBlobs, load_detectron_blobs

__all__ = ['resolve_arch', 'plan_conversion', 'convert_detectron',
           'retina_anchor_permutation']

logger = logging.getLogger(__name__)

MMDET_RETINANET_RATIOS: Tuple[float, ...] = (0.5, 1.0, 2.0)


def resolve_arch(arch: Union[None, str, C2Arch], blobs: DetectronBlobs) -> C2Arch:
    """``None``/``'auto'`` -> inferred from the blobs; a name -> :func:`parse_arch`."""
    if isinstance(arch, C2Arch):
        return arch
    if arch is None or arch == 'auto':
        shapes = {name: value.shape for name, value in blobs.blobs.items()}
        try:
            return infer_arch(shapes, blobs.cfg_value)
        except DetectronArchError as error:
            raise DetectronArchError(f'{blobs.source}: {error}') from error
    return parse_arch(arch)


def retina_anchor_permutation(arch: C2Arch, target_ratios: Sequence[float] = MMDET_RETINANET_RATIOS) -> List[int]:
    """``perm[k]`` = Detectron anchor index of mmdet anchor ``k``.

    Detectron enumerates RetinaNet cell anchors octave-outer, ratio-inner (in the yaml's
    ratio order); mmdet's ``AnchorGenerator(scale_major=True)`` ratio-outer (in the
    config's ratio order), octave-inner.
    """
    source = [float(r) for r in arch.retina_ratios]
    target = [float(r) for r in target_ratios]
    if sorted(source) != sorted(target):
        raise DetectronArchError(f'RetinaNet aspect ratios differ: Detectron model {source}, target config {target}')
    scales = arch.retina_scales_per_octave
    return [octave * len(source) + source.index(ratio) for ratio in target for octave in range(scales)]


def _transform_shape(kind: str, shape: Shape, source: str, num_anchors: int) -> Shape:
    """Output shape of a transform; validates the layout it assumes."""
    rows = shape[0] if shape else 0
    if kind == 'cls_bg_last' and rows < 2:
        raise ShapeMismatchError(f'{source}: {shape} has no background + class rows')
    if kind == 'bbox_fg':
        if rows % 4 or rows < 8:
            raise ShapeMismatchError(f'{source}: {shape} is not 4 x (background + classes) rows')
        return (rows - 4, ) + tuple(shape[1:])
    if kind == 'bbox_agnostic':
        if rows != 8:
            raise ShapeMismatchError(f'{source}: class-agnostic regression expects 8 rows [bg, fg], got {shape}')
        return (4, ) + tuple(shape[1:])
    if kind == 'mask_fg':
        return tuple(shape) if rows == 1 else (rows - 1, ) + tuple(shape[1:])
    if kind in ('retina_cls', 'retina_reg') and rows % num_anchors:
        raise ShapeMismatchError(f'{source}: {rows} channels are not a multiple of {num_anchors} anchors')
    return tuple(shape)


def _apply(kind: str, array: np.ndarray, perm: Optional[List[int]]) -> np.ndarray:
    if kind == 'cls_bg_last':
        return np.concatenate([array[1:], array[:1]])
    if kind == 'bbox_fg':
        return array[4:]
    if kind == 'bbox_agnostic':
        return array[4:8]
    if kind == 'mask_fg':
        return array if array.shape[0] == 1 else array[1:]
    if kind in ('retina_cls', 'retina_reg'):
        assert perm is not None
        blocks = array.reshape((len(perm), -1) + array.shape[1:])
        return blocks[perm].reshape(array.shape)
    return array


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:  # arrays rebuilt from pickled bytes are read-only views
        array = array.copy()
    return torch.from_numpy(array)


def _edit_message(kind: str, source: str, target: str, before: Shape, after: Shape, arch: C2Arch,
                  perm: Optional[List[int]]) -> Optional[str]:
    if kind == 'cls_bg_last':
        return f'{source} {before} -> {target}: moved background row 0 to the end (index {before[0] - 1})'
    if kind == 'bbox_fg':
        return f'{source} {before} -> {target} {after}: dropped the 4 background rows'
    if kind == 'bbox_agnostic':
        return f'{source} {before} -> {target} {after}: class-agnostic, kept foreground rows 4:8'
    if kind == 'mask_fg':
        if before == after:
            return f'{source} {before} -> {target}: class-agnostic mask, kept as is'
        return f'{source} {before} -> {target} {after}: dropped background channel 0'
    if kind in ('retina_cls', 'retina_reg'):
        return (f'{source} {before} -> {target}: anchor blocks reordered from Detectron (octave-outer, ratios '
                f'{list(arch.retina_ratios)}) to mmdet ratio-outer order, perm {perm}')
    return None


def plan_conversion(shapes: Mapping[str, Sequence[int]], arch: C2Arch,
                    retina_target_ratios: Sequence[float] = MMDET_RETINANET_RATIOS
                    ) -> Tuple[MappingTable, ConversionReport, Optional[List[int]]]:
    """Match a table against blob names/shapes without touching data.

    Why separate: the naming, the one-to-one check and the output shapes can be verified
    (in tests and dry runs) for large models from shapes alone.

    Returns:
        (table, report, retina permutation or None). ``report`` has converted/synthesised
        entries with shapes, leftovers, unsupported/unused blobs and missing targets.

    Raises:
        MappingConflictError: two blobs map to one key, or one blob to two keys.
        ShapeMismatchError: a class/anchor layout transform does not fit a blob's shape.
    """
    table = build_mapping(arch)
    report = ConversionReport(arch=arch.describe())
    perm = retina_anchor_permutation(arch, retina_target_ratios) if arch.detector == 'retinanet' else None
    num_anchors = len(perm) if perm else 1

    target_source: Dict[str, str] = {}
    source_target: Dict[str, str] = {}
    for rule in table.rules:
        if rule.target in target_source:
            raise MappingConflictError(f'{rule.source} and {target_source[rule.target]} both map to {rule.target}')
        if rule.source in source_target:
            raise MappingConflictError(f'{rule.source} maps to both {source_target[rule.source]} and {rule.target}')
        target_source[rule.target] = rule.source
        source_target[rule.source] = rule.target
        if rule.source not in shapes:
            report.missing_target.append(f'{rule.target} (needs blob {rule.source})')
            continue
        before = tuple(int(d) for d in shapes[rule.source])
        after = _transform_shape(rule.kind, before, rule.source, num_anchors)
        report.converted.append(ConvertedEntry(rule.target, rule.source, rule.kind, before, after))
        edit = _edit_message(rule.kind, rule.source, rule.target, before, after, arch, perm)
        if edit:
            report.edits.append(edit)
    for synth in table.synths:
        if synth.target in target_source:
            raise MappingConflictError(
                f'{synth.target} is both synthesised and mapped from {target_source[synth.target]}')
        target_source[synth.target] = f'<{synth.kind}>'
        if synth.like not in shapes:
            continue  # its weight is already reported missing
        like = tuple(int(d) for d in shapes[synth.like])
        report.synthesized.append(ConvertedEntry(synth.target, synth.like, synth.kind, like,
                                                 () if synth.kind == 'count' else like))
    if table.synths:
        report.edits.append('AffineChannel -> frozen BN: running_mean = 0, running_var = 1 - eps')

    for name in sorted(shapes):
        if name in source_target:
            continue
        reason = unsupported_reason(name)
        if name in KNOWN_LEFTOVERS:
            report.ignored_leftovers.append(name)
        elif name in KEYPOINT_FIXED_BLOBS and arch.detector == 'keypoint_rcnn':
            report.fixed_blobs.append(name)
        elif reason:
            report.unsupported[name] = reason
        else:
            report.unused_source.append(name)
    return table, report, perm


def _check_fixed_blobs(blobs: DetectronBlobs, names: Sequence[str]) -> None:
    """Keypoint R-CNN's ``kps_score_w/b`` must be the bilinear kernel the head reproduces."""
    if 'kps_score_w' in names:
        weight = np.asarray(blobs.blobs['kps_score_w'], dtype=np.float32)
        if weight.ndim != 4 or weight.shape[0] != weight.shape[1] or weight.shape[2] != weight.shape[3] \
                or weight.shape[2] % 2:
            raise ShapeMismatchError(f'{blobs.source}: kps_score_w {weight.shape} is not a (K, K, 2s, 2s) '
                                     'upsampling kernel')
        expected = np.zeros_like(weight)
        expected[np.arange(len(weight)), np.arange(len(weight))] = bilinear_upsample_kernel(weight.shape[2] // 2)
        if not np.allclose(weight, expected, atol=1e-6):
            raise DetectronArchError(
                f'{blobs.source}: kps_score_w is not the fixed bilinear upsampling kernel of Detectron\'s '
                'BilinearInterpolation, so the heatmaps were upsampled differently; the keypoint head cannot '
                'reproduce this model')
    if 'kps_score_b' in names and np.abs(np.asarray(blobs.blobs['kps_score_b'])).max(initial=0) > 1e-6:
        raise DetectronArchError(f'{blobs.source}: kps_score_b is not zero: not Detectron\'s fixed bilinear '
                                 'upsampling; the keypoint head cannot reproduce this model')


def _hint(blobs: DetectronBlobs, arch: C2Arch) -> str:
    try:
        inferred = infer_arch({k: v.shape for k, v in blobs.blobs.items()}, blobs.cfg_value)
    except DetectronArchError:
        return ''
    return f' (the blobs look like {inferred.name})' if inferred.name != arch.name else ''


def convert_detectron(source: Union[str, BinaryIO, DetectronBlobs, Dict[str, Any]],
                      arch: Union[None, str, C2Arch] = 'auto',
                      *,
                      target: Optional[Union[nn.Module, Mapping[str, Any]]] = None,
                      bn_eps: float = 1e-5,
                      retina_target_ratios: Sequence[float] = MMDET_RETINANET_RATIOS,
                      allow_unused: bool = False,
                      allow_missing: bool = False) -> Tuple['OrderedDict[str, torch.Tensor]', ConversionReport]:
    """Convert a Detectron file into an mmdet state dict.

    Args:
        source (str | BinaryIO | DetectronBlobs | dict): ``.pkl`` path/file, read blobs,
            or an unpickled dict.
        arch (str | C2Arch | None): Architecture name (see :func:`parse_arch`) or
            ``'auto'``/None to infer it from the blobs. Defaults to 'auto'.
        target (nn.Module | Mapping, optional): Model (or state dict / key->shape map) to
            check keys and shapes against. Defaults to None (table check only).
        bn_eps (float): ``eps`` of the target BN layers; ``running_var = 1 - bn_eps``.
            Defaults to 1e-5 (mmdet's BN default).
        retina_target_ratios (Sequence[float]): Anchor ratio order of the target
            RetinaNet config. Defaults to (0.5, 1.0, 2.0).
        allow_unused (bool): Accept unconsumed/unsupported blobs. Defaults to False.
        allow_missing (bool): Accept unfilled targets. Defaults to False.

    Returns:
        tuple: ``(state_dict, report)``.

    Raises:
        UnmappedBlobsError, MissingTargetError, ShapeMismatchError, MappingConflictError,
        DetectronArchError, DetectronFormatError, UnsafeDetectronPickleError.
    """
    blobs = source if isinstance(source, DetectronBlobs) else load_detectron_blobs(source)
    arch = resolve_arch(arch, blobs)
    shapes = {name: value.shape for name, value in blobs.blobs.items()}
    _, report, perm = plan_conversion(shapes, arch, retina_target_ratios)
    report.source_file, report.layout = blobs.source, blobs.layout
    report.momentum_dropped = list(blobs.momentum)
    _check_fixed_blobs(blobs, report.fixed_blobs)
    if target is not None:
        report.compare_with_target(target)

    if report.shape_mismatches:
        raise ShapeMismatchError(f'{blobs.source}: converted shapes differ from the target model '
                                 f'({len(report.shape_mismatches)}): {report.shape_mismatches[:5]}')
    if (report.unused_source or report.unsupported) and not allow_unused:
        parts = []
        by_reason: Dict[str, List[str]] = {}
        for name, reason in report.unsupported.items():
            by_reason.setdefault(reason, []).append(name)
        for reason, names in by_reason.items():
            parts.append(f'{len(names)} blobs of an unsupported {reason}: {names[:6]}')
        if report.unused_source:
            parts.append(f'{len(report.unused_source)} blobs not in the {arch.name} table{_hint(blobs, arch)}: '
                         f'{report.unused_source[:10]}')
        raise UnmappedBlobsError(f'{blobs.source}: {"; ".join(parts)}. Check --arch, or pass allow_unused=True '
                                 '(--allow-unused) to drop them.')
    missing = report.missing_target + report.unexpected_target
    if missing and not allow_missing:
        raise MissingTargetError(
            f'{blobs.source}: {len(missing)} target keys are not filled / not expected for {arch.name}'
            f'{_hint(blobs, arch)}: {missing[:10]}. Check --arch, or pass allow_missing=True (--allow-missing).')

    state_dict: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for entry in report.converted:
        state_dict[entry.target] = _to_tensor(_apply(entry.kind, blobs.blobs[entry.source], perm))
    for entry in report.synthesized:
        if entry.kind == 'count':
            state_dict[entry.target] = torch.tensor(0, dtype=torch.long)
        elif entry.kind == 'zeros':
            state_dict[entry.target] = torch.zeros(entry.shape, dtype=torch.float32)
        else:  # identity_var
            state_dict[entry.target] = torch.full(entry.shape, 1.0 - bn_eps, dtype=torch.float32)

    report.log(logger, 'Detectron')
    return state_dict, report
