"""The opt-in torchvision route of mmcv's nms / RoIAlign computes what mmcv computes.

The route only ever sees CUDA tensors in use; here it is pointed at CPU tensors
(``device_types=('cpu',)``) so the same wrappers run against mmcv's CPU kernels, an
independent implementation of the same arithmetic. The grid covers every RoIAlign setting of
the model zoo (checked against the configs below) and the NMS thresholds of RPN and R-CNN.
"""
import glob
import os.path as osp

import pytest
import torch
import torchvision
from dp_test_utils import REPO_ROOT
from mmcv.ops import RoIAlign, batched_nms, nms
from mmengine.config import Config

from direct_pretrain.runtime.torchvision_cuda_ops import (CONFIG_KEY, ENV_SWITCH, disable_torchvision_cuda_ops,
                                                          enable_torchvision_cuda_ops, mmcv_has_cuda_ops,
                                                          routed_call_counts, setup_torchvision_cuda_ops,
                                                          torchvision_cuda_ops_enabled, torchvision_ops_routed)

ALIGNED = (True, False)
SAMPLING = (0, 2)
STRIDES = (4, 8, 16, 32)
SIZES = (7, 14)
GRID = [(a, s, st, o) for a in ALIGNED for s in SAMPLING for st in STRIDES for o in SIZES]


@pytest.fixture(autouse=True)
def routing_off(monkeypatch):
    monkeypatch.delenv(ENV_SWITCH, raising=False)
    disable_torchvision_cuda_ops()
    yield
    disable_torchvision_cuda_ops()


