"""mmdet's Swin Transformer with the published direct-pretrain Swin-T settings and any norm.

Why: the published Swin-T direct pre-training (embed 96, depths 2-2-6-2, heads 3-6-12-24,
window 7, stochastic depth 0.2, no absolute position embedding, patch norm, LayerNorm,
random init) is mmdet's ``SwinTransformer`` with different defaults plus two fixes for
training from scratch:

* mmdet's random init (``init_cfg=None``) truncated-normal-initialises linears and sets
  LayerNorms to 1/0 but never runs the windows' own init, leaving every
  ``relative_position_bias_table`` at zero; the published Swin draws them from a
  truncated normal (std 0.02), which this class does too.
* large-batch direct pre-training may prefer BatchNorm/SyncBN to LayerNorm. mmdet's Swin
  applies its norms to ``(B, L, C)`` tokens, so channel-first norm types are wrapped in
  :class:`~direct_pretrain.models.layers.TokenNorm` automatically; ``norm_eval`` keeps BN
  statistics frozen in a fine-tune.

With ``norm_cfg=dict(type='LN')`` the module and its state-dict keys are exactly mmdet's
``SwinTransformer`` with the published settings.
"""
import inspect
from typing import Any, Dict, Optional, Sequence

from mmengine.model.weight_init import trunc_normal_
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.models.backbones import SwinTransformer
from mmdet.models.backbones.swin import WindowMSA
from mmdet.registry import MODELS
from ..layers import TokenNorm

__all__ = ['DirectSwinTransformer']


def _token_norm_cfg(norm_cfg: Dict[str, Any]) -> Dict[str, Any]:
    """``norm_cfg`` itself for last-dim norms (LayerNorm), else wrapped in TokenNorm."""
    if not isinstance(norm_cfg, dict) or 'type' not in norm_cfg:
        raise TypeError(f'DirectSwinTransformer needs norm_cfg=dict(type=...), got {norm_cfg!r}; e.g. '
                        "dict(type='LN') as published or dict(type='SyncBNAnyBackend') for large-batch BN.")
    layer_type = norm_cfg['type']
    norm_cls = layer_type if inspect.isclass(layer_type) else MODELS.get(layer_type)
    if norm_cls is None:
        raise KeyError(f'norm type {layer_type!r} is not registered; use e.g. LN, BN, SyncBN or SyncBNAnyBackend.')
    if issubclass(norm_cls, (nn.LayerNorm, TokenNorm)):
        return norm_cfg
    inner = dict(norm_cfg)
    # build_norm_layer sets requires_grad of the *outer* layer's parameters last.
    return dict(type='TokenNorm', norm_cfg=inner, requires_grad=inner.pop('requires_grad', True))


@MODELS.register_module()
class DirectSwinTransformer(SwinTransformer):
    """Swin Transformer for direct detection pre-training; defaults are Swin-T's.

    Args:
        norm_cfg (dict): Norm of the blocks, patch embedding/merging and outputs;
            required so that the choice lives in the config. ``dict(type='LN')`` is the
            published setting; BatchNorm types (``BN``, ``SyncBN``,
            ``SyncBNAnyBackend``, ``GN``) are applied to tokens through ``TokenNorm``.
        embed_dims (int): Channels of the first stage. Defaults to 96.
        depths (Sequence[int]): Blocks per stage. Defaults to (2, 2, 6, 2).
        num_heads (Sequence[int]): Attention heads per stage. Defaults to (3, 6, 12, 24).
        window_size (int): Attention window size. Defaults to 7.
        drop_path_rate (float): Stochastic depth rate of the last block; published
            direct pretraining uses 0.2 (mmdet's default is 0.1). Defaults to 0.2.
        use_abs_pos_embed (bool): Absolute position embedding. Defaults to False.
        patch_norm (bool): Norm after patch embedding and merging. Defaults to True.
        out_indices (Sequence[int]): Stages whose (normalised) output is returned.
            Defaults to (0, 1, 2, 3).
        frozen_stages (int): Stages to freeze (0: patch embedding only); -1 freezes
            nothing. Defaults to -1.
        norm_eval (bool): Keep BatchNorm layers in eval mode while training (fine-tune
            of a BN variant). No effect with LayerNorm. Defaults to False.
        init_cfg (dict, optional): mmdet's ``Pretrained`` init; None is random init as
            published (truncated normal 0.02 for linears and relative position bias
            tables, norms 1/0). Defaults to None.
        **kwargs: Further arguments of mmdet's ``SwinTransformer``.
    """

    def __init__(self,
                 norm_cfg: Dict[str, Any],
                 embed_dims: int = 96,
                 depths: Sequence[int] = (2, 2, 6, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24),
                 window_size: int = 7,
                 drop_path_rate: float = 0.2,
                 use_abs_pos_embed: bool = False,
                 patch_norm: bool = True,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Dict[str, Any]] = None,
                 **kwargs: Any) -> None:
        super().__init__(
            embed_dims=embed_dims,
            depths=tuple(depths),
            num_heads=tuple(num_heads),
            window_size=window_size,
            drop_path_rate=drop_path_rate,
            use_abs_pos_embed=use_abs_pos_embed,
            patch_norm=patch_norm,
            out_indices=tuple(out_indices),
            frozen_stages=frozen_stages,
            norm_cfg=_token_norm_cfg(norm_cfg),
            init_cfg=init_cfg,
            **kwargs)
        self.norm_eval = norm_eval

    @property
    def out_channels(self) -> list:
        """Channels of the returned feature maps (what FPN's ``in_channels`` must be)."""
        return [self.num_features[i] for i in self.out_indices]

    def train(self, mode: bool = True) -> 'DirectSwinTransformer':
        """Train mode with frozen stages kept frozen and, if ``norm_eval``, BN in eval."""
        super().train(mode)
        if mode and getattr(self, 'norm_eval', False):
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def init_weights(self) -> None:
        """mmdet's init, plus the published truncated-normal relative position bias."""
        super().init_weights()
        if self.init_cfg is None:
            for module in self.modules():
                if isinstance(module, WindowMSA):
                    trunc_normal_(module.relative_position_bias_table, std=0.02)
