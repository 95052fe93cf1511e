"""Explicit key tables: the original direct-pretraining release (mmdet 2.x) -> MMDetection 3.3.

Why tables: the release's 14 checkpoints (pre-trained and fine-tuned RetinaNet, Faster,
Cascade, Mask R-CNN R-50-FPN, Mask R-CNN R-50-FPN P3x and Mask R-CNN Swin-T P1x / P3x)
are mmdet 2.x files. A rename chain would silently pass a file with a missing head or an
extra stage; a table per row lets the converter prove the renaming one-to-one, name the
source of every target key, tell which published row a file is (and which row is
closest when it is none), and fail on anything left over.

What the tables say, and where it comes from:

* **R-50 rows** are mmdet 2.x ``ResNet`` / ``FPN`` / ``RPNHead`` / ``Shared4Conv1FCBBoxHead``
  (Faster, Mask; the release configs' ``bbox_head``) / 3 x ``Shared2FCBBoxHead`` (Cascade) /
  ``FCNMaskHead`` / ``RetinaHead`` modules. Their state-dict names are the same in
  MMDetection 3.3 (``rpn_head.rpn_conv``, ``roi_head.bbox_head.shared_convs.N.conv``,
  ``roi_head.mask_head.upsample``, ``bbox_head.retina_cls``, ...; background is the last
  ``fc_cls`` row in both), so their rules are copies - written out per component so that
  each name is checked and a missing component is named. The names come from
  :mod:`..mmdet_names`, which the Detectron tables use too.
* **Swin-T** is the original Swin-Transformer-Object-Detection backbone that the release
  vendors (``modules/swin_transformer.py``): ``layers.N.blocks.M.{norm1, attn.qkv,
  attn.proj, attn.relative_position_bias_table, attn.relative_position_index, norm2,
  mlp.fc1, mlp.fc2}``, ``layers.N.downsample.{reduction, norm}``, ``patch_embed.proj``,
  ``patch_embed.norm`` and output norms ``norm0..3`` - listed here key by key, as mmdet
  ships no original Swin. Their mmdet 3.3 names (``stages.N.blocks.M.{..., attn.w_msa.*,
  ffn.layers.0.0, ffn.layers.1}``, ``patch_embed.projection``) are the ones mmdet's own
  converter of original Swin checkpoints gives (``mmdet.models.backbones.swin.swin_converter``,
  also ``tools/model_converters/swinv1_to_mmdet.py``), asked key by key when the table is built.
* **PatchMerging channel order**: the original concatenates the 2 x 2 neighbours as
  ``[x(0,0), x(1,0), x(0,1), x(1,1)]`` (row offset first) blocks of C channels; mmdet's
  ``nn.Unfold(kernel_size=2)`` emits channel ``c * 4 + (2 * row + col)``. The reduction
  weight's input columns and the preceding LayerNorm's 4C weight and bias are corrected by
  that same ``swin_converter`` (:func:`convert_swin_tensor`).
* **relative_position_index** buffers are regenerated from the window size - the buffer
  mmdet's ``WindowMSA`` builds (:func:`swin_relative_position_index`) - never copied.

Stage (pre-trained / fine-tuned) and schedule (P1x / P3x) are not in the keys; they are
read from the checkpoint's ``meta`` when it says (:func:`describe_release_meta`).
"""
import logging
import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch

from mmdet.models.backbones.swin import WindowMSA, swin_converter
from ..mmdet_names import (BN_PARAMS, WEIGHT_BIAS, box_head_layers, fpn_layers, mask_head_layers, resnet_layer,
                           resnet_stem, retina_head_layers, rpn_layers)
from .errors import ReleaseArchError, ReleaseConversionError, ReleaseFormatError, ReleaseShapeError

__all__ = [
    'ARCH_NAMES', 'ReleaseArch', 'KeyRule', 'ReleaseRow', 'RELEASE_ROWS', 'RELEASE_ARCHS', 'build_table',
    'infer_arch', 'describe_release_meta', 'convert_swin_tensor', 'swin_relative_position_index',
    'swin_window_size', 'row_for'
]

logger = logging.getLogger(__name__)

#: ``--arch`` values: the five distinct model layouts of the 7 published rows.
ARCH_NAMES: Tuple[str, ...] = ('retinanet', 'faster', 'cascade', 'mask', 'mask-swin')


