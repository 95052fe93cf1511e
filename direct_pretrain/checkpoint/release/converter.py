"""Import a checkpoint of the original direct-pretraining release (mmdet 2.x, 2021).

Why: the release published 14 checkpoints (7 rows, pre-trained and fine-tuned) written
by mmcv 1.x's ``save_checkpoint``: ``dict(meta=..., state_dict=..., optimizer=...)``
(+ ``amp`` for the apex-trained Swin rows), under torch 1.x. Starting a fine-tune from a
pre-trained one, or evaluating a fine-tuned one, needs exactly the state dict that this
package's fine-tune / test configs build - and mmengine's non-strict ``load_from`` would
only warn about a wrong name and keep random weights.

The path is the Detectron one's: read (:func:`read_release_checkpoint`: weights-only,
meta kept or dropped with a log line) -> infer the row from the keys
(:func:`~.mapping.infer_arch`) -> plan (every key through the row's explicit table,
shapes checked, one-to-one) -> apply, with a :class:`ReleaseConversionReport` that lists
converted, regenerated, unused source, missing / unexpected target keys, shape
mismatches, the source of every target key and every meaning-changing edit (Swin
PatchMerging channel permutations, relative position indices regenerated).

Meta: everything the release's code writes (config text, ``CLASSES``, ``mmdet_version``,
``mmcv_version``, ``epoch``, ``iter``, ``exp_name``, ``seed``, ``env_info``, ``time``,
``hook_msgs``) is plain Python and loads under ``weights_only``; it is kept under
``meta['release_meta']`` and ``CLASSES`` becomes mmdet 3.x's ``meta['dataset_meta']['classes']``.
The optimizer state and apex's ``amp`` loss-scaler state are dropped (a fine-tune or a test
builds its own), with one log line saying what. A file that references any type outside
the allow-list is refused (:class:`~direct_pretrain.errors.UnsafeCheckpointError`, naming the type),
nothing executed.
"""
import logging
import os.path as osp
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from ...runtime.safe_load import safe_torch_load
from ..conversion_report import ConversionReport, ConvertedEntry, Shape
from .errors import ReleaseArchError, ReleaseConversionError, ReleaseFormatError, ReleaseKeysError, ReleaseShapeError
from .mapping import (ARCH_NAMES, RELEASE_ARCHS, RELEASE_ROWS, KeyRule, ReleaseArch, build_table, convert_swin_tensor,
                      describe_release_meta, infer_arch, row_for, swin_relative_position_index, swin_window_size)

__all__ = ['ReleaseCheckpoint', 'ReleaseConversionReport', 'read_release_checkpoint', 'convert_release',
           'release_checkpoint_dict']

logger = logging.getLogger(__name__)


@dataclass
class ReleaseCheckpoint:
    """A release checkpoint as read: tensors, the meta kept, and what was dropped.

    Attributes:
        source (str): The file.
        state_dict (OrderedDict[str, Tensor]): Its ``state_dict`` (``module.`` stripped).
        meta (dict): Its ``meta``.
        dropped (list[str]): What was not kept, one entry per item, with why.
    """
    source: str
    state_dict: 'OrderedDict[str, torch.Tensor]'
    meta: Dict[str, Any] = field(default_factory=dict)
    dropped: List[str] = field(default_factory=list)


@dataclass
class ReleaseConversionReport(ConversionReport):
    """:class:`~..conversion_report.ConversionReport` plus what the release file said.

    Attributes:
        row (str): The published row (``mask-p3x`` ...), when ``meta`` tells P1x / P3x apart.
        stage (str): ``pre-trained``, ``fine-tuned`` or ``unknown`` (from ``meta``).
        schedule (str): ``P1x``, ``P3x`` or ``unknown`` (from ``meta``).
        meta_evidence (list[str]): Which meta entries stage / schedule come from.
        dropped (list[str]): Checkpoint items not carried over (optimizer, amp, ...).
        regenerated (list[str]): Targets rebuilt instead of copied.
    """
    row: str = ''
    stage: str = 'unknown'
    schedule: str = 'unknown'
    meta_evidence: List[str] = field(default_factory=list)
    dropped: List[str] = field(default_factory=list)
    regenerated: List[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.source_file} -> {self.arch['name']} (row {self.row or '?'}, {self.stage}, {self.schedule}): "
                f'{len(self.converted)} tensors converted, {len(self.synthesized)} regenerated, '
                f'{len(self.edits)} edits, {len(self.unused_source)} unused, {len(self.missing_target)} missing, '
                f'{len(self.unexpected_target)} unexpected, {len(self.shape_mismatches)} shape mismatches')


