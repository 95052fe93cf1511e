"""Up-front checks of what a config points at, before a Runner touches the work dir.

Why: mmengine creates the work dir, a timestamped log dir and a config dump before it
opens the dataset or ``load_from``; a typo then fails deep inside a dataloader worker
and leaves debris behind. These checks name the bad path or value and the fix, and run
before anything is written.
"""
import logging
import os
import os.path as osp
from typing import Optional, Tuple

from mmengine.config import Config

from ..checkpoint.checkpoint_check import CheckpointContents, inspect_checkpoint_file
from ..checkpoint.model_fit import check_checkpoint_fits_model
from ..checkpoint.pretrain_origin import missing_checkpoint_message
from ..checkpoint.uri import parse_checkpoint_uri
from ..datasets.check_cache import (CachedDatasetCheck, DatasetCheckCache, dataset_check_key, passed_checks,
                                    remember_passed)
from ..datasets.coco_classes import class_order_problem, default_classes
from ..datasets.coco_reader import read_coco_categories
from ..datasets.coco_validation import pipeline_traits, validate_coco_dataset
from ..errors import CheckpointCheckError, ConfigInputError, DatasetValidationError
from .dataset_cfg import LOADERS, iter_leaf_datasets, under_data_root
from .training_guards import dataset_check_settings

__all__ = ['check_dataset_paths', 'check_load_from', 'check_checkpoint', 'check_train_inputs', 'check_test_inputs',
           'validate_training_data', 'check_dataset_classes', 'record_dataset_checks', 'checked_once_per_job']

logger = logging.getLogger(__name__)


def check_dataset_paths(cfg: Config, loaders: Tuple[str, ...]) -> None:
    """Data root, annotation file and image folder of every dataset in ``loaders`` exist."""
    for key, ds in iter_leaf_datasets(cfg, loaders):
        loader = key.split('.')[0]
        data_root = ds.get('data_root') or ''
        if data_root and not osp.isdir(data_root):
            raise ConfigInputError(
                f'{loader}: data_root {data_root!r} does not exist. Download or generate the dataset '
                '(the toy set: python tools/make_toy_coco.py <root>), then pass --data-root <path> (sets it on '
                f'every dataset of the config and the evaluators\' ann_file), or set only this one with '
                f'--cfg-options {key}.data_root=<path>.')
        ann_file = ds.get('ann_file') or ''
        if ann_file:
            full = under_data_root(ann_file, data_root)
            if not osp.isfile(full):
                raise ConfigInputError(f'{loader}: annotation file {full!r} does not exist; check data_root and '
                                       'ann_file in the config.')
        prefix = ds.get('data_prefix') or {}
        img_dir = prefix.get('img') if isinstance(prefix, dict) else None
        if img_dir:
            full = under_data_root(img_dir, data_root)
            if not osp.isdir(full):
                raise ConfigInputError(f'{loader}: image folder {full!r} does not exist; check data_root and '
                                       'data_prefix.img in the config.')


def _rank(cfg: Config) -> str:
    """This process's rank before any process group exists: torchrun's ``RANK``, srun's task
    number under ``--launcher slurm`` (mmengine's rank there), else 0."""
    if cfg.get('launcher') == 'slurm' and 'RANK' not in os.environ:
        return os.environ.get('SLURM_PROCID', '0')
    return os.environ.get('RANK', '0')


def checked_once_per_job(cfg: Config) -> bool:
    """True in the processes that skip the dataset check because the job runs it once: the
    workers ``dist_launch.sh`` starts after its own check (``DP_INPUTS_CHECKED=1``) and,
    without that, every rank but 0 (a plain torchrun, srun). At COCO scale every rank would
    otherwise read the whole annotation file and every image header again. A failing rank 0
    ends the others (torchrun's agent, srun's ``--kill-on-bad-exit``)."""
    return os.environ.get('DP_INPUTS_CHECKED') == '1' or _rank(cfg) != '0'


def check_dataset_classes(cfg: Config, loaders=LOADERS) -> None:
    """The classes of every COCO-format dataset of ``loaders`` name the file's categories in the
    order mmdet labels them (:func:`~direct_pretrain.datasets.coco_classes.class_order_problem`);
    reads only the ``categories`` of each file.

    Raises:
        ConfigInputError: naming the dataset key, the file, both orders and the tuple to set.
    """
    for key, ds in iter_leaf_datasets(cfg, loaders):
        ann_file = under_data_root(ds.get('ann_file') or '', ds.get('data_root') or '')
        defaults = default_classes(ds.get('type'))
        if not ann_file.endswith('.json') or not osp.isfile(ann_file) or defaults is None:
            continue
        try:
            categories = read_coco_categories(ann_file)
        except DatasetValidationError as error:
            raise ConfigInputError(f'{key.split(".")[0]}: {error}') from error
        problem = class_order_problem(key, ann_file, categories, (ds.get('metainfo') or {}).get('classes'), defaults)
        if problem:
            raise ConfigInputError(problem)


