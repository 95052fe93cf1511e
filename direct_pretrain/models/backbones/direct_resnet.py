"""mmdet's ResNet with defaults for training from random init (direct pre-training).

Why a wrapper: mmdet's ``ResNet`` defaults suit ImageNet fine-tuning - ``norm_eval=True``
keeps BN in eval mode during training, which for a randomly initialised network means
normalising with the initial running statistics (mean 0, variance 1) forever. Here the
defaults are those of the from-scratch recipe (BN trainable and in train mode, nothing
frozen, zero-initialised last norm of every residual block, no pretrained init), and the
norm layer has no default at all: the config says whether the stage uses SyncBN
(pretraining) or frozen BN (fine-tuning).
"""
from typing import Any, Dict, List, Optional, Union

from mmengine.model.weight_init import constant_init

from mmdet.models.backbones import ResNet
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
from mmdet.registry import MODELS

__all__ = ['DirectResNet']


@MODELS.register_module()
class DirectResNet(ResNet):
    """ResNet for direct detection pre-training and its fine-tune.

    All other arguments (``out_indices``, ``style``, ``deep_stem``, ``dcn``, ...) are
    mmdet's ``ResNet`` arguments.

    Args:
        depth (int): Depth of the network, one of 18, 34, 50, 101, 152.
        norm_cfg (dict): Norm layer config; required so that the norm choice lives in
            the config, e.g. ``dict(type='SyncBNAnyBackend', requires_grad=True)`` to
            pretrain and ``dict(type='BN', requires_grad=False)`` to fine-tune.
        norm_eval (bool): Keep BN layers in eval mode during training. Only sensible
            once BN statistics have been learned (fine-tune). Defaults to False.
        frozen_stages (int): Stages (stem = 0) whose parameters are frozen; -1 freezes
            nothing, as pretraining from scratch needs. Defaults to -1.
        zero_init_residual (bool): Zero the scale (gamma) of the last norm of every
            residual block, so that each block starts as the identity and a deep network
            trains stably from random init. Unlike mmdet's ``ResNet`` this also applies
            to ResNeXt blocks and any ``BasicBlock``/``Bottleneck`` subclass.
            Defaults to True.
        init_cfg (dict | list[dict], optional): Initialisation config. None gives Kaiming
            convolutions and unit norms (random init). Defaults to None.
        **kwargs: Further arguments of mmdet's ``ResNet``.
    """

    def __init__(self,
                 depth: int,
                 norm_cfg: Dict[str, Any],
                 norm_eval: bool = False,
                 frozen_stages: int = -1,
                 zero_init_residual: bool = True,
                 init_cfg: Optional[Union[Dict[str, Any], List[Dict[str, Any]]]] = None,
                 **kwargs: Any) -> None:
        if not isinstance(norm_cfg, dict) or 'type' not in norm_cfg:
            raise TypeError(f'{type(self).__name__} needs norm_cfg=dict(type=...), got {norm_cfg!r}; e.g. '
                            "dict(type='SyncBNAnyBackend', requires_grad=True) for pretraining.")
        super().__init__(depth=depth, norm_cfg=norm_cfg, norm_eval=norm_eval, frozen_stages=frozen_stages,
                         zero_init_residual=zero_init_residual, init_cfg=init_cfg, **kwargs)
        self._zero_init_last_norm = zero_init_residual and init_cfg is None and kwargs.get('pretrained') is None

    @property
    def out_channels(self) -> List[int]:
        """Channels of the returned feature maps (what FPN's ``in_channels`` must be)."""
        return [self.base_channels * 2**i * self.block.expansion for i in self.out_indices]

    def init_weights(self) -> None:
        """mmdet's random init, then zero the last norm's gamma of every residual block."""
        super().init_weights()
        if not self._zero_init_last_norm:
            return
        for module in self.modules():
            if isinstance(module, Bottleneck):
                constant_init(module.norm3, 0)
            elif isinstance(module, BasicBlock):
                constant_init(module.norm2, 0)
