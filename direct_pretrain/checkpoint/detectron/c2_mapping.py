"""Explicit Detectron (Caffe2) blob name -> MMDetection key tables, per architecture.

Why tables instead of regex rename chains: every target key gets exactly one named
source blob (or is synthesised, e.g. the running statistics of an AffineChannel turned
BatchNorm), so the converter can prove the renaming is one-to-one and report the source
of every key. The tables are generated per component (ResNet body, FPN, RPN, box head,
mask head, keypoint head, RetinaNet head) from a :class:`C2Arch`; stage/block counts come from
``mmdet``'s ``ResNet.arch_settings`` so they cannot drift from the model.

Detectron naming (stage ``S`` = 2..5 -> mmdet ``layer{S-1}``, block ``B``)::

    conv1_w, res_conv1_bn_{s,b} | conv1_gn_{s,b}     -> conv1, bn1 | gn1
    resS_B_branch2{a,b,c}_w, ..._{bn,gn}_{s,b}       -> layer{S-1}.B.conv{1,2,3}, bn|gn{1,2,3}
    resS_0_branch1_w, resS_0_branch1_{bn,gn}_{s,b}   -> layer{S-1}.0.downsample.{0,1}

The :class:`C2Arch` is either parsed from a Detectron-style name (``R-50``,
``X-101-32x8d``, ``mask_rcnn_R-101-FPN``, ``e2e_faster_rcnn_R-50-C4_1x``) or inferred
from the blob names - depth from block counts, groups/width from the grouped 3x3 shape,
GN vs AffineChannel, FPN vs C4, RetinaNet, Cascade, mask head, keypoint head - failing
loudly when the blobs are ambiguous.
"""
import logging
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from mmdet.models.backbones.resnet import Bottleneck, ResNet
from ..mmdet_names import (box_head_layers, fpn_layers, mask_head_layers, resnet_layer, resnet_stem, retina_head_layers,
                           rpn_layers)
from .errors import DetectronArchError

__all__ = [
    'C2Arch', 'Rule', 'Synth', 'MappingTable', 'KNOWN_LEFTOVERS', 'KEYPOINT_FIXED_BLOBS',
    'DETECTRON_RETINANET_RATIOS', 'parse_arch', 'infer_arch', 'build_mapping', 'unsupported_reason',
    'resnet_block_counts'
]

logger = logging.getLogger(__name__)

#: Blobs that Detectron files carry but no model uses: the ImageNet classifier (``fc1000``
#: for MSRA ResNets, ``pred`` for FB ResNeXt/GN) and the stem conv bias, "preserved" from
#: the init file into every model-zoo ``model_final.pkl``. Ignored with a report entry.
KNOWN_LEFTOVERS: Tuple[str, ...] = ('fc1000_w', 'fc1000_b', 'pred_w', 'pred_b', 'conv1_b')

#: RetinaNet anchor aspect ratios in the order of Detectron's model-zoo yaml files
#: (``RETINANET.ASPECT_RATIOS: (1.0, 2.0, 0.5)``; the code default is (0.5, 1.0, 2.0)).
DETECTRON_RETINANET_RATIOS: Tuple[float, ...] = (1.0, 2.0, 0.5)

#: Keypoint R-CNN blobs that are constants, not weights: ``kps_score`` is Detectron's
#: ``BilinearInterpolation`` (a transposed conv with the fixed FCN bilinear kernel, excluded
#: from training), saved with the model. ``KeypointRCNNHead(upsample_method='caffe2_bilinear')``
#: computes the same upsampling itself; the converter checks the blobs hold that kernel.
KEYPOINT_FIXED_BLOBS: Tuple[str, ...] = ('kps_score_w', 'kps_score_b')

# Blobs outside the chosen architecture that belong to a known but different component.
_UNSUPPORTED = (
    (re.compile(r'^_\[pose\]_'), 'keypoint head on res5 (Detectron ResNet conv5 pose head: unsupported)'),
    (re.compile(r'^conv_fcn\d+_'), 'keypoint head (convert with a keypoint_rcnn_<backbone>-FPN arch)'),
    (re.compile(r'^kps_'), 'keypoint head (convert with a keypoint_rcnn_<backbone>-FPN arch)'),
)