@dataclass(frozen=True)
class ReleaseArch:
    """The module layout of one published row (the structure its config builds).

    Args:
        name (str): One of :data:`ARCH_NAMES`.
        resnet_blocks (tuple[int]): Bottlenecks per stage of the R-50 backbone.
        swin_depths (tuple[int]): Blocks per stage of the Swin-T backbone.
        box_convs (int): Shared 3x3 convs of the RoI box head (4conv1fc: 4).
        box_fcs (int): Shared fcs of the RoI box head (4conv1fc: 1, 2fc: 2).
        cascade_stages (int): Cascade R-CNN stages.
        mask_convs (int): 3x3 convs of the FCN mask head.
        retina_convs (int): RetinaNet tower depth.
    """
    name: str
    resnet_blocks: Tuple[int, ...] = (3, 4, 6, 3)
    swin_depths: Tuple[int, ...] = (2, 2, 6, 2)
    box_convs: int = 4
    box_fcs: int = 1
    cascade_stages: int = 3
    mask_convs: int = 4
    retina_convs: int = 4

    @property
    def swin(self) -> bool:
        return self.name == 'mask-swin'

    @property
    def detector(self) -> str:
        return dict(retinanet='RetinaNet', faster='FasterRCNN', cascade='CascadeRCNN', mask='MaskRCNN',
                    **{'mask-swin': 'MaskRCNN'})[self.name]

    def describe(self) -> Dict[str, Any]:
        backbone = (f'Swin depths {list(self.swin_depths)}' if self.swin else
                    f'ResNet blocks {list(self.resnet_blocks)}')
        return dict(name=self.name, detector=self.detector, backbone=backbone)


#: The published layouts (release configs ``configs/direct_pretraining/*.py``).
RELEASE_ARCHS: Dict[str, ReleaseArch] = {
    'retinanet': ReleaseArch('retinanet'),
    'faster': ReleaseArch('faster'),
    'cascade': ReleaseArch('cascade', box_convs=0, box_fcs=2),
    'mask': ReleaseArch('mask'),
    'mask-swin': ReleaseArch('mask-swin'),
}


@dataclass(frozen=True)
class ReleaseRow:
    """One row of the release's model table: a pre-trained and a fine-tuned checkpoint.

    Args:
        name (str): Row id (``retinanet``, ``faster``, ``cascade``, ``mask-p1x``,
            ``mask-p3x``, ``mask-swin-p1x``, ``mask-swin-p3x``).
        arch (str): Its layout, one of :data:`ARCH_NAMES`.
        schedule (str): ``P1x`` or ``P3x`` (pretrain epochs 12 / 36).
        title (str): The row as the release README names it.
        published (str): COCO val2017 bbox[/mask] AP of the fine-tuned model.
        release_configs (tuple[str, str]): The release's pretrain / fine-tune config
            files (P3x: not published; the P1x files with 36 pretrain epochs).
        links (tuple[str, str]): The README's download links (pre-train, fine-tune).
        pretrain_config (str): This package's pretrain config of the row.
        finetune_config (str): This package's fine-tune (and test) config of the row.
    """
    name: str
    arch: str
    schedule: str
    title: str
    published: str
    release_configs: Tuple[str, str]
    links: Tuple[str, str]
    pretrain_config: str
    finetune_config: str

    @property
    def pretrain_epochs(self) -> int:
        return 36 if self.schedule == 'P3x' else 12


_ONEDRIVE = 'https://dutaotbsteduau-my.sharepoint.com/:u:/g/personal/love0735_edu365_site/'
_CFG = 'configs/direct_pretraining/'

