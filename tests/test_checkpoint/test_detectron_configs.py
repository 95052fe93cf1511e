"""The legacy-faithful Detectron configs build, carry Detectron's settings, and its anchors."""
import ast
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from detectron_fixtures import DETECTRON_CONFIGS, detectron_retina_cell_anchors
from mmengine.config import Config

CONFIGS = sorted(glob.glob(osp.join(DETECTRON_CONFIGS, '*.py')))
DETECTRON_MEANS = [102.9801, 115.9465, 122.7717]


def _roi_layers(model_cfg):
    roi_head = model_cfg.get('roi_head') or {}
    return [roi_head[k]['roi_layer'] for k in ('bbox_roi_extractor', 'mask_roi_extractor') if roi_head.get(k)]


def _coders(model_cfg):
    coders = []
    for head in ('rpn_head', 'bbox_head'):
        if head in model_cfg:
            coders.append(model_cfg[head]['bbox_coder'])
    bbox_heads = (model_cfg.get('roi_head') or {}).get('bbox_head', [])
    for head in bbox_heads if isinstance(bbox_heads, list) else [bbox_heads]:
        coders.append(head['bbox_coder'])
    return coders


def _inheritance_depth(path):
    """Levels of _base_ files, following mmdet:: and relative paths."""
    import mmdet
    root = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')
    bases = []
    for node in ast.parse(open(path).read()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == '_base_' for t in node.targets):
            bases = ast.literal_eval(node.value)
    bases = [bases] if isinstance(bases, str) else bases
    paths = [osp.join(root, b.split('::')[1]) if '::' in b else osp.normpath(osp.join(osp.dirname(path), b))
             for b in bases]
    return 1 + max((_inheritance_depth(p) for p in paths), default=0)


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_with_detectron_settings(path):
    from mmengine.registry import DefaultScope

    from mmdet.registry import MODELS
    import direct_pretrain  # noqa: F401
    assert len(CONFIGS) >= 6
    cfg = Config.fromfile(path)
    model_cfg = cfg.model
    assert _inheritance_depth(path) <= 3
    pre = model_cfg.data_preprocessor
    assert (pre.mean, pre.std, pre.bgr_to_rgb) == (DETECTRON_MEANS, [1.0, 1.0, 1.0], False)
    is_c4 = '-c4' in osp.basename(path)
    is_retina = osp.basename(path).startswith('retinanet')
    assert pre.pad_size_divisor == (1 if is_c4 else 128 if is_retina else 32)
    assert model_cfg.backbone.style == 'caffe' and model_cfg.backbone.norm_cfg.requires_grad is False
    assert model_cfg.backbone.norm_eval is True and model_cfg.backbone.frozen_stages == 1
    assert model_cfg.backbone.init_cfg.checkpoint.startswith('detectron://')
    for layer in _roi_layers(model_cfg):
        assert layer.aligned is False and layer.sampling_ratio == (0 if is_c4 else 2)
    assert all(c.type == 'LegacyDeltaXYWHBBoxCoder' for c in _coders(model_cfg)) and _coders(model_cfg)
    head = model_cfg.bbox_head if is_retina else model_cfg.rpn_head
    assert head.anchor_generator.type == 'DetectronAnchorGenerator'
    test_cfg = model_cfg.test_cfg
    if is_retina:
        assert model_cfg.neck.relu_before_extra_convs is True and model_cfg.neck.add_extra_convs == 'on_input'
        assert (test_cfg.nms_pre, test_cfg.score_thr, test_cfg.nms.iou_threshold, test_cfg.max_per_img) == (
            1000, 0.05, 0.5, 100)
    else:
        assert (test_cfg.rpn.nms_pre, test_cfg.rpn.max_per_img) == ((6000 if is_c4 else 1000), 1000)
        assert (test_cfg.rcnn.score_thr, test_cfg.rcnn.nms.iou_threshold, test_cfg.rcnn.max_per_img) == (0.05, 0.5, 100)
    with torch.device('meta'), DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(model_cfg)
    assert model.backbone.style == 'caffe'


def detectron_rpn_anchors(stride, sizes, aspect_ratios=(0.5, 1.0, 2.0)):
    """generate_anchors(stride, sizes, ratios): ratio-outer, size-inner (see retina reference)."""
    out = []
    for ratio in aspect_ratios:
        for size in sizes:
            # Detectron with a single size and ratio == one row of generate_anchors
            out.append(detectron_retina_cell_anchors(stride, 1, (ratio, ), size / stride)[0])
    return np.array(out)


