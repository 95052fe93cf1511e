"""A run's config before the Runner sees it: locate it, walk its datasets, apply the command-line
options (``--data-root``, ``--accumulate``, ``--cfg-options``), check the batch and everything it
points at, and add the training guards; and, for a user's own COCO-format folder, find its files and
classes and write the overlay configs of a pretrain / fine-tune pair (:mod:`.own_dataset`). Only the
overlay writers write files (the generated configs, a validation split), into the chain's work root."""
from .accumulation import ITER_SCHEDULERS, apply_gradient_accumulation, effective_batch_size
from .batch_check import check_batch_size, launcher_world_size
from .data_root import set_data_root
from .dataset_cfg import LOADERS, iter_leaf_datasets, leaf_dataset, repeat_factor, train_pipeline
from .input_checks import (check_checkpoint, check_dataset_paths, check_load_from, check_test_inputs,
                           check_train_inputs, validate_training_data)
from .loading import load_config
from .option_checks import check_option_types
from .paths import SCOPE_PREFIX, default_work_dir, final_checkpoint_name, installed_configs_dir, resolve_config_path
from .training_guards import (DATASET_CHECK_DEFAULTS, add_fault_hooks, apply_fault_tolerance, dataset_check_settings,
                              enable_bad_image_skipping)

__all__ = [
    'ITER_SCHEDULERS', 'apply_gradient_accumulation', 'effective_batch_size', 'check_batch_size',
    'launcher_world_size', 'set_data_root', 'LOADERS', 'iter_leaf_datasets', 'leaf_dataset', 'repeat_factor',
    'train_pipeline', 'check_checkpoint', 'check_dataset_paths', 'check_load_from', 'check_test_inputs',
    'check_train_inputs', 'validate_training_data', 'load_config', 'check_option_types', 'SCOPE_PREFIX',
    'default_work_dir', 'final_checkpoint_name', 'installed_configs_dir', 'resolve_config_path',
    'DATASET_CHECK_DEFAULTS', 'add_fault_hooks', 'apply_fault_tolerance', 'dataset_check_settings',
    'enable_bad_image_skipping'
]