#: The 7 rows of the release README (links as published there; it gives no file names).
RELEASE_ROWS: Tuple[ReleaseRow, ...] = (
    ReleaseRow('retinanet', 'retinanet', 'P1x', 'RetinaNet Direct(P1x)-1x', '37.1',
               ('retinanet_r50_fpn_direct_pretrain_1x_coco.py', 'retinanet_r50_fpn_direct_finetune_p1x_1x_coco.py'),
               (_ONEDRIVE + 'EcLiASQSUKlBpsY15lacsgoBWfARylTODd7hNVD2t0Pjgw',
                _ONEDRIVE + 'EcCAmSBF3VhGtmsChX8MHG8BDKj4KGu0zGNuyFzs325lMw'),
               _CFG + 'retinanet_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py',
               _CFG + 'retinanet_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py'),
    ReleaseRow('faster', 'faster', 'P1x', 'Faster RCNN Direct(P1x)-1x', '39.3',
               ('faster_rcnn_r50_fpn_direct_pretrain_1x_coco.py', 'faster_rcnn_r50_fpn_direct_finetune_p1x_1x_coco.py'),
               (_ONEDRIVE + 'EcbSrMe0c5BBm-TaiKVyXwEB2k82ytg4RnaLJuKTNrZnzg',
                _ONEDRIVE + 'ERRztLC6Tv1AiLd5JcdCbxQBF4U9ieUkLmzPWJdHhHc-pg'),
               _CFG + 'faster-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py',
               _CFG + 'faster-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py'),
    ReleaseRow('cascade', 'cascade', 'P1x', 'Cascade RCNN Direct(P1x)-1x', '41.5',
               ('cascade_rcnn_r50_fpn_direct_pretrain_1x_coco.py',
                'cascade_rcnn_r50_fpn_direct_finetune_p1x_1x_coco.py'),
               (_ONEDRIVE + 'EVSJBWfx8fJLnN7u4ZrdoXgBXTMsIJQJVUw9DNmL0_uH8Q',
                _ONEDRIVE + 'ESC2eKKdaRJEhZpycyLAQxkBwC6A37er-kF5nWUPmd_qsQ'),
               _CFG + 'cascade-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py',
               _CFG + 'cascade-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py'),
    ReleaseRow('mask-p1x', 'mask', 'P1x', 'Mask RCNN Direct(P1x)-1x', '40.0 / 35.8',
               ('mask_rcnn_r50_fpn_direct_pretrain_1x_coco.py', 'mask_rcnn_r50_fpn_direct_finetune_p1x_1x_coco.py'),
               (_ONEDRIVE + 'EfFw3sRNLHhKm6eeWmeILXYBdEyd6iF5JDM38kM9Pomc0A',
                _ONEDRIVE + 'EVceRaCRC-lFvjdTCg1EfoAB099qFBvwxTidb4NkrhSLEA'),
               _CFG + 'mask-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py',
               _CFG + 'mask-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py'),
    ReleaseRow('mask-p3x', 'mask', 'P3x', 'Mask RCNN Direct(P3x)-1x', '41.5 / 37.0',
               ('mask_rcnn_r50_fpn_direct_pretrain_1x_coco.py', 'mask_rcnn_r50_fpn_direct_finetune_p1x_1x_coco.py'),
               (_ONEDRIVE + 'EXhGvWfO5GNOgK8liP7dpQUB1Ly4QcDGdh6mNYxGoQkV-w',
                _ONEDRIVE + 'EUuTtKN407BAiY5ns5Pfv3IBkMazJj0oYyRLSHR6SyTQTw'),
               _CFG + 'mask-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p3x_coco.py',
               _CFG + 'mask-rcnn_r50_fpn_8xb2-direct-finetune-p3x-1x_coco.py'),
    ReleaseRow('mask-swin-p1x', 'mask-swin', 'P1x', 'Mask RCNN w/ Swin Direct(P1x)-1x', '45.0 / 40.5',
               ('mask_rcnn_swin_tiny_direct_pretrain_1x_coco.py', 'mask_rcnn_swin_tiny_direct_finetune_p1x_1x_coco.py'),
               (_ONEDRIVE + 'EY5yWXpfGCRNnB93MwSucUABy7lqFEK5b8qwCXq6NFaO4w',
                _ONEDRIVE + 'EdyFCPCDGxlFlJSM66rG93gBNGLdLePin2O3oAgPTtEMBw'),
               _CFG + 'mask-rcnn_swin-t-p4-w7_fpn_amp_8xb8-direct-pretrain-448-p1x_coco.py',
               _CFG + 'mask-rcnn_swin-t-p4-w7_fpn_amp_8xb2-direct-finetune-p1x-1x_coco.py'),
    ReleaseRow('mask-swin-p3x', 'mask-swin', 'P3x', 'Mask RCNN w/ Swin Direct(P3x)-1x', '46.9 / 41.9',
               ('mask_rcnn_swin_tiny_direct_pretrain_1x_coco.py', 'mask_rcnn_swin_tiny_direct_finetune_p1x_1x_coco.py'),
               (_ONEDRIVE + 'ETsM3wbvzFpItXK-tgqgBssBW3q6PDyzlMqIp5HrZ2i72A',
                _ONEDRIVE + 'EUINYgICG8hAoNZ4YgV6Hl4Bb28YjNo7CmvGw_FMzIbylw'),
               _CFG + 'mask-rcnn_swin-t-p4-w7_fpn_amp_8xb8-direct-pretrain-448-p3x_coco.py',
               _CFG + 'mask-rcnn_swin-t-p4-w7_fpn_amp_8xb2-direct-finetune-p3x-1x_coco.py'),
)


