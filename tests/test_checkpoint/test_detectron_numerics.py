"""Converted weights compute what Detectron computes.

The references run straight from the blobs with plain torch functional ops in float64,
following Detectron's nets (AffineChannel = x * s + b, stride on the 1x1 for MSRA
ResNets, FPN top-down with nearest x2 upsampling, P6 max-pool or conv on C5, ReLU before
P7, background-first classifiers, octave-outer RetinaNet anchors). The mmdet modules are
built from this repo's Detectron configs and run in float32.
"""
import os.path as osp
from typing import Dict, List

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from detectron_fixtures import (DETECTRON_BLOCKS, DETECTRON_CONFIGS, detectron_retina_cell_anchors, detectron_shapes,
                                materialize)

from direct_pretrain.checkpoint import convert_detectron

TOL = 1e-4


def _t(blobs: Dict[str, np.ndarray], name: str) -> torch.Tensor:
    return torch.from_numpy(blobs[name]).double()


def _norm(x, blobs, name, gn):
    if gn:
        return F.group_norm(x, 32, _t(blobs, f'{name}_gn_s'), _t(blobs, f'{name}_gn_b'), eps=1e-5)
    return x * _t(blobs, f'{name}_bn_s')[None, :, None, None] + _t(blobs, f'{name}_bn_b')[None, :, None, None]


def _conv(x, blobs, name, stride=1, padding=0, groups=1, bias=False):
    b = _t(blobs, f'{name}_b') if bias else None
    return F.conv2d(x, _t(blobs, f'{name}_w'), b, stride=stride, padding=padding, groups=groups)


def reference_resnet(x, blobs, depth, stride_1x1, gn, stages=(2, 3, 4, 5)) -> List[torch.Tensor]:
    """Detectron's ResNet body (add_ResNet_convX_body + bottleneck_transformation)."""
    stem = 'conv1' if gn else 'res_conv1'
    x = F.relu(_norm(_conv(x, blobs, 'conv1', stride=2, padding=3), blobs, stem, gn))
    x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
    outs = []
    for stage, blocks in zip((2, 3, 4, 5), DETECTRON_BLOCKS[depth]):
        if stage not in stages:
            break
        for b in range(blocks):
            p = f'res{stage}_{b}'
            stride = 2 if (b == 0 and stage > 2) else 1
            s1, s3 = (stride, 1) if stride_1x1 else (1, stride)
            w2b = blobs[f'{p}_branch2b_w']
            groups = w2b.shape[0] // w2b.shape[1]
            short = x
            if f'{p}_branch1_w' in blobs:
                short = _norm(_conv(x, blobs, f'{p}_branch1', stride=stride), blobs, f'{p}_branch1', gn)
            y = F.relu(_norm(_conv(x, blobs, f'{p}_branch2a', stride=s1), blobs, f'{p}_branch2a', gn))
            y = F.relu(_norm(_conv(y, blobs, f'{p}_branch2b', stride=s3, padding=1, groups=groups), blobs,
                             f'{p}_branch2b', gn))
            y = _norm(_conv(y, blobs, f'{p}_branch2c'), blobs, f'{p}_branch2c', gn)
            x = F.relu(y + short)
        outs.append(x)
    return outs


def _load(module, state, prefix=''):
    own = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    module.load_state_dict(own, strict=True)
    return module


@pytest.mark.parametrize('name,style,norm_cfg', [
    ('R-50', 'caffe', dict(type='BN', requires_grad=False)),
    ('R-50-GN', 'pytorch', dict(type='GN', num_groups=32, requires_grad=True)),
])
def test_backbone_features_match_detectron(name, style, norm_cfg, r50_pkl, r50_blobs):
    """C2-C5 of the converted mmdet ResNet vs the blob-level reference, 1x3x64x64 input."""
    from mmdet.models.backbones import ResNet
    if name == 'R-50':
        path_or_blobs, blobs = r50_pkl, r50_blobs  # through the real-shape Python-2 pickle
    else:
        blobs = materialize(detectron_shapes(name), seed=7)
        path_or_blobs = dict(blobs)
    state, report = convert_detectron(path_or_blobs)
    assert report.arch['style'] == style
    model = ResNet(depth=50, style=style, norm_cfg=norm_cfg, norm_eval=True, out_indices=(0, 1, 2, 3))
    model.load_state_dict(state, strict=True)
    model.eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = model(x)
        want = reference_resnet(x.double(), blobs, 50, stride_1x1=style == 'caffe', gn=name.endswith('GN'))
    assert len(got) == 4
    for level, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, level
        assert w.abs().max() > 0.1  # the reference is not degenerate
        assert (g.double() - w).abs().max().item() <= TOL, f'C{level + 2}'


