"""Apply any configured norm layer to token sequences ``(B, L, C)``.

Why: transformer backbones such as Swin normalise tokens laid out as ``(B, L, C)``, which
is what LayerNorm expects. BatchNorm, SyncBN and GroupNorm normalise dim 1 of an
``(N, C, *)`` tensor, so large-batch direct pre-training with a BN-normalised Swin needs a
layout adapter: ``(B, L, C) -> (B, C, L, 1) -> norm -> (B, L, C)``. With the adapter the
BN statistics cover all tokens of all images (and, for SyncBN, of all ranks).
"""
from typing import Any, Dict

from mmcv.cnn import build_norm_layer
from mmengine.registry import MODELS as MMENGINE_MODELS
from torch import Tensor, nn

from mmdet.registry import MODELS

__all__ = ['TokenNorm']


@MODELS.register_module()
class TokenNorm(nn.Module):
    """Norm over the channel (last) dim of tokens, for any norm type.

    Use it as ``norm_cfg=dict(type='TokenNorm', norm_cfg=dict(type='SyncBNAnyBackend'))``
    in modules that apply their norms to ``(B, L, C)`` tokens (mmdet's Swin blocks, patch
    embedding and patch merging). LayerNorm-like inner norms are applied directly;
    channel-first norms see a ``(B, C, L, 1)`` view (``(B, C, L)`` for 1d norms).

    Args:
        num_features (int): Number of channels ``C`` (the last dim of the tokens).
        norm_cfg (dict): Config of the inner norm, built with mmcv's
            ``build_norm_layer``; its own ``eps`` etc. take precedence. ``requires_grad``
            belongs to the outer (TokenNorm) config, which mmcv applies last.
        **kwargs: Defaults for the inner config that ``build_norm_layer`` passes to every
            norm (``eps``); keys already in ``norm_cfg`` win.
    """

    def __init__(self, num_features: int, norm_cfg: Dict[str, Any], **kwargs: Any) -> None:
        super().__init__()
        if not isinstance(norm_cfg, dict) or 'type' not in norm_cfg:
            raise TypeError(f'TokenNorm needs norm_cfg=dict(type=...) for its inner norm, got {norm_cfg!r}; '
                            "e.g. norm_cfg=dict(type='TokenNorm', norm_cfg=dict(type='SyncBNAnyBackend')).")
        inner_cfg = dict(norm_cfg)
        if inner_cfg['type'] in ('TokenNorm', TokenNorm):
            raise TypeError('TokenNorm cannot wrap another TokenNorm; give the inner norm type directly, '
                            "e.g. norm_cfg=dict(type='SyncBNAnyBackend').")
        if 'requires_grad' in inner_cfg:
            raise TypeError(
                'TokenNorm: put requires_grad on the TokenNorm config, not in its inner norm_cfg - mmcv\'s '
                'build_norm_layer applies the outer value to all parameters last, e.g. '
                "dict(type='TokenNorm', norm_cfg=dict(type='BN'), requires_grad=False).")
        for key, value in kwargs.items():
            inner_cfg.setdefault(key, value)
        self.num_features = num_features
        self.norm = build_norm_layer(inner_cfg, num_features)[1]
        self._last_dim_norm = isinstance(self.norm, nn.LayerNorm)
        self._three_dims = isinstance(self.norm, (nn.BatchNorm1d, nn.InstanceNorm1d))

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` of shape ``(B, *, C)``; returns the same shape."""
        if self._last_dim_norm:
            return self.norm(x)
        if x.dim() < 2 or x.size(-1) != self.num_features:
            raise ValueError(f'TokenNorm({self.num_features}) expects tokens (B, *, {self.num_features}), '
                             f'got shape {tuple(x.shape)}')
        tokens = x.reshape(x.size(0), -1, self.num_features).transpose(1, 2)  # (B, C, L)
        if not self._three_dims:
            tokens = tokens.unsqueeze(-1)  # (B, C, L, 1): what BatchNorm2d / GroupNorm accept
        out = self.norm(tokens)
        if not self._three_dims:
            out = out.squeeze(-1)
        return out.transpose(1, 2).reshape(x.shape)


# See sync_bn_any_backend.py: norm types must also resolve without a default scope.
MMENGINE_MODELS.register_module('TokenNorm', module=TokenNorm)
