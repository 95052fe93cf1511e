"""Backbones for direct pre-training, registered in mmdet's MODELS."""
from .direct_swin_transformer import DirectSwinTransformer
from .timm_backbone import TimmBackbone

__all__ = ['DirectSwinTransformer', 'TimmBackbone']
