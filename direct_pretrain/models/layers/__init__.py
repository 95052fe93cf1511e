"""Layers for direct pre-training: synchronized BN on every backend, norm adapters, Detectron anchors."""
from .sync_batch_norm_act_any_backend import SyncBatchNormActAnyBackend
from .sync_batch_norm_any_backend import SyncBatchNormAnyBackend, SyncBatchNormFunction
from .sync_bn import convert_sync_batchnorm, is_sync_batch_norm, replace_batch_norm, revert_sync_batchnorm
from .token_norm import TokenNorm
from .detectron_anchor_generator import DetectronAnchorGenerator

__all__ = [
    'DetectronAnchorGenerator',
    'SyncBatchNormAnyBackend', 'SyncBatchNormActAnyBackend', 'SyncBatchNormFunction', 'TokenNorm',
    'convert_sync_batchnorm', 'revert_sync_batchnorm', 'replace_batch_norm', 'is_sync_batch_norm'
]
