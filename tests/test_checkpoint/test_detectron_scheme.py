"""``detectron://`` through mmengine's loaders, and the convert_detectron CLI in process (as real
processes: test_convert_cli.py)."""
import os.path as osp

import numpy as np
import pytest
import torch
from detectron_fixtures import detectron_shapes, dump_py2_pickle, materialize
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint

from direct_pretrain.checkpoint import convert_detectron
from direct_pretrain.checkpoint.detectron.errors import DetectronArchError


def _resnet50(**kwargs):
    from mmdet.models.backbones import ResNet
    return ResNet(depth=50, style='caffe', norm_cfg=dict(type='BN', requires_grad=False), **kwargs)


def test_load_checkpoint_converts_on_the_fly(r50_pkl, r50_blobs):
    checkpoint = _load_checkpoint('detectron://' + r50_pkl, map_location='cpu')
    expected, _ = convert_detectron(r50_pkl)
    assert set(checkpoint['state_dict']) == set(expected)
    assert checkpoint['meta']['detectron_conversion']['arch']['name'] == 'R-50'
    model = _resnet50()
    load_checkpoint(model, 'detectron://' + r50_pkl, map_location='cpu', strict=True)
    np.testing.assert_array_equal(model.layer3[5].conv2.weight.detach().numpy(), r50_blobs['res4_5_branch2b_w'])
    np.testing.assert_array_equal(model.bn1.weight.detach().numpy(), r50_blobs['res_conv1_bn_s'])


def test_pretrained_init_cfg_uses_the_scheme(r50_pkl, r50_blobs):
    """``init_cfg=dict(type='Pretrained', checkpoint='detectron://...')`` as in the configs."""
    model = _resnet50(init_cfg=dict(type='Pretrained', checkpoint='detectron://' + r50_pkl))
    model.init_weights()
    np.testing.assert_array_equal(model.layer4[2].conv3.weight.detach().numpy(), r50_blobs['res5_2_branch2c_w'])
    assert torch.all(model.layer4[2].bn3.running_var == torch.tensor(1 - 1e-5, dtype=torch.float32))


def test_c4_shared_head_init_from_the_imagenet_file(r50_pkl, r50_blobs):
    """The C4 configs point the res5 RoI head at the same file: its layer4.* keys fill ResLayer."""
    from mmdet.models.roi_heads.shared_heads import ResLayer
    head = ResLayer(depth=50, stage=3, stride=2, style='caffe', norm_cfg=dict(type='BN', requires_grad=False),
                    init_cfg=dict(type='Pretrained', checkpoint='detectron://' + r50_pkl))
    head.init_weights()
    np.testing.assert_array_equal(head.layer4[0].downsample[0].weight.detach().numpy(), r50_blobs['res5_0_branch1_w'])
    np.testing.assert_array_equal(head.layer4[1].bn2.bias.detach().numpy(), r50_blobs['res5_1_branch2b_bn_b'])


def test_scheme_fails_clearly_when_ambiguous(tmp_path, r50_blobs):
    blobs = dict(r50_blobs, conv1_gn_s=np.ones(64, np.float32))
    path = str(tmp_path / 'odd.pkl')
    dump_py2_pickle(blobs, path)
    with pytest.raises(DetectronArchError, match=f'{path}: ambiguous stem norm'):
        _load_checkpoint('detectron://' + path)


def _cli():
    from direct_pretrain.cli import convert_detectron
    return convert_detectron


def test_cli_refuses_unmapped_blobs_unless_allowed(tmp_path, capsys):
    blobs = materialize(detectron_shapes('keypoint_rcnn_R-50-FPN', leftovers=False), seed=4)
    src, out = str(tmp_path / 'kps.pkl'), str(tmp_path / 'kps.pth')
    dump_py2_pickle(dict(blobs=blobs), src)
    cli = _cli()
    # keypoint blobs under a Faster R-CNN arch (auto would convert them as Keypoint R-CNN)
    assert cli.main([src, out, '--arch', 'faster_rcnn_R-50-FPN']) == 2
    assert 'unsupported keypoint head' in capsys.readouterr().err and not osp.exists(out)
    assert cli.main([src, out, '--arch', 'faster_rcnn_R-50-FPN', '--allow-unused']) == 0
    assert 'unsupported (dropped): kps_score_lowres_w' in capsys.readouterr().out
    assert osp.exists(out)
