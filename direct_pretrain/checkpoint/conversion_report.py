"""What a checkpoint conversion did, key by key: the report both converters return.

Why shared: the Detectron converter and the original release's converter follow the same
plan - read, rename by an explicit table, align with the target model - and a user reads
their reports the same way: every target key with its source, the meaning-changing edits,
and what is left over or missing (detectron2's ``c2_model_loading`` keeps the same map).
"""
import json
import logging
import os.path as osp
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Mapping, Tuple, Union

from mmengine.config import Config
from torch import nn

from ..errors import ConfigInputError
from ..runtime.atomic_save import atomic_write_bytes
from .model_fit import build_model_skeleton, compare_shapes

__all__ = ['Shape', 'ConvertedEntry', 'ConversionReport', 'target_shapes', 'build_target_model']

Shape = Tuple[int, ...]


@dataclass
class ConvertedEntry:
    """One target key and where it came from."""
    target: str
    source: str
    kind: str
    source_shape: Shape
    shape: Shape


@dataclass
class ConversionReport:
    """What a conversion did; ``ok`` means nothing was left unconsumed or unfilled.

    Attributes:
        arch (dict): The architecture used (:meth:`C2Arch.describe`).
        source_file (str): The converted file.
        layout (str): ``'nested'`` or ``'flat'``.
        converted (list[ConvertedEntry]): Renamed tensors, in table order.
        synthesized (list[ConvertedEntry]): Targets without a source blob (BN statistics).
        edits (list[str]): Meaning-changing edits (background rows, anchor order, BN identity).
        momentum_dropped (list[str]): ``*_momentum`` blobs removed while reading.
        ignored_leftovers (list[str]): Known unused blobs (ImageNet classifier, ``conv1_b``).
        fixed_blobs (list[str]): Constant blobs the target computes itself, checked to hold
            the expected values (Keypoint R-CNN's bilinear ``kps_score_w/b``).
        unsupported (dict[str, str]): Blob -> why this converter does not support it.
        unused_source (list[str]): Other blobs no rule consumed.
        missing_target (list[str]): Targets no blob filled (table or model side).
        unexpected_target (list[str]): Produced keys the target model lacks.
        shape_mismatches (list[str]): Produced shape vs target model shape.
    """
    arch: Dict[str, Any]
    source_file: str = '<memory>'
    layout: str = 'flat'
    converted: List[ConvertedEntry] = field(default_factory=list)
    synthesized: List[ConvertedEntry] = field(default_factory=list)
    edits: List[str] = field(default_factory=list)
    momentum_dropped: List[str] = field(default_factory=list)
    ignored_leftovers: List[str] = field(default_factory=list)
    fixed_blobs: List[str] = field(default_factory=list)
    unsupported: Dict[str, str] = field(default_factory=dict)
    unused_source: List[str] = field(default_factory=list)
    missing_target: List[str] = field(default_factory=list)
    unexpected_target: List[str] = field(default_factory=list)
    shape_mismatches: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.unsupported or self.unused_source or self.missing_target or self.unexpected_target
                    or self.shape_mismatches)

    @property
    def source_of(self) -> Dict[str, str]:
        """Target key -> source blob (``'<synth:kind from blob>'`` for synthesised keys)."""
        sources = {e.target: e.source for e in self.converted}
        sources.update({e.target: f'<{e.kind} from {e.source}>' for e in self.synthesized})
        return sources

    def summary(self) -> str:
        return (f"{self.source_file} ({self.layout}) -> {self.arch['name']}: {len(self.converted)} tensors "
                f'converted, {len(self.synthesized)} BN statistics synthesised, '
                f'{len(self.momentum_dropped)} momentum blobs dropped, {len(self.ignored_leftovers)} leftovers '
                f'ignored {self.ignored_leftovers}, {len(self.unsupported)} unsupported, '
                f'{len(self.unused_source)} unused, {len(self.missing_target)} missing, '
                f'{len(self.shape_mismatches)} shape mismatches'
                + (f', fixed blobs checked {self.fixed_blobs}' if self.fixed_blobs else ''))

    def table(self) -> str:
        """One line per target: ``target <- source [kind] shape``."""
        width = max((len(e.target) for e in self.converted + self.synthesized), default=0)
        return '\n'.join(f'{e.target:<{width}} <- {e.source} [{e.kind}] {e.source_shape}->{e.shape}'
                         for e in self.converted + self.synthesized)

    def log(self, logger: logging.Logger, name: str, edit_level: int = logging.INFO) -> None:
        """What the house style asks of a converter's log: each edit (at ``edit_level``), the
        summary at INFO, the full key table (titled ``name``) at DEBUG."""
        for edit in self.edits:
            logger.log(edit_level, '%s', edit)
        logger.info('%s', self.summary())
        logger.debug('%s key table:\n%s', name, self.table())

    def compare_with_target(self, target: Union[nn.Module, Mapping[str, Any]]) -> None:
        """Check the converted and synthesised keys against ``target``'s (the package's one
        comparison, :func:`~.model_fit.compare_shapes`): fill ``missing_target`` (keys the model
        has and no table rule fills), ``unexpected_target`` and ``shape_mismatches``."""
        produced = {e.target: e.shape for e in self.converted + self.synthesized}
        fit = compare_shapes(target_shapes(target), produced)
        reported = {line.split(' ')[0] for line in self.missing_target}
        self.missing_target += [f'{key} (in the target model, not in the {self.arch["name"]} table)'
                                for key in fit.missing if key not in reported]
        self.shape_mismatches += [f'{m.key}: converted {m.checkpoint} from {self.source_of[m.key]} vs target {m.model}'
                                  for m in fit.shape_mismatch]
        self.unexpected_target = fit.unexpected

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data['ok'] = self.ok
        return data

    def to_json(self, path: str) -> None:
        """Write :meth:`to_dict` to ``path`` atomically (never a partial file under that name)."""
        atomic_write_bytes(json.dumps(self.to_dict(), indent=1).encode('utf-8'), path)


def target_shapes(target: Union[nn.Module, Mapping[str, Any]]) -> Dict[str, Shape]:
    """Key -> shape of a target model or state dict (a mapping of shapes is taken as is)."""
    state = target.state_dict() if isinstance(target, nn.Module) else target
    return {key: tuple(value.shape) if hasattr(value, 'shape') else tuple(value) for key, value in state.items()}


def build_target_model(config: str) -> nn.Module:
    """The model of ``config`` that a conversion's keys and shapes are checked against, on the
    meta device where its modules allow (:func:`~.model_fit.build_model_skeleton`).

    Raises:
        ConfigInputError: ``config`` does not exist.
    """
    if not osp.isfile(config):
        raise ConfigInputError(f'--config {config!r} does not exist; pass the config whose model the converted '
                               'checkpoint is for')
    cfg = Config.fromfile(config)
    return build_model_skeleton(cfg.model, cfg.get('default_scope', 'mmdet'))
