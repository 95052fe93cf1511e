from .bad_image_count_hook import BadImageCountHook, find_skip_counters
from .epoch_seed_hook import EpochSeedHook, seed_worker_from_torch
from .load_from_check_hook import LoadFromCheckHook
from .non_finite_loss_hook import NonFiniteLossHook
from .resource_stats_hook import ResourceStatsHook, peak_rss_mb
from .worker_lifetime_hook import WorkerLifetimeHook, worker_init_with_parent_death

__all__ = ['BadImageCountHook', 'EpochSeedHook', 'LoadFromCheckHook', 'ResourceStatsHook', 'find_skip_counters',
           'peak_rss_mb', 'seed_worker_from_torch', 'WorkerLifetimeHook', 'worker_init_with_parent_death',
           'NonFiniteLossHook']
