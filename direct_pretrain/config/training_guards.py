"""What the train entry point adds to a config so that faults do not end a run late.

Why: the package's checks and guards (the dataset check, the image check, the skipping
loaders, the bad-image limit, workers that die with the run, one live run per work dir,
the clean-up of half-written checkpoint files) only help when every run uses them, whatever
its config says. This module turns ``dataset_check`` of a config into settings, switches
the training pipelines' image loaders to skip-and-count and adds the two hooks the guards
need; :func:`~direct_pretrain.runtime.work_dir.prepare_work_dir` prepares the work dir.

Config (all keys optional)::

    dataset_check = dict(
        min_usable_share=0.5,  # fewer trained images with a usable instance stops the run
        max_bad_images=10,     # distinct bad image files tolerated (skipped, listed); more stop the run
        images='quick',        # up-front image check: 'quick', 'full' or 'off' (--check-images)
        max_image_pixels=89478485,  # larger image files are skipped and listed, never decoded (None: no limit)
    )

The training loaders make the same per-file tests as the up-front check, on the bytes they
read and before decoding (empty, truncated, not an image; a header size other than the
annotation file's or above ``max_image_pixels``; with ``images='full'`` Pillow's structure
check), so every file the check says will be skipped is skipped, and counted.
"""
import logging
from typing import Any, Dict, List, Optional

from mmengine.config import Config

from ..datasets.image_check import IMAGE_CHECK_MODES
from ..datasets.image_header import DEFAULT_MAX_IMAGE_PIXELS
from ..engine.hooks.worker_lifetime_hook import add_worker_lifetime_hook
from ..engine.optim_wrappers.loss_guard import apply_loss_guard
from ..errors import ConfigInputError
from .dataset_cfg import iter_leaf_datasets

__all__ = ['DATASET_CHECK_DEFAULTS', 'dataset_check_settings', 'enable_bad_image_skipping', 'add_fault_hooks',
           'apply_fault_tolerance']

logger = logging.getLogger(__name__)

DATASET_CHECK_DEFAULTS: Dict[str, Any] = dict(min_usable_share=0.5, max_bad_images=10, images='quick',
                                              max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS)

_STOCK_LOADERS = ('LoadImageFromFile', 'mmdet.LoadImageFromFile', 'mmcv.LoadImageFromFile')


def dataset_check_settings(cfg: Config) -> Dict[str, Any]:
    """``cfg.dataset_check`` over :data:`DATASET_CHECK_DEFAULTS`, validated.

    Raises:
        ConfigInputError: an unknown key or a value out of range, naming it.
    """
    given = cfg.get('dataset_check') or {}
    if not isinstance(given, dict):
        raise ConfigInputError(f'dataset_check must be a dict like {DATASET_CHECK_DEFAULTS}, got {given!r}')
    unknown = sorted(set(given) - set(DATASET_CHECK_DEFAULTS))
    if unknown:
        raise ConfigInputError(f'dataset_check: unknown key(s) {unknown}; the keys are {sorted(DATASET_CHECK_DEFAULTS)}')
    settings = dict(DATASET_CHECK_DEFAULTS, **given)
    share = settings['min_usable_share']
    if not isinstance(share, (int, float)) or isinstance(share, bool) or not 0 <= share <= 1:
        raise ConfigInputError(f'dataset_check.min_usable_share must be a number in [0, 1], got {share!r}')
    limit = settings['max_bad_images']
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ConfigInputError(f'dataset_check.max_bad_images must be an integer >= 0 or None (no limit), got {limit!r}')
    pixels = settings['max_image_pixels']
    if pixels is not None and (not isinstance(pixels, int) or isinstance(pixels, bool) or pixels < 1):
        raise ConfigInputError(f'dataset_check.max_image_pixels must be an integer >= 1 or None (no limit), got '
                               f'{pixels!r}')
    if settings['images'] not in IMAGE_CHECK_MODES:
        raise ConfigInputError(f'dataset_check.images / --check-images must be one of {IMAGE_CHECK_MODES}, got '
                               f'{settings["images"]!r}')
    return settings


def enable_bad_image_skipping(cfg: Config) -> List[str]:
    """Make the image loaders of every training pipeline skip (and record) bad files, with the
    up-front check's tests.

    ``LoadImageFromFile`` becomes :class:`LoadImageFromFileOrSkip` (same arguments);
    ``LoadImageReduced`` gets ``on_bad_image='skip'`` unless the config sets it. Both get
    ``max_image_pixels``, ``check_size=True`` and, with ``dataset_check.images='full'``,
    ``verify=True`` unless the config sets them. Returns the dotted keys of the loaders changed.
    """
    settings = dataset_check_settings(cfg)
    tests = dict(max_image_pixels=settings['max_image_pixels'], check_size=True, verify=settings['images'] == 'full')
    changed = []
    for key, dataset in iter_leaf_datasets(cfg, ('train_dataloader', )):
        for index, step in enumerate(dataset.get('pipeline') or []):
            if not isinstance(step, dict):
                continue
            if step.get('type') in _STOCK_LOADERS:
                step['type'] = 'LoadImageFromFileOrSkip'
                changed.append(f'{key}.pipeline.{index}')
            elif step.get('type') in ('LoadImageReduced', 'mmdet.LoadImageReduced'):
                if 'on_bad_image' not in step:  # a config that asks for 'raise' keeps it
                    step['on_bad_image'] = 'skip'
                    changed.append(f'{key}.pipeline.{index}')
            elif step.get('type') not in ('LoadImageFromFileOrSkip', 'mmdet.LoadImageFromFileOrSkip'):
                continue
            for name, value in tests.items():
                step.setdefault(name, value)
    if changed:
        logger.info('bad training images are skipped and counted (dataset_check.max_bad_images): %s',
                    ', '.join(changed))
    return changed


def add_fault_hooks(cfg: Config, max_bad_images: Optional[int]) -> None:
    """Add ``WorkerLifetimeHook`` and ``BadImageCountHook(max_bad_images)`` to
    ``custom_hooks`` unless present (a present ``BadImageCountHook`` without a limit gets it)."""
    add_worker_lifetime_hook(cfg)
    hooks = list(cfg.custom_hooks)
    types = [hook.get('type') for hook in hooks]
    if 'BadImageCountHook' in types:
        hook = hooks[types.index('BadImageCountHook')]
        hook.setdefault('max_bad_images', max_bad_images)
    else:
        hooks.append(dict(type='BadImageCountHook', max_bad_images=max_bad_images))
    cfg.custom_hooks = hooks


def apply_fault_tolerance(cfg: Config) -> None:
    """Skip-and-count image loaders and the two guard hooks, for a validated training config."""
    enable_bad_image_skipping(cfg)
    add_fault_hooks(cfg, dataset_check_settings(cfg)['max_bad_images'])
    apply_loss_guard(cfg)  # NonFiniteLossHook's optimizer wrapper: the loss is checked before the step
