"""Detectron -> mmdet mapping: every blob consumed, every parameter filled, class layout, errors."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from detectron_fixtures import DETECTRON_BLOCKS, DETECTRON_CONFIGS, build_meta_model, detectron_shapes, materialize

import mmdet
from direct_pretrain.checkpoint.detectron import convert_detectron, converter as detectron_converter, infer_arch
from direct_pretrain.checkpoint.detectron.c2_mapping import C2Arch, MappingTable, Rule, parse_arch
from direct_pretrain.checkpoint.detectron.converter import plan_conversion
from direct_pretrain.checkpoint.detectron.errors import (DetectronArchError, MappingConflictError, MissingTargetError,
                                                         ShapeMismatchError, UnmappedBlobsError)
from direct_pretrain.checkpoint.detectron.reader import DetectronBlobs

MMDET_CONFIGS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')

BACKBONES = {
    # name: (mmdet type, depth, extra kwargs, norm)
    'R-50': ('ResNet', 50, dict(style='caffe'), 'BN'),
    'R-101': ('ResNet', 101, dict(style='caffe'), 'BN'),
    'R-152': ('ResNet', 152, dict(style='caffe'), 'BN'),
    'X-101-32x8d': ('ResNeXt', 101, dict(groups=32, base_width=8), 'BN'),
    'X-101-64x4d': ('ResNeXt', 101, dict(groups=64, base_width=4), 'BN'),
    'X-152-32x8d-IN5k': ('ResNeXt', 152, dict(groups=32, base_width=8), 'BN'),
    'R-50-GN': ('ResNet', 50, dict(), 'GN'),
    'R-101-GN': ('ResNet', 101, dict(), 'GN'),
}


def _shapes_of(module):
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def _produced(report):
    return {e.target: e.shape for e in report.converted + report.synthesized}


@pytest.mark.parametrize('name', list(BACKBONES))
def test_imagenet_backbones_fill_every_parameter(name):
    """Names/shapes of every ImageNet file against the real mmdet backbone (meta device)."""
    from mmdet.registry import MODELS
    kind, depth, kwargs, norm = BACKBONES[name]
    shapes = detectron_shapes(name)
    arch = infer_arch(shapes)
    assert arch == parse_arch(name)
    assert (arch.depth, arch.norm) == (depth, 'gn' if norm == 'GN' else 'affine')
    assert arch.style == kwargs.get('style', 'pytorch')  # MSRA: stride on 1x1; ResNeXt/GN: on 3x3
    norm_cfg = dict(type='GN', num_groups=32) if norm == 'GN' else dict(type='BN', requires_grad=False)
    with torch.device('meta'):
        model = MODELS.build(dict(type=kind, depth=depth, norm_cfg=norm_cfg, **kwargs))
    _, report, _ = plan_conversion(shapes, arch)
    assert _produced(report) == _shapes_of(model)
    assert report.unused_source == [] and report.missing_target == [] and report.unsupported == {}
    leftovers = {'fc1000_w', 'fc1000_b', 'conv1_b'} if name.startswith('R-') and norm == 'BN' else {'pred_w', 'pred_b'}
    assert set(report.ignored_leftovers) == leftovers
    consumed = {e.source for e in report.converted}
    assert consumed | leftovers == set(shapes)


DETECTORS = [
    # (fixture name, config, overrides)
    ('faster_rcnn_R-50-FPN', 'faster-rcnn_r50-caffe_fpn_detectron-legacy-1x_coco.py', {}),
    ('mask_rcnn_R-50-FPN', 'mask-rcnn_r50-caffe_fpn_detectron-legacy-1x_coco.py', {}),
    ('mask_rcnn_R-101-FPN', 'mask-rcnn_r50-caffe_fpn_detectron-legacy-1x_coco.py', {'backbone.depth': 101}),
    ('retinanet_R-50-FPN', 'retinanet_r50-caffe_fpn_detectron-legacy-1x_coco.py', {}),
    ('faster_rcnn_R-50-C4', 'faster-rcnn_r50-caffe-c4_detectron-legacy-1x_coco.py', {}),
    ('mask_rcnn_R-101-C4', 'mask-rcnn_r50-caffe-c4_detectron-legacy-1x_coco.py',
     {'backbone.depth': 101, 'roi_head.shared_head.depth': 101}),
    ('cascade_rcnn_R-50-FPN', 'cascade-rcnn_r50-caffe_fpn_detectron-legacy-1x_coco.py', {}),
    ('mask_rcnn_R-50-GN-FPN', osp.join(MMDET_CONFIGS, 'gn', 'mask-rcnn_r50_fpn_gn-all_2x_coco.py'), {}),
]


@pytest.mark.parametrize('name,config,overrides', DETECTORS)
def test_detectors_fill_every_parameter(name, config, overrides):
    """Each model-zoo layout against the detector its config builds: same keys, same shapes."""
    shapes = detectron_shapes(name)
    arch = infer_arch(shapes)
    assert arch.name == name
    assert arch == parse_arch(name)
    model = build_meta_model(config if osp.isabs(config) else osp.join(DETECTRON_CONFIGS, config), **overrides)
    _, report, _ = plan_conversion(shapes, arch)
    expected = _shapes_of(model)
    produced = _produced(report)
    assert sorted(set(expected) - set(produced)) == []
    assert sorted(set(produced) - set(expected)) == []
    assert {k: v for k, v in produced.items() if expected[k] != v} == {}
    assert report.unused_source == [] and report.missing_target == []
    assert {e.source for e in report.converted} | set(report.ignored_leftovers) == set(shapes)


def test_detector_file_end_to_end(mask_rcnn_pkl, mask_rcnn_blobs, tmp_path):
    """Nested model_final.pkl with momentum: converted, checked against the built model, report JSON."""
    model = build_meta_model(osp.join(DETECTRON_CONFIGS, 'mask-rcnn_r50-caffe_fpn_detectron-legacy-1x_coco.py'))
    state, report = convert_detectron(mask_rcnn_pkl, target=model)
    assert report.ok and report.layout == 'nested'
    assert len(report.momentum_dropped) > 0 and all(n.endswith('_momentum') for n in report.momentum_dropped)
    assert set(state) == set(model.state_dict())
    # a plain rename is bit-exact, and its source is recorded
    np.testing.assert_array_equal(state['neck.lateral_convs.1.conv.weight'].numpy(),
                                  mask_rcnn_blobs['fpn_inner_res3_3_sum_lateral_w'])
    np.testing.assert_array_equal(state['roi_head.mask_head.upsample.weight'].numpy(), mask_rcnn_blobs['conv5_mask_w'])
    assert report.source_of['backbone.layer3.5.conv2.weight'] == 'res4_5_branch2b_w'
    # AffineChannel -> BN identity: (x - 0) / sqrt(var + eps) == x exactly in float32
    var = state['backbone.layer1.0.bn1.running_var']
    assert torch.all(torch.sqrt(var + torch.tensor(1e-5, dtype=torch.float32)) == 1)
    assert torch.all(state['backbone.layer1.0.bn1.running_mean'] == 0)
    path = tmp_path / 'report.json'
    report.to_json(str(path))
    data = json.loads(path.read_text())
    assert data['ok'] and len(data['converted']) == len(report.converted)


def test_class_layout_on_known_rows():
    """Background row 0 -> last for cls_score, its 4 rows dropped from bbox_pred, channel 0 of mask logits."""
    shapes = detectron_shapes('mask_rcnn_R-50-FPN', leftovers=False)

    def rows(name, shape, rng):  # row i holds the value i, so every move is visible
        if name.startswith(('cls_score', 'bbox_pred', 'mask_fcn_logits')):
            index = np.arange(shape[0], dtype=np.float32).reshape((-1, ) + (1, ) * (len(shape) - 1))
            return np.broadcast_to(index, shape).copy()
        return None

    blobs = materialize(shapes, make=rows)
    state, report = convert_detectron(blobs)
    cls_w = state['roi_head.bbox_head.fc_cls.weight'][:, 0].numpy()
    np.testing.assert_array_equal(cls_w, np.r_[np.arange(1, 81), 0])  # person (Detectron 1) is mmdet 0
    np.testing.assert_array_equal(state['roi_head.bbox_head.fc_cls.bias'].numpy(), np.r_[np.arange(1, 81), 0])
    np.testing.assert_array_equal(state['roi_head.bbox_head.fc_reg.weight'][:, 0].numpy(), np.arange(4, 324))
    np.testing.assert_array_equal(state['roi_head.mask_head.conv_logits.weight'][:, 0, 0, 0].numpy(),
                                  np.arange(1, 81))
    np.testing.assert_array_equal(state['roi_head.mask_head.conv_logits.bias'].numpy(), np.arange(1, 81))
    assert any('moved background row 0' in e for e in report.edits)


def test_softmax_scores_follow_the_classes(mask_rcnn_blobs):
    """mmdet's softmax over the converted classifier = Detectron's, with class c+1 -> c and bg last."""
    state, _ = convert_detectron(dict(mask_rcnn_blobs))
    x = torch.randn(5, 1024, dtype=torch.float64)
    det = torch.softmax(x @ torch.from_numpy(mask_rcnn_blobs['cls_score_w']).double().T
                        + torch.from_numpy(mask_rcnn_blobs['cls_score_b']).double(), dim=1)
    mm = torch.softmax(x @ state['roi_head.bbox_head.fc_cls.weight'].double().T
                       + state['roi_head.bbox_head.fc_cls.bias'].double(), dim=1)
    torch.testing.assert_close(mm[:, :80], det[:, 1:])
    torch.testing.assert_close(mm[:, 80], det[:, 0])


def test_cascade_stages_and_agnostic_rows():
    shapes = detectron_shapes('cascade_rcnn_R-50-FPN', leftovers=False)
    blobs = materialize(shapes, seed=5)
    state, report = convert_detectron(blobs)
    for stage, suffix in enumerate(('', '_2', '_3')):
        prefix = f'roi_head.bbox_head.{stage}'
        np.testing.assert_array_equal(state[f'{prefix}.shared_fcs.0.weight'].numpy(), blobs[f'fc6{suffix}_w'])
        np.testing.assert_array_equal(state[f'{prefix}.shared_fcs.1.bias'].numpy(), blobs[f'fc7{suffix}_b'])
        np.testing.assert_array_equal(state[f'{prefix}.fc_reg.weight'].numpy(), blobs[f'bbox_pred{suffix}_w'][4:8])
        np.testing.assert_array_equal(state[f'{prefix}.fc_cls.bias'].numpy()[:80], blobs[f'cls_score{suffix}_b'][1:])
    assert sum('class-agnostic' in e for e in report.edits) == 6


def test_unknown_and_missing_blobs_are_errors_unless_allowed(r50_blobs):
    blobs = dict(r50_blobs)
    blobs['my_extra_w'] = np.zeros(3, np.float32)
    with pytest.raises(UnmappedBlobsError, match='my_extra_w'):
        convert_detectron(blobs)
    _, report = convert_detectron(blobs, allow_unused=True)
    assert report.unused_source == ['my_extra_w']

    del blobs['my_extra_w'], blobs['res3_2_branch2b_w']
    with pytest.raises(MissingTargetError, match=r'layer2\.2\.conv2\.weight \(needs blob res3_2_branch2b_w\)'):
        convert_detectron(blobs)
    state, report = convert_detectron(blobs, allow_missing=True)
    assert 'layer2.2.conv2.weight' not in state and len(report.missing_target) == 1


def test_explicit_arch_mismatch_names_the_likely_arch(r50_blobs):
    with pytest.raises(MissingTargetError, match=r'R-101.*look like R-50'):
        convert_detectron(dict(r50_blobs), 'R-101')


def test_shape_mismatch_against_target_model(r50_blobs):
    from mmdet.models.backbones import ResNeXt
    with torch.device('meta'):
        target = ResNeXt(depth=50, groups=32, base_width=4)
    with pytest.raises(ShapeMismatchError, match=r'layer1\.0\.conv1\.weight: converted \(64, 64, 1, 1\) from '
                                                 r'res2_0_branch2a_w vs target \(128, 64, 1, 1\)'):
        convert_detectron(dict(r50_blobs), target=target)


def test_ambiguous_files_fail_clearly(r50_blobs):
    retina = detectron_shapes('retinanet_R-50-FPN')
    both = dict(retina, **{'conv_rpn_fpn2_w': (256, 256, 3, 3)})
    with pytest.raises(DetectronArchError, match='retnet_.*conv_rpn_fpn2_w'):
        infer_arch(both)
    with pytest.raises(DetectronArchError, match='res_conv1_bn_s.*conv1_gn_s'):
        infer_arch(dict(r50_blobs, conv1_gn_s=(64, )))
    odd = {k: v for k, v in detectron_shapes('R-50').items() if not k.startswith('res4_5_')}
    with pytest.raises(DetectronArchError, match=r'\(3, 4, 5, 3\)'):
        infer_arch(odd)
    with pytest.raises(DetectronArchError, match='not a Detectron ResNet'):
        convert_detectron({'w': np.zeros(3, np.float32)})
    cascade_mask = dict(detectron_shapes('cascade_rcnn_R-50-FPN'), mask_fcn_logits_w=(81, 256, 1, 1))
    with pytest.raises(DetectronArchError, match='Cascade Mask'):
        infer_arch(cascade_mask)
    with pytest.raises(DetectronArchError, match='cannot parse'):
        parse_arch('resnet50')


def test_parse_arch_names():
    assert parse_arch('e2e_mask_rcnn_R-101-FPN_2x') == C2Arch(depth=101, detector='mask_rcnn', body='fpn')
    arch = parse_arch('e2e_mask_rcnn_R-50-FPN_2x_gn')
    assert (arch.norm, arch.fpn_norm, arch.box_head, arch.head_norm, arch.style) == ('gn', 'gn', '4conv1fc', 'gn',
                                                                                      'pytorch')
    c4 = parse_arch('mask_rcnn_R-50-C4')
    assert (c4.body, c4.box_head, c4.mask_convs) == ('c4', 'res5', 0)
    assert parse_arch('e2e_mask_rcnn_X-152-32x8d-FPN-IN5k_1.44x').name == 'mask_rcnn_X-152-32x8d-FPN'
    assert parse_arch('retinanet_X-101-64x4d-FPN_1x') == C2Arch(depth=101, groups=64, base_width=4, style='pytorch',
                                                                detector='retinanet', body='fpn')
    x = parse_arch('X-152-32x8d-IN5k')
    assert (x.depth, x.groups, x.base_width, x.style, x.detector) == (152, 32, 8, 'pytorch', 'backbone')


def test_cfg_overrides_the_stride_convention(r50_blobs):
    """STRIDE_1X1 in a model-zoo cfg wins over the naming convention."""
    cfg = {'RESNETS': {'STRIDE_1X1': False}}
    blobs = DetectronBlobs(blobs=dict(r50_blobs), cfg=cfg)
    _, report = convert_detectron(blobs)
    assert report.arch['style'] == 'pytorch'


def test_block_counts_agree_with_mmdet_arch_settings():
    """The fixture's Detectron block counts (written from Detectron's ResNet.py) match mmdet's table."""
    from mmdet.models.backbones.resnet import ResNet
    for depth, counts in DETECTRON_BLOCKS.items():
        assert tuple(ResNet.arch_settings[depth][1]) == counts


def test_renaming_must_be_one_to_one(monkeypatch):
    shapes = {'a_w': (1, ), 'b_w': (1, )}
    arch = parse_arch('R-50')
    conflict = MappingTable(arch, [Rule('a_w', 'x.weight'), Rule('b_w', 'x.weight')], [])
    monkeypatch.setattr(detectron_converter, 'build_mapping', lambda _: conflict)
    with pytest.raises(MappingConflictError, match='b_w and a_w both map to x.weight'):
        plan_conversion(shapes, arch)
    twice = MappingTable(arch, [Rule('a_w', 'x.weight'), Rule('a_w', 'y.weight')], [])
    monkeypatch.setattr(detectron_converter, 'build_mapping', lambda _: twice)
    with pytest.raises(MappingConflictError, match='a_w maps to both x.weight and y.weight'):
        plan_conversion(shapes, arch)
