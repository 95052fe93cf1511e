"""A converted release Swin backbone computes what the original release's Swin computed.

The reference is :class:`release_fixtures.OriginalSwin`, written from the structure of the
release's ``modules/swin_transformer.py`` (original PatchMerging concatenation order, the
original window attention with its relative position index) - not the converter's inverse.
Tiny widths and a 3x3 window keep it fast; the depths are Swin-T's, so the release table
applies unchanged. Inputs whose sides are not multiples of the patch / window size exercise
every padding path.
"""
from collections import OrderedDict

import pytest
import torch
from release_fixtures import OriginalPatchMerging, OriginalSwin

from mmdet.models.layers.transformer.utils import PatchMerging
from direct_pretrain.checkpoint.release.converter import ReleaseCheckpoint, convert_release
from direct_pretrain.checkpoint.release.mapping import (RELEASE_ARCHS, build_table, convert_swin_tensor,
                                                        swin_relative_position_index)
from direct_pretrain.models.backbones import DirectSwinTransformer

EMBED, DEPTHS, HEADS, WINDOW = 8, (2, 2, 6, 2), (1, 2, 2, 4), 3


def _randomize(module: torch.nn.Module, seed: int) -> None:
    """Non-trivial values everywhere: LayerNorm affines, biases and the bias tables too."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if 'norm' in name and name.endswith('weight'):
                param.copy_(1 + 0.3 * noise)
            elif 'relative_position_bias_table' in name:
                param.copy_(noise)
            else:
                param.copy_(noise * (0.3 if param.dim() > 1 else 0.1))


def _original() -> OriginalSwin:
    model = OriginalSwin(embed_dim=EMBED, depths=DEPTHS, heads=HEADS, window=WINDOW).eval()
    _randomize(model, seed=3)
    return model


def _release_file(backbone_state) -> ReleaseCheckpoint:
    """A mask-swin release state dict: this backbone plus placeholder neck/head tensors."""
    state = OrderedDict((f'backbone.{k}', v) for k, v in backbone_state.items())
    for rule in build_table(RELEASE_ARCHS['mask-swin']):
        if not rule.source.startswith('backbone.'):
            state[rule.source] = torch.zeros(1)
    return ReleaseCheckpoint(source='<tiny swin>', state_dict=state)


def _mmdet_backbone() -> DirectSwinTransformer:
    return DirectSwinTransformer(norm_cfg=dict(type='LN'), embed_dims=EMBED, depths=DEPTHS, num_heads=HEADS,
                                 window_size=WINDOW, drop_path_rate=0.).eval()


def _backbone_part(state):
    return OrderedDict((k[len('backbone.'):], v) for k, v in state.items() if k.startswith('backbone.'))


def _max_rel_diff(outs, refs) -> float:
    return max(float((o - r).abs().max() / r.abs().max()) for o, r in zip(outs, refs))


@pytest.fixture(scope='module')
def original():
    return _original()


@pytest.fixture(scope='module')
def converted(original):
    state, report = convert_release(_release_file(original.state_dict()), 'mask-swin')
    return state, report


@pytest.mark.parametrize('size', [(56, 56), (50, 46)])
def test_converted_backbone_forward_equals_the_original(original, converted, size):
    model = _mmdet_backbone()
    model.load_state_dict(_backbone_part(converted[0]), strict=True)
    image = torch.randn((2, 3) + size, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        refs, outs = original(image), model(image)
    assert [o.shape for o in outs] == [r.shape for r in refs]
    assert _max_rel_diff(outs, refs) <= 1e-5


def test_without_the_patch_merging_permutation_the_forward_differs(original, converted):
    """Negative control: the permutation is what makes the two forwards agree."""
    state = _backbone_part(converted[0])
    for key in list(state):
        if '.downsample.' in key:
            state[key] = original.state_dict()[key.replace('stages.', 'layers.', 1)]
    model = _mmdet_backbone()
    model.load_state_dict(state, strict=True)
    image = torch.randn(1, 3, 56, 56, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert _max_rel_diff(model(image)[1:], original(image)[1:]) > 1e-2


def test_patch_merging_alone_with_odd_input(original):
    """One PatchMerging, original concatenation vs mmdet's nn.Unfold, on a 7 x 5 token map, with
    the tensors converted as the converter converts them."""
    merge = OriginalPatchMerging(EMBED).eval()
    _randomize(merge, seed=5)
    ours = PatchMerging(in_channels=EMBED, out_channels=2 * EMBED, stride=2, norm_cfg=dict(type='LN'),
                        bias=False).eval()
    with torch.no_grad():
        for name, value in merge.state_dict().items():
            target, converted = convert_swin_tensor(f'backbone.layers.0.downsample.{name}', value)
            assert target == f'backbone.stages.0.downsample.{name}'
            ours.state_dict()[name].copy_(converted)
        x = torch.randn(2, 7 * 5, EMBED, generator=torch.Generator().manual_seed(1))
        ref = merge(x, 7, 5)
        out, hw = ours(x, (7, 5))
    assert hw == (4, 3)
    assert float((out - ref).abs().max() / ref.abs().max()) <= 1e-5


def test_relative_position_index_is_regenerated_not_copied(original):
    """The converter rebuilds the buffer from the window size: a corrupted buffer in the file
    is reported and not carried over; the rebuilt one equals mmdet's and the original's."""
    state = original.state_dict()
    bad_key = 'layers.2.blocks.3.attn.relative_position_index'
    state[bad_key] = torch.zeros_like(state[bad_key])
    out, report = convert_release(_release_file(state), 'mask-swin')
    expected = swin_relative_position_index(WINDOW)
    mmdet_buffer = _mmdet_backbone().stages[2].blocks[3].attn.w_msa.relative_position_index
    assert torch.equal(expected, mmdet_buffer)
    assert torch.equal(expected, original.layers[0].blocks[0].attn.relative_position_index)
    indices = {k: v for k, v in out.items() if k.endswith('relative_position_index')}
    assert len(indices) == sum(DEPTHS)
    assert all(torch.equal(v, expected) for v in indices.values())
    differs = [line for line in report.regenerated if 'DIFFERS' in line]
    assert len(differs) == 1 and 'stages.2.blocks.3' in differs[0]
    assert len(report.synthesized) == sum(DEPTHS)
