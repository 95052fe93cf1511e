"""tools/browse_pipeline.py: finite on RepeatDataset configs, one grid per stage, the crop
window and the padding drawn where the pipeline put them."""
import importlib.util
import os.path as osp

import cv2
import numpy as np
import pytest
from dp_test_utils import TOOLS, write_tiny_stage_configs
from forked_cli import run_tool
from mmengine.config import Config

from direct_pretrain.analysis_tools.pipeline_browser import (GAP, LABEL_H, PAD_ALPHA, PIPELINE_PAD_RGB, TITLE_H,
                                                             browse_stage, grid_shape)
from direct_pretrain.config.dataset_cfg import train_pipeline


@pytest.fixture(scope='module')
def configs(tmp_path_factory, tiny_coco_root):
    return write_tiny_stage_configs(str(tmp_path_factory.mktemp('cfg')), tiny_coco_root)


@pytest.mark.slow  # runs the tool
def test_tool_ends_on_a_repeat_dataset_and_writes_both_stage_grids(configs, tmp_path):
    pre_cfg, ft_cfg = configs
    assert Config.fromfile(pre_cfg).train_dataloader.dataset.type == 'RepeatDataset'
    out = tmp_path / 'grids'
    proc = run_tool(osp.join(TOOLS, 'browse_pipeline.py'), ft_cfg, '--out', str(out), '-n', '3', '--cell', '160',
                    cwd=str(tmp_path), check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for stage in ('pretrain', 'finetune'):
        image = cv2.imread(str(out / f'{stage}.png'))
        assert image is not None and image.shape[:2] == grid_shape(3, 160), stage
    assert sorted(p.name for p in out.iterdir()) == ['finetune.png', 'pretrain.png']


def test_a_stage_the_config_does_not_name_is_one_error_line(configs, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location('browse_tool', osp.join(TOOLS, 'browse_pipeline.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main([configs[0], '--stage', 'finetune', '--out', str(tmp_path / 'x')]) == 2
    err = capsys.readouterr().err
    assert err.count('error:') == 1 and 'names no finetune stage' in err
    assert not (tmp_path / 'x').exists()


def test_samples_show_the_fed_canvas_the_crop_window_and_the_padding(configs, tmp_path):
    cfg = Config.fromfile(configs[0])
    crop_w, crop_h = next(t['crop_size'] for t in train_pipeline(cfg) if t['type'] == 'DirectPretrainResizeCrop')
    result = browse_stage(cfg, str(tmp_path / 'pretrain.png'), num=8, cell=200)
    assert len(result.samples) == 8  # the tiny set's 8 images, once: no endless RepeatDataset walk
    grid = cv2.imread(result.path)[..., ::-1]
    padded = uncut = 0
    for row, sample in enumerate(result.samples):
        assert sample.fed.shape[:2] == (crop_h, crop_w) == sample.pad_hw
        vh, vw = sample.valid_hw
        assert vh <= crop_h and vw <= crop_w
        # The window maps the fed image back into the source image: it lies inside it, and along
        # the source's short side (never aspect-cropped) a resized extent below the crop size means
        # nothing was cut there: the window spans that whole side.
        oh, ow = sample.ori_hw
        xs, ys = sample.window[:, 0], sample.window[:, 1]
        assert xs.min() >= -0.5 and ys.min() >= -0.5 and xs.max() <= ow + 0.5 and ys.max() <= oh + 0.5
        if oh <= ow and vh < crop_h:
            assert ys.min() == pytest.approx(0, abs=0.5) and ys.max() == pytest.approx(oh, abs=1.0)
            uncut += 1
        elif ow < oh and vw < crop_w:
            assert xs.min() == pytest.approx(0, abs=0.5) and xs.max() == pytest.approx(ow, abs=1.0)
            uncut += 1
        if sample.boxes.size:
            assert sample.boxes[:, 2].max() <= vw + 1e-3 and sample.boxes[:, 3].max() <= vh + 1e-3
        if (vh, vw) != sample.pad_hw:
            # The pipeline's padding is tinted in the fed panel: the canvas's bottom-right pixel is
            # padding (pad_val), drawn blended with PIPELINE_PAD_RGB.
            padded += 1
            top = TITLE_H + row * (LABEL_H + 200 + GAP) + LABEL_H
            corner = grid[top + 197, 2 * GAP + 200 + 197].astype(float)
            pad_val = sample.fed[-1, -1].astype(float)
            blend = (1 - PAD_ALPHA) * pad_val + PAD_ALPHA * np.array(PIPELINE_PAD_RGB)
            assert np.abs(corner - blend).max() < 20, (corner, blend)
    assert padded >= 1 and uncut >= 1  # the tiny set has images whose resized side is below the crop
