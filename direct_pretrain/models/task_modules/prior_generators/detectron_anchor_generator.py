"""Anchors exactly as Detectron's ``generate_anchors`` makes them.

Why: Detectron quantises each anchor shape on the *stride* box before scaling -
``ws = round(sqrt(stride**2 / ratio))``, ``hs = round(ws * ratio)`` (numpy's
round-half-to-even), centre ``(stride - 1) / 2``, corners ``ctr -/+ 0.5 * (size - 1)``
without a final rounding. mmdet's ``LegacyAnchorGenerator`` scales first and rounds the
corners, which differs by a pixel for non-square anchors (P2, size 32, ratio 0.5:
Detectron ``[-22, -10, 25, 13]``, Legacy ``[-21, -9, 24, 12]``). Converted Detectron
detectors regress from their own anchors, so the legacy-faithful configs use this
generator.

Anchor *order* follows mmdet (``scale_major=True``: ratio-outer, scale-inner), which
equals Detectron's for RPN; for RetinaNet (Detectron: octave-outer, ratio-inner) the
checkpoint converter permutes the prediction channels instead (see
:mod:`direct_pretrain.checkpoint.detectron.converter`).
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from mmdet.models.task_modules.prior_generators import AnchorGenerator
from mmdet.registry import TASK_UTILS

__all__ = ['DetectronAnchorGenerator', 'detectron_cell_anchors']


def detectron_cell_anchors(base_size: float, scales: Sequence[float], ratios: Sequence[float],
                           scale_major: bool = True) -> np.ndarray:
    """Cell anchors ``(len(ratios) * len(scales), 4)`` in float64, Detectron's arithmetic.

    Args:
        base_size (float): Detectron's ``stride`` argument (the box that is quantised).
        scales (Sequence[float]): Anchor size / base_size.
        ratios (Sequence[float]): Height / width.
        scale_major (bool): True: ratio-outer, scale-inner (mmdet's and Detectron's RPN
            order); False: scale-outer, ratio-inner. Defaults to True.
    """
    ctr = 0.5 * (base_size - 1)
    shapes = {}
    for ratio in ratios:
        ws = np.round(np.sqrt(base_size * base_size / ratio))
        shapes[ratio] = (ws, np.round(ws * ratio))
    order = [(r, s) for r in ratios for s in scales] if scale_major else [(r, s) for s in scales for r in ratios]
    anchors = []
    for ratio, scale in order:
        ws, hs = shapes[ratio][0] * scale, shapes[ratio][1] * scale
        anchors.append([ctr - 0.5 * (ws - 1), ctr - 0.5 * (hs - 1), ctr + 0.5 * (ws - 1), ctr + 0.5 * (hs - 1)])
    return np.asarray(anchors, dtype=np.float64)


@TASK_UTILS.register_module()
class DetectronAnchorGenerator(AnchorGenerator):
    """mmdet ``AnchorGenerator`` whose base anchors are Detectron's.

    Grid shifting, valid flags and the anchor order are mmdet's (identical to
    Detectron's shifts). Scales are computed in float64 as Detectron does, so octave scales match it.

    Args:
        strides (list[int] | list[tuple[int, int]]): Anchor strides per level.
        ratios (list[float]): Height / width ratios.
        scales (list[float], optional): Size / base size; exclusive with the octave args.
        base_sizes (list[int], optional): Quantised box per level. Defaults to the strides.
        scale_major (bool): See :func:`detectron_cell_anchors`. Defaults to True.
        octave_base_scale (float, optional): RetinaNet ``ANCHOR_SCALE``.
        scales_per_octave (int, optional): RetinaNet ``SCALES_PER_OCTAVE``.
        use_box_type (bool): Wrap priors in ``HorizontalBoxes``. Defaults to False.
    """

    def __init__(self,
                 strides: Union[List[int], List[Tuple[int, int]]],
                 ratios: List[float],
                 scales: Optional[List[float]] = None,
                 base_sizes: Optional[List[int]] = None,
                 scale_major: bool = True,
                 octave_base_scale: Optional[float] = None,
                 scales_per_octave: Optional[int] = None,
                 use_box_type: bool = False) -> None:
        # Factors whose product with the base size is Detectron's anchor size, multiplied
        # in Detectron's order (stride * octave_scale * anchor_scale for RetinaNet).
        if scales is not None:
            self._size_factors: Optional[List[Tuple[float, ...]]] = [(float(s), ) for s in scales]
        elif octave_base_scale is not None and scales_per_octave is not None:
            self._size_factors = [(2**(i / float(scales_per_octave)), float(octave_base_scale))
                                  for i in range(scales_per_octave)]
        else:
            self._size_factors = None  # the base class raises the usual error
        self._ratios64 = np.asarray(ratios, dtype=np.float64)
        super().__init__(strides=strides, ratios=ratios, scales=scales, base_sizes=base_sizes,
                         scale_major=scale_major, octave_base_scale=octave_base_scale,
                         scales_per_octave=scales_per_octave, use_box_type=use_box_type)

    def gen_single_level_base_anchors(self, base_size: Union[int, float], scales: Tensor, ratios: Tensor,
                                      center: Optional[Tuple[float]] = None) -> Tensor:
        if center is not None:
            raise ValueError('DetectronAnchorGenerator has a fixed centre ((base_size - 1) / 2); do not set centers')
        base = float(base_size)
        scales64 = []
        for factors in self._size_factors:
            size = base
            for factor in factors:
                size *= factor
            scales64.append(size / base)  # Detectron: np.array(sizes) / stride
        anchors = detectron_cell_anchors(base, scales64, self._ratios64, self.scale_major)
        return torch.from_numpy(anchors).float()

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(strides={self.strides}, ratios={self._ratios64.tolist()}, '
                f'size_factors={self._size_factors}, '
                f'base_sizes={self.base_sizes}, scale_major={self.scale_major})')
