"""Detectron Keypoint R-CNN weights: arch inference, the key table, and numerics.

The reference runs Detectron's keypoint head straight from the blobs with plain torch ops in
float64 (``roi_pose_head_v1convX``: 3x3 conv + ReLU x 8 on ``_[pose]_roi_feat``,
``kps_score_lowres`` transposed conv k4 s2 p1, then ``BilinearInterpolation`` = the
``kps_score`` transposed conv k4 s2 p1 with the file's fixed kernel).
"""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from detectron_fixtures import DETECTRON_CONFIGS, build_meta_model, detectron_shapes, materialize, write_detectron_pkl

from direct_pretrain.checkpoint import convert_detectron
from direct_pretrain.checkpoint.detectron.c2_mapping import parse_arch
from direct_pretrain.checkpoint.detectron.errors import DetectronArchError, UnmappedBlobsError

LEGACY = osp.join(DETECTRON_CONFIGS, 'keypoint-rcnn_r50-caffe_fpn_detectron-legacy-1x_coco-keypoints.py')
REL_TOL = 1e-5


def detectron_upsample_blobs(num_keypoints=17, up_scale=2):
    """kps_score_w/b as Detectron's BilinearInterpolation creates them (detector.py)."""
    size = 2 * up_scale
    factor = (size + 1) // 2
    center = factor - 0.5
    og = np.ogrid[:size, :size]
    filt = (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)
    kernel = np.zeros((num_keypoints, num_keypoints, size, size), dtype=np.float32)
    kernel[range(num_keypoints), range(num_keypoints), :, :] = filt
    return {'kps_score_w': kernel, 'kps_score_b': np.zeros(num_keypoints, np.float32)}


@pytest.fixture(scope='module')
def keypoint_blobs():
    """e2e_keypoint_rcnn_R-50-FPN look-alike: 2 softmax classes (bg, person), 17 keypoints."""
    blobs = materialize(detectron_shapes('keypoint_rcnn_R-50-FPN', num_classes=2), seed=21)
    blobs.update(detectron_upsample_blobs())
    return blobs


def _t(blobs, name):
    return torch.from_numpy(blobs[name]).double()


def reference_keypoint_head(x, blobs):
    for i in range(1, 9):
        x = F.relu(F.conv2d(x, _t(blobs, f'conv_fcn{i}_w'), _t(blobs, f'conv_fcn{i}_b'), padding=1))
    x = F.conv_transpose2d(x, _t(blobs, 'kps_score_lowres_w'), _t(blobs, 'kps_score_lowres_b'), stride=2, padding=1)
    return F.conv_transpose2d(x, _t(blobs, 'kps_score_w'), _t(blobs, 'kps_score_b'), stride=2, padding=1)


def test_arch_is_inferred_and_every_blob_is_accounted_for(keypoint_blobs):
    state, report = convert_detectron(dict(keypoint_blobs))
    assert report.arch['detector'] == 'keypoint_rcnn' and report.arch['name'] == 'keypoint_rcnn_R-50-FPN'
    assert report.arch['keypoint_convs'] == 8 and report.ok
    assert report.fixed_blobs == ['kps_score_b', 'kps_score_w'] and 'fixed blobs checked' in report.summary()
    sources = report.source_of
    for i in range(8):
        assert sources[f'roi_head.keypoint_head.convs.{i}.conv.weight'] == f'conv_fcn{i + 1}_w'
    np.testing.assert_array_equal(state['roi_head.keypoint_head.score_lowres.weight'].numpy(),
                                  keypoint_blobs['kps_score_lowres_w'])
    assert state['roi_head.bbox_head.fc_cls.weight'].shape == (2, 1024)  # person, background
    np.testing.assert_array_equal(state['roi_head.bbox_head.fc_cls.weight'][1].numpy(),
                                  keypoint_blobs['cls_score_w'][0])
    assert state['roi_head.bbox_head.fc_reg.weight'].shape == (4, 1024)


def test_converted_weights_fill_the_legacy_config_exactly(keypoint_blobs):
    model = build_meta_model(LEGACY)
    _, report = convert_detectron(dict(keypoint_blobs), target=model)
    assert report.ok, (report.missing_target, report.unexpected_target, report.shape_mismatches)


def test_keypoint_head_matches_detectron(keypoint_blobs):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mmdet.registry import MODELS
    state, _ = convert_detectron(dict(keypoint_blobs))
    cfg = Config.fromfile(LEGACY)
    with DefaultScope.overwrite_default_scope('mmdet'):
        head = MODELS.build(cfg.model.roi_head.keypoint_head)
    prefix = 'roi_head.keypoint_head.'
    head.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
    head.eval()
    feats = torch.randn(2, 256, 14, 14, generator=torch.Generator().manual_seed(22))
    with torch.no_grad():
        got = head(feats)
    want = reference_keypoint_head(feats.double(), keypoint_blobs)
    assert got.shape == want.shape == (2, 17, 56, 56)
    scale = want.abs().max()
    assert scale > 0.1
    assert ((got.double() - want).abs().max() / scale).item() <= REL_TOL


def test_fixed_upsampling_must_be_detectrons(keypoint_blobs):
    blobs = dict(keypoint_blobs)
    blobs['kps_score_w'] = blobs['kps_score_w'] * 1.5
    with pytest.raises(DetectronArchError, match='bilinear upsampling kernel'):
        convert_detectron(blobs)
    blobs = dict(keypoint_blobs)
    blobs['kps_score_b'] = np.ones(17, np.float32)
    with pytest.raises(DetectronArchError, match='kps_score_b is not zero'):
        convert_detectron(blobs)


def test_keypoint_blobs_under_another_arch_are_reported(keypoint_blobs):
    with pytest.raises(UnmappedBlobsError, match='unsupported keypoint head'):
        convert_detectron(dict(keypoint_blobs), 'faster_rcnn_R-50-FPN')
    state, report = convert_detectron(dict(keypoint_blobs), 'faster_rcnn_R-50-FPN', allow_unused=True)
    assert set(report.unsupported) == {n for n in keypoint_blobs if n.startswith(('conv_fcn', 'kps_'))}
    assert not any(k.startswith('roi_head.keypoint_head') for k in state)


def test_names_and_ambiguities(keypoint_blobs):
    arch = parse_arch('e2e_keypoint_rcnn_R-50-FPN_s1x')
    assert (arch.detector, arch.body, arch.keypoint_convs) == ('keypoint_rcnn', 'fpn', 8)
    with pytest.raises(DetectronArchError, match='only FPN Keypoint R-CNN'):
        parse_arch('keypoint_rcnn_R-50-C4')
    mixed = dict(keypoint_blobs)
    mixed['mask_fcn_logits_w'] = np.zeros((2, 256, 1, 1), np.float32)
    with pytest.raises(DetectronArchError, match='Mask/Cascade \\+ Keypoint'):
        convert_detectron(mixed)


def test_detectron_scheme_loads_a_keypoint_model_zoo_file(tmp_path, keypoint_blobs):
    from mmengine.runner.checkpoint import _load_checkpoint
    path = str(tmp_path / 'model_final.pkl')
    write_detectron_pkl(path, keypoint_blobs, nested=True, momentum=True)
    checkpoint = _load_checkpoint('detectron://' + path)
    np.testing.assert_array_equal(checkpoint['state_dict']['roi_head.keypoint_head.convs.7.conv.bias'].numpy(),
                                  keypoint_blobs['conv_fcn8_b'])
    assert checkpoint['meta']['detectron_conversion']['arch']['detector'] == 'keypoint_rcnn'