def row_for(arch: str, schedule: Optional[str] = None) -> ReleaseRow:
    """The published row of ``arch`` (and ``schedule`` when two rows share the layout;
    unknown schedules pick P1x)."""
    rows = [r for r in RELEASE_ROWS if r.arch == arch]
    if not rows:
        raise ReleaseArchError(f'unknown release arch {arch!r}; choose one of {list(ARCH_NAMES)}')
    for row in rows:
        if row.schedule == schedule:
            return row
    return rows[0]


@dataclass(frozen=True)
class KeyRule:
    """One source key -> one target key.

    ``kind``: ``copy``; ``merge_reduction`` / ``merge_norm`` (PatchMerging reduction
    weight columns / LayerNorm entries permuted to mmdet's unfold order); ``index``
    (relative position index: the target is regenerated, the source only compared).
    """
    source: str
    target: str
    kind: str = 'copy'


# --- R-50-FPN components (mmdet 2.x names == mmdet 3.3 names, from ..mmdet_names) --------

def _copies(names: Iterable[str]) -> List[KeyRule]:
    return [KeyRule(name, name) for name in names]


def _conv_modules(paths: Iterable[str]) -> List[str]:
    """Weight and bias of the conv inside each ``ConvModule`` (no norm in these heads)."""
    return [f'{path}.conv.{p}' for path in paths for p in WEIGHT_BIAS]


def _layers(paths: Iterable[str]) -> List[str]:
    return [f'{path}.{p}' for path in paths for p in WEIGHT_BIAS]


def _resnet(prefix: str, blocks: Sequence[int]) -> List[str]:
    convs = [resnet_stem(prefix)]
    for stage, count in enumerate(blocks, start=1):
        convs += resnet_layer(f'{prefix}layer{stage}', count)
    return [name for conv in convs for name in [f'{conv.conv}.weight'] + [f'{conv.norm}.{p}' for p in BN_PARAMS]]


def _fpn(laterals: int, outputs: int) -> List[str]:
    fpn = fpn_layers(laterals, outputs)
    return _conv_modules(fpn.laterals + fpn.outputs)


def _box_head(prefix: str, convs: int, fcs: int) -> List[str]:
    head = box_head_layers(prefix, convs, fcs)
    return _conv_modules(head.convs) + _layers(head.fcs + [head.cls, head.reg])


def _mask_head(convs: int) -> List[str]:
    head = mask_head_layers(convs)
    return _conv_modules(head.convs) + _layers([head.upsample, head.logits])


def _retina_head(convs: int) -> List[str]:
    head = retina_head_layers(convs)
    return _conv_modules(head.cls_convs + head.reg_convs) + _layers([head.cls, head.reg])


# --- Swin-T: original Swin-Transformer-Object-Detection -> mmdet 3.3 SwinTransformer -------

#: Shapes that stand for a tensor while mmdet's converter only renames (meta device, no data):
#: PatchMerging reduction (out, 4C) and norm (4C,) are reshaped by it, the rest only renamed.
_PLACEHOLDER_SHAPES = {'merge_reduction': (1, 4), 'merge_norm': (4, )}