def _features_and_rois(stride: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    width, height = 320, 256
    feats = torch.randn(2, 4, -(-height // stride), -(-width // stride), generator=gen, dtype=torch.float64).float()
    num = 16
    xy = torch.rand(num, 2, generator=gen) * torch.tensor([width, height]) * 0.9
    wh = torch.rand(num, 2, generator=gen).pow(2) * torch.tensor([width, height]) * 0.6 + 0.3  # some < 1 px
    index = torch.randint(0, 2, (num, 1), generator=gen).float()
    return feats, torch.cat([index, xy, xy + wh], dim=1), gen


def _roi_align(layer, feats, rois, grad):
    x = feats.clone().requires_grad_(True)
    out = layer(x, rois)
    out.backward(grad)
    return out.detach(), x.grad


@pytest.mark.parametrize('aligned,sampling_ratio,stride,size', GRID)
def test_roi_align_route_matches_mmcv(aligned, sampling_ratio, stride, size):
    feats, rois, gen = _features_and_rois(stride, seed=stride * 100 + size + sampling_ratio)
    grad = torch.randn(rois.size(0), feats.size(1), size, size, generator=gen)
    layer = RoIAlign(size, 1.0 / stride, sampling_ratio, aligned=aligned)
    ref_out, ref_grad = _roi_align(layer, feats, rois, grad)
    before = routed_call_counts()
    with torchvision_ops_routed(device_types=('cpu', )):
        out, grad_in = _roi_align(layer, feats, rois, grad)
    after = routed_call_counts()
    assert after['roi_align_forward'] == before['roi_align_forward'] + 1
    assert after['roi_align_backward'] == before['roi_align_backward'] + 1
    assert ref_out.abs().max() > 0.1  # the RoIs hit the features
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-5)
    torch.testing.assert_close(grad_in, ref_grad, rtol=0, atol=1e-5)
    # torchvision's own op, called as a user would, agrees too (the route adds nothing of its own)
    direct = torchvision.ops.roi_align(feats, rois, size, 1.0 / stride, sampling_ratio, aligned)
    torch.testing.assert_close(direct, ref_out, rtol=0, atol=1e-5)


def _zoo_roi_layers():
    """(config, roi_layer, featmap_strides) of every RoI extractor of the configs that set a
    roi_layer themselves, and of the direct-pretrain configs (mmdet's default RoI layers)."""
    paths = set(glob.glob(osp.join(REPO_ROOT, 'configs', 'direct_pretraining', '*direct-pretrain-448-p1x_coco.py')))
    for path in glob.glob(osp.join(REPO_ROOT, 'configs', '*', '*.py')):
        with open(path) as f:
            if 'roi_layer' in f.read():
                paths.add(path)
    found = []
    for path in sorted(paths):
        roi_head = Config.fromfile(path).model.get('roi_head') or {}
        for key, extractors in roi_head.items():
            if not key.endswith('_roi_extractor') or not extractors:
                continue
            for extractor in extractors if isinstance(extractors, list) else [extractors]:
                found.append((osp.basename(path), extractor['roi_layer'], extractor['featmap_strides']))
    return found


@pytest.mark.slow  # builds every zoo model
def test_grid_covers_every_roi_layer_of_the_configs():
    layers = _zoo_roi_layers()
    assert {name for name, _, _ in layers} >= {'faster-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py',
                                               'mask-rcnn_r50-caffe_fpn_detectron-legacy-1x_coco.py'}
    for name, roi_layer, strides in layers:
        assert roi_layer['type'] == 'RoIAlign', name
        output = roi_layer['output_size']
        assert (output if isinstance(output, int) else output[0]) in SIZES, name
        assert roi_layer.get('sampling_ratio', 0) in SAMPLING, name
        assert roi_layer.get('aligned', True) in ALIGNED, name
        assert roi_layer.get('pool_mode', 'avg') == 'avg', name
        assert set(strides) <= set(STRIDES), name


def _clustered_boxes(seed: int, num: int = 300):
    gen = torch.Generator().manual_seed(seed)
    centres = torch.rand(25, 2, generator=gen) * 300
    centre = centres[torch.randint(0, 25, (num, ), generator=gen)] + torch.randn(num, 2, generator=gen) * 5
    half = torch.rand(num, 2, generator=gen) * 40 + 3
    return torch.cat([centre - half, centre + half], dim=1), torch.rand(num, generator=gen)


@pytest.mark.parametrize('iou_threshold', [0.5, 0.7])
@pytest.mark.parametrize('offset', [0, 1])
def test_nms_route_keeps_what_mmcv_keeps(iou_threshold, offset):
    boxes, scores = _clustered_boxes(seed=int(iou_threshold * 10) + offset)
    ref_dets, ref_keep = nms(boxes, scores, iou_threshold, offset=offset)
    assert 20 < ref_keep.numel() < boxes.size(0)  # NMS had work to do
    with torchvision_ops_routed(device_types=('cpu', )):
        before = routed_call_counts()['nms']
        dets, keep = nms(boxes, scores, iou_threshold, offset=offset)
        assert routed_call_counts()['nms'] == before + 1
    assert torch.equal(keep, ref_keep)
    assert torch.equal(dets, ref_dets)


def test_batched_nms_route_as_mmdet_calls_it():
    boxes, scores = _clustered_boxes(seed=3, num=400)
    labels = torch.randint(0, 5, (400, ), generator=torch.Generator().manual_seed(3))
    cfg = dict(type='nms', iou_threshold=0.7)
    ref_dets, ref_keep = batched_nms(boxes, scores, labels, cfg)
    with torchvision_ops_routed(device_types=('cpu', )):
        dets, keep = batched_nms(boxes, scores, labels, cfg)
    assert torch.equal(keep, ref_keep)
    assert torch.equal(dets, ref_dets)


def test_bf16_features_are_computed_in_float32():
    feats, rois, _ = _features_and_rois(8, seed=5)
    feats, rois = feats.bfloat16(), rois.bfloat16()
    layer = RoIAlign(7, 1 / 8, 0, aligned=True)
    ref = layer(feats.float(), rois.float())  # mmcv's float32 kernel on the same (bf16) values
    with torchvision_ops_routed(device_types=('cpu', )):
        out = layer(feats, rois)
    assert out.dtype == torch.bfloat16
    # only the bf16 rounding of the output separates the two
    torch.testing.assert_close(out.float(), ref, rtol=1e-2, atol=1e-2)


def test_max_pooling_is_refused_with_the_switch_named():
    feats, rois, _ = _features_and_rois(8, seed=6)
    layer = RoIAlign(7, 1 / 8, 0, pool_mode='max', aligned=True)
    with torchvision_ops_routed(device_types=('cpu', )):
        with pytest.raises(NotImplementedError, match=ENV_SWITCH):
            layer(feats, rois)


def test_other_devices_keep_mmcv_kernels():
    enable_torchvision_cuda_ops(force=True, device_types=('cuda', ))
    boxes, scores = _clustered_boxes(seed=7)
    before = routed_call_counts()
    nms(boxes, scores, 0.5)
    feats, rois, _ = _features_and_rois(4, seed=7)
    RoIAlign(7, 1 / 4, 0)(feats, rois)
    assert routed_call_counts() == before


def test_disable_restores_mmcv():
    boxes, scores = _clustered_boxes(seed=8)
    with torchvision_ops_routed(device_types=('cpu', )):
        assert torchvision_cuda_ops_enabled()
    assert not torchvision_cuda_ops_enabled()
    before = routed_call_counts()['nms']
    nms(boxes, scores, 0.5)
    assert routed_call_counts()['nms'] == before


def test_enable_without_force_only_where_mmcv_lacks_cuda_ops():
    assert enable_torchvision_cuda_ops() == (not mmcv_has_cuda_ops())


def test_switch_from_config_and_environment(monkeypatch):
    on = Config({CONFIG_KEY: True})
    off = Config({CONFIG_KEY: False})
    expected = not mmcv_has_cuda_ops()  # with CUDA ops in mmcv the switch changes nothing
    assert setup_torchvision_cuda_ops(Config({})) is False
    assert setup_torchvision_cuda_ops(on) is expected
    assert setup_torchvision_cuda_ops(off) is False
    monkeypatch.setenv(ENV_SWITCH, '1')
    assert setup_torchvision_cuda_ops(off) is expected  # the environment wins
    monkeypatch.setenv(ENV_SWITCH, '0')
    assert setup_torchvision_cuda_ops(on) is False
    monkeypatch.setenv(ENV_SWITCH, 'maybe')
    with pytest.raises(ValueError, match=ENV_SWITCH):
        setup_torchvision_cuda_ops(on)
    monkeypatch.delenv(ENV_SWITCH)
    with pytest.raises(ValueError, match=CONFIG_KEY):
        setup_torchvision_cuda_ops(Config({CONFIG_KEY: 'yes'}))


def test_train_and_test_entry_points_apply_the_switch(monkeypatch):
    """apis.training.train / apis.testing.test call prepare_runtime before the Runner."""
    from direct_pretrain.apis.launch import prepare_runtime
    monkeypatch.delenv(ENV_SWITCH, raising=False)
    try:
        prepare_runtime(Config({CONFIG_KEY: True, 'launcher': 'none'}))
        assert torchvision_cuda_ops_enabled() is (not mmcv_has_cuda_ops())
        prepare_runtime(Config({'launcher': 'none'}))
        assert not torchvision_cuda_ops_enabled()  # no key: off
    finally:
        disable_torchvision_cuda_ops()
    assert not torchvision_cuda_ops_enabled()


def test_detector_train_step_is_unchanged_by_the_route():
    """A Mask R-CNN loss and its gradients (RPN nms, RoI extractors, mask targets) agree."""
    from mmengine.registry import init_default_scope

    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/toy/mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py'))
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    batch = demo_mm_inputs(2, image_shapes=(3, 96, 128), num_items=[4, 4], num_classes=4, with_mask=True,
                           use_box_type=True)

    def loss_and_grads():
        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)  # the RoI samplers draw from torch's generator
        data = model.data_preprocessor(batch, True)
        loss, _ = model.parse_losses(model(**data, mode='loss'))
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    ref_loss, ref_grads = loss_and_grads()
    with torchvision_ops_routed(device_types=('cpu', )):
        before = routed_call_counts()
        loss, grads = loss_and_grads()
        after = routed_call_counts()
    assert all(after[k] > before[k] for k in after)  # nms and RoIAlign both went through the route
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-5)
    assert len(grads) == len(ref_grads)
    for grad, ref in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref, rtol=1e-4, atol=1e-5)
