"""Process-level guards and loading: what a run needs from the machine, not from its config.

Weights-only checkpoint loading (and the numpy allow-list it shares with the Detectron
reader), atomic checkpoint writes and the clean-up of their stale temporary files, one live
run per work dir, child processes that die with their parent, and the opt-in torchvision
route for mmcv's CUDA ops. Importing this subpackage registers nothing; the package root
installs the safe loader and the ``atomic_local`` backend.
"""
from .atomic_save import (ATOMIC_BACKEND, AtomicLocalBackend, atomic_write_bytes, find_resumable_checkpoint,
                          is_complete_checkpoint, register_atomic_backend)
from .numpy_globals import numpy_safe_globals
from .process_lifetime import die_with_parent
from .safe_load import (install_safe_checkpoint_loading, load_from_local_safely, mmengine_checkpoint_safe_globals,
                        safe_torch_load)
from .stale_temp import find_stale_temp_files, remove_stale_temp_files
from .torchvision_cuda_ops import (disable_torchvision_cuda_ops, enable_torchvision_cuda_ops, mmcv_has_cuda_ops,
                                   setup_torchvision_cuda_ops, torchvision_cuda_ops_enabled)
from .work_dir import check_work_dir, prepare_work_dir
from .work_dir_lock import (WorkDirLock, WorkDirLockedError, acquire_work_dir_lock, hold_work_dirs, read_lock_owner,
                            work_dir_problem)

__all__ = [
    'ATOMIC_BACKEND', 'AtomicLocalBackend', 'atomic_write_bytes', 'find_resumable_checkpoint', 'is_complete_checkpoint',
    'register_atomic_backend', 'numpy_safe_globals', 'die_with_parent', 'install_safe_checkpoint_loading',
    'load_from_local_safely', 'mmengine_checkpoint_safe_globals', 'safe_torch_load', 'find_stale_temp_files',
    'remove_stale_temp_files', 'disable_torchvision_cuda_ops', 'enable_torchvision_cuda_ops', 'mmcv_has_cuda_ops',
    'setup_torchvision_cuda_ops', 'torchvision_cuda_ops_enabled', 'WorkDirLock', 'WorkDirLockedError',
    'acquire_work_dir_lock', 'hold_work_dirs', 'check_work_dir', 'prepare_work_dir', 'read_lock_owner', 'work_dir_problem'
]
