"""Detectron (Caffe2) weight fixtures with Detectron's exact blob names and shapes.

Written from Detectron's model-building code (``modeling/ResNet.py``, ``FPN.py``,
``rpn_heads.py``, ``fast_rcnn_heads.py``, ``mask_rcnn_heads.py``, ``retinanet_heads.py``,
``keypoint_rcnn_heads.py``), independently of the converter's tables: block counts,
widths and names are spelled out here again on purpose. No download is needed.

``detectron_shapes(name)`` gives ``{blob: shape}`` (cheap, for 150-layer models),
``materialize`` fills them with random values, ``dump_py2_pickle`` writes a pickle as
Python 2 + numpy 1 wrote Detectron files (protocol 2, ``str`` payloads that Python 3
must decode as latin-1, ``numpy.core.multiarray._reconstruct``), and
``dump_py3_pickle`` the Python-3 protocol-2 variant (``_codecs.encode`` for bytes).
``build_meta_model`` and ``python_env`` are small helpers shared by the test modules.
"""
import io
import os.path as osp
import pickle
import re
import struct
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

import numpy as np

__all__ = [
    'DETECTRON_BLOCKS', 'LEFTOVERS', 'detectron_shapes', 'materialize', 'add_momentum', 'dump_py2_pickle',
    'dump_py3_pickle', 'write_detectron_pkl', 'detectron_cfg_yaml', 'REPO_ROOT', 'DETECTRON_CONFIGS',
    'build_meta_model', 'python_env', 'detectron_retina_cell_anchors'
]

from dp_test_utils import REPO_ROOT, python_env  # noqa: E402  (re-exported for the checkpoint tests)

DETECTRON_CONFIGS = osp.join(REPO_ROOT, 'configs', 'detectron')

Shape = Tuple[int, ...]

# Detectron modeling/ResNet.py: add_ResNet{50,101,152}_conv5_body block counts.
DETECTRON_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}

# Blobs "preserved" from the ImageNet init files into model_final.pkl.
LEFTOVERS = {'fc1000_w': (1000, 2048), 'fc1000_b': (1000, ), 'conv1_b': (64, )}
LEFTOVERS_FB = {'pred_w': (1000, 2048), 'pred_b': (1000, )}

_NAME_RE = re.compile(r'^(?:(?P<det>faster_rcnn|mask_rcnn|retinanet|cascade_rcnn|keypoint_rcnn)_)?'
                      r'(?P<kind>[RX])-(?P<depth>\d+)(?:-(?P<g>\d+)x(?P<w>\d+)d)?(?:-IN5k)?(?P<gn>-GN)?'
                      r'(?:-(?P<body>FPN|C4))?$')


def _conv(shapes: Dict[str, Shape], name: str, cout: int, cin: int, k: int, bias: bool = True) -> None:
    shapes[f'{name}_w'] = (cout, cin, k, k)
    if bias:
        shapes[f'{name}_b'] = (cout, )


def _deconv(shapes: Dict[str, Shape], name: str, cin: int, cout: int, k: int) -> None:
    """Caffe2 ConvTranspose: weight (dim_in, dim_out, k, k), bias (dim_out,)."""
    shapes[f'{name}_w'] = (cin, cout, k, k)
    shapes[f'{name}_b'] = (cout, )


def _norm(shapes: Dict[str, Shape], name: str, channels: int, gn: bool) -> None:
    # AffineChannel(name + '_bn') or SpatialGN(name + '_gn'): params _s, _b
    tag = '_gn' if gn else '_bn'
    shapes[f'{name}{tag}_s'] = (channels, )
    shapes[f'{name}{tag}_b'] = (channels, )