def unsupported_reason(name: str) -> Optional[str]:
    """Why a blob belongs to a component this converter knowingly does not support, or None."""
    for pattern, reason in _UNSUPPORTED:
        if pattern.search(name):
            return reason
    return None


def resnet_block_counts(depth: int) -> Tuple[int, ...]:
    """Blocks per stage (res2..res5) from mmdet's ``ResNet.arch_settings``."""
    try:
        block, counts = ResNet.arch_settings[depth]
    except KeyError:
        raise DetectronArchError(f'ResNet depth {depth} is not in mmdet ResNet.arch_settings '
                                 f'{sorted(ResNet.arch_settings)}') from None
    if block is not Bottleneck:
        raise DetectronArchError(f'ResNet-{depth} uses BasicBlock; Detectron only has bottleneck ResNets')
    return tuple(counts)


@dataclass(frozen=True)
class C2Arch:
    """What the tables need to know about a Detectron model.

    Args:
        depth (int): ResNet depth (50, 101, 152).
        groups (int): 3x3 groups (1 = ResNet, 32/64 = ResNeXt). Defaults to 1.
        base_width (int): Channels per group in res2 (Detectron ``WIDTH_PER_GROUP``,
            mmdet ``ResNeXt.base_width``). Defaults to 64.
        style (str): ``'caffe'`` (stride on the 1x1, MSRA ResNets) or ``'pytorch'``
            (stride on the 3x3: ResNeXt, GN). Not encoded in the blobs. Defaults to 'caffe'.
        norm (str): Backbone norm, ``'affine'`` (frozen AffineChannel) or ``'gn'``.
        detector (str): ``'backbone'`` (ImageNet file) or one of ``faster_rcnn``,
            ``mask_rcnn``, ``retinanet``, ``cascade_rcnn``, ``keypoint_rcnn``. Defaults to
            'backbone'.
        body (str): ``'fpn'`` or ``'c4'`` for detectors, ``'none'`` for backbones.
        fpn_norm (str): ``'none'`` or ``'gn'``. Defaults to 'none'.
        box_head (str): ``'2fc'``, ``'4conv1fc'`` or ``'res5'`` (C4). Defaults to '2fc'.
        head_norm (str): Norm of the 4conv1fc/mask convs, ``'none'`` or ``'gn'``.
        mask_convs (int): Mask head 3x3 convs (4 for FPN, 0 for C4). Defaults to 4.
        retina_convs (int): RetinaNet tower depth. Defaults to 4.
        cascade_stages (int): Cascade R-CNN stages. Defaults to 3.
        keypoint_convs (int): Keypoint head 3x3 convs ``conv_fcn1..N``
            (``KRCNN.NUM_STACKED_CONVS``). Defaults to 8.
        retina_ratios (tuple[float]): Source RetinaNet aspect ratios in Detectron's
            (octave-outer, ratio-inner) anchor order.
        retina_scales_per_octave (int): Source RetinaNet scales per octave. Defaults to 3.
    """
    depth: int
    groups: int = 1
    base_width: int = 64
    style: str = 'caffe'
    norm: str = 'affine'
    detector: str = 'backbone'
    body: str = 'none'
    fpn_norm: str = 'none'
    box_head: str = '2fc'
    head_norm: str = 'none'
    mask_convs: int = 4
    retina_convs: int = 4
    cascade_stages: int = 3
    keypoint_convs: int = 8
    retina_ratios: Tuple[float, ...] = DETECTRON_RETINANET_RATIOS
    retina_scales_per_octave: int = 3

    @property
    def backbone_name(self) -> str:
        if self.groups == 1:
            name = f'R-{self.depth}'
        else:
            name = f'X-{self.depth}-{self.groups}x{self.base_width}d'
        return name + ('-GN' if self.norm == 'gn' else '')

    @property
    def name(self) -> str:
        """Detectron-style name, e.g. ``mask_rcnn_R-50-FPN`` or ``X-101-32x8d``."""
        if self.detector == 'backbone':
            return self.backbone_name
        return f'{self.detector}_{self.backbone_name}-{self.body.upper()}'

    @property
    def block_counts(self) -> Tuple[int, ...]:
        return resnet_block_counts(self.depth)

    @property
    def target_prefix(self) -> str:
        """Backbone files convert to backbone-relative keys (for ``init_cfg``), detectors to full keys."""
        return '' if self.detector == 'backbone' else 'backbone.'

    def describe(self) -> Dict[str, Any]:
        return dict(name=self.name, depth=self.depth, groups=self.groups, base_width=self.base_width,
                    style=self.style, norm=self.norm, detector=self.detector, body=self.body,
                    fpn_norm=self.fpn_norm, box_head=self.box_head, head_norm=self.head_norm,
                    mask_convs=self.mask_convs, keypoint_convs=self.keypoint_convs,
                    retina_ratios=list(self.retina_ratios),
                    retina_scales_per_octave=self.retina_scales_per_octave)