def _build(config, part):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mmdet.registry import MODELS
    cfg = Config.fromfile(osp.join(DETECTRON_CONFIGS, config))
    node = cfg.model
    for key in part.split('.'):
        node = node[key]
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(node)


def _features(sizes, channels, seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(1, c, s, s, generator=gen) for c, s in zip(channels, sizes)]


def reference_fpn(feats, blobs, depth, retina):
    """Detectron FPN.add_fpn: top-down from res5, nearest x2, 3x3 outputs; P6 (and P7)."""
    stages = (3, 4, 5) if retina else (2, 3, 4, 5)
    last = {s: f'res{s}_{DETECTRON_BLOCKS[depth][s - 2] - 1}_sum' for s in stages}
    c = dict(zip(stages, feats))
    inner = _conv(c[5], blobs, f'fpn_inner_{last[5]}', bias=True)
    outs = {5: _conv(inner, blobs, f'fpn_{last[5]}', padding=1, bias=True)}
    for s in reversed(stages[:-1]):
        inner = _conv(c[s], blobs, f'fpn_inner_{last[s]}_lateral', bias=True) + F.interpolate(
            inner, scale_factor=2, mode='nearest')
        outs[s] = _conv(inner, blobs, f'fpn_{last[s]}', padding=1, bias=True)
    result = [outs[s] for s in stages]
    if retina:
        p6 = _conv(c[5], blobs, 'fpn_6', stride=2, padding=1, bias=True)
        result += [p6, _conv(F.relu(p6), blobs, 'fpn_7', stride=2, padding=1, bias=True)]
    else:
        result.append(F.max_pool2d(outs[5], kernel_size=1, stride=2))
    return result


@pytest.mark.parametrize('fixture,config,retina', [
    ('faster_rcnn_R-50-FPN', 'faster-rcnn_r50-caffe_fpn_detectron-legacy-1x_coco.py', False),
    ('retinanet_R-50-FPN', 'retinanet_r50-caffe_fpn_detectron-legacy-1x_coco.py', True),
])
def test_fpn_matches_detectron(fixture, config, retina):
    shapes = {k: v for k, v in detectron_shapes(fixture, leftovers=False).items() if k.startswith('fpn_')}
    blobs = materialize(shapes, seed=8)
    state = {k: torch.from_numpy(v) for k, v in blobs.items()}
    from direct_pretrain.checkpoint.detectron.c2_mapping import build_mapping, parse_arch
    table = build_mapping(parse_arch(fixture))
    neck_state = {r.target[len('neck.'):]: state[r.source] for r in table.rules if r.target.startswith('neck.')}
    neck = _build(config, 'neck')
    neck.load_state_dict(neck_state, strict=True)
    channels = (512, 1024, 2048) if retina else (256, 512, 1024, 2048)
    sizes = (16, 8, 4) if retina else (32, 16, 8, 4)
    feats = _features(sizes, channels, seed=9)
    inputs = ([torch.zeros(1, 256, 32, 32)] if retina else []) + feats  # RetinaNet's neck skips C2
    with torch.no_grad():
        got = neck(inputs)
        want = reference_fpn([f.double() for f in feats], blobs, 50, retina)
    assert len(got) == len(want) == 5
    for level, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape
        assert (g.double() - w).abs().max().item() <= TOL, f'P{level + (3 if retina else 2)}'


