"""A finite look at what a stage's train pipeline feeds the model, as one PNG grid.

Why: mmdet's ``tools/analysis_tools/browse_dataset.py`` iterates ``for item in dataset``, and
``RepeatDataset`` - which wraps every pretrain config's train set - never raises ``IndexError``,
so the tool writes its images and then never ends. It also shows the packed image only: the
crop window, the padding and how small the low-resolution input really is stay invisible.
Here a fixed number of indices is drawn from the built train dataset (wrappers included), each
sample is shown twice - the source image with the window the pipeline cut out of it (the
homography the transforms record, inverted), and the fed canvas with boxes, masks and the
padding shaded (``img_shape`` vs ``pad_shape``, then the data preprocessor's
``pad_size_divisor``) - and the rows are stacked into one grid per stage.
"""
import copy
import logging
import math
import os.path as osp
import random
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.models.utils import mask2ndarray
from mmdet.registry import DATASETS
from mmdet.visualization import DetLocalVisualizer, get_palette
from ..config.dataset_cfg import iter_leaf_datasets
from ..errors import BrowseError

__all__ = ['BrowseResult', 'PipelineSample', 'collect_samples', 'render_grid', 'grid_shape',
           'browse_stage', 'stage_configs', 'PIPELINE_PAD_RGB', 'BATCH_PAD_RGB', 'WINDOW_RGB']

logger = logging.getLogger(__name__)

# Overlay colours (RGB): padding added by the pipeline, padding added by the data
# preprocessor, and the crop window on the source image.
PIPELINE_PAD_RGB = (255, 0, 255)
BATCH_PAD_RGB = (0, 170, 255)
WINDOW_RGB = (255, 220, 0)
PAD_ALPHA = 0.45
# Grey behind a panel's image where the image does not fill the square.
PANEL_BACKGROUND = (40, 40, 40)
# Grid geometry in pixels; see grid_shape().
GAP, LABEL_H, TITLE_H = 8, 44, 52
_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
              'flip_direction', 'homography_matrix')


@dataclass
class PipelineSample:
    """One training sample as the model receives it, with what is needed to draw it.

    Shapes are (h, w). ``valid_hw`` is the image content (``img_shape``), ``pad_hw`` the
    pipeline's canvas (``pad_shape``; equal to ``valid_hw`` without a pad step) and
    ``batch_hw`` that canvas padded to the data preprocessor's ``pad_size_divisor``.
    ``window`` is the (4, 2) polygon, in source-image pixels, that the valid region came from.
    """
    index: int
    img_path: str
    fed: np.ndarray  # (H, W, 3) uint8 RGB, as packed
    valid_hw: Tuple[int, int]
    pad_hw: Tuple[int, int]
    batch_hw: Tuple[int, int]
    ori_hw: Tuple[int, int]
    window: np.ndarray
    boxes: np.ndarray  # (k, 4) x1 y1 x2 y2 in fed pixels
    labels: np.ndarray
    masks: Optional[np.ndarray]  # (k, H, W) bool
    flip: bool


def _with_meta_keys(pipeline: List[dict], where: str) -> List[dict]:
    packs = [t for t in pipeline if t.get('type') == 'PackDetInputs']
    if not packs:
        raise BrowseError(f'{where}: the train pipeline has no PackDetInputs step; only mmdet detection '
                          'pipelines can be browsed.')
    for pack in packs:
        keys = list(pack.get('meta_keys') or ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                                              'flip', 'flip_direction'))
        pack['meta_keys'] = tuple(keys + [k for k in _META_KEYS if k not in keys])
    return pipeline


def _window(meta: dict, valid_hw: Tuple[int, int]) -> np.ndarray:
    """Corners of the valid region mapped back to source-image pixels."""
    h, w = valid_hw
    corners = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], dtype=np.float64).T
    matrix = meta.get('homography_matrix', None)
    if matrix is None:
        sx, sy = (meta.get('scale_factor', None) or (1.0, 1.0))[:2]
        matrix = np.diag([sx, sy, 1.0])
    back = np.linalg.inv(np.asarray(matrix, dtype=np.float64)) @ corners
    return (back[:2] / back[2:]).T.astype(np.float32)


