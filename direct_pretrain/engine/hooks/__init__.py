from .bad_image_count_hook import BadImageCountHook, find_skip_counters
from .epoch_seed_hook import EpochSeedHook, seed_worker_from_torch
from .load_from_check_hook import LoadFromCheckHook

__all__ = ['BadImageCountHook', 'EpochSeedHook', 'LoadFromCheckHook', 'find_skip_counters', 'seed_worker_from_torch']