def _training_checks(cfg: Config, settings: dict) -> list:
    """(key, dataset cfg, annotation file, image folder, cache key) of every COCO-format
    training set; the cache key covers every config value the check reads."""
    jobs = []
    for key, ds in iter_leaf_datasets(cfg, ('train_dataloader', )):
        ann_file = ds.get('ann_file') or ''
        if not ann_file.endswith('.json'):
            continue
        data_root = ds.get('data_root') or ''
        prefix = ds.get('data_prefix') or {}
        img_dir = under_data_root(prefix.get('img', '') if isinstance(prefix, dict) else '', data_root)
        ann_file = under_data_root(ann_file, data_root)
        classes = (ds.get('metainfo') or {}).get('classes')
        parts = dict(type=ds.get('type'), img_dir=osp.abspath(img_dir), classes=classes, settings=settings,
                     img_dir_mtime_ns=os.stat(img_dir).st_mtime_ns if osp.isdir(img_dir) else None,
                     filter_cfg=ds.get('filter_cfg'), pipeline=pipeline_traits(ds.get('pipeline')))
        jobs.append((key, ds, ann_file, img_dir, dataset_check_key(ann_file, parts)))
    return jobs


def validate_training_data(cfg: Config) -> list:
    """Check every COCO-format training set (:func:`validate_coco_dataset`) and the classes of
    every dataset (:func:`check_dataset_classes`), once per job.

    Skipped where the job checked already (:func:`checked_once_per_job`) and, for a training
    set, where the work dir's cache holds a passed check of the same file and config (a
    ``--resume``). Logs a summary per annotation file.

    Returns:
        list: The reports (:class:`CocoValidationReport`, or :class:`CachedDatasetCheck` for a
        cached result); empty where the job checked already.

    Raises:
        ConfigInputError: a fatal problem, naming the dataset key and the fix.
    """
    if checked_once_per_job(cfg):
        return []
    settings = dataset_check_settings(cfg)
    check_dataset_classes(cfg)
    cache = DatasetCheckCache(cfg.get('work_dir'))
    reports = []
    for key, ds, ann_file, img_dir, cache_key in _training_checks(cfg, settings):
        loader = key.split('.')[0]
        try:
            cached = cache.lookup(cache_key)
        except OSError:
            cached = None
        if cached is not None:
            logger.info('dataset check: %s and the settings are unchanged since the check of %s (cached in %s); not '
                        'checked again: %s', ann_file, cached['checked_at'], cache.path, cached.get('summary'))
            for warning in cached.get('warnings') or ():
                logger.warning('dataset check: %s: %s', ann_file, warning)
            if cached.get('trained_images') is not None:  # not known where the launcher's check was recorded
                reports.append(CachedDatasetCheck(ann_file, cached['trained_images'], cached.get('summary')))
            continue
        try:
            report = validate_coco_dataset(
                ann_file, img_dir, (ds.get('metainfo') or {}).get('classes'), filter_cfg=ds.get('filter_cfg'),
                pipeline=ds.get('pipeline'), min_usable_share=settings['min_usable_share'],
                image_check=settings['images'], max_bad_images=settings['max_bad_images'],
                max_image_pixels=settings['max_image_pixels'])
        except DatasetValidationError as error:
            raise ConfigInputError(f'{loader}: {error}') from error
        logger.info('dataset check: %s', report.summary())
        warnings = tuple(report.warnings()) if not report.fatal else ()
        for warning in warnings:
            logger.warning('dataset check: %s: %s', report.ann_file, warning)
        if report.fatal:
            raise ConfigInputError(
                f'{key}: dataset check of {report.ann_file} failed: {" | ".join(report.fatal)}. Fix the dataset, or '
                'data_root / data_prefix / metainfo.classes / filter_cfg in the config; to train anyway set '
                '--cfg-options dataset_check.min_usable_share=0 (or dataset_check.max_bad_images=N).')
        remember_passed(cache_key, report.summary(), warnings, report.trained_images)
        reports.append(report)
    return reports


def record_dataset_checks(cfg: Config) -> None:
    """Store the training-set checks this job passed in ``<work_dir>/dataset_check.json``, so a
    ``--resume`` with the same file and config skips them. Call it on rank 0 right after the
    work dir's lock is taken (nothing is written before); under ``dist_launch.sh`` the workers
    record what the launcher's check passed. Never fails the run: a cache that cannot be
    written only means the next resume checks again."""
    if _rank(cfg) != '0':
        return
    try:
        cache = DatasetCheckCache(cfg.get('work_dir'))
        added = False
        for _, _, ann_file, _, cache_key in _training_checks(cfg, dataset_check_settings(cfg)):
            passed = passed_checks().get(cache_key)
            if passed is None and os.environ.get('DP_INPUTS_CHECKED') == '1':
                passed = dict(summary=f'{ann_file}: checked by the launcher before the workers started')
            if passed is not None and cache.lookup(cache_key) is None:
                cache.add(cache_key, **passed)
                added = True
        if added:
            cache.save()
    except OSError as error:
        logger.warning('dataset check: could not record the result in %s (%s); a resume checks again',
                       cfg.get('work_dir'), error)