def _sample(index: int, item: dict, divisor: int) -> PipelineSample:
    fed = item['inputs'].permute(1, 2, 0).numpy()[..., ::-1].copy()  # BGR -> RGB
    sample = item['data_samples']
    meta = sample.metainfo
    fed_hw = fed.shape[:2]
    valid_hw = tuple(int(v) for v in meta.get('img_shape', fed_hw)[:2])
    pad_hw = tuple(int(v) for v in (meta.get('pad_shape', None) or fed_hw)[:2])
    pad_hw = (max(pad_hw[0], fed_hw[0]), max(pad_hw[1], fed_hw[1]))
    batch_hw = tuple(int(math.ceil(v / divisor) * divisor) for v in pad_hw)
    gt = sample.gt_instances
    boxes = gt.bboxes.tensor if hasattr(gt.bboxes, 'tensor') else gt.bboxes
    masks = mask2ndarray(gt.masks).astype(bool) if 'masks' in gt else None
    return PipelineSample(index=index, img_path=meta.get('img_path', ''), fed=fed, valid_hw=valid_hw,
                          pad_hw=pad_hw, batch_hw=batch_hw,
                          ori_hw=tuple(int(v) for v in meta.get('ori_shape', fed_hw)[:2]),
                          window=_window(meta, valid_hw), boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
                          labels=np.asarray(gt.labels).reshape(-1), masks=masks, flip=bool(meta.get('flip', False)))