# --- reading -----------------------------------------------------------------------------

def _describe_optimizer(state: Any) -> str:
    if isinstance(state, dict) and 'param_groups' in state:
        groups = state.get('param_groups') or []
        lrs = sorted({g.get('lr') for g in groups if isinstance(g, dict)}, key=str)
        return (f"optimizer state ({len(state.get('state') or {})} parameter states, {len(groups)} param groups, "
                f'lr {lrs})')
    return 'optimizer state'


def read_release_checkpoint(source: str, map_location: Any = 'cpu') -> ReleaseCheckpoint:
    """Read a release ``.pth`` weights-only; keep tensors and meta, drop the rest (logged).

    Raises:
        FileNotFoundError: ``source`` does not exist.
        UnsafeCheckpointError: it references a type outside the allow-list.
        ReleaseFormatError: it is not a checkpoint with a tensor ``state_dict``.
    """
    path = osp.expanduser(source)
    if not osp.isfile(path):
        raise FileNotFoundError(f'release checkpoint {path!r} does not exist; download it from the link in '
                                'configs/direct_pretraining/README.md (released checkpoints)')
    obj = safe_torch_load(path, map_location=map_location)
    if not isinstance(obj, dict):
        raise ReleaseFormatError(f'{path}: holds a {type(obj).__name__}, not a checkpoint dict with a state_dict')
    dropped: List[str] = []
    if 'state_dict' in obj:
        state = obj['state_dict']
        for key in obj:
            if key == 'optimizer':
                dropped.append(_describe_optimizer(obj[key]))
            elif key == 'amp':
                dropped.append('apex amp state (loss scaler; native AMP keeps its own)')
            elif key not in ('state_dict', 'meta'):
                dropped.append(f'top-level entry {key!r}')
        meta = obj.get('meta') or {}
    else:  # a bare state dict
        state, meta = obj, {}
    if not isinstance(state, dict) or not state:
        raise ReleaseFormatError(f'{path}: its state_dict is empty or not a mapping')
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ReleaseFormatError(f'{path}: state_dict entries that are not tensors: {bad[:5]}; not a model checkpoint')
    if all(k.startswith('module.') for k in state):
        state = OrderedDict((k[len('module.'):], v) for k, v in state.items())
        logger.info('%s: stripped the "module." prefix of a wrapped model', path)
    meta = dict(meta) if isinstance(meta, dict) else {}
    if dropped:
        logger.info('%s: dropped %s', path, '; '.join(dropped))
    return ReleaseCheckpoint(source=path, state_dict=OrderedDict(state), meta=meta, dropped=dropped)


# --- planning and applying ---------------------------------------------------------------

def _resolve_arch(arch: Union[None, str, ReleaseArch], ckpt: ReleaseCheckpoint) -> ReleaseArch:
    if isinstance(arch, ReleaseArch):
        return arch
    if arch is None or arch == 'auto':
        return infer_arch(ckpt.state_dict, ckpt.source)
    if arch not in RELEASE_ARCHS:
        raise ReleaseArchError(f'unknown --arch {arch!r}; choose auto or one of {list(ARCH_NAMES)}')
    return RELEASE_ARCHS[arch]


