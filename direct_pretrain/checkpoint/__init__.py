from .safe_load import (UnsafeCheckpointError, install_safe_checkpoint_loading, load_from_local_safely,
                        mmengine_checkpoint_safe_globals, safe_torch_load)

__all__ = [
    'UnsafeCheckpointError', 'install_safe_checkpoint_loading', 'load_from_local_safely',
    'mmengine_checkpoint_safe_globals', 'safe_torch_load'
]
