"""MMDetection 3.x names of the detector parts both converters fill: ResNet, FPN, RPN, box, mask
and RetinaNet heads.

Why one module: the Detectron tables (:mod:`.detectron.c2_mapping`) and the original release's
tables (:mod:`.release.mapping`) map different sources into the same mmdet modules. Written once,
the target names of the two cannot drift apart. Each function returns module paths in
state-dict order; a converter pairs them with its own source names and adds the parameter names
(``.weight``; below a ``ConvModule``, ``.conv`` and its norm ``.bn`` / ``.gn``).
"""
from typing import List, NamedTuple, Tuple

__all__ = [
    'BN_PARAMS', 'WEIGHT_BIAS', 'ResNetConv', 'resnet_stem', 'resnet_layer', 'FPNLayers', 'fpn_layers',
    'RPNLayers', 'rpn_layers', 'BoxHeadLayers', 'box_head_layers', 'MaskHeadLayers', 'mask_head_layers',
    'RetinaHeadLayers', 'retina_head_layers'
]

#: A BatchNorm's state-dict entries.
BN_PARAMS: Tuple[str, ...] = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
#: A conv's or linear layer's entries (and a GroupNorm's / LayerNorm's).
WEIGHT_BIAS: Tuple[str, ...] = ('weight', 'bias')


class ResNetConv(NamedTuple):
    """One conv of mmdet's ``ResNet`` and the norm layer after it.

    Attributes:
        block (int): Bottleneck index in its layer.
        index (int): 1, 2, 3 for the Bottleneck's ``conv1..3``; 0 for the projection shortcut.
        conv (str): The conv's module path.
        norm (str): Its norm layer's module path.
    """
    block: int
    index: int
    conv: str
    norm: str


def resnet_stem(prefix: str = '', norm: str = 'bn') -> ResNetConv:
    """The stem conv of ``ResNet`` (``{prefix}conv1``, ``{prefix}{norm}1``)."""
    return ResNetConv(0, 1, f'{prefix}conv1', f'{prefix}{norm}1')


def resnet_layer(layer: str, blocks: int, norm: str = 'bn') -> List[ResNetConv]:
    """The convs of the ``ResLayer`` at ``layer`` (``backbone.layer1``, ``roi_head.shared_head.layer4``).

    Each Bottleneck's ``conv1..3``, then, in the first block, the projection shortcut
    ``downsample.0`` / ``downsample.1`` (a Bottleneck stage always changes the width there).
    """
    convs = []
    for block in range(blocks):
        base = f'{layer}.{block}.'
        convs += [ResNetConv(block, i, f'{base}conv{i}', f'{base}{norm}{i}') for i in (1, 2, 3)]
        if block == 0:
            convs.append(ResNetConv(0, 0, f'{base}downsample.0', f'{base}downsample.1'))
    return convs


class FPNLayers(NamedTuple):
    """``FPN``'s ``ConvModule`` paths: ``laterals[i]`` and ``outputs[i]`` (extra levels last)."""
    laterals: List[str]
    outputs: List[str]


def fpn_layers(laterals: int, outputs: int, prefix: str = 'neck.') -> FPNLayers:
    return FPNLayers([f'{prefix}lateral_convs.{i}' for i in range(laterals)],
                     [f'{prefix}fpn_convs.{i}' for i in range(outputs)])


class RPNLayers(NamedTuple):
    """``RPNHead``'s layers: the shared conv, the objectness and the box-delta convs."""
    conv: str
    cls: str
    reg: str


def rpn_layers(prefix: str = 'rpn_head.') -> RPNLayers:
    return RPNLayers(f'{prefix}rpn_conv', f'{prefix}rpn_cls', f'{prefix}rpn_reg')


class BoxHeadLayers(NamedTuple):
    """``ConvFCBBoxHead``'s shared convs (``ConvModule`` paths), shared fcs, classifier, regressor."""
    convs: List[str]
    fcs: List[str]
    cls: str
    reg: str


def box_head_layers(prefix: str, convs: int, fcs: int) -> BoxHeadLayers:
    """``prefix`` is the head's path with a trailing dot (``roi_head.bbox_head.``, ``roi_head.bbox_head.0.``)."""
    return BoxHeadLayers([f'{prefix}shared_convs.{i}' for i in range(convs)],
                         [f'{prefix}shared_fcs.{i}' for i in range(fcs)], f'{prefix}fc_cls', f'{prefix}fc_reg')


class MaskHeadLayers(NamedTuple):
    """``FCNMaskHead``'s convs (``ConvModule`` paths), its transposed-conv upsampling and logits."""
    convs: List[str]
    upsample: str
    logits: str


def mask_head_layers(convs: int, prefix: str = 'roi_head.mask_head.') -> MaskHeadLayers:
    return MaskHeadLayers([f'{prefix}convs.{i}' for i in range(convs)], f'{prefix}upsample', f'{prefix}conv_logits')


class RetinaHeadLayers(NamedTuple):
    """``RetinaHead``'s two towers (``ConvModule`` paths) and its classifier / regressor."""
    cls_convs: List[str]
    reg_convs: List[str]
    cls: str
    reg: str


def retina_head_layers(convs: int, prefix: str = 'bbox_head.') -> RetinaHeadLayers:
    return RetinaHeadLayers([f'{prefix}cls_convs.{i}' for i in range(convs)],
                            [f'{prefix}reg_convs.{i}' for i in range(convs)], f'{prefix}retina_cls',
                            f'{prefix}retina_reg')