def _planned_shape(rule: KeyRule, shape: Shape, state: Mapping[str, torch.Tensor]) -> Shape:
    """Output shape of a rule; validates the layout the transform assumes."""
    if rule.kind == 'merge_reduction' and (len(shape) != 2 or shape[1] % 4):
        raise ReleaseShapeError(f'{rule.source}: {shape} is not (out, 4 x C), the PatchMerging reduction layout')
    if rule.kind == 'merge_norm' and (len(shape) != 1 or shape[0] % 4):
        raise ReleaseShapeError(f'{rule.source}: {shape} is not (4 x C,), the PatchMerging norm layout')
    if rule.kind == 'index':
        table_key = rule.source.replace('relative_position_index', 'relative_position_bias_table')
        window = swin_window_size(tuple(state[table_key].shape), table_key) if table_key in state else 0
        return (window * window, window * window)
    return shape


def _apply(rule: KeyRule, value: torch.Tensor, state: Mapping[str, torch.Tensor]) -> torch.Tensor:
    if rule.kind in ('merge_reduction', 'merge_norm'):
        return convert_swin_tensor(rule.source, value)[1]  # mmdet's PatchMerging correction
    if rule.kind == 'index':
        table_key = rule.source.replace('relative_position_index', 'relative_position_bias_table')
        return swin_relative_position_index(swin_window_size(tuple(state[table_key].shape), table_key))
    return value


def _edit(rule: KeyRule, shape: Shape) -> Optional[str]:
    if rule.kind == 'merge_reduction':
        return (f'{rule.source} {shape} -> {rule.target}: input columns permuted from the original PatchMerging '
                'order [x(0,0), x(1,0), x(0,1), x(1,1)] x C to mmdet nn.Unfold order C x [(0,0), (0,1), (1,0), (1,1)] '
                '(mmdet swin_converter)')
    if rule.kind == 'merge_norm':
        return f'{rule.source} {shape} -> {rule.target}: entries permuted to mmdet nn.Unfold order (mmdet swin_converter)'
    return None


