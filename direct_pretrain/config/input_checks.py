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
from ..datasets.coco_validation import validate_coco_dataset
from ..errors import CheckpointCheckError, ConfigInputError, DatasetValidationError
from .dataset_cfg import iter_leaf_datasets
from .training_guards import dataset_check_settings

__all__ = ['check_dataset_paths', 'check_load_from', 'check_checkpoint', 'check_train_inputs', 'check_test_inputs',
           'validate_training_data']

logger = logging.getLogger(__name__)


def _resolve(path: str, data_root: str) -> str:
    return path if osp.isabs(path) or not data_root else osp.join(data_root, path)


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
            full = _resolve(ann_file, data_root)
            if not osp.isfile(full):
                raise ConfigInputError(f'{loader}: annotation file {full!r} does not exist; check data_root and '
                                       'ann_file in the config.')
        prefix = ds.get('data_prefix') or {}
        img_dir = prefix.get('img') if isinstance(prefix, dict) else None
        if img_dir:
            full = _resolve(img_dir, data_root)
            if not osp.isdir(full):
                raise ConfigInputError(f'{loader}: image folder {full!r} does not exist; check data_root and '
                                       'data_prefix.img in the config.')


def validate_training_data(cfg: Config) -> list:
    """Run :func:`validate_coco_dataset` once over every COCO-format training set.

    Logs a summary per annotation file; raises ConfigInputError on fatal problems.
    """
    settings = dataset_check_settings(cfg)
    reports = []
    for key, ds in iter_leaf_datasets(cfg, ('train_dataloader', )):
        loader = key.split('.')[0]
        ann_file = ds.get('ann_file') or ''
        if not ann_file.endswith('.json'):
            continue
        data_root = ds.get('data_root') or ''
        prefix = ds.get('data_prefix') or {}
        img_dir = _resolve(prefix.get('img', '') if isinstance(prefix, dict) else '', data_root)
        classes = (ds.get('metainfo') or {}).get('classes')
        try:
            report = validate_coco_dataset(
                _resolve(ann_file, data_root), img_dir, classes, filter_cfg=ds.get('filter_cfg'),
                pipeline=ds.get('pipeline'), min_usable_share=settings['min_usable_share'],
                image_check=settings['images'], max_bad_images=settings['max_bad_images'])
        except DatasetValidationError as error:
            raise ConfigInputError(f'{loader}: {error}') from error
        logger.info('dataset check: %s', report.summary())
        for warning in report.warnings() if not report.fatal else ():
            logger.warning('dataset check: %s: %s', report.ann_file, warning)
        if report.fatal:
            raise ConfigInputError(
                f'{key}: dataset check of {report.ann_file} failed: {" | ".join(report.fatal)}. Fix the dataset, or '
                'data_root / data_prefix / metainfo.classes / filter_cfg in the config; to train anyway set '
                '--cfg-options dataset_check.min_usable_share=0 (or dataset_check.max_bad_images=N).')
        reports.append(report)
    return reports


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
    if contents is None or os.environ.get('DP_INPUTS_CHECKED') == '1':
        return  # fetched by mmengine, or a torchrun worker after dist_launch.sh's pre-check
    try:
        check_checkpoint_fits_model(checkpoint, cfg.model, config_name=f'the config {cfg.filename}',
                                    default_scope=cfg.get('default_scope') or 'mmdet')
    except CheckpointCheckError as error:
        raise ConfigInputError(str(error)) from error