# ----------------------------------------------------------------------------------------------
# Parsing names
# ----------------------------------------------------------------------------------------------
_NAME_RE = re.compile(
    r'^(?:e2e_)?(?:(?P<detector>faster_rcnn|mask_rcnn|retinanet|cascade_rcnn|keypoint_rcnn)_)?'
    r'(?P<kind>[RX])-(?P<depth>\d+)(?:-(?P<groups>\d+)x(?P<width>\d+)d)?(?:-IN5k)?(?P<gn>-GN)?'
    r'(?:-(?P<body>FPN|C4))?(?:-IN5k)?(?P<suffix>(?:_[\w.]+)*)$', re.IGNORECASE)


def parse_arch(name: str) -> C2Arch:
    """Build a :class:`C2Arch` from a Detectron-style name.

    Accepted: ImageNet backbones ``R-50``, ``R-101``, ``R-152``, ``X-101-32x8d``,
    ``X-101-64x4d``, ``X-152-32x8d-IN5k``, ``R-50-GN``, ``R-101-GN`` and detectors
    ``{faster_rcnn|mask_rcnn|retinanet|cascade_rcnn|keypoint_rcnn}_{backbone}-{FPN|C4}``, optionally
    with Detectron's ``e2e_`` prefix, ``-IN5k`` before or after the body, and
    ``_1x``/``_2x``/``_gn`` suffixes (``_gn`` = GN everywhere). Stride placement follows
    Detectron's convention: caffe for MSRA ResNets, pytorch for ResNeXt and GN.

    Raises:
        DetectronArchError: the name does not follow the grammar.
    """
    match = _NAME_RE.match(name.strip())
    if match is None:
        raise DetectronArchError(
            f'cannot parse architecture {name!r}: expected e.g. R-50, X-101-32x8d, R-50-GN, '
            'faster_rcnn_R-50-FPN, mask_rcnn_R-101-C4, retinanet_R-50-FPN, cascade_rcnn_R-50-FPN, '
            'keypoint_rcnn_R-50-FPN '
            "(or 'auto' to infer it from the blobs)")
    depth = int(match['depth'])
    resnet_block_counts(depth)  # validates the depth
    is_x = match['kind'].upper() == 'X'
    if is_x != (match['groups'] is not None):
        raise DetectronArchError(f'{name!r}: ResNeXt names need -GxWd (X-101-32x8d), ResNet names must not have it')
    groups = int(match['groups']) if is_x else 1
    base_width = int(match['width']) if is_x else 64
    gn = bool(match['gn']) or '_gn' in (match['suffix'] or '').lower()
    detector = (match['detector'] or 'backbone').lower()
    body = (match['body'] or '').lower()
    if detector == 'backbone' and body:
        raise DetectronArchError(f'{name!r}: a -{body.upper()} body needs a detector prefix, e.g. faster_rcnn_{name}')
    if detector != 'backbone' and not body:
        raise DetectronArchError(f'{name!r}: say which body the detector uses: -FPN or -C4')
    if detector == 'retinanet' and body != 'fpn':
        raise DetectronArchError(f'{name!r}: Detectron RetinaNet models are FPN models')
    if detector == 'cascade_rcnn' and body != 'fpn':
        raise DetectronArchError(f'{name!r}: only FPN Cascade R-CNN is supported')
    if detector == 'keypoint_rcnn' and body != 'fpn':
        raise DetectronArchError(f'{name!r}: only FPN Keypoint R-CNN (roi_pose_head_v1convX) is supported')
    if gn and body == 'c4':
        raise DetectronArchError(f'{name!r}: Detectron has no GN C4 models')
    arch = C2Arch(depth=depth, groups=groups, base_width=base_width,
                  style='pytorch' if (is_x or gn) else 'caffe', norm='gn' if gn else 'affine',
                  detector=detector, body=body or 'none')
    if detector != 'backbone':
        head_gn = gn and detector != 'retinanet'
        arch = replace(arch, fpn_norm='gn' if head_gn else 'none', head_norm='gn' if head_gn else 'none',
                       box_head='res5' if body == 'c4' else ('4conv1fc' if head_gn else '2fc'),
                       mask_convs=0 if body == 'c4' else 4)
    return arch