def _original_swin_keys(depths: Sequence[int]) -> List[Tuple[str, str]]:
    """``(key, kind)`` of every tensor of the original Swin backbone (the release's
    ``modules/swin_transformer.py``), without ``backbone.``, in state-dict order."""
    keys = [(f'patch_embed.{layer}.{p}', 'copy') for layer in ('proj', 'norm') for p in WEIGHT_BIAS]
    for stage, depth in enumerate(depths):
        for block in range(depth):
            base = f'layers.{stage}.blocks.{block}.'
            keys += [(base + 'attn.relative_position_bias_table', 'copy'),
                     (base + 'attn.relative_position_index', 'index')]
            keys += [(f'{base}{part}.{p}', 'copy') for part in ('norm1', 'attn.qkv', 'attn.proj', 'norm2', 'mlp.fc1',
                                                                 'mlp.fc2') for p in WEIGHT_BIAS]
        if stage < len(depths) - 1:
            keys.append((f'layers.{stage}.downsample.reduction.weight', 'merge_reduction'))
            keys += [(f'layers.{stage}.downsample.norm.{p}', 'merge_norm') for p in WEIGHT_BIAS]
    return keys + [(f'norm{i}.{p}', 'copy') for i in range(len(depths)) for p in WEIGHT_BIAS]


@lru_cache(maxsize=None)
def _swin(depths: Tuple[int, ...]) -> Tuple[KeyRule, ...]:
    """Every original key and the name mmdet's own ``swin_converter`` gives it."""
    originals = _original_swin_keys(depths)
    placeholders = OrderedDict((key, torch.empty(_PLACEHOLDER_SHAPES.get(kind, (1, )), device='meta'))
                               for key, kind in originals)
    renamed = list(swin_converter(placeholders))
    if len(renamed) != len(originals):
        raise ReleaseConversionError(f'mmdet swin_converter returned {len(renamed)} keys for {len(originals)} '
                                     'original Swin keys; this mmdet version renames differently')
    return tuple(KeyRule(f'backbone.{key}', target, kind) for (key, kind), target in zip(originals, renamed))


def build_table(arch: ReleaseArch) -> List[KeyRule]:
    """Every key of ``arch``'s release checkpoint and its MMDetection 3.3 name."""
    if arch.swin:
        rules = list(_swin(tuple(arch.swin_depths)))
        rules += _copies(_fpn(4, 4))
    else:
        rules = _copies(_resnet('backbone.', arch.resnet_blocks))
        rules += _copies(_fpn(3, 5) if arch.name == 'retinanet' else _fpn(4, 4))
    if arch.name == 'retinanet':
        return rules + _copies(_retina_head(arch.retina_convs))
    rules += _copies(_layers(rpn_layers()))
    if arch.name == 'cascade':
        for stage in range(arch.cascade_stages):
            rules += _copies(_box_head(f'roi_head.bbox_head.{stage}.', arch.box_convs, arch.box_fcs))
        return rules
    rules += _copies(_box_head('roi_head.bbox_head.', arch.box_convs, arch.box_fcs))
    if arch.name in ('mask', 'mask-swin'):
        rules += _copies(_mask_head(arch.mask_convs))
    return rules


# --- row inference ------------------------------------------------------------------------

_MMDET3_SWIN = re.compile(r'^backbone\.stages\.\d+\.|\.attn\.w_msa\.|\.ffn\.layers\.')


def infer_arch(keys: Iterable[str], source: str = '<memory>') -> ReleaseArch:
    """The published layout whose table has exactly these keys.

    Raises:
        ReleaseFormatError: the keys are already in MMDetection 3.x Swin layout.
        ReleaseArchError: no layout matches; the message names the closest one and the
            keys that differ from it.
    """
    keys = set(keys)
    converted = sorted(k for k in keys if _MMDET3_SWIN.search(k))
    if converted:
        raise ReleaseFormatError(
            f'{source}: the keys are already in MMDetection 3.x layout ({converted[0]}, ...): this is not an '
            'original release file. Load it directly (load_from=<path>) instead of converting it.')
    scored = []
    for name in ARCH_NAMES:
        expected = {rule.source for rule in build_table(RELEASE_ARCHS[name])}
        missing, extra = sorted(expected - keys), sorted(keys - expected)
        if not missing and not extra:
            return RELEASE_ARCHS[name]
        scored.append((len(missing) + len(extra), name, missing, extra))
    _, name, missing, extra = min(scored)
    raise ReleaseArchError(
        f'{source}: the {len(keys)} keys match none of the release rows {list(ARCH_NAMES)}; the closest is '
        f'{name!r} ({row_for(name).title}), which expects {len(missing)} keys the file lacks '
        f'{missing[:5]}{" ..." if len(missing) > 5 else ""} and not the {len(extra)} keys it has '
        f'{extra[:5]}{" ..." if len(extra) > 5 else ""}. The importer supports the published layouts only; '
        'pass --allow-unused/--allow-missing with --arch to convert what matches.')


