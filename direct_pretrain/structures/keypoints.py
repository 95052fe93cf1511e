"""Keypoint heatmap encoding and decoding, Detectron's way (``utils/keypoints.py``).

Why a module of its own: the head trains on the encoded targets and decodes its heatmaps,
the Detectron converter checks the fixed upsampling kernel, and tests compare both against
hand computations; none of them needs the head (detectron2 keeps the same functions in
``structures/keypoints.py``).

Conventions (Heckbert 1990): a continuous coordinate ``c`` falls into cell ``d = floor(c)``,
and cell ``d`` is decoded to ``c = d + 0.5``.

* :func:`keypoints_to_heatmap_targets` - Detectron's ``keypoints_to_heatmap_labels``: the
  RoI's ``[x1, x2)`` maps onto cells ``0..S-1``; a keypoint exactly on the right/bottom edge
  goes into the last cell; keypoints outside the RoI or not labelled get weight 0.
* :func:`heatmaps_to_keypoints` - Detectron's ``heatmaps_to_keypoints``: each heatmap is
  resized (bicubic) to the box size rounded up, the arg-max cell centre is mapped back with
  the sub-cell correction ``w / ceil(w)``; the score is the heatmap logit there (Detectron
  draws keypoints whose logit exceeds 2), the probability its softmax over the resized map.
* :func:`bilinear_upsample_kernel` - the fixed FCN bilinear filter of Detectron's
  ``BilinearInterpolation`` (the ``kps_score_w`` blob of a model-zoo file).
"""
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['bilinear_upsample_kernel', 'keypoints_to_heatmap_targets', 'heatmaps_to_keypoints']


def bilinear_upsample_kernel(up_scale: int) -> np.ndarray:
    """The FCN bilinear filter of Detectron's ``BilinearInterpolation`` ((2s, 2s), float32)."""
    size = 2 * up_scale
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    ramp = 1 - np.abs(np.arange(size) - center) / factor
    return np.outer(ramp, ramp).astype(np.float32)


def keypoints_to_heatmap_targets(keypoints: Tensor, rois: Tensor, heatmap_size: int) -> Tuple[Tensor, Tensor]:
    """Cell index of every keypoint in the ``heatmap_size``-square grid over its RoI.

    Args:
        keypoints (Tensor): (P, K, 3) ``x, y, v`` in the RoIs' frame.
        rois (Tensor): (P, 4) boxes ``x1, y1, x2, y2``.
        heatmap_size (int): Side S of the heatmap.

    Returns:
        tuple[Tensor, Tensor]: ``targets`` (P, K) int64 cell ``y * S + x`` (0 where invalid) and
        ``valid`` (P, K) bool: labelled (``v > 0``) and inside the RoI.
    """
    if rois.numel() == 0:
        empty = keypoints.new_zeros(keypoints.shape[:2], dtype=torch.long)
        return empty, empty.bool()
    x1, y1, x2, y2 = (rois[:, i:i + 1] for i in range(4))
    x, y = keypoints[..., 0], keypoints[..., 1]
    on_right, on_bottom = x == x2, y == y2
    cx = ((x - x1) * (heatmap_size / (x2 - x1))).floor().long()
    cy = ((y - y1) * (heatmap_size / (y2 - y1))).floor().long()
    cx[on_right] = heatmap_size - 1
    cy[on_bottom] = heatmap_size - 1
    valid = (cx >= 0) & (cy >= 0) & (cx < heatmap_size) & (cy < heatmap_size) & (keypoints[..., 2] > 0)
    targets = (cy * heatmap_size + cx) * valid.long()
    return targets, valid


def heatmaps_to_keypoints(heatmaps: Tensor, rois: Tensor) -> Tensor:
    """Keypoint positions and scores from heatmaps, Detectron's way.

    Args:
        heatmaps (Tensor): (R, K, S, S) logits.
        rois (Tensor): (R, 4) boxes in the frame the keypoints are wanted in.

    Returns:
        Tensor: (R, K, 4) ``x, y, logit, probability``.
    """
    heatmaps, rois = heatmaps.detach().float(), rois.detach().float()
    num_rois, num_keypoints = heatmaps.shape[:2]
    out = heatmaps.new_zeros(num_rois, num_keypoints, 4)
    widths = (rois[:, 2] - rois[:, 0]).clamp(min=1)
    heights = (rois[:, 3] - rois[:, 1]).clamp(min=1)
    widths_ceil, heights_ceil = widths.ceil(), heights.ceil()
    index = torch.arange(num_keypoints, device=heatmaps.device)
    for i in range(num_rois):
        size = (int(heights_ceil[i]), int(widths_ceil[i]))
        roi_map = F.interpolate(heatmaps[i:i + 1], size=size, mode='bicubic', align_corners=False)[0]
        flat = roi_map.reshape(num_keypoints, -1)
        best = flat.argmax(dim=1)
        x_int, y_int = best % size[1], torch.div(best, size[1], rounding_mode='floor')
        out[i, :, 0] = (x_int.float() + 0.5) * (widths[i] / widths_ceil[i]) + rois[i, 0]
        out[i, :, 1] = (y_int.float() + 0.5) * (heights[i] / heights_ceil[i]) + rois[i, 1]
        out[i, :, 2] = flat[index, best]
        out[i, :, 3] = torch.softmax(flat, dim=1)[index, best]
    return out
