"""Stage cost: FLOPs over a real forward + backward against an independent count, the train
resolution read from the configs, and the toy pair's FLOP ratio against its measured time."""
import contextlib
import importlib.util
import io
import json
import os.path as osp

import pytest
import torch
from dp_test_utils import REPO_ROOT, TOOLS, TOY_FINETUNE, TOY_PRETRAIN
from mmengine.config import Config
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from direct_pretrain.analysis_tools.stage_cost import count_step_flops, train_canvas
from direct_pretrain.config.dataset_cfg import train_pipeline
from direct_pretrain.errors import StageCostError


class TinyNet(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.body = nn.Sequential(nn.Conv2d(8, 4, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x):
        return self.head(self.body(self.stem(x)).flatten(1))


def conv_macs(n, c_in, c_out, k, h_out, w_out):
    return n * c_out * h_out * w_out * c_in * k * k


def test_flops_equal_an_independent_count_for_a_tiny_model():
    """Forward: 2 x MACs per conv / linear. Backward: the gradient w.r.t. the weights (same
    MACs) for every layer, w.r.t. the input for every layer but the first (its input needs none)."""
    model, n = TinyNet(), 2
    x = torch.randn(n, 3, 16, 16)
    count = count_step_flops(model, lambda: model(x).sum())
    stem = conv_macs(n, 3, 8, 3, 16, 16)
    body = conv_macs(n, 8, 4, 3, 8, 8)
    head = n * 4 * 8 * 8 * 5
    assert count.modules['stem'] == 2 * stem * 2  # forward + grad weight
    assert count.modules['body'] == 2 * body * 3  # forward + grad weight + grad input
    assert count.modules['head'] == 2 * head * 3
    assert count.total == 2 * (2 * stem + 3 * body + 3 * head)
    assert count.modules['other'] == 0
    assert count.modules['body.0'] == count.modules['body']
    # torch's own counter agrees on the total
    reference = FlopCounterMode(display=False)
    with reference:
        model(x).sum().backward()
    assert reference.get_total_flops() == count.total


def test_backward_of_a_module_after_a_frozen_one_stays_with_that_module():
    """A frozen stem: the body's input needs no gradient, yet its backward is booked to it
    (FlopCounterMode's own per-module table books it to whatever ran before)."""
    model, n = TinyNet(), 2
    model.stem.requires_grad_(False)
    x = torch.randn(n, 3, 16, 16)
    count = count_step_flops(model, lambda: model(x).sum())
    body = conv_macs(n, 8, 4, 3, 8, 8)
    assert count.modules['stem'] == 2 * conv_macs(n, 3, 8, 3, 16, 16)  # forward only
    assert count.modules['body'] == 2 * body * 2  # forward + grad weight, no grad input
    assert count.modules['head'] == 2 * n * 4 * 8 * 8 * 5 * 3


def test_train_canvas_follows_each_stage_pipeline():
    pre, ft = Config.fromfile(TOY_PRETRAIN), Config.fromfile(TOY_FINETUNE)
    crop = next(t['crop_size'] for t in train_pipeline(pre) if t['type'] == 'DirectPretrainResizeCrop')
    assert train_canvas(pre) == tuple(crop)
    # keep-ratio resize: the scale's (long, short) box, padded to the preprocessor's divisor
    scale = next(t['scale'] for t in train_pipeline(ft) if t['type'] == 'Resize')
    divisor = ft.model.data_preprocessor.pad_size_divisor
    expected = tuple(-(-s // divisor) * divisor for s in (max(scale), min(scale)))
    assert train_canvas(ft) == expected
    zoo = Config.fromfile(osp.join(REPO_ROOT, 'configs/direct_pretraining/'
                                   'faster-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py'))
    assert train_canvas(zoo) == (1344, 800)  # 1333x800 padded to 32
    ft.train_dataloader.dataset.pipeline = [dict(type='LoadImageFromFile'), dict(type='PackDetInputs')]
    with pytest.raises(StageCostError, match='--finetune-size WxH'):
        train_canvas(ft)


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f'tool_{name}', osp.join(TOOLS, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def toy_pair(tmp_path_factory):
    """tools/stage_cost.py on the toy pair, timed: 1 image per step, 2 timed steps."""
    out = tmp_path_factory.mktemp('cost') / 'cost.json'
    stdout, threads = io.StringIO(), torch.get_num_threads()
    try:  # one thread: on a shared machine several threads per process mostly wait for each other
        with contextlib.redirect_stdout(stdout):
            code = load_tool('stage_cost').main([TOY_PRETRAIN, TOY_FINETUNE, '--batch-size', '1', '--steps', '2',
                                                 '--threads', '1', '--out', str(out)])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return json.loads(out.read_text()), stdout.getvalue()


def test_toy_pair_table_shares_and_backbone_scaling(toy_pair):
    data, stdout = toy_pair
    pre, ft = data['stages']
    assert [pre['name'], ft['name']] == ['pretrain', 'finetune']
    for stage in (pre, ft):
        top = {k: v for k, v in stage['shares'].items() if '.' not in k}
        assert sum(top.values()) == pytest.approx(1.0, abs=1e-9)
        assert {'backbone', 'neck', 'rpn_head', 'roi_head'} <= set(top) and min(top.values()) >= 0
        inner = sum(v for k, v in stage['shares'].items() if k.startswith('roi_head.'))
        assert 0 < inner <= stage['shares']['roi_head'] + 1e-9
    # A convolutional backbone costs exactly in proportion to its pixels (sizes divisible by 32),
    # forward and backward; the fine-tune's frozen stem and stage 1 skip their backward, so
    # compare stages 2-4, which train in both.
    pixels = data['ratios']['pixels']
    assert pixels == pytest.approx(ft['size'][0] * ft['size'][1] / (pre['size'][0] * pre['size'][1]))
    for layer in ('backbone.layer3', 'backbone.layer4'):
        ratio = (ft['shares'][layer] * ft['gflops_per_image']) / (pre['shares'][layer] * pre['gflops_per_image'])
        assert ratio == pytest.approx(pixels, rel=1e-6), layer
    # ... while the box head costs the same per image at both sizes (a fixed number of sampled
    # RoIs, each 7x7 whatever the image size): the stage ratio stays below the pixel ratio
    box = [s['shares']['roi_head.bbox_head'] * s['gflops_per_image'] for s in (pre, ft)]
    assert box[1] / box[0] == pytest.approx(1.0, rel=0.01)
    assert 1.0 < data['ratios']['flops'] < pixels
    assert 'GFLOP / image' in stdout and 'share: backbone' in stdout and 'share:   bbox_head' in stdout
    assert f"FLOPs {data['ratios']['flops']:.2f}x" in stdout


def test_toy_pair_flop_ratio_bounds_the_measured_time_ratio(toy_pair):
    """The fine-tune step takes longer, but by less than its FLOP ratio (+10 % for noise).

    Not within 10 % of it: at 192x192 and 480x320 with 64-channel heads a CPU step has a large
    part that costs the same at both sizes and is not counted as FLOPs (RPN target assignment
    and NMS, RoIAlign, sampling, mask targets, Python overhead), which pulls the time ratio
    towards 1 (1.4-1.8x measured against 2.4x FLOPs on 2 shared cores). For the R-50 zoo pairs,
    where convolutions dominate, the two ratios agree; see configs/direct_pretraining/README.md.
    """
    data, _ = toy_pair
    pre, ft = data['stages']
    assert len(pre['step_seconds']) == len(ft['step_seconds']) == 2
    assert 1.0 < data['ratios']['seconds'] < data['ratios']['flops'] * 1.10


def test_tool_bad_input_is_one_error_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_tool('stage_cost').main(['nope.py', TOY_FINETUNE]) == 2
    err = capsys.readouterr().err
    assert err.count('error:') == 1 and "'nope.py'" in err and not any(tmp_path.iterdir())
