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
  each name is checked and a missing component is named.
* **Swin-T** is the original Swin-Transformer-Object-Detection backbone that the release
  vendors (``modules/swin_transformer.py``): ``layers.N.blocks.M.{norm1, attn.qkv,
  attn.proj, attn.relative_position_bias_table, attn.relative_position_index, norm2,
  mlp.fc1, mlp.fc2}``, ``layers.N.downsample.{reduction, norm}``, ``patch_embed.proj``,
  ``patch_embed.norm`` and output norms ``norm0..3``. MMDetection 3.3's ``SwinTransformer``
  names them ``stages.N.blocks.M.{..., attn.w_msa.*, ffn.layers.0.0, ffn.layers.1}`` and
  ``patch_embed.projection``.
* **PatchMerging channel order**: the original concatenates the 2 x 2 neighbours as
  ``[x(0,0), x(1,0), x(0,1), x(1,1)]`` (row offset first) blocks of C channels; mmdet's
  ``nn.Unfold(kernel_size=2)`` emits channel ``c * 4 + (2 * row + col)``. The reduction
  weight's input columns and the preceding LayerNorm's 4C weight and bias are permuted
  accordingly (:func:`patch_merging_permutation`).
* **relative_position_index** buffers are regenerated from the window size (the
  original's construction, :func:`swin_relative_position_index`), never copied.

Stage (pre-trained / fine-tuned) and schedule (P1x / P3x) are not in the keys; they are
read from the checkpoint's ``meta`` when it says (:func:`describe_release_meta`).
"""
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch

from .errors import ReleaseArchError, ReleaseFormatError, ReleaseShapeError

__all__ = [
    'ARCH_NAMES', 'ReleaseArch', 'KeyRule', 'ReleaseRow', 'RELEASE_ROWS', 'RELEASE_ARCHS', 'build_table',
    'infer_arch', 'describe_release_meta', 'patch_merging_permutation', 'swin_relative_position_index',
    'swin_window_size', 'row_for'
]

logger = logging.getLogger(__name__)

#: ``--arch`` values: the five distinct model layouts of the 7 published rows.
ARCH_NAMES: Tuple[str, ...] = ('retinanet', 'faster', 'cascade', 'mask', 'mask-swin')

_BN = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
_WB = ('weight', 'bias')


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


# --- R-50-FPN components (mmdet 2.x names == mmdet 3.3 names) -----------------------------

def _copies(names: Iterable[str]) -> List[KeyRule]:
    return [KeyRule(name, name) for name in names]


def _resnet(prefix: str, blocks: Sequence[int]) -> List[str]:
    names = [f'{prefix}conv1.weight'] + [f'{prefix}bn1.{p}' for p in _BN]
    for stage, count in enumerate(blocks, start=1):
        for block in range(count):
            base = f'{prefix}layer{stage}.{block}.'
            for i in (1, 2, 3):
                names.append(f'{base}conv{i}.weight')
                names += [f'{base}bn{i}.{p}' for p in _BN]
            if block == 0:
                names.append(f'{base}downsample.0.weight')
                names += [f'{base}downsample.1.{p}' for p in _BN]
    return names


def _fpn(prefix: str, laterals: int, outputs: int) -> List[str]:
    names = [f'{prefix}lateral_convs.{i}.conv.{p}' for i in range(laterals) for p in _WB]
    return names + [f'{prefix}fpn_convs.{i}.conv.{p}' for i in range(outputs) for p in _WB]


def _rpn(prefix: str) -> List[str]:
    return [f'{prefix}{layer}.{p}' for layer in ('rpn_conv', 'rpn_cls', 'rpn_reg') for p in _WB]


def _box_head(prefix: str, convs: int, fcs: int) -> List[str]:
    names = [f'{prefix}shared_convs.{i}.conv.{p}' for i in range(convs) for p in _WB]
    names += [f'{prefix}shared_fcs.{i}.{p}' for i in range(fcs) for p in _WB]
    return names + [f'{prefix}{layer}.{p}' for layer in ('fc_cls', 'fc_reg') for p in _WB]


def _mask_head(prefix: str, convs: int) -> List[str]:
    names = [f'{prefix}convs.{i}.conv.{p}' for i in range(convs) for p in _WB]
    return names + [f'{prefix}{layer}.{p}' for layer in ('upsample', 'conv_logits') for p in _WB]


def _retina_head(prefix: str, convs: int) -> List[str]:
    names = [f'{prefix}{tower}.{i}.conv.{p}' for tower in ('cls_convs', 'reg_convs') for i in range(convs) for p in _WB]
    return names + [f'{prefix}{layer}.{p}' for layer in ('retina_cls', 'retina_reg') for p in _WB]


# --- Swin-T: original Swin-Transformer-Object-Detection -> mmdet 3.3 SwinTransformer -------

def _swin(depths: Sequence[int]) -> List[KeyRule]:
    rules = [KeyRule(f'backbone.patch_embed.proj.{p}', f'backbone.patch_embed.projection.{p}') for p in _WB]
    rules += _copies(f'backbone.patch_embed.norm.{p}' for p in _WB)
    block_parts = (('norm1', 'norm1'), ('attn.qkv', 'attn.w_msa.qkv'), ('attn.proj', 'attn.w_msa.proj'),
                   ('norm2', 'norm2'), ('mlp.fc1', 'ffn.layers.0.0'), ('mlp.fc2', 'ffn.layers.1'))
    for stage, depth in enumerate(depths):
        src_stage, dst_stage = f'backbone.layers.{stage}.', f'backbone.stages.{stage}.'
        for block in range(depth):
            src, dst = f'{src_stage}blocks.{block}.', f'{dst_stage}blocks.{block}.'
            rules.append(KeyRule(src + 'attn.relative_position_bias_table',
                                 dst + 'attn.w_msa.relative_position_bias_table'))
            rules.append(KeyRule(src + 'attn.relative_position_index', dst + 'attn.w_msa.relative_position_index',
                                 'index'))
            rules += [KeyRule(f'{src}{a}.{p}', f'{dst}{b}.{p}') for a, b in block_parts for p in _WB]
        if stage < len(depths) - 1:
            rules.append(KeyRule(src_stage + 'downsample.reduction.weight', dst_stage + 'downsample.reduction.weight',
                                 'merge_reduction'))
            rules += [KeyRule(f'{src_stage}downsample.norm.{p}', f'{dst_stage}downsample.norm.{p}', 'merge_norm')
                      for p in _WB]
    rules += _copies(f'backbone.norm{i}.{p}' for i in range(len(depths)) for p in _WB)
    return rules


def build_table(arch: ReleaseArch) -> List[KeyRule]:
    """Every key of ``arch``'s release checkpoint and its MMDetection 3.3 name."""
    if arch.swin:
        rules = _swin(arch.swin_depths)
        rules += _copies(_fpn('neck.', 4, 4))
    else:
        rules = _copies(_resnet('backbone.', arch.resnet_blocks))
        rules += _copies(_fpn('neck.', 3, 5) if arch.name == 'retinanet' else _fpn('neck.', 4, 4))
    if arch.name == 'retinanet':
        return rules + _copies(_retina_head('bbox_head.', arch.retina_convs))
    rules += _copies(_rpn('rpn_head.'))
    if arch.name == 'cascade':
        for stage in range(arch.cascade_stages):
            rules += _copies(_box_head(f'roi_head.bbox_head.{stage}.', arch.box_convs, arch.box_fcs))
        return rules
    rules += _copies(_box_head('roi_head.bbox_head.', arch.box_convs, arch.box_fcs))
    if arch.name in ('mask', 'mask-swin'):
        rules += _copies(_mask_head('roi_head.mask_head.', arch.mask_convs))
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

#: Offsets (row, col) of the original PatchMerging blocks, in concatenation order.
_ORIGINAL_MERGE_ORDER: Tuple[Tuple[int, int], ...] = ((0, 0), (1, 0), (0, 1), (1, 1))


def patch_merging_permutation(channels: int) -> List[int]:
    """``perm[m]`` = original merged channel that feeds mmdet's merged channel ``m``.

    Original: channel ``k * C + c`` is channel ``c`` of the neighbour at
    ``_ORIGINAL_MERGE_ORDER[k]``. mmdet (``nn.Unfold``, kernel 2, row-major kernel
    positions): channel ``c * 4 + 2 * row + col``.
    """
    perm = []
    for c in range(channels):
        for row in (0, 1):
            for col in (0, 1):
                perm.append(_ORIGINAL_MERGE_ORDER.index((row, col)) * channels + c)
    return perm


def swin_window_size(bias_table_shape: Sequence[int], key: str = 'relative_position_bias_table') -> int:
    """Window size ``w`` from a relative position bias table of ``(2w - 1)**2`` rows."""
    rows = int(bias_table_shape[0])
    side = math.isqrt(rows)
    if side * side != rows or side % 2 == 0:
        raise ReleaseShapeError(f'{key}: {tuple(bias_table_shape)} has {rows} rows, not (2w - 1)^2 for a window w')
    return (side + 1) // 2


def swin_relative_position_index(window_size: int) -> torch.Tensor:
    """The original Swin's relative position index of a ``w x w`` window, ``(w*w, w*w)`` int64.

    For tokens ``i``, ``j`` at ``(y, x)`` positions: ``(dy + w - 1) * (2w - 1) + (dx + w - 1)``
    with ``(dy, dx) = pos_i - pos_j`` - the row of the bias table that the pair uses.
    """
    w = int(window_size)
    ys, xs = torch.meshgrid(torch.arange(w), torch.arange(w), indexing='ij')
    coords = torch.stack([ys.flatten(), xs.flatten()])  # 2, w*w
    rel = (coords[:, :, None] - coords[:, None, :]) + (w - 1)  # 2, w*w, w*w
    return (rel[0] * (2 * w - 1) + rel[1]).to(torch.int64)


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