def test_rpn_anchors_equal_detectron():
    """FPN P2-P6 and C4 anchors; includes the reference doc's P2 example [-22, -10, 25, 13]."""
    from mmdet.registry import TASK_UTILS
    import direct_pretrain  # noqa: F401
    fpn = TASK_UTILS.build(dict(type='DetectronAnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                                strides=[4, 8, 16, 32, 64]))
    for level, stride in enumerate((4, 8, 16, 32, 64)):
        want = detectron_rpn_anchors(stride, (stride * 8, ))
        np.testing.assert_allclose(fpn.base_anchors[level].numpy(), want, atol=1e-4)
    np.testing.assert_array_equal(fpn.base_anchors[0][0].numpy(), [-22, -10, 25, 13])
    legacy = TASK_UTILS.build(dict(type='LegacyAnchorGenerator', center_offset=0.5, scales=[8],
                                   ratios=[0.5, 1.0, 2.0], strides=[4]))
    assert not torch.equal(legacy.base_anchors[0], fpn.base_anchors[0][:3])  # why a new generator is needed

    c4 = TASK_UTILS.build(dict(type='DetectronAnchorGenerator', scales=[2, 4, 8, 16, 32], ratios=[0.5, 1.0, 2.0],
                               strides=[16]))
    np.testing.assert_allclose(c4.base_anchors[0].numpy(), detectron_rpn_anchors(16, (32, 64, 128, 256, 512)),
                               atol=1e-4)
    # grid: Detectron shifts x fastest, A anchors per location
    grid = c4.grid_priors([(2, 3)], device='cpu')[0].numpy()
    shifts = np.array([[x * 16, y * 16, x * 16, y * 16] for y in range(2) for x in range(3)])
    want = (shifts[:, None, :] + detectron_rpn_anchors(16, (32, 64, 128, 256, 512))[None]).reshape(-1, 4)
    np.testing.assert_allclose(grid, want, atol=1e-4)


def test_retinanet_anchors_are_detectrons_in_mmdet_order():
    """Same boxes as Detectron's cell anchors on every level; order = mmdet ratio-outer."""
    from mmdet.registry import TASK_UTILS
    import direct_pretrain  # noqa: F401
    from direct_pretrain.checkpoint.detectron.c2_mapping import parse_arch
    from direct_pretrain.checkpoint.detectron.converter import retina_anchor_permutation
    gen = TASK_UTILS.build(dict(type='DetectronAnchorGenerator', octave_base_scale=4, scales_per_octave=3,
                                ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128]))
    perm = retina_anchor_permutation(parse_arch('retinanet_R-50-FPN'))
    for level, stride in enumerate((8, 16, 32, 64, 128)):
        det = detectron_retina_cell_anchors(stride)
        np.testing.assert_allclose(gen.base_anchors[level].numpy(), det[perm], atol=1e-4)


def test_converted_retinanet_predicts_with_detectron_conventions():
    """Full predict path: pad to 128, Detectron anchors, legacy clipping to (W - 1, H - 1), score >= 0.05."""
    from detectron_fixtures import detectron_shapes, materialize
    from mmengine.registry import DefaultScope

    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from direct_pretrain.checkpoint import convert_detectron
    state, _ = convert_detectron(materialize(detectron_shapes('retinanet_R-50-FPN'), seed=13))
    cfg = Config.fromfile(osp.join(DETECTRON_CONFIGS, 'retinanet_r50-caffe_fpn_detectron-legacy-1x_coco.py'))
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    model.load_state_dict(state, strict=True)
    model.eval()
    image = torch.randint(0, 256, (3, 120, 150), generator=torch.Generator().manual_seed(0)).float()
    sample = DetDataSample(metainfo=dict(img_shape=(120, 150), ori_shape=(120, 150), scale_factor=(1.0, 1.0)))
    data = model.data_preprocessor(dict(inputs=[image], data_samples=[sample]), False)
    assert tuple(data['inputs'].shape[-2:]) == (128, 256)
    with torch.no_grad():
        pred = model.predict(data['inputs'], data['data_samples'])[0].pred_instances
    assert 0 < len(pred) <= 100 and bool((pred.scores >= 0.05).all())
    boxes = pred.bboxes
    assert float(boxes[:, 0::2].max()) <= 149 and float(boxes[:, 1::2].max()) <= 119 and float(boxes.min()) >= 0