def test_box_and_mask_heads_match_detectron(mask_rcnn_blobs):
    """fc6/fc7 + softmax classifier + class-specific regression, and the 4conv mask head."""
    blobs = mask_rcnn_blobs
    state, _ = convert_detectron(dict(blobs))
    bbox_head = _build('mask-rcnn_r50-caffe_fpn_detectron-legacy-1x_coco.py', 'roi_head.bbox_head')
    mask_head = _build('mask-rcnn_r50-caffe_fpn_detectron-legacy-1x_coco.py', 'roi_head.mask_head')
    _load(bbox_head, state, 'roi_head.bbox_head.')
    _load(mask_head, state, 'roi_head.mask_head.')
    gen = torch.Generator().manual_seed(10)
    rois = torch.randn(3, 256, 7, 7, generator=gen)
    masks_in = torch.randn(2, 256, 14, 14, generator=gen)
    with torch.no_grad():
        cls, reg = bbox_head(rois)
        logits = mask_head(masks_in)
    x = rois.double().flatten(1)
    x = F.relu(F.linear(x, _t(blobs, 'fc6_w'), _t(blobs, 'fc6_b')))
    x = F.relu(F.linear(x, _t(blobs, 'fc7_w'), _t(blobs, 'fc7_b')))
    det_cls = F.linear(x, _t(blobs, 'cls_score_w'), _t(blobs, 'cls_score_b'))
    det_reg = F.linear(x, _t(blobs, 'bbox_pred_w'), _t(blobs, 'bbox_pred_b'))
    assert (cls[:, :80].double() - det_cls[:, 1:]).abs().max() <= TOL
    assert (cls[:, 80].double() - det_cls[:, 0]).abs().max() <= TOL
    assert (reg.double() - det_reg[:, 4:]).abs().max() <= TOL

    y = masks_in.double()
    for i in range(1, 5):
        y = F.relu(_conv(y, blobs, f'_[mask]_fcn{i}', padding=1, bias=True))
    y = F.relu(F.conv_transpose2d(y, _t(blobs, 'conv5_mask_w'), _t(blobs, 'conv5_mask_b'), stride=2))
    det_logits = _conv(y, blobs, 'mask_fcn_logits', bias=True)
    assert logits.shape == (2, 80, 28, 28)
    assert (logits.double() - det_logits[:, 1:]).abs().max() <= TOL


def test_retinanet_head_channels_follow_the_anchors():
    """Each mmdet anchor's prediction block comes from the Detectron block of the same anchor box."""
    shapes = {k: v for k, v in detectron_shapes('retinanet_R-50-FPN').items() if not k.startswith('fpn_')}
    blobs = materialize(shapes, seed=11)
    state, report = convert_detectron(dict(blobs), 'retinanet_R-50-FPN', allow_missing=True)  # no FPN blobs
    assert all(m.startswith('neck.') for m in report.missing_target)
    head = _build('retinanet_r50-caffe_fpn_detectron-legacy-1x_coco.py', 'bbox_head')
    _load(head, state, 'bbox_head.')
    feat = torch.randn(1, 256, 6, 6, generator=torch.Generator().manual_seed(12))
    with torch.no_grad():
        cls, reg = head.forward_single(feat)
    y, z = feat.double(), feat.double()
    for i in range(4):
        y = F.relu(_conv(y, blobs, f'retnet_cls_conv_n{i}_fpn3', padding=1, bias=True))
        z = F.relu(_conv(z, blobs, f'retnet_bbox_conv_n{i}_fpn3', padding=1, bias=True))
    det_cls = _conv(y, blobs, 'retnet_cls_pred_fpn3', padding=1, bias=True).view(1, 9, 80, 6, 6)
    det_reg = _conv(z, blobs, 'retnet_bbox_pred_fpn3', padding=1, bias=True).view(1, 9, 4, 6, 6)

    stride = 8
    mm_anchors = head.prior_generator.base_anchors[0].double().numpy()  # mmdet order, level P3
    det_anchors = detectron_retina_cell_anchors(stride)  # Detectron order
    for k, box in enumerate(mm_anchors):
        matches = np.flatnonzero(np.abs(det_anchors - box).max(axis=1) < 1e-4)
        assert len(matches) == 1, (k, box)
        j = matches[0]
        assert (cls.view(1, 9, 80, 6, 6)[:, k].double() - det_cls[:, j]).abs().max() <= TOL
        assert (reg.view(1, 9, 4, 6, 6)[:, k].double() - det_reg[:, j]).abs().max() <= TOL