def _resnet(shapes: Dict[str, Shape], depth: int, groups: int, width: int, gn: bool, stages: Iterable[int]) -> None:
    stages = tuple(stages)
    if 2 in stages:  # stem: conv1 (no bias) + res_conv1_bn (AffineChannel) or conv1_gn
        _conv(shapes, 'conv1', 64, 3, 7, bias=False)
        _norm(shapes, 'conv1' if gn else 'res_conv1', 64, gn)
    dim_in, dim_inner, dim_out = 64, groups * width, 256
    for stage, blocks in zip((2, 3, 4, 5), DETECTRON_BLOCKS[depth]):
        if stage in stages:
            for b in range(blocks):
                prefix = f'res{stage}_{b}'
                block_in = dim_in if b == 0 else dim_out
                if block_in != dim_out:  # add_shortcut: projection
                    _conv(shapes, f'{prefix}_branch1', dim_out, block_in, 1, bias=False)
                    _norm(shapes, f'{prefix}_branch1', dim_out, gn)
                _conv(shapes, f'{prefix}_branch2a', dim_inner, block_in, 1, bias=False)
                _norm(shapes, f'{prefix}_branch2a', dim_inner, gn)
                _conv(shapes, f'{prefix}_branch2b', dim_inner, dim_inner // groups, 3, bias=False)
                _norm(shapes, f'{prefix}_branch2b', dim_inner, gn)
                _conv(shapes, f'{prefix}_branch2c', dim_out, dim_inner, 1, bias=False)
                _norm(shapes, f'{prefix}_branch2c', dim_out, gn)
        dim_in, dim_inner, dim_out = dim_out, dim_inner * 2, dim_out * 2


def _fpn(shapes: Dict[str, Shape], depth: int, levels: Tuple[int, ...], gn: bool, extra: bool) -> None:
    """FPN.add_fpn: fpn_inner_<top blob> (top), fpn_inner_<blob>_lateral, fpn_<blob>; P6/P7 convs."""
    dims = {2: 256, 3: 512, 4: 1024, 5: 2048}
    for stage in levels:
        blob = f'res{stage}_{DETECTRON_BLOCKS[depth][stage - 2] - 1}_sum'
        inner = f'fpn_inner_{blob}' if stage == 5 else f'fpn_inner_{blob}_lateral'
        for name, cin, k in ((inner, dims[stage], 1), (f'fpn_{blob}', 256, 3)):
            _conv(shapes, name, 256, cin, k, bias=not gn)
            if gn:
                _norm(shapes, name, 256, True)
    if extra:  # RetinaNet: fpn_6 on res5_2_sum (2048 ch), fpn_7 on relu(P6)
        _conv(shapes, 'fpn_6', 256, 2048, 3)
        _conv(shapes, 'fpn_7', 256, 256, 3)


def _box_head(shapes: Dict[str, Shape], dim_in: int, suffix: str, agnostic: bool, four_conv_gn: bool,
              num_classes: int = 81) -> None:
    if dim_in == 2048:  # C4: res5 head + average pool, then the predictors
        pass
    elif four_conv_gn:  # roi_Xconv1fc_gn_head
        for i in range(1, 5):
            _conv(shapes, f'head_conv{i}{suffix}', 256, 256, 3, bias=False)
            _norm(shapes, f'head_conv{i}{suffix}', 256, True)
        shapes[f'fc6{suffix}_w'], shapes[f'fc6{suffix}_b'] = (1024, 256 * 7 * 7), (1024, )
        dim_in = 1024
    else:  # roi_2mlp_head
        shapes[f'fc6{suffix}_w'], shapes[f'fc6{suffix}_b'] = (1024, 256 * 7 * 7), (1024, )
        shapes[f'fc7{suffix}_w'], shapes[f'fc7{suffix}_b'] = (1024, 1024), (1024, )
        dim_in = 1024
    shapes[f'cls_score{suffix}_w'], shapes[f'cls_score{suffix}_b'] = (num_classes, dim_in), (num_classes, )
    rows = 8 if agnostic else 4 * num_classes
    shapes[f'bbox_pred{suffix}_w'], shapes[f'bbox_pred{suffix}_b'] = (rows, dim_in), (rows, )


def detectron_shapes(name: str, leftovers: bool = True, num_classes: int = 81) -> Dict[str, Shape]:
    """``{blob: shape}`` of a Detectron file.

    Args:
        name (str): ``R-50``, ``X-101-32x8d``, ``R-50-GN``, ``X-152-32x8d-IN5k`` (ImageNet),
            or ``{faster_rcnn|mask_rcnn|retinanet|cascade_rcnn|keypoint_rcnn}_{backbone}-{FPN|C4}``.
        leftovers (bool): Include the preserved ImageNet classifier / conv1_b. Defaults to True.
        num_classes (int): Softmax classes incl. background. Defaults to 81.
    """
    m = _NAME_RE.match(name)
    assert m, name
    depth, gn, det, body = int(m['depth']), bool(m['gn']), m['det'], m['body']
    groups, width = (int(m['g']), int(m['w'])) if m['kind'] == 'X' else (1, 64)
    shapes: Dict[str, Shape] = {}
    _resnet(shapes, depth, groups, width, gn, (2, 3, 4, 5))
    if leftovers:
        if m['kind'] == 'X' or gn:
            shapes.update(LEFTOVERS_FB)
        else:
            shapes.update(LEFTOVERS)
    if det is None:
        return shapes
    if det == 'retinanet':
        _fpn(shapes, depth, (3, 4, 5), gn=False, extra=True)
        for i in range(4):
            _conv(shapes, f'retnet_cls_conv_n{i}_fpn3', 256, 256, 3)
            _conv(shapes, f'retnet_bbox_conv_n{i}_fpn3', 256, 256, 3)
        _conv(shapes, 'retnet_cls_pred_fpn3', 9 * (num_classes - 1), 256, 3)
        _conv(shapes, 'retnet_bbox_pred_fpn3', 9 * 4, 256, 3)
        return shapes
    if body == 'FPN':
        _fpn(shapes, depth, (2, 3, 4, 5), gn=gn, extra=False)
        _conv(shapes, 'conv_rpn_fpn2', 256, 256, 3)
        _conv(shapes, 'rpn_cls_logits_fpn2', 3, 256, 1)
        _conv(shapes, 'rpn_bbox_pred_fpn2', 12, 256, 1)
        stages = ('', '_2', '_3') if det == 'cascade_rcnn' else ('', )
        for suffix in stages:
            _box_head(shapes, 256, suffix, det == 'cascade_rcnn', gn, num_classes)
    else:  # C4: res5 is the RoI head and keeps its names
        _conv(shapes, 'conv_rpn', 1024, 1024, 3)
        _conv(shapes, 'rpn_cls_logits', 15, 1024, 1)
        _conv(shapes, 'rpn_bbox_pred', 60, 1024, 1)
        _box_head(shapes, 2048, '', False, False, num_classes)
    if det == 'mask_rcnn':
        if body == 'FPN':  # mask_rcnn_fcn_head_v1up4convs(_gn)
            for i in range(1, 5):
                fcn = f'_mask_fcn{i}' if gn else f'_[mask]_fcn{i}'
                _conv(shapes, fcn, 256, 256, 3, bias=not gn)
                if gn:
                    _norm(shapes, fcn, 256, True)
            _deconv(shapes, 'conv5_mask', 256, 256, 2)
        else:  # mask_rcnn_fcn_head_v0upshare: deconv on the shared res5 output
            _deconv(shapes, 'conv5_mask', 2048, 256, 2)
        _conv(shapes, 'mask_fcn_logits', num_classes, 256, 1)
    if det == 'keypoint_rcnn':  # keypoint_rcnn_heads.add_roi_pose_head_v1convX + kps_score_lowres
        for i in range(1, 9):
            _conv(shapes, f'conv_fcn{i}', 512, 256 if i == 1 else 512, 3)
        _deconv(shapes, 'kps_score_lowres', 512, 17, 4)
    return shapes


def materialize(shapes: Dict[str, Shape], seed: int = 0, make: Optional[Callable[[str, Shape, np.random.Generator],
                                                                                np.ndarray]] = None
                ) -> Dict[str, np.ndarray]:
    """Random float32 blobs: He-scaled conv/fc weights, AffineChannel/GN scales in [0.5, 1],
    small biases; residual branch2c scales 0.2 so 50+ random blocks keep activations O(1)."""
    rng = np.random.default_rng(seed)
    blobs: Dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        if make is not None:
            value = make(name, shape, rng)
            if value is not None:
                blobs[name] = value.astype(np.float32)
                continue
        if name.endswith('_w') and len(shape) > 1:
            fan_in = int(np.prod(shape[1:]))
            value = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        elif name.endswith(('_bn_s', '_gn_s')):
            value = rng.uniform(0.5, 1.0, shape).astype(np.float32)
            if 'branch2c' in name:
                value *= np.float32(0.2)
        else:
            value = (rng.standard_normal(shape, dtype=np.float32) * np.float32(0.1))
        blobs[name] = value
    return blobs


def add_momentum(blobs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """What Detectron's save_model_to_weights_file adds for trainable params (not AffineChannel)."""
    out = dict(blobs)
    for name, value in blobs.items():
        if not name.endswith(('_bn_s', '_bn_b')) and name not in ('fc1000_w', 'fc1000_b', 'conv1_b'):
            out[f'{name}_momentum'] = np.zeros_like(value)
    return out


def detectron_cfg_yaml(stride_1x1: bool = True, aspect_ratios: Tuple[float, ...] = (1.0, 2.0, 0.5),
                       num_classes: int = 81) -> str:
    """A trimmed ``yaml.dump(cfg)`` of Detectron's AttrDict, with its Python tags."""
    ratios = ', '.join(repr(r) for r in aspect_ratios)
    return f"""!!python/object/new:detectron.utils.collections.AttrDict
dictitems:
  MODEL: !!python/object/new:detectron.utils.collections.AttrDict
    dictitems: {{CONV_BODY: FPN.add_fpn_ResNet50_conv5_body, NUM_CLASSES: {num_classes}, TYPE: generalized_rcnn}}
    state: {{__immutable__: true}}
  PIXEL_MEANS: !!python/object/apply:numpy.core.multiarray._reconstruct
    args:
    - !!python/name:numpy.ndarray ''
    - !!python/tuple [0]
    - b
    state: !!python/tuple
    - 1
    - !!python/tuple [1, 1, 3]
    - !!python/object/apply:numpy.dtype
      args: [f8, 0, 1]
      state: !!python/tuple [3, <, null, null, null, -1, -1, 0]
    - false
    - "\\0\\0"
  RESNETS: !!python/object/new:detectron.utils.collections.AttrDict
    dictitems: {{NUM_GROUPS: 1, STRIDE_1X1: {'true' if stride_1x1 else 'false'}, TRANS_FUNC: bottleneck_transformation,
      WIDTH_PER_GROUP: 64}}
    state: {{__immutable__: true}}
  RETINANET: !!python/object/new:detectron.utils.collections.AttrDict
    dictitems:
      ANCHOR_SCALE: 4
      ASPECT_RATIOS: !!python/tuple [{ratios}]
      SCALES_PER_OCTAVE: 3
    state: {{__immutable__: true}}
state: {{__immutable__: true}}
"""


def detectron_retina_cell_anchors(stride, scales_per_octave=3, aspect_ratios=(1.0, 2.0, 0.5), anchor_scale=4):
    """retinanet._create_cell_anchors + generate_anchors, transcribed from Detectron."""
    def whctrs(a):
        w, h = a[2] - a[0] + 1, a[3] - a[1] + 1
        return w, h, a[0] + 0.5 * (w - 1), a[1] + 0.5 * (h - 1)

    def mk(ws, hs, x, y):
        ws, hs = ws[:, None], hs[:, None]
        return np.hstack((x - 0.5 * (ws - 1), y - 0.5 * (hs - 1), x + 0.5 * (ws - 1), y + 0.5 * (hs - 1)))

    def generate_anchors(stride, sizes, aspect_ratios):
        anchor = np.array([1, 1, stride, stride], dtype=np.float64) - 1
        w, h, x, y = whctrs(anchor)
        ratios = np.array(aspect_ratios, dtype=np.float64)
        ws = np.round(np.sqrt(w * h / ratios))
        hs = np.round(ws * ratios)
        ratio_anchors = mk(ws, hs, x, y)
        scales = np.array(sizes, dtype=np.float64) / stride
        out = []
        for a in ratio_anchors:
            w, h, x, y = whctrs(a)
            out.append(mk(w * scales, h * scales, x, y))
        return np.vstack(out)

    cells = []
    for octave in range(scales_per_octave):
        octave_scale = 2**(octave / float(scales_per_octave))
        for aspect in aspect_ratios:
            cells.append(generate_anchors(stride, (stride * octave_scale * anchor_scale, ), (aspect, ))[0])
    return np.array(cells)


# ------------------------------------------------------------------------------------------
# Python-2 style protocol-2 pickle writer (the subset Detectron files use)
# ------------------------------------------------------------------------------------------
def _py2_str(data: bytes, write: Callable[[bytes], Any]) -> None:
    if len(data) < 256:
        write(b'U' + bytes([len(data)]) + data)  # SHORT_BINSTRING
    else:
        write(b'T' + struct.pack('<i', len(data)) + data)  # BINSTRING


def _py2_dtype(dtype: np.dtype, write: Callable[[bytes], Any]) -> None:
    write(b'cnumpy\ndtype\n')
    _py2_str(dtype.str[1:].encode(), write)
    write(b'K\x00K\x01\x87R')  # ('f4', 0, 1) REDUCE
    order = b'|' if dtype.itemsize == 1 else b'<'
    write(b'(K\x03')
    _py2_str(order, write)
    write(b'NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb')  # (3, '<', None, None, None, -1, -1, 0) BUILD


def _py2_emit(obj: Any, write: Callable[[bytes], Any]) -> None:
    if isinstance(obj, dict):
        write(b'}')
        if obj:
            write(b'(')
            for key, value in obj.items():
                _py2_emit(key, write)
                _py2_emit(value, write)
            write(b'u')
    elif isinstance(obj, (list, tuple)):
        write(b']' if isinstance(obj, list) else b'')
        write(b'(')
        for item in obj:
            _py2_emit(item, write)
        write(b'e' if isinstance(obj, list) else b't')
    elif obj is None:
        write(b'N')
    elif isinstance(obj, bool):
        write(b'\x88' if obj else b'\x89')
    elif isinstance(obj, int):
        if 0 <= obj < 256:
            write(b'K' + bytes([obj]))
        else:
            write(b'J' + struct.pack('<i', obj))
    elif isinstance(obj, float):
        write(b'G' + struct.pack('>d', obj))
    elif isinstance(obj, (str, bytes)):  # Python 2 str: bytes on disk
        _py2_str(obj.encode('latin1') if isinstance(obj, str) else obj, write)
    elif isinstance(obj, np.ndarray):
        array = np.ascontiguousarray(obj)
        write(b'cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85')
        _py2_str(b'b', write)
        write(b'\x87R(K\x01')
        _py2_emit(tuple(int(d) for d in array.shape), write)
        _py2_dtype(array.dtype, write)
        write(b'\x89')
        _py2_str(array.tobytes(), write)
        write(b'tb')
    else:
        raise TypeError(f'fixture writer does not handle {type(obj).__name__}')


def dump_py2_pickle(obj: Any, path: str) -> None:
    """Write ``obj`` as Python 2.7 + numpy 1.x wrote Detectron pickles (protocol 2)."""
    buffer = io.BytesIO()
    buffer.write(b'\x80\x02')
    _py2_emit(obj, buffer.write)
    buffer.write(b'.')
    with open(path, 'wb') as handle:
        handle.write(buffer.getbuffer())


def dump_py3_pickle(obj: Any, path: str) -> None:
    """Python 3 ``pickle.dump(protocol=2)`` - bytes go through ``_codecs.encode``."""
    with open(path, 'wb') as handle:
        pickle.dump(obj, handle, protocol=2)


def write_detectron_pkl(path: str, blobs: Dict[str, np.ndarray], nested: bool = True, momentum: bool = True,
                        cfg: Optional[str] = None, py2: bool = True) -> None:
    """A model-zoo style file: ``{'blobs': ..., 'cfg': yaml}`` (nested) or flat blobs."""
    content = add_momentum(blobs) if momentum else dict(blobs)
    obj: Any = dict(blobs=content, cfg=cfg if cfg is not None else detectron_cfg_yaml()) if nested else content
    (dump_py2_pickle if py2 else dump_py3_pickle)(obj, path)


# ------------------------------------------------------------------------------------------
# Test helpers
# ------------------------------------------------------------------------------------------
def build_meta_model(config: str, **model_overrides):
    """Build a config's model on the meta device (shapes only, no memory)."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mmdet.registry import MODELS
    import direct_pretrain  # noqa: F401
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({f'model.{k}': v for k, v in model_overrides.items()})
    with torch.device('meta'), DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg.model)


