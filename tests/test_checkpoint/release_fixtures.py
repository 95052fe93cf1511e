"""Synthetic checkpoints of the original direct-pretraining release, written as its code wrote them.

Imported by the ``test_release_*`` modules, not collected. Independent of the converter:

* the R-50 rows' key names and shapes follow mmdet 2.x's modules (``ResNet`` Bottleneck
  stages, ``FPN``, ``RPNHead``, ``ConvFCBBoxHead``, ``FCNMaskHead``, ``RetinaHead``), written
  out here per component with their shapes;
* the Swin-T backbone is :class:`OriginalSwin` below, a compact re-implementation of the
  structure of the release's ``modules/swin_transformer.py`` (original Swin-Transformer
  layout: ``layers.N.blocks.M.attn.qkv``, ``PatchMerging`` concatenating
  ``x0, x1, x2, x3``, ``norm{i}`` outputs) - used both for the fixture's keys and as the
  numerical reference of the forward test;
* the file is what mmcv 1.x's ``save_checkpoint`` writes for the release's ``train.py``:
  ``dict(meta=..., state_dict=..., optimizer=...)`` plus ``amp`` (apex) for the Swin rows;
  ``meta`` holds ``env_info``, ``config`` (text), ``seed``, ``exp_name``, ``mmdet_version``,
  ``CLASSES``, ``mmcv_version``, ``time``, ``epoch``, ``iter`` and ``hook_msgs``.
"""
import math
import os
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['COCO_CLASSES', 'OriginalSwin', 'mmdet2_r50_shapes', 'release_state_dict', 'release_meta',
           'release_optimizer', 'write_release_checkpoint', 'RELEASE_CONFIG_NAMES']

COCO_CLASSES = ('person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
                'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
                'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag',
                'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat',
                'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup', 'fork',
                'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog',
                'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed', 'dining table', 'toilet', 'tv',
                'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
                'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear', 'hair drier', 'toothbrush')

#: The release's config file names (pretrain, fine-tune) per layout; P3x used the same files.
RELEASE_CONFIG_NAMES = {
    'retinanet': ('retinanet_r50_fpn_direct_pretrain_1x_coco.py', 'retinanet_r50_fpn_direct_finetune_p1x_1x_coco.py'),
    'faster': ('faster_rcnn_r50_fpn_direct_pretrain_1x_coco.py', 'faster_rcnn_r50_fpn_direct_finetune_p1x_1x_coco.py'),
    'cascade': ('cascade_rcnn_r50_fpn_direct_pretrain_1x_coco.py',
                'cascade_rcnn_r50_fpn_direct_finetune_p1x_1x_coco.py'),
    'mask': ('mask_rcnn_r50_fpn_direct_pretrain_1x_coco.py', 'mask_rcnn_r50_fpn_direct_finetune_p1x_1x_coco.py'),
    'mask-swin': ('mask_rcnn_swin_tiny_direct_pretrain_1x_coco.py',
                  'mask_rcnn_swin_tiny_direct_finetune_p1x_1x_coco.py'),
}

Shape = Tuple[int, ...]


# --- the original Swin layout (structure of the release's modules/swin_transformer.py) ----

class OriginalMlp(nn.Module):

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def _windows(x, w):  # (B, H, W, C) -> (B * nW, w * w, C)
    b, h, wd, c = x.shape
    x = x.view(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, c)


