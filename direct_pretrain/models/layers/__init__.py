"""Layers for direct pre-training: synchronized BN on every backend and norm adapters."""
from .sync_bn_any_backend import (SyncBNActAnyBackend, SyncBNAnyBackend, SyncBNFunction, convert_to_plain_batch_norm,
                                  convert_to_sync_bn_any_backend, is_sync_batch_norm, replace_batch_norm)
from .token_norm import TokenNorm

__all__ = [
    'SyncBNAnyBackend', 'SyncBNActAnyBackend', 'SyncBNFunction', 'TokenNorm', 'convert_to_sync_bn_any_backend',
    'convert_to_plain_batch_norm', 'replace_batch_norm', 'is_sync_batch_norm'
]
