"""mmdet's ResNeXt with the random-init defaults of :class:`DirectResNet`.

Why: mmdet's ``ResNet`` recognises zero-init-residual blocks by identity
(``block is Bottleneck``), so ResNeXt's own ``Bottleneck`` subclass silently skips the
zero-initialised last norm that stabilises training from scratch; this class gets it
from :class:`DirectResNet`, together with trainable BN in train mode and no frozen stage.
"""
from typing import Any, Dict

from mmdet.models.backbones import ResNeXt
from mmdet.registry import MODELS
from .direct_resnet import DirectResNet

__all__ = ['DirectResNeXt']


@MODELS.register_module()
class DirectResNeXt(ResNeXt, DirectResNet):
    """ResNeXt for direct detection pre-training and its fine-tune.

    Args:
        depth (int): Depth of the network, one of 50, 101, 152.
        norm_cfg (dict): Norm layer config; required, see :class:`DirectResNet`.
        groups (int): Cardinality of the grouped 3x3 convolutions. Defaults to 32.
        base_width (int): Width per group of the first stage. Defaults to 4.
        **kwargs: Further arguments of :class:`DirectResNet` (``norm_eval`` False,
            ``frozen_stages`` -1, ``zero_init_residual`` True by default) and of mmdet's
            ``ResNet``.
    """

    def __init__(self, depth: int, norm_cfg: Dict[str, Any], groups: int = 32, base_width: int = 4,
                 **kwargs: Any) -> None:
        # MRO: ResNeXt stores groups/base_width, then DirectResNet sets the defaults.
        super().__init__(groups=groups, base_width=base_width, depth=depth, norm_cfg=norm_cfg, **kwargs)