# ----------------------------------------------------------------------------------------------
# Inferring from blobs
# ----------------------------------------------------------------------------------------------
def _count_indexed(names: Iterable[str], template: str, start: int = 0) -> int:
    """Number of consecutive indices i >= ``start`` (from ``template.format(i)``) present in names."""
    present = set(names)
    count = 0
    while template.format(start + count) in present:
        count += 1
    return count


def infer_arch(shapes: Mapping[str, Sequence[int]], cfg_value: Optional[Callable[[str], Any]] = None) -> C2Arch:
    """Infer the architecture of a Detectron file from its blob names and shapes.

    Args:
        shapes (Mapping[str, Sequence[int]]): Blob name -> shape (momentum already removed).
        cfg_value (callable, optional): ``'RESNETS.STRIDE_1X1' -> value or None`` lookup in
            the file's ``cfg``, used for the facts the blobs do not encode (stride placement,
            RetinaNet anchor order). Defaults to None (Detectron's conventions).

    Raises:
        DetectronArchError: no ResNet body, unknown block counts, or contradicting heads
            (e.g. RetinaNet and RPN blobs together); the message names the blobs.
    """
    names = set(shapes)
    lookup = cfg_value or (lambda key: None)

    has_affine, has_gn = 'res_conv1_bn_s' in names, 'conv1_gn_s' in names
    if has_affine and has_gn:
        raise DetectronArchError('ambiguous stem norm: both res_conv1_bn_s (AffineChannel) and conv1_gn_s (GN) '
                                 'are present; pass --arch explicitly')
    if not (has_affine or has_gn) or 'conv1_w' not in names:
        raise DetectronArchError('no Detectron ResNet stem (conv1_w with res_conv1_bn_s or conv1_gn_s): this is '
                                 'not a Detectron ResNet/ResNeXt file, or an unsupported backbone')
    norm = 'gn' if has_gn else 'affine'

    counts = tuple(_count_indexed(names, f'res{stage}_{{}}_branch2a_w') for stage in (2, 3, 4, 5))
    depths = [d for d, (block, c) in ResNet.arch_settings.items() if block is Bottleneck and tuple(c) == counts]
    if not depths:
        raise DetectronArchError(
            f'blocks per stage res2..res5 = {counts} match no bottleneck depth in mmdet ResNet.arch_settings '
            f'({ {d: c for d, (b, c) in ResNet.arch_settings.items() if b is Bottleneck} })')
    depth = depths[0]

    conv2 = tuple(shapes.get('res2_0_branch2b_w', ()))
    if len(conv2) != 4:
        raise DetectronArchError('res2_0_branch2b_w is missing or not a 4-d conv weight: cannot tell ResNet '
                                 'from ResNeXt')
    per_group = int(conv2[1])
    groups = int(conv2[0]) // per_group
    base_width = per_group if groups > 1 else 64

    stride_1x1 = lookup('RESNETS.STRIDE_1X1')
    if isinstance(stride_1x1, str):
        stride_1x1 = stride_1x1.lower() == 'true'
    if isinstance(stride_1x1, bool):
        style, why = ('caffe' if stride_1x1 else 'pytorch'), 'cfg RESNETS.STRIDE_1X1'
    else:
        style = 'caffe' if (norm == 'affine' and groups == 1) else 'pytorch'
        why = 'Detectron convention (MSRA ResNet: stride on 1x1; ResNeXt/GN: on 3x3)'
    logger.info('Detectron stride placement: style=%r from %s', style, why)

    arch = C2Arch(depth=depth, groups=groups, base_width=base_width, style=style, norm=norm)

    retina = sorted(n for n in names if n.startswith('retnet_'))
    fpn = sorted(n for n in names if n.startswith('fpn_inner_'))
    rpn_fpn = sorted(n for n in names if n.startswith(('conv_rpn_fpn', 'rpn_cls_logits_fpn', 'rpn_bbox_pred_fpn')))
    rpn_c4 = sorted(n for n in names if n in ('conv_rpn_w', 'rpn_cls_logits_w', 'rpn_bbox_pred_w'))
    box = 'cls_score_w' in names
    cascade = 'cls_score_2_w' in names
    mask = 'mask_fcn_logits_w' in names
    keypoint = 'kps_score_lowres_w' in names
    if not (retina or fpn or rpn_fpn or rpn_c4 or box or mask or keypoint):
        return arch  # an ImageNet backbone
    if retina and (rpn_fpn or rpn_c4 or box):
        other = (rpn_fpn or rpn_c4 or ['cls_score_w'])[0]
        raise DetectronArchError(f'ambiguous detector: RetinaNet blob {retina[0]} and two-stage blob {other} '
                                 'are both present; pass --arch explicitly')
    if rpn_fpn and rpn_c4:
        raise DetectronArchError(f'ambiguous body: FPN RPN blob {rpn_fpn[0]} and C4 RPN blob {rpn_c4[0]} are both '
                                 'present; pass --arch explicitly')
    if rpn_c4 and fpn:
        raise DetectronArchError(f'ambiguous body: C4 RPN blob {rpn_c4[0]} and FPN blob {fpn[0]} are both present')
    if retina:
        if not fpn:
            raise DetectronArchError(f'RetinaNet blob {retina[0]} without FPN blobs (fpn_inner_*): unsupported')
        detector, body = 'retinanet', 'fpn'
    else:
        if not (rpn_fpn or rpn_c4):
            raise DetectronArchError('box/mask head blobs without RPN blobs (a Fast R-CNN model with external '
                                     'proposals): unsupported')
        body = 'fpn' if rpn_fpn else 'c4'
        if cascade and mask:
            raise DetectronArchError(
                'Cascade Mask R-CNN (cls_score_2_w and mask_fcn_logits_w): the Detectron-Cascade fork has one '
                "mask head, mmdet's CascadeRoIHead one per stage; convert the boxes with --arch "
                'cascade_rcnn_<backbone>-FPN --allow-unused')
        if keypoint and (mask or cascade):
            other = 'mask_fcn_logits_w' if mask else 'cls_score_2_w'
            raise DetectronArchError(f'keypoint head (kps_score_lowres_w) together with {other}: a combined '
                                     'Mask/Cascade + Keypoint R-CNN is not supported; pass --arch explicitly and '
                                     '--allow-unused to convert part of it')
        if keypoint and not rpn_fpn:
            raise DetectronArchError('keypoint head (kps_score_lowres_w) on a C4 body: only FPN Keypoint R-CNN '
                                     'is supported')
        detector = 'cascade_rcnn' if cascade else ('mask_rcnn' if mask else
                                                   ('keypoint_rcnn' if keypoint else 'faster_rcnn'))
        if not box:
            raise DetectronArchError('RPN blobs without a box head (an RPN-only model): unsupported')

    fpn_norm = 'gn' if any(n.startswith('fpn_') and '_gn_' in n for n in names) else 'none'
    if detector == 'retinanet' and fpn_norm == 'gn':
        raise DetectronArchError('GN RetinaNet FPN (fpn_*_gn_s blobs): unsupported')
    mask_plain = sum(1 for n in names if re.fullmatch(r'_\[mask\]_fcn\d+_w', n))
    mask_gn = sum(1 for n in names if re.fullmatch(r'_mask_fcn\d+_w', n))
    if mask_plain and mask_gn:
        raise DetectronArchError('ambiguous mask head: both _[mask]_fcn*_w and _mask_fcn*_w blobs are present')
    head_gn = 'head_conv1_gn_s' in names or '_mask_fcn1_gn_s' in names
    box_head = 'res5' if body == 'c4' else ('4conv1fc' if 'head_conv1_w' in names else '2fc')
    arch = replace(arch, detector=detector, body=body, fpn_norm=fpn_norm, box_head=box_head,
                   head_norm='gn' if head_gn else 'none',
                   mask_convs=(mask_plain or mask_gn) if mask else (0 if body == 'c4' else 4),
                   retina_convs=_count_indexed(names, 'retnet_cls_conv_n{}_fpn3_w') or 4,
                   cascade_stages=3 if 'cls_score_3_w' in names else (2 if cascade else 3),
                   keypoint_convs=_count_indexed(names, 'conv_fcn{}_w', start=1) if keypoint else 8)
    if detector == 'retinanet':
        ratios = lookup('RETINANET.ASPECT_RATIOS')
        scales = lookup('RETINANET.SCALES_PER_OCTAVE')
        if ratios is not None:
            arch = replace(arch, retina_ratios=tuple(float(r) for r in ratios))
        if scales is not None:
            arch = replace(arch, retina_scales_per_octave=int(scales))
        logger.info('RetinaNet source anchor order: octave-outer, ratios %s inner (%s)', arch.retina_ratios,
                    'from cfg' if ratios is not None else "Detectron model-zoo yaml default")
    return arch