def convert_release(source: Union[str, ReleaseCheckpoint],
                    arch: Union[None, str, ReleaseArch] = 'auto',
                    *,
                    target: Optional[Union[nn.Module, Mapping[str, Any]]] = None,
                    allow_unused: bool = False,
                    allow_missing: bool = False) -> Tuple['OrderedDict[str, torch.Tensor]', ReleaseConversionReport]:
    """Convert a release checkpoint into the state dict of this package's configs.

    Args:
        source (str | ReleaseCheckpoint): The ``.pth`` file, or one already read.
        arch (str | ReleaseArch | None): ``'auto'``/None (inferred from the keys) or one of
            ``retinanet``, ``faster``, ``cascade``, ``mask``, ``mask-swin``. Defaults to 'auto'.
        target (nn.Module | Mapping, optional): Model (or state dict / key -> shape map)
            whose keys and shapes the result must match. Defaults to None (table only).
        allow_unused (bool): Drop source keys the table does not consume. Defaults to False.
        allow_missing (bool): Accept target keys nothing fills. Defaults to False.

    Returns:
        tuple: ``(state_dict, report)``.

    Raises:
        ReleaseArchError, ReleaseFormatError, ReleaseKeysError, ReleaseShapeError,
        UnsafeCheckpointError, FileNotFoundError.
    """
    ckpt = source if isinstance(source, ReleaseCheckpoint) else read_release_checkpoint(source)
    arch = _resolve_arch(arch, ckpt)
    state = ckpt.state_dict
    described = describe_release_meta(ckpt.meta)
    row = row_for(arch.name, described.schedule)
    # Rows sharing a layout (Mask R-CNN P1x / P3x) are told apart by meta only.
    known_row = described.schedule != 'unknown' or sum(r.arch == arch.name for r in RELEASE_ROWS) == 1
    report = ReleaseConversionReport(
        arch=arch.describe(), source_file=ckpt.source, layout='mmdet 2.x', row=row.name if known_row else '',
        stage=described.stage, schedule=described.schedule, meta_evidence=described.evidence,
        dropped=list(ckpt.dropped))

    rules = build_table(arch)
    targets = [r.target for r in rules]
    sources = [r.source for r in rules]
    if len(set(targets)) != len(targets) or len(set(sources)) != len(sources):
        raise ReleaseConversionError(f'the {arch.name} table is not one-to-one (a bug in release/mapping.py)')
    planned: List[Tuple[KeyRule, ConvertedEntry]] = []
    for rule in rules:
        if rule.source not in state:
            report.missing_target.append(f'{rule.target} (needs {rule.source})')
            continue
        before = tuple(state[rule.source].shape)
        after = _planned_shape(rule, before, state)
        entry = ConvertedEntry(rule.target, rule.source, 'regenerated' if rule.kind == 'index' else rule.kind,
                               before, after)
        (report.synthesized if rule.kind == 'index' else report.converted).append(entry)
        planned.append((rule, entry))
        edit = _edit(rule, before)
        if edit:
            report.edits.append(edit)
    report.unused_source = sorted(set(state) - set(sources))

    if target is not None:
        report.compare_with_target(target)

    if report.shape_mismatches:
        raise ReleaseShapeError(f'{ckpt.source}: converted shapes differ from the target model '
                                f'({len(report.shape_mismatches)}): {report.shape_mismatches[:5]}. Is the target '
                                f'config the {row.name} row\'s ({row.finetune_config}) with the same number of '
                                'classes?')
    if report.unused_source and not allow_unused:
        raise ReleaseKeysError(f'{ckpt.source}: {len(report.unused_source)} keys are not in the {arch.name} table: '
                               f'{report.unused_source[:10]}. Check --arch, or pass allow_unused=True '
                               '(--allow-unused) to drop them.')
    missing = report.missing_target + report.unexpected_target
    if missing and not allow_missing:
        raise ReleaseKeysError(f'{ckpt.source}: {len(missing)} target keys are not filled / not expected for '
                               f'{arch.name}: {missing[:10]}. Check --arch and the target config, or pass '
                               'allow_missing=True (--allow-missing).')

    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for rule, entry in planned:
        if entry.target in report.unexpected_target:
            continue
        value = _apply(rule, state[rule.source], state)
        if rule.kind == 'index':
            original = state[rule.source]
            same = tuple(original.shape) == tuple(value.shape) and torch.equal(original.to(torch.int64), value)
            report.regenerated.append(f'{rule.target} <- window {int(round(value.shape[0] ** 0.5))} '
                                      f'({"equal to" if same else "DIFFERS from"} the file\'s buffer)')
            if not same:
                logger.warning('%s: %s differs from the relative position index its window size implies; the '
                               'regenerated index is used', ckpt.source, rule.source)
        out[entry.target] = value

    report.log(logger, 'release', edit_level=logging.DEBUG)  # Swin-T: 9 PatchMerging edits
    return out, report


def release_checkpoint_dict(state_dict: Mapping[str, torch.Tensor], report: ReleaseConversionReport,
                            meta: Mapping[str, Any], with_sources: bool = False) -> Dict[str, Any]:
    """The mmengine checkpoint dict of a converted release file.

    ``meta['dataset_meta']['classes']`` comes from the release's ``CLASSES`` (what mmdet
    3.x's inference reads), ``meta['release_meta']`` keeps the original meta and
    ``meta['release_conversion']`` the report summary (with ``source_of`` if asked).
    """
    conversion: Dict[str, Any] = dict(row=report.row, stage=report.stage, schedule=report.schedule,
                                      arch=report.arch, summary=report.summary(), edits=len(report.edits),
                                      dropped=report.dropped)
    if with_sources:
        conversion['source_of'] = report.source_of
    out_meta: Dict[str, Any] = dict(release_meta=dict(meta), release_conversion=conversion)
    classes = meta.get('CLASSES')
    if isinstance(classes, (list, tuple)) and all(isinstance(c, str) for c in classes):
        out_meta['dataset_meta'] = dict(classes=tuple(classes))
    return dict(state_dict=OrderedDict(state_dict), meta=out_meta)