def _unwindows(x, w, h, wd):  # (B * nW, w * w, C) -> (B, H, W, C)
    b = x.shape[0] // ((h // w) * (wd // w))
    x = x.view(b, h // w, wd // w, w, w, -1).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, wd, -1)


class OriginalWindowAttention(nn.Module):

    def __init__(self, dim: int, window: int, heads: int) -> None:
        super().__init__()
        self.window, self.heads = window, heads
        self.scale = (dim // heads)**-0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1)**2, heads))
        # pairwise offsets inside a window, shifted to start at 0, row offset major
        ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing='ij')
        coords = torch.stack([ys.flatten(), xs.flatten()])
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
        self.register_buffer('relative_position_index', rel[..., 0] * (2 * window - 1) + rel[..., 1])
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(b // nw, nw, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.heads, n, n)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class OriginalBlock(nn.Module):

    def __init__(self, dim: int, heads: int, window: int, shift: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = OriginalWindowAttention(dim, window, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = OriginalMlp(dim, dim * mlp_ratio)

    def forward(self, x, h, wd, mask):
        b, _, c = x.shape
        shortcut = x
        x = self.norm1(x).view(b, h, wd, c)
        pad_r, pad_b = (-wd) % self.window, (-h) % self.window
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = x.shape[1], x.shape[2]
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        x = _unwindows(self.attn(_windows(x, self.window), mask if self.shift else None), self.window, hp, wp)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x[:, :h, :wd, :].reshape(b, h * wd, c)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class OriginalPatchMerging(nn.Module):

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x, h, wd):
        b, _, c = x.shape
        x = x.view(b, h, wd, c)
        if h % 2 or wd % 2:
            x = F.pad(x, (0, 0, 0, wd % 2, 0, h % 2))
        # neighbours (row, col) = (0,0), (1,0), (0,1), (1,1), concatenated in that order
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class OriginalLayer(nn.Module):

    def __init__(self, dim: int, depth: int, heads: int, window: int, downsample: bool) -> None:
        super().__init__()
        self.window, self.shift = window, window // 2
        self.blocks = nn.ModuleList(
            OriginalBlock(dim, heads, window, 0 if i % 2 == 0 else window // 2) for i in range(depth))
        self.downsample = OriginalPatchMerging(dim) if downsample else None

    def _mask(self, h, wd, device):
        hp, wp = math.ceil(h / self.window) * self.window, math.ceil(wd / self.window) * self.window
        img = torch.zeros((1, hp, wp, 1), device=device)
        spans = (slice(0, -self.window), slice(-self.window, -self.shift), slice(-self.shift, None))
        label = 0
        for hs in spans:
            for ws in spans:
                img[:, hs, ws, :] = label
                label += 1
        windows = _windows(img, self.window).squeeze(-1)
        mask = windows.unsqueeze(1) - windows.unsqueeze(2)
        return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)

    def forward(self, x, h, wd):
        mask = self._mask(h, wd, x.device)
        for block in self.blocks:
            x = block(x, h, wd, mask)
        if self.downsample is None:
            return x, h, wd, x, h, wd
        return x, h, wd, self.downsample(x, h, wd), (h + 1) // 2, (wd + 1) // 2


class OriginalPatchEmbed(nn.Module):

    def __init__(self, patch: int, channels: int, dim: int) -> None:
        super().__init__()
        self.patch, self.dim = patch, dim
        self.proj = nn.Conv2d(channels, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        _, _, h, wd = x.shape
        x = F.pad(x, (0, (-wd) % self.patch, 0, (-h) % self.patch))
        x = self.proj(x)
        hh, ww = x.shape[2:]
        x = self.norm(x.flatten(2).transpose(1, 2))
        return x.transpose(1, 2).view(-1, self.dim, hh, ww)


class OriginalSwin(nn.Module):
    """The original Swin backbone's structure and names (ape=False, patch_norm=True)."""

    def __init__(self, embed_dim: int = 96, depths: Sequence[int] = (2, 2, 6, 2),
                 heads: Sequence[int] = (3, 6, 12, 24), window: int = 7, patch: int = 4) -> None:
        super().__init__()
        self.patch_embed = OriginalPatchEmbed(patch, 3, embed_dim)
        self.dims = [embed_dim * 2**i for i in range(len(depths))]
        self.layers = nn.ModuleList(
            OriginalLayer(self.dims[i], depths[i], heads[i], window, i < len(depths) - 1) for i in range(len(depths)))
        for i, dim in enumerate(self.dims):
            self.add_module(f'norm{i}', nn.LayerNorm(dim))

    def forward(self, x):
        x = self.patch_embed(x)
        h, wd = x.shape[2:]
        x = x.flatten(2).transpose(1, 2)
        outs = []
        for i, layer in enumerate(self.layers):
            out, oh, ow, x, h, wd = layer(x, h, wd)
            out = getattr(self, f'norm{i}')(out)
            outs.append(out.view(-1, oh, ow, self.dims[i]).permute(0, 3, 1, 2).contiguous())
        return tuple(outs)


# --- mmdet 2.x R-50-FPN detector layouts, per component ------------------------------------

def _conv(name: str, cout: int, cin: int, k: int, bias: bool = True) -> Dict[str, Shape]:
    out = {f'{name}.weight': (cout, cin, k, k)}
    if bias:
        out[f'{name}.bias'] = (cout, )
    return out


def _bn(name: str, c: int) -> Dict[str, Shape]:
    return {f'{name}.{p}': (c, ) for p in ('weight', 'bias', 'running_mean', 'running_var')} | {
        f'{name}.num_batches_tracked': ()}


def _resnet50() -> Dict[str, Shape]:
    shapes = _conv('backbone.conv1', 64, 3, 7, bias=False) | _bn('backbone.bn1', 64)
    cin = 64
    for stage, (blocks, planes) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512)), start=1):
        for b in range(blocks):
            p = f'backbone.layer{stage}.{b}'
            shapes |= _conv(f'{p}.conv1', planes, cin, 1, False) | _bn(f'{p}.bn1', planes)
            shapes |= _conv(f'{p}.conv2', planes, planes, 3, False) | _bn(f'{p}.bn2', planes)
            shapes |= _conv(f'{p}.conv3', planes * 4, planes, 1, False) | _bn(f'{p}.bn3', planes * 4)
            if b == 0:
                shapes |= _conv(f'{p}.downsample.0', planes * 4, cin, 1, False) | _bn(f'{p}.downsample.1', planes * 4)
            cin = planes * 4
    return shapes


def _fpn(in_channels: Sequence[int], start: int, extra_on_input: bool) -> Dict[str, Shape]:
    shapes: Dict[str, Shape] = {}
    used = in_channels[start:]
    for i, c in enumerate(used):
        shapes |= _conv(f'neck.lateral_convs.{i}.conv', 256, c, 1)
    for i in range(len(used)):
        shapes |= _conv(f'neck.fpn_convs.{i}.conv', 256, 256, 3)
    if extra_on_input:  # RetinaNet: P6 from C5, P7 from P6
        shapes |= _conv(f'neck.fpn_convs.{len(used)}.conv', 256, in_channels[-1], 3)
        shapes |= _conv(f'neck.fpn_convs.{len(used) + 1}.conv', 256, 256, 3)
    return shapes


def _rpn() -> Dict[str, Shape]:
    return _conv('rpn_head.rpn_conv', 256, 256, 3) | _conv('rpn_head.rpn_cls', 3, 256, 1) | _conv(
        'rpn_head.rpn_reg', 12, 256, 1)


def _box_head(prefix: str, convs: int, fcs: int, classes: int, agnostic: bool) -> Dict[str, Shape]:
    shapes: Dict[str, Shape] = {}
    for i in range(convs):
        shapes |= _conv(f'{prefix}.shared_convs.{i}.conv', 256, 256, 3)
    fin = 256 * 7 * 7
    for i in range(fcs):
        shapes |= {f'{prefix}.shared_fcs.{i}.weight': (1024, fin), f'{prefix}.shared_fcs.{i}.bias': (1024, )}
        fin = 1024
    reg = 4 if agnostic else 4 * classes
    return shapes | {f'{prefix}.fc_cls.weight': (classes + 1, 1024), f'{prefix}.fc_cls.bias': (classes + 1, ),
                     f'{prefix}.fc_reg.weight': (reg, 1024), f'{prefix}.fc_reg.bias': (reg, )}


def _mask_head(classes: int) -> Dict[str, Shape]:
    shapes: Dict[str, Shape] = {}
    for i in range(4):
        shapes |= _conv(f'roi_head.mask_head.convs.{i}.conv', 256, 256, 3)
    shapes |= {'roi_head.mask_head.upsample.weight': (256, 256, 2, 2), 'roi_head.mask_head.upsample.bias': (256, )}
    return shapes | _conv('roi_head.mask_head.conv_logits', classes, 256, 1)


def _retina_head(classes: int) -> Dict[str, Shape]:
    shapes: Dict[str, Shape] = {}
    for tower in ('cls_convs', 'reg_convs'):
        for i in range(4):
            shapes |= _conv(f'bbox_head.{tower}.{i}.conv', 256, 256, 3)
    return shapes | _conv('bbox_head.retina_cls', 9 * classes, 256, 3) | _conv('bbox_head.retina_reg', 36, 256, 3)


def mmdet2_r50_shapes(arch: str, classes: int = 80) -> Dict[str, Shape]:
    """Key -> shape of an mmdet 2.x R-50-FPN detector of the release (``arch`` != 'mask-swin')."""
    body = _resnet50()
    if arch == 'retinanet':
        return body | _fpn((256, 512, 1024, 2048), 1, True) | _retina_head(classes)
    shapes = body | _fpn((256, 512, 1024, 2048), 0, False) | _rpn()
    if arch == 'cascade':
        for stage in range(3):
            shapes |= _box_head(f'roi_head.bbox_head.{stage}', 0, 2, classes, agnostic=True)
        return shapes
    shapes |= _box_head('roi_head.bbox_head', 4, 1, classes, agnostic=False)
    return shapes | _mask_head(classes) if arch == 'mask' else shapes


def _swin_detector_shapes(classes: int) -> Tuple[Dict[str, Shape], Dict[str, torch.Tensor]]:
    with torch.device('meta'):
        swin = OriginalSwin()
    shapes = {f'backbone.{k}': tuple(v.shape) for k, v in swin.state_dict().items()}
    indices = {f'backbone.{k}': OriginalWindowAttention(8, 7, 1).relative_position_index
               for k in shapes if k.endswith('relative_position_index')}
    shapes |= _fpn((96, 192, 384, 768), 0, False) | _rpn()
    shapes |= _box_head('roi_head.bbox_head', 4, 1, classes, agnostic=False) | _mask_head(classes)
    return shapes, indices


def release_state_dict(arch: str, classes: int = 80, seed: int = 0) -> 'OrderedDict[str, torch.Tensor]':
    """A full-size release ``state_dict`` of ``arch`` with distinct deterministic values.

    Names, shapes and dtypes are the release's. To keep the files small and fast to write,
    every float tensor is a window into one shared ramp (``torch.save`` stores a shared
    storage once), starting at a different offset per key: two tensors of one shape never
    hold the same values, so a swapped or permuted key is seen.
    """
    if arch == 'mask-swin':
        shapes, fixed = _swin_detector_shapes(classes)
    else:
        shapes, fixed = mmdet2_r50_shapes(arch, classes), {}
    floats = [k for k in shapes if k not in fixed and not k.endswith('num_batches_tracked')]
    largest = max(math.prod(shapes[k]) for k in floats)
    ramp = torch.arange(largest + 7 * len(floats), dtype=torch.float64).mul_(1e-6).to(torch.float32)
    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    gen = torch.Generator().manual_seed(seed)
    for index, (key, shape) in enumerate(shapes.items()):
        if key in fixed:
            out[key] = fixed[key].clone()
        elif key.endswith('num_batches_tracked'):
            out[key] = torch.tensor(1000 + index, dtype=torch.int64)
        elif key.endswith('running_var'):
            out[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            start = 7 * floats.index(key)
            out[key] = ramp[start:start + math.prod(shape)].view(shape)
    return out


def release_meta(arch: str, stage: str, schedule: str = 'P1x', classes: Sequence[str] = COCO_CLASSES,
                 iters: int = 7330) -> dict:
    """``meta`` as the release's train.py + mmcv 1.x's runner and save_checkpoint write it."""
    pretrain_name, finetune_name = RELEASE_CONFIG_NAMES[arch]
    exp_name = pretrain_name if stage == 'pre-trained' else finetune_name
    epoch = (36 if schedule == 'P3x' else 12) if stage == 'pre-trained' else 12
    load_from = 'None' if stage == 'pre-trained' else repr(
        f'work_dirs/{pretrain_name[:-3]}/epoch_{36 if schedule == "P3x" else 12}.pth')
    config = (f"model = dict(type='{arch}')\noptimizer = dict(type='SGD', lr=0.02)\n"
              f"total_epochs = 12\nload_from = {load_from}\nresume_from = None\nworkflow = [('train', 1)]\n")
    return dict(env_info='sys.platform: linux\nPython: 3.7.10\nPyTorch: 1.7.1\nMMDetection: 2.11.0+',
                config=config, seed=None, exp_name=exp_name, mmdet_version='2.11.0f7f1c5e',
                CLASSES=tuple(classes), epoch=epoch, iter=iters * epoch,
                hook_msgs=dict(last_ckpt=f'work_dirs/{exp_name[:-3]}/epoch_{epoch}.pth'), mmcv_version='1.3.1',
                time='Mon Jun  7 10:21:43 2021')


def release_optimizer(state_dict: Dict[str, torch.Tensor], arch: str) -> dict:
    """A torch 1.x optimizer ``state_dict`` (SGD momentum / AdamW moments) over the parameters.

    The moment tensors share storage with the weights, so the file is not twice as large;
    the structure (int parameter ids, ``param_groups``) is torch's.
    """
    params = [k for k, v in state_dict.items() if v.is_floating_point() and not k.endswith(('running_mean',
                                                                                              'running_var'))]
    if arch == 'mask-swin':
        state = {i: dict(step=1000, exp_avg=state_dict[k], exp_avg_sq=state_dict[k]) for i, k in enumerate(params)}
        group = dict(lr=4e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05, amsgrad=False)
    else:
        state = {i: dict(momentum_buffer=state_dict[k]) for i, k in enumerate(params)}
        group = dict(lr=0.02, momentum=0.9, dampening=0, weight_decay=1e-4, nesterov=False)
    group['params'] = list(range(len(params)))
    group['initial_lr'] = group['lr']
    return dict(state=state, param_groups=[group])


def write_release_checkpoint(path: str, state_dict: Dict[str, torch.Tensor], meta: dict,
                             optimizer: Optional[dict] = None, amp: bool = False, legacy: bool = False) -> str:
    """``torch.save`` the mmcv 1.x checkpoint dict (``legacy``: the pre-1.6 non-zip format)."""
    checkpoint = dict(meta=meta, state_dict=state_dict)
    if optimizer is not None:
        checkpoint['optimizer'] = optimizer
    if amp:  # apex.amp.state_dict() of the release's Swin runs (one loss scaler)
        checkpoint['amp'] = OrderedDict(loss_scaler0=dict(loss_scale=512.0, unskipped=1234))
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)
    return path