def collect_samples(cfg: Config, num: int, seed: int = 0) -> Tuple[List[PipelineSample], dict]:
    """Build ``cfg``'s train dataset (wrappers included) and run samples ``0 .. num-1``.

    Finite on any wrapper: indices stop at ``min(num, len(dataset))``. The pipeline's random
    draws are seeded, so the same ``seed`` shows the same crops.

    Returns:
        tuple: The samples and the dataset's ``metainfo``.
    """
    cfg = copy.deepcopy(cfg)
    leaves = list(iter_leaf_datasets(cfg, ('train_dataloader', )))
    if not leaves:
        raise BrowseError('the config has no train_dataloader.dataset to browse.')
    for key, dataset_cfg in leaves:
        dataset_cfg['pipeline'] = _with_meta_keys(list(dataset_cfg.get('pipeline') or []), f'{key}.pipeline')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    divisor = int((cfg.model.get('data_preprocessor') or {}).get('pad_size_divisor') or 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    samples = [_sample(i, dataset[i], divisor) for i in range(min(num, len(dataset)))]
    return samples, dict(dataset.metainfo)


# ---------------------------------------------------------------------------- drawing
def _visualizer() -> DetLocalVisualizer:
    name = 'direct_pretrain_pipeline_browser'
    if DetLocalVisualizer.check_instance_created(name):
        return DetLocalVisualizer.get_instance(name)
    return DetLocalVisualizer.get_instance(name, line_width=2, alpha=0.5)


def _colours(labels: np.ndarray, metainfo: dict) -> List[tuple]:
    palette = get_palette(metainfo.get('palette', 'random'), max(len(metainfo.get('classes', ())), 1))
    return [tuple(int(c) for c in palette[int(label) % len(palette)]) for label in labels]


def _draw_fed(sample: PipelineSample, metainfo: dict) -> np.ndarray:
    """The batch canvas: the fed image, padding shaded, masks and boxes on top."""
    vis = _visualizer()
    batch_h, batch_w = sample.batch_hw
    canvas = np.zeros((batch_h, batch_w, 3), dtype=np.uint8)
    fed_h, fed_w = sample.fed.shape[:2]
    canvas[:fed_h, :fed_w] = sample.fed
    vis.set_image(canvas)
    (valid_h, valid_w), (pad_h, pad_w) = sample.valid_hw, sample.pad_hw
    pipeline_pad = np.zeros((batch_h, batch_w), dtype=bool)
    pipeline_pad[:pad_h, :pad_w] = True
    pipeline_pad[:valid_h, :valid_w] = False
    batch_pad = np.ones((batch_h, batch_w), dtype=bool)
    batch_pad[:pad_h, :pad_w] = False
    for region, colour in ((pipeline_pad, PIPELINE_PAD_RGB), (batch_pad, BATCH_PAD_RGB)):
        if region.any():
            vis.draw_binary_masks(region[None], colors=[colour], alphas=PAD_ALPHA)
    colours = _colours(sample.labels, metainfo)
    if sample.masks is not None and len(sample.masks):
        masks = np.zeros((len(sample.masks), batch_h, batch_w), dtype=bool)
        masks[:, :sample.masks.shape[1], :sample.masks.shape[2]] = sample.masks
        vis.draw_binary_masks(masks, colors=colours, alphas=0.45)
    if len(sample.boxes):
        vis.draw_bboxes(sample.boxes, edge_colors=colours, line_widths=2)
    if (valid_h, valid_w) != (batch_h, batch_w):
        vis.draw_bboxes(np.array([0, 0, valid_w, valid_h], dtype=np.float32), edge_colors='w', line_styles='--',
                        line_widths=1)
    return vis.get_image()


def _draw_source(sample: PipelineSample) -> np.ndarray:
    """The source image with the window the valid region was cut from."""
    image = mmcv.imread(sample.img_path, channel_order='rgb') if osp.isfile(sample.img_path) else None
    if image is None:
        image = np.zeros((*sample.ori_hw, 3), dtype=np.uint8)
    vis = _visualizer()
    vis.set_image(image)
    vis.draw_polygons(sample.window, edge_colors=[WINDOW_RGB], line_widths=max(2, max(image.shape[:2]) // 150))
    return vis.get_image()


def grid_shape(num_rows: int, cell: int) -> Tuple[int, int]:
    """(height, width) in pixels of a grid with ``num_rows`` samples and ``cell``-pixel panels:
    a title strip, then per sample a label strip and two panels side by side."""
    return TITLE_H + num_rows * (LABEL_H + cell + GAP), 3 * GAP + 2 * cell


def _fit(image: np.ndarray, cell: int) -> np.ndarray:
    """``image`` scaled to fit a ``cell`` x ``cell`` square (nearest neighbour when enlarging,
    so input pixels stay visible; area averaging when shrinking), centred on dark grey."""
    interpolation = 'nearest' if cell >= max(image.shape[:2]) else 'area'
    resized = mmcv.imrescale(image, (cell, cell), interpolation=interpolation)
    h, w = resized.shape[:2]
    left, top = (cell - w) // 2, (cell - h) // 2
    return mmcv.impad(resized, padding=(left, top, cell - w - left, cell - h - top), pad_val=PANEL_BACKGROUND)


def _text(img: np.ndarray, text: str, x: int, y: int, scale: float = 0.42, colour=(235, 235, 235)) -> None:
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def _label(sample: PipelineSample) -> Tuple[str, str]:
    (vh, vw), (ph, pw), (bh, bw) = sample.valid_hw, sample.pad_hw, sample.batch_hw
    left = f'#{sample.index} {osp.basename(sample.img_path)}  source {sample.ori_hw[1]}x{sample.ori_hw[0]}'
    pads = []
    if (ph, pw) != (vh, vw):
        pads.append(f'pipeline pad {pw - vw}x{ph - vh}')
    if (bh, bw) != (ph, pw):
        pads.append(f'batch pad {bw - pw}x{bh - ph}')
    right = (f'fed {bw}x{bh}: image {vw}x{vh}' + (', ' + ', '.join(pads) if pads else ', no padding') +
             f', {len(sample.boxes)} boxes' + (', flipped' if sample.flip else ''))
    return left, right


def render_grid(samples: Sequence[PipelineSample], metainfo: dict, title: str, cell: int = 320) -> np.ndarray:
    """One RGB grid: a row per sample, source with crop window | fed canvas; size :func:`grid_shape`."""
    height, width = grid_shape(len(samples), cell)
    grid = np.full((height, width, 3), 24, dtype=np.uint8)
    _text(grid, title, GAP, 22, 0.55)
    legend = 'yellow: crop window  magenta: pipeline padding  blue: batch padding (pad_size_divisor)  dashed: image'
    (text_w, _), _ = cv2.getTextSize(legend, cv2.FONT_HERSHEY_SIMPLEX, 0.38, 1)
    _text(grid, legend, GAP, 42, min(0.38, 0.38 * (width - 2 * GAP) / text_w), (190, 190, 190))
    for row, sample in enumerate(samples):
        top = TITLE_H + row * (LABEL_H + cell + GAP)
        left, right = _label(sample)
        _text(grid, left, GAP, top + 18)
        _text(grid, right, GAP, top + 36)
        y = top + LABEL_H
        grid[y:y + cell, GAP:GAP + cell] = _fit(_draw_source(sample), cell)
        grid[y:y + cell, 2 * GAP + cell:2 * GAP + 2 * cell] = _fit(_draw_fed(sample, metainfo), cell)
    return grid


@dataclass
class BrowseResult:
    path: str
    samples: List[PipelineSample]


def browse_stage(cfg: Config, out_file: str, num: int = 6, seed: int = 0, cell: int = 320,
                 title: Optional[str] = None) -> BrowseResult:
    """Write the grid of ``num`` training samples of ``cfg`` to ``out_file`` (PNG).

    Args:
        cfg (Config): A training config (any dataset wrappers).
        out_file (str): PNG path; its folder is created.
        num (int): Samples (rows). Defaults to 6.
        seed (int): Seed of the pipeline's random draws. Defaults to 0.
        cell (int): Side of each panel in pixels. Defaults to 320.
        title (str, optional): Title line. Defaults to the output file name.
    """
    if num < 1:
        raise BrowseError(f'-n must be at least 1, got {num}')
    samples, metainfo = collect_samples(cfg, num, seed)
    if not samples:
        raise BrowseError('the train dataset is empty: check ann_file and filter_cfg in the config.')
    grid = render_grid(samples, metainfo, title or osp.basename(out_file), cell)
    if not mmcv.imwrite(mmcv.rgb2bgr(grid), out_file, auto_mkdir=True):
        raise BrowseError(f'could not write {out_file!r}')
    logger.info('wrote %s (%d samples)', out_file, len(samples))
    return BrowseResult(out_file, samples)


def stage_configs(config_path: str, cfg: Config) -> Dict[str, str]:
    """Stages a config stands for: a fine-tune that names its ``pretrain_config`` gives both
    (the pretrain path resolved against the folders above ``config_path`` when it is relative),
    any other config one stage named after its file ('pretrain', 'finetune' or 'train')."""
    name = osp.basename(config_path)
    pretrain = cfg.get('pretrain_config')
    if not pretrain:
        stage = 'pretrain' if 'pretrain' in name else 'finetune' if 'finetune' in name else 'train'
        return {stage: config_path}
    if not osp.isabs(pretrain) and not osp.isfile(pretrain):
        folder = osp.dirname(osp.abspath(config_path))
        while folder != osp.dirname(folder) and not osp.isfile(osp.join(folder, pretrain)):
            folder = osp.dirname(folder)
        if osp.isfile(osp.join(folder, pretrain)):
            pretrain = osp.join(folder, pretrain)
    if not osp.isfile(pretrain):
        raise BrowseError(f'{config_path}: pretrain_config {cfg.pretrain_config!r} does not exist; browse the '
                          'pretrain config directly, or use --stage finetune.')
    return {'pretrain': pretrain, 'finetune': config_path}
