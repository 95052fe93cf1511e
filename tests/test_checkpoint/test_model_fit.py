"""checkpoint/model_fit.py: a shape mismatch in a class layer reads as the class count it is.

The counts are checked against models mmdet builds with that count (a 3-class head's
checkpoint against the configs' 80- or 4-class heads): the number in the message is the one
the other model was built with, for a softmax box head (background row), a sigmoid anchor
head (anchors x classes), Cascade's three heads and the keypoint head (num_keypoints)."""
import copy
import os.path as osp

import pytest
import torch
from dp_test_utils import REPO_ROOT
from mmengine.config import Config

from direct_pretrain.checkpoint.model_fit import build_model_skeleton, check_checkpoint_fits_model, compare_shapes
from direct_pretrain.errors import CheckpointCheckError


def _cfg(name):
    return Config.fromfile(osp.join(REPO_ROOT, 'configs', name))


def _shapes(model_cfg):
    return {k: tuple(v.shape) for k, v in build_model_skeleton(model_cfg).state_dict().items()}


def _refusal(model_cfg, shapes, **kwargs):
    with pytest.raises(CheckpointCheckError) as info:
        check_checkpoint_fits_model('other.pth', model_cfg, config_name='the config X', finite=False,
                                    state_shapes=shapes, **kwargs)
    assert info.value.problem == 'does_not_fit'
    return str(info.value)


def _with(model_cfg, edit):
    edited = copy.deepcopy(model_cfg)
    edit(edited)
    return edited


def test_sigmoid_anchor_head():
    cfg = _cfg('direct_pretraining/retinanet_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py').model
    three = _with(cfg, lambda m: m.bbox_head.update(num_classes=3))
    assert ("'other.pth' has 3 classes in bbox_head.retina_cls (27 channels = 9 anchors x 3) but the config's head "
            'has 80: set num_classes=3 on every head of the config X (model.bbox_head.num_classes)') in \
        _refusal(cfg, _shapes(three))


def test_cascade_heads_are_all_named():
    cfg = _cfg('direct_pretraining/cascade-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py').model
    seven = _with(cfg, lambda m: [h.update(num_classes=7) for h in m.roi_head.bbox_head])
    message = _refusal(cfg, _shapes(seven))
    assert 'has 7 classes in roi_head.bbox_head.0.fc_cls (8 rows incl. background) but the config\'s head has 80' in \
        message
    assert ('(model.roi_head.bbox_head[0].num_classes, model.roi_head.bbox_head[1].num_classes, '
            'model.roi_head.bbox_head[2].num_classes)') in message


def test_keypoint_head_reads_as_num_keypoints():
    cfg = _cfg('toy/keypoint-rcnn_r18_fpn_1xb2-direct-finetune_toy.py').model
    seventeen = _with(cfg, lambda m: m.roi_head.keypoint_head.update(num_keypoints=17))
    message = _refusal(cfg, _shapes(seventeen))
    assert ('has 17 keypoints in roi_head.keypoint_head.score_lowres (17 heatmap channels) but the config\'s head has '
            '13: set num_keypoints=17 on every head of the config X (model.roi_head.keypoint_head.num_keypoints)') in \
        message


def test_other_mismatches_list_the_tensors_and_allowed_missing_is_honoured():
    cfg = _cfg('toy/mask-rcnn_r18_fpn_1xb2-direct-finetune_toy.py').model
    shapes = _shapes(cfg)
    partial = {k: v for k, v in shapes.items() if not k.startswith('roi_head.mask_head.')}
    partial['extra.weight'] = (1, )
    message = _refusal(cfg, partial, fix='FIX.')
    assert 'does not fit the model of the config X:' in message and 'roi_head.mask_head.' in message
    assert "1 tensor(s) the model does not have (extra.weight)" in message and message.endswith('FIX.')
    del partial['extra.weight']
    fit = check_checkpoint_fits_model('x.pth', cfg, finite=False, state_shapes=partial,
                                      allowed_missing=[r'^roi_head\.mask_head\.'])
    assert fit.complete and fit.allowed_missing and len(fit.matched) == len(partial)
    # a wrapper's "module." prefix is stripped as mmengine's loader strips it
    wrapped = {'module.' + k: v for k, v in shapes.items()}
    assert check_checkpoint_fits_model('x.pth', cfg, finite=False, state_shapes=wrapped).complete


def test_compare_shapes_buckets():
    fit = compare_shapes({'a': (2, ), 'b': (3, ), 'c': (1, )}, {'a': (2, ), 'b': (4, ), 'd': (1, )}, ['^c$'])
    assert fit.matched == ['a'] and fit.allowed_missing == ['c'] and fit.missing == [] and fit.unexpected == ['d']
    assert [str(m) for m in fit.shape_mismatch] == ['b: checkpoint (4,) vs model (3,)'] and not fit.complete


def test_non_finite_weights_are_named(tmp_path):
    cfg = _cfg('toy/mask-rcnn_r18_fpn_1xb2-direct-finetune_toy.py').model
    state = {k: torch.zeros(()).expand(s) if s else torch.zeros(()) for k, s in _shapes(cfg).items()}
    state['backbone.conv1.weight'] = torch.full(state['backbone.conv1.weight'].shape, float('inf'))
    path = tmp_path / 'inf.pth'
    torch.save({'state_dict': state}, path)
    with pytest.raises(CheckpointCheckError) as info:
        check_checkpoint_fits_model(str(path), cfg)
    assert info.value.problem == 'non_finite'
    assert f"checkpoint '{path}' holds non-finite weights (NaN/inf) in 1 of {len(state)} tensors " \
        '(backbone.conv1.weight)' in str(info.value)