# --- Swin tensors ------------------------------------------------------------------------

def convert_swin_tensor(source: str, value: torch.Tensor) -> Tuple[str, torch.Tensor]:
    """``(name, tensor)`` of one original Swin backbone tensor as mmdet's ``swin_converter``
    converts it: PatchMerging ``downsample.reduction`` weight columns and ``downsample.norm``
    entries permuted from the original concatenation order to ``nn.Unfold``'s; others renamed.

    Args:
        source (str): The release key (``backbone.layers.N...``).
        value (Tensor): Its tensor.
    """
    (name, converted), = swin_converter({source[len('backbone.'):]: value}).items()
    return name, converted.contiguous()


def swin_window_size(bias_table_shape: Sequence[int], key: str = 'relative_position_bias_table') -> int:
    """Window size ``w`` from a relative position bias table of ``(2w - 1)**2`` rows."""
    rows = int(bias_table_shape[0])
    side = math.isqrt(rows)
    if side * side != rows or side % 2 == 0:
        raise ReleaseShapeError(f'{key}: {tuple(bias_table_shape)} has {rows} rows, not (2w - 1)^2 for a window w')
    return (side + 1) // 2


@lru_cache(maxsize=None)
def _relative_position_index(window_size: int) -> torch.Tensor:
    return WindowMSA(embed_dims=1, num_heads=1, window_size=(window_size, window_size)).relative_position_index


def swin_relative_position_index(window_size: int) -> torch.Tensor:
    """The relative position index of a ``w x w`` window, ``(w*w, w*w)`` int64: the buffer
    mmdet's ``WindowMSA`` builds (equal to the original Swin's; the tests check both)."""
    return _relative_position_index(int(window_size)).clone()


# --- meta --------------------------------------------------------------------------------

@dataclass
class ReleaseMeta:
    """What a release checkpoint's ``meta`` says about where it comes from."""
    stage: str = 'unknown'
    schedule: str = 'unknown'
    evidence: List[str] = field(default_factory=list)


_LOAD_FROM = re.compile(r"^load_from\s*=\s*(.+)$", re.MULTILINE)


def describe_release_meta(meta: Mapping[str, Any]) -> ReleaseMeta:
    """Stage (``pre-trained`` / ``fine-tuned``) and schedule (``P1x`` / ``P3x``) from ``meta``.

    Evidence, in order (assumptions documented in docs/release_checkpoints.md): the config
    file name the release's train.py stores as ``meta['exp_name']`` (``*_direct_pretrain_*``
    / ``*_direct_finetune_p1x_*``); else the config text in ``meta['config']`` (its
    ``load_from`` is ``None`` in a pretrain config, a path in a fine-tune config); the
    pretrain epoch ``meta['epoch']`` (12 -> P1x, 36 -> P3x) and ``p3x``/``epoch_36`` in a
    fine-tune's names.
    """
    out = ReleaseMeta()
    exp_name = str(meta.get('exp_name') or '')
    config = meta.get('config') if isinstance(meta.get('config'), str) else ''
    load_from = _LOAD_FROM.search(config or '')
    load_from_value = load_from.group(1).strip() if load_from else ''
    if 'pretrain' in exp_name or 'finetune' in exp_name:
        out.stage = 'pre-trained' if 'pretrain' in exp_name else 'fine-tuned'
        out.evidence.append(f'exp_name {exp_name!r}')
    elif load_from:
        out.stage = 'pre-trained' if load_from_value == 'None' else 'fine-tuned'
        out.evidence.append(f'config load_from = {load_from_value}')
    epoch = meta.get('epoch')
    names = f'{exp_name} {load_from_value}'.lower()
    if out.stage == 'pre-trained' and isinstance(epoch, int) and epoch in (12, 36):
        out.schedule = 'P1x' if epoch == 12 else 'P3x'
        out.evidence.append(f'epoch {epoch}')
    elif 'p3x' in names or 'epoch_36' in names:
        out.schedule = 'P3x'
        out.evidence.append('p3x / epoch_36 in the config names')
    elif 'p1x' in names or 'epoch_12' in names:
        out.schedule = 'P1x'
        out.evidence.append('p1x / epoch_12 in the config names')
    return out