# ----------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """One renamed tensor: ``source`` blob -> ``target`` key, through transform ``kind``.

    Kinds: ``copy``; ``cls_bg_last`` (softmax classifier, background row 0 -> last);
    ``bbox_fg`` (class-specific regression, drop the 4 background rows); ``bbox_agnostic``
    ((8, C) = [bg, fg] -> the 4 fg rows); ``mask_fg`` (drop background channel 0);
    ``retina_cls`` / ``retina_reg`` (reorder the per-anchor channel blocks from Detectron's
    octave-outer order to mmdet's ratio-outer order).
    """
    source: str
    target: str
    kind: str = 'copy'


@dataclass(frozen=True)
class Synth:
    """A target with no source blob, synthesised with the shape of ``like``.

    Kinds: ``zeros`` (BN running_mean), ``identity_var`` (BN running_var = 1 - eps so the
    frozen BN is exactly the AffineChannel), ``count`` (BN num_batches_tracked = 0).
    """
    target: str
    kind: str
    like: str


@dataclass
class MappingTable:
    """All rules and synthesised targets of one architecture."""
    arch: C2Arch
    rules: List[Rule]
    synths: List[Synth]


def _conv(rules: List[Rule], src: str, dst: str, bias: bool = True) -> None:
    rules.append(Rule(f'{src}_w', f'{dst}.weight'))
    if bias:
        rules.append(Rule(f'{src}_b', f'{dst}.bias'))


def _norm_tag(norm: str) -> str:
    """Detectron's (and mmdet ResNet's) name of a backbone norm: ``bn`` for AffineChannel, ``gn``."""
    return 'bn' if norm == 'affine' else 'gn'


def _norm(rules: List[Rule], synths: List[Synth], src: str, dst: str, norm: str) -> None:
    """AffineChannel ``{src}_bn_{s,b}`` -> frozen BN ``dst``; GN ``{src}_gn_{s,b}`` -> GN ``dst``."""
    tag = _norm_tag(norm)
    rules.append(Rule(f'{src}_{tag}_s', f'{dst}.weight'))
    rules.append(Rule(f'{src}_{tag}_b', f'{dst}.bias'))
    if norm == 'affine':
        synths.append(Synth(f'{dst}.running_mean', 'zeros', f'{src}_{tag}_s'))
        synths.append(Synth(f'{dst}.running_var', 'identity_var', f'{src}_{tag}_s'))
        synths.append(Synth(f'{dst}.num_batches_tracked', 'count', f'{src}_{tag}_s'))


def _res_stage(rules: List[Rule], synths: List[Synth], arch: C2Arch, stage: int, dst: str) -> None:
    """Detectron ``res{stage}`` -> mmdet ResLayer ``dst`` (``layer{stage-1}``)."""
    for conv in resnet_layer(dst, arch.block_counts[stage - 2], _norm_tag(arch.norm)):
        branch = 'branch1' if conv.index == 0 else f'branch2{"abc"[conv.index - 1]}'
        src = f'res{stage}_{conv.block}_{branch}'
        _conv(rules, src, conv.conv, bias=False)
        _norm(rules, synths, src, conv.norm, arch.norm)


def _backbone(rules: List[Rule], synths: List[Synth], arch: C2Arch) -> None:
    stem = resnet_stem(arch.target_prefix, _norm_tag(arch.norm))
    _conv(rules, 'conv1', stem.conv, bias=False)
    _norm(rules, synths, 'res_conv1' if arch.norm == 'affine' else 'conv1', stem.norm, arch.norm)
    last_stage = 4 if arch.body == 'c4' else 5
    for stage in range(2, last_stage + 1):
        _res_stage(rules, synths, arch, stage, f'{arch.target_prefix}layer{stage - 1}')


def _conv_module(rules: List[Rule], src: str, dst: str, norm: str) -> None:
    """A conv with an optional GN after it (``{src}_gn_{s,b}``) -> ``ConvModule`` ``dst``."""
    gn = norm == 'gn'
    _conv(rules, src, f'{dst}.conv', bias=not gn)
    if gn:
        rules.append(Rule(f'{src}_gn_s', f'{dst}.gn.weight'))
        rules.append(Rule(f'{src}_gn_b', f'{dst}.gn.bias'))


def _fpn(rules: List[Rule], arch: C2Arch) -> None:
    """FPN laterals/outputs; the source names carry the last block index of each stage."""
    stages = (3, 4, 5) if arch.detector == 'retinanet' else (2, 3, 4, 5)
    extra = 2 if arch.detector == 'retinanet' else 0
    fpn = fpn_layers(len(stages), len(stages) + extra)
    for index, stage in enumerate(stages):
        last = f'res{stage}_{arch.block_counts[stage - 2] - 1}_sum'
        lateral = f'fpn_inner_{last}' if stage == 5 else f'fpn_inner_{last}_lateral'
        _conv_module(rules, lateral, fpn.laterals[index], arch.fpn_norm)
        _conv_module(rules, f'fpn_{last}', fpn.outputs[index], arch.fpn_norm)
    if extra:  # RetinaNet: P6 = conv on C5, P7 = conv on relu(P6)
        _conv(rules, 'fpn_6', f'{fpn.outputs[len(stages)]}.conv')
        _conv(rules, 'fpn_7', f'{fpn.outputs[len(stages) + 1]}.conv')


def _rpn(rules: List[Rule], arch: C2Arch) -> None:
    level = '_fpn2' if arch.body == 'fpn' else ''  # FPN RPN weights are shared, defined on P2
    rpn = rpn_layers()
    _conv(rules, f'conv_rpn{level}', rpn.conv)
    _conv(rules, f'rpn_cls_logits{level}', rpn.cls)
    _conv(rules, f'rpn_bbox_pred{level}', rpn.reg)


def _box_head(rules: List[Rule], arch: C2Arch, suffix: str, dst: str) -> None:
    convs, fcs = {'2fc': (0, 2), '4conv1fc': (4, 1)}.get(arch.box_head, (0, 0))  # res5: the shared head
    head = box_head_layers(f'{dst}.', convs, fcs)
    for i, conv in enumerate(head.convs):
        _conv_module(rules, f'head_conv{i + 1}{suffix}', conv, arch.head_norm)
    for i, fc in enumerate(head.fcs):
        _conv(rules, f'fc{6 + i}{suffix}', fc)
    rules.append(Rule(f'cls_score{suffix}_w', f'{head.cls}.weight', 'cls_bg_last'))
    rules.append(Rule(f'cls_score{suffix}_b', f'{head.cls}.bias', 'cls_bg_last'))
    bbox_kind = 'bbox_agnostic' if arch.detector == 'cascade_rcnn' else 'bbox_fg'
    rules.append(Rule(f'bbox_pred{suffix}_w', f'{head.reg}.weight', bbox_kind))
    rules.append(Rule(f'bbox_pred{suffix}_b', f'{head.reg}.bias', bbox_kind))


def _mask_head(rules: List[Rule], arch: C2Arch) -> None:
    head = mask_head_layers(arch.mask_convs)
    gn = arch.head_norm == 'gn'
    for i, conv in enumerate(head.convs):
        _conv_module(rules, f'_mask_fcn{i + 1}' if gn else f'_[mask]_fcn{i + 1}', conv, arch.head_norm)
    _conv(rules, 'conv5_mask', head.upsample)  # ConvTranspose, (in, out, 2, 2) in both
    rules.append(Rule('mask_fcn_logits_w', f'{head.logits}.weight', 'mask_fg'))
    rules.append(Rule('mask_fcn_logits_b', f'{head.logits}.bias', 'mask_fg'))


def _keypoint_head(rules: List[Rule], arch: C2Arch) -> None:
    """``roi_pose_head_v1convX`` convs and the ``kps_score_lowres`` transposed conv.

    Caffe2's ConvTranspose weight is (in, out, k, k), as torch's ``ConvTranspose2d``; the
    fixed ``kps_score`` upsampling has no target (see :data:`KEYPOINT_FIXED_BLOBS`).
    """
    dst = 'roi_head.keypoint_head'
    for i in range(arch.keypoint_convs):
        _conv(rules, f'conv_fcn{i + 1}', f'{dst}.convs.{i}.conv')
    _conv(rules, 'kps_score_lowres', f'{dst}.score_lowres')


def _retina_head(rules: List[Rule], arch: C2Arch) -> None:
    head = retina_head_layers(arch.retina_convs)
    for i in range(arch.retina_convs):  # weights shared over levels, defined on P3
        _conv(rules, f'retnet_cls_conv_n{i}_fpn3', f'{head.cls_convs[i]}.conv')
        _conv(rules, f'retnet_bbox_conv_n{i}_fpn3', f'{head.reg_convs[i]}.conv')
    rules.append(Rule('retnet_cls_pred_fpn3_w', f'{head.cls}.weight', 'retina_cls'))
    rules.append(Rule('retnet_cls_pred_fpn3_b', f'{head.cls}.bias', 'retina_cls'))
    rules.append(Rule('retnet_bbox_pred_fpn3_w', f'{head.reg}.weight', 'retina_reg'))
    rules.append(Rule('retnet_bbox_pred_fpn3_b', f'{head.reg}.bias', 'retina_reg'))


def build_mapping(arch: C2Arch) -> MappingTable:
    """The complete table for ``arch``: backbone, then neck and heads of the detector."""
    rules: List[Rule] = []
    synths: List[Synth] = []
    _backbone(rules, synths, arch)
    if arch.detector == 'backbone':
        return MappingTable(arch, rules, synths)
    if arch.body == 'fpn':
        _fpn(rules, arch)
    if arch.detector == 'retinanet':
        _retina_head(rules, arch)
        return MappingTable(arch, rules, synths)
    _rpn(rules, arch)
    if arch.body == 'c4':  # res5 runs per RoI as the shared head
        _res_stage(rules, synths, arch, 5, 'roi_head.shared_head.layer4')
    if arch.detector == 'cascade_rcnn':
        for stage in range(arch.cascade_stages):
            _box_head(rules, arch, '' if stage == 0 else f'_{stage + 1}', f'roi_head.bbox_head.{stage}')
    else:
        _box_head(rules, arch, '', 'roi_head.bbox_head')
    if arch.detector == 'mask_rcnn':
        _mask_head(rules, arch)
    if arch.detector == 'keypoint_rcnn':
        _keypoint_head(rules, arch)
    return MappingTable(arch, rules, synths)