def check_load_from(cfg: Config, what: str = 'load_from') -> None:
    """A local ``load_from`` (``what='load_from'``) or resumed checkpoint (``what='--resume'``)
    must exist, pass the checkpoint pre-check and fit the model.

    ``--resume``: every name and shape of the model (read from the pickle record, no tensor
    loaded). ``load_from``: finite weights, always (a pretrain or fine-tune from NaN weights
    only diverges); the whole model when the config runs a strict ``LoadFromCheckHook`` (its
    ``allowed_missing`` honoured; a class layer's mismatch named as ``num_classes``). A
    missing file names where the value came from and which pretrain config writes it.
    """
    load_from: Optional[str] = cfg.get('load_from')
    uri = parse_checkpoint_uri(load_from) if load_from else None
    if uri is None or not uri.is_local:
        return  # none, or fetched by mmengine (http://, open-mmlab://, ...)
    if not osp.exists(uri.path) and uri.scheme == 'file':
        raise ConfigInputError(missing_checkpoint_message(cfg, load_from, what))
    contents = check_checkpoint(load_from, what)
    if os.environ.get('DP_INPUTS_CHECKED') == '1':
        return  # a torchrun worker: dist_launch.sh's pre-check loaded and fitted it once for the job
    resume = what == '--resume'
    hook = next((h for h in cfg.get('custom_hooks') or []
                 if getattr(h.get('type'), '__name__', h.get('type')) == 'LoadFromCheckHook'), None)
    strict_hook = hook is not None and hook.get('strict', True)
    allowed_missing = hook.get('allowed_missing', ()) if hook and not resume else ()
    try:
        check_checkpoint_fits_model(
            load_from, cfg.model, what, config_name=f'the {"" if resume else "fine-tune "}config {cfg.filename}',
            complete=resume or strict_hook, allowed_missing=allowed_missing, finite=not resume,
            state_shapes=contents.state_shapes if contents else None, default_scope=cfg.get('default_scope') or 'mmdet',
            fix=('It was written by a run of another config: resume with that config, or start a new run without '
                 '--resume.') if resume else
            ('Check that the checkpoint comes from the matching pretrain config, list the model keys that are meant to '
             'be new in LoadFromCheckHook(allowed_missing=[...]), or set LoadFromCheckHook(strict=False).'))
    except CheckpointCheckError as error:
        raise ConfigInputError(str(error)) from error


def check_train_inputs(cfg: Config) -> None:
    if not cfg.get('resume'):
        check_load_from(cfg)
    elif cfg.get('load_from'):
        check_load_from(cfg, what='--resume')
    check_dataset_paths(cfg, ('train_dataloader', 'val_dataloader'))


def check_checkpoint(path: str, what: str = 'checkpoint') -> Optional[CheckpointContents]:
    """The checkpoint pre-check (:func:`~direct_pretrain.checkpoint.checkpoint_check.inspect_checkpoint_file`:
    structure, allow-list, storage records, top level) as a :class:`ConfigInputError`; returns
    what it read (None for a remote checkpoint)."""
    try:
        return inspect_checkpoint_file(path, what=what)
    except CheckpointCheckError as error:
        raise ConfigInputError(str(error)) from error


def check_test_inputs(cfg: Config, checkpoint: str) -> None:
    """The checkpoint exists, passes the pre-check, fills the config's model (every name and
    shape) with finite weights; the test datasets exist."""
    if parse_checkpoint_uri(checkpoint).scheme == 'file' and not osp.isfile(checkpoint):
        raise ConfigInputError(f'checkpoint {checkpoint!r} does not exist; pass a .pth written by tools/train.py.')
    contents = check_checkpoint(checkpoint)
    check_dataset_paths(cfg, ('test_dataloader', ))
    check_dataset_classes(cfg, ('test_dataloader', ))
    if contents is None or os.environ.get('DP_INPUTS_CHECKED') == '1':
        return  # fetched by mmengine, or a torchrun worker after dist_launch.sh's pre-check
    try:
        check_checkpoint_fits_model(checkpoint, cfg.model, config_name=f'the config {cfg.filename}',
                                    default_scope=cfg.get('default_scope') or 'mmdet')
    except CheckpointCheckError as error:
        raise ConfigInputError(str(error)) from error
