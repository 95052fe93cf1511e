"""A user's COCO-format dataset overlaid onto a pretrain / fine-tune pair as two generated configs.

Why: training the recipe on one's own data meant ~30 config keys over two configs, and the
mistakes that matter pass every check: classes typed in another order than the file's
categories, a head left at 80 classes, an evaluator still reading COCO's val file, a warmup
longer than the run. Everything those keys say is in the dataset folder and the pair: here the
files are found (:mod:`.dataset_layout`), the classes read in label order
(:mod:`.dataset_classes`), every dataset however nested, every head with a class count and every
evaluator set, the schedule sized to the data (:mod:`.schedule_sizing`), and the result written
as two thin overlays inheriting the pair (:mod:`.overlay_writer`), which the chain then trains -
and which the user can read, edit and run with ``dp-train`` or ``dist_train.sh``.
"""
import json
import logging
import os
import os.path as osp
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from mmdet.datasets import CocoDataset
from ..errors import ConfigInputError
from ..evaluation.metrics.coco_classwise_metric import use_classwise_metric
from ..version import __version__
from .dataset_cfg import LOADERS, iter_evaluators, iter_leaf_datasets, leaf_dataset
from .dataset_classes import DatasetClasses, KeypointDescription, parse_flip_pairs, read_classes, read_keypoints
from .dataset_layout import VAL_SPLIT_NAMES, DatasetFiles, SplitFiles, find_dataset_files
from .option_checks import check_option_types
from .overlay_writer import Ref, Setting, render_overlay
from .paths import SCOPE_PREFIX, default_work_dir, final_checkpoint_name, installed_configs_dir, resolve_config_path
from .schedule_sizing import StageSchedule, count_trainable_images, recipe_train_images, scaled_lr, size_schedule
from .val_split import split_train_val

__all__ = ['ARCHITECTURES', 'OwnDatasetRequest', 'OwnDatasetConfigs', 'arch_pair', 'dataset_name',
           'default_own_work_root', 'config_reference', 'write_own_dataset_configs']

logger = logging.getLogger(__name__)

#: ``dp-chain --arch NAME``: the zoo pair it runs (SyncBN P1x pretrain, P1x-1x fine-tune).
ARCHITECTURES: Dict[str, Tuple[str, str]] = {
    'retinanet': ('direct_pretraining/retinanet_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py',
                  'direct_pretraining/retinanet_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py'),
    'faster': ('direct_pretraining/faster-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py',
               'direct_pretraining/faster-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py'),
    'cascade': ('direct_pretraining/cascade-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py',
                'direct_pretraining/cascade-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py'),
    'mask': ('direct_pretraining/mask-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py',
             'direct_pretraining/mask-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py'),
    'mask-swin': ('direct_pretraining/mask-rcnn_swin-t-p4-w7_fpn_amp_8xb8-direct-pretrain-448-p1x_coco.py',
                  'direct_pretraining/mask-rcnn_swin-t-p4-w7_fpn_amp_8xb2-direct-finetune-p1x-1x_coco.py'),
    'keypoint': ('keypoint_rcnn/keypoint-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco-keypoints.py',
                 'keypoint_rcnn/keypoint-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco-keypoints.py'),
}
_EVALUATORS = {'val_dataloader': 'val_evaluator', 'test_dataloader': 'test_evaluator'}


def arch_pair(arch: str) -> Tuple[str, str]:
    """The installed config files of ``--arch``."""
    if arch not in ARCHITECTURES:
        raise ConfigInputError(f'--arch {arch!r}: choose one of {", ".join(ARCHITECTURES)}.')
    return tuple(resolve_config_path(name) for name in ARCHITECTURES[arch])


@dataclass
class OwnDatasetRequest:
    """What ``dp-chain --data`` was asked: the dataset, how it is split, and how it trains."""
    data_dir: str
    train_ann: Optional[str] = None
    train_img: Optional[str] = None
    val_ann: Optional[str] = None
    val_img: Optional[str] = None
    val_split: Optional[float] = None
    keypoint_flip_pairs: Sequence[str] = ()
    world_size: int = 1
    accumulate: int = 1
    auto_scale_lr: bool = True
    cfg_options: Dict[str, Any] = field(default_factory=dict)
    pretrain_cfg_options: Dict[str, Any] = field(default_factory=dict)
    finetune_cfg_options: Dict[str, Any] = field(default_factory=dict)
    command: str = 'dp-chain --data'


@dataclass
class OwnDatasetConfigs:
    """The two written configs and the lines that describe them (printed by the chain)."""
    pretrain: str
    finetune: str
    summary: List[str]


def dataset_name(data_dir: str) -> str:
    """The dataset folder's name as a config-name field (letters, digits and '-')."""
    name = re.sub(r'[^A-Za-z0-9]+', '-', osp.basename(osp.realpath(data_dir))).strip('-')
    return name or 'data'


def default_own_work_root(data_dir: str) -> str:
    """``work_dirs/<dataset name>``: the generated configs and both stage dirs go there."""
    return osp.join('work_dirs', dataset_name(data_dir))


def _generated_name(base: str, dataset: str) -> str:
    """``<base name without its dataset field>_<dataset>.py`` (mmdet names end with the dataset)."""
    stem = osp.splitext(osp.basename(base))[0]
    head, sep, _ = stem.rpartition('_')
    return f'{head if sep else stem}_{dataset}.py'


def config_reference(path: str) -> str:
    """How a generated config names its base: ``direct_pretrain::<name>`` for an installed config
    when the scope resolves to that very file in this installation, else the absolute path."""
    real, root = osp.realpath(path), osp.realpath(installed_configs_dir())
    if real.startswith(root + os.sep):
        name = SCOPE_PREFIX + osp.relpath(real, root)
        try:
            # mmengine's own resolution of `pkg::` names, which Config.fromfile uses for _base_.
            resolved, _ = Config._get_cfg_path(name, path)
        except (FileNotFoundError, ValueError, AssertionError, ModuleNotFoundError, RuntimeError):
            resolved = None
        if resolved and osp.isfile(resolved) and osp.samefile(resolved, real):
            return name
    return osp.abspath(path)


class _Annotations:
    """Annotation files read once each (a COCO-size file takes seconds and gigabytes)."""

    def __init__(self) -> None:
        self._loaded: Dict[str, dict] = {}

    def __call__(self, path: str) -> dict:
        path = osp.abspath(path)
        if path not in self._loaded:
            try:
                with open(path, encoding='utf-8') as f:
                    self._loaded[path] = json.load(f)
            except (OSError, ValueError) as error:
                raise ConfigInputError(f'{path}: not a readable JSON annotation file ({error}).') from None
            if not isinstance(self._loaded[path], dict):
                raise ConfigInputError(f'{path}: not a COCO-format annotation file (a JSON object with "images", '
                                       '"annotations" and "categories").')
        return self._loaded[path]


def _with_val(files: DatasetFiles, request: OwnDatasetRequest, work_root: str, read: _Annotations,
              summary: List[str]) -> DatasetFiles:
    if files.val is not None:
        if request.val_split is not None:
            raise ConfigInputError(f'--val-split: {files.data_dir} has a validation set ({files.val.ann_file}); '
                                   'drop --val-split, or pass the files to split with --train-ann/--train-img.')
        return files
    if request.val_split is None:
        raise ConfigInputError(
            f'{files.data_dir} has no validation set (looked for {"/".join(VAL_SPLIT_NAMES)} files of the layout '
            f'next to {osp.relpath(files.train.ann_file, files.data_dir)}); pass one with --val-ann FILE '
            '--val-img DIR, '
            'or hold out a share of the training images with --val-split 0.1 (deterministic, every class in both '
            f'parts where possible; the split files go to {osp.join(work_root, "val_split")}, yours stay untouched).')
    split = split_train_val(read(files.train.ann_file), files.train.ann_file, request.val_split,
                            osp.join(work_root, 'val_split'))
    summary.append(f'--val-split {request.val_split:g}: {split.num_train} train / {split.num_val} val images of '
                   f'{files.train.ann_file} -> {split.train_file}, {split.val_file}'
                   + (f'; no val image for {split.classes_without_val}' if split.classes_without_val else ''))
    return DatasetFiles(files.data_dir, SplitFiles(split.train_file, files.train.img_dir),
                        SplitFiles(split.val_file, files.train.img_dir), files.how + ', val split off the train set')


def _load_stage(path: str, options: Sequence[Tuple[str, Dict[str, Any]]]) -> Config:
    cfg = Config.fromfile(path)
    for flag, opts in options:
        if opts:
            check_option_types(cfg, opts)
            try:
                cfg.merge_from_dict(opts)
            except (TypeError, KeyError) as error:  # mmengine: a dict merged into a None / list
                raise ConfigInputError(f'{flag} {" ".join(f"{k}={v}" for k, v in opts.items())}: {error}') from None
    return cfg


def _head_paths(node: Any, path: str = 'model') -> List[str]:
    """Dotted keys of every ``num_classes`` in the model, the RPN's aside (it stays 1: object or not)."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get('num_classes'), int) and 'rpn_head' not in path:
            found.append(f'{path}.num_classes')
        for key, value in node.items():
            found.extend(_head_paths(value, f'{path}.{key}'))
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            found.extend(_head_paths(value, f'{path}.{index}'))
    return found


def _set(cfg: Config, key: str, value: Any) -> None:
    node: Any = cfg
    parts = key.split('.')
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, (list, tuple)) else node[part]
    if isinstance(node, (list, tuple)):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


def _relative(path: str, data_dir: str) -> Tuple[str, bool]:
    """``path`` relative to the dataset folder when it lies inside it (configs join it to
    ``data_root``), else absolute."""
    rel = osp.relpath(path, data_dir)
    return (path, False) if rel.startswith('..') else (rel, True)


def _is_keypoint_pair(*cfgs: Config) -> bool:
    return any(isinstance(((c.get('model') or {}).get('roi_head') or {}).get('keypoint_head'), dict) for c in cfgs)


@dataclass
class _Dataset:
    files: DatasetFiles
    classes: DatasetClasses
    keypoints: Optional[KeypointDescription]


def _palette(count: int):
    """Colours for the classes: COCO's first ones (a string palette makes mmengine warn that it is
    no meta file; mmdet's visualizer needs one colour per class, so a base's shorter list will not do)."""
    coco = CocoDataset.METAINFO['palette']
    return [tuple(c) for c in coco[:count]] if count <= len(coco) else 'random'


def _metainfo(data: _Dataset) -> dict:
    meta = dict(classes=data.classes.names, palette=_palette(len(data.classes.names)))
    if data.keypoints:
        kp = data.keypoints
        meta.update(keypoint_names=kp.names, skeleton=kp.skeleton, flip_indices=kp.flip_indices,
                    keypoint_sigmas=kp.sigmas)
    return meta


def _overlay(cfg: Config, data: _Dataset, request: OwnDatasetRequest) -> List[Setting]:
    """Point every dataset, head and evaluator of ``cfg`` at the dataset (in place); the settings."""
    files, settings = data.files, []
    meta = _metainfo(data)
    for key, dataset in iter_leaf_datasets(cfg, LOADERS):
        split = files.train if key.startswith('train_') else files.val
        ann, _ = _relative(split.ann_file, files.data_dir)
        img, _ = _relative(split.img_dir, files.data_dir)
        img = '' if img == '.' else img.rstrip('/') + '/'
        dataset.update(data_root=files.data_dir + '/', ann_file=ann, metainfo=dict(meta))
        dataset.setdefault('data_prefix', {})
        dataset['data_prefix']['img'] = img
        which = 'train' if key.startswith('train_') else 'val'
        settings += [Setting(f'{key}.data_root', f'your {which} set: its annotation file and the folder its '
                             'file_name entries are relative to; your classes', Ref('data_root')),
                     Setting(f'{key}.ann_file', ''), Setting(f'{key}.data_prefix.img', ''),
                     Setting(f'{key}.metainfo', '', Ref('metainfo'))]
    ann, inside = _relative(files.val.ann_file, files.data_dir)
    for evaluator_key in _EVALUATORS.values():
        for key, ev in iter_evaluators(cfg, evaluator_key):
            if 'ann_file' not in ev and 'Coco' not in str(ev.get('type', '')):
                continue
            ev['ann_file'] = files.val.ann_file
            ev['classwise'] = True
            settings += [Setting(f'{key}.ann_file', 'the ground truth the metric reads (your val annotations); AP '
                                 'per class as well, under your class names',
                                 Ref(f"data_root + {ann!r}") if inside else None),
                         Setting(f'{key}.classwise', '')]
            if use_classwise_metric(ev):  # mmdet's classwise CocoMetric writes box and mask AP of a class under one key
                settings.append(Setting(f'{key}.type', 'per-class box and mask AP under keys of their own'))
    for key in _head_paths(cfg.get('model')):
        _set(cfg, key, len(data.classes.names))
        settings.append(Setting(key, '', Ref('num_classes')))
    if data.keypoints:
        cfg.model.roi_head.keypoint_head.num_keypoints = len(data.keypoints.names)
        settings.append(Setting('model.roi_head.keypoint_head.num_keypoints', 'one heatmap per keypoint of your file',
                                Ref('len(metainfo["keypoint_names"])')))
    return settings


def _size(cfg: Config, data: _Dataset, read: _Annotations, request: OwnDatasetRequest,
          recipe_images: Optional[int]) -> StageSchedule:
    _, train = leaf_dataset(cfg, 'train_dataloader')
    images = count_trainable_images(read(data.files.train.ann_file), data.classes.ids, train.get('filter_cfg'))
    if images == 0:
        raise ConfigInputError(f'{data.files.train.ann_file}: no image has an annotation of the classes '
                               f'{list(data.classes.names)}; nothing to train on.')
    return size_schedule(cfg, images, request.world_size, request.accumulate, recipe_images)


def _lr_text(name: str, cfg: Config, request: OwnDatasetRequest) -> str:
    lr = scaled_lr(cfg, request.world_size, request.accumulate)
    if lr is None:
        return f'{name} as configured'
    base_lr, new_lr, effective, base = lr
    if not request.auto_scale_lr:
        return f'{name} {base_lr:g} (for a batch of {base}; this run: {effective})'
    return f'{name} {base_lr:g} x {effective}/{base} = {new_lr:g}'


def _read_dataset(request: OwnDatasetRequest, keypoints: bool, work_root: str, read: _Annotations,
                  summary: List[str]) -> _Dataset:
    files = find_dataset_files(request.data_dir, request.train_ann, request.train_img, request.val_ann,
                               request.val_img, read=read)
    files = _with_val(files, request, work_root, read, summary)
    train, val = read(files.train.ann_file), read(files.val.ann_file)
    description = None
    only_ids = None
    if keypoints:
        pairs = parse_flip_pairs(request.keypoint_flip_pairs)
        only_ids, description = read_keypoints(train, files.train.ann_file, pairs)
    classes = read_classes(train, files.train.ann_file, val, files.val.ann_file, only_ids)
    summary.insert(0, f'dataset {files.data_dir}: {files.how}')
    summary.insert(1, f'train {files.train.ann_file} (images in {files.train.img_dir}), val {files.val.ann_file} '
                   f'(images in {files.val.img_dir})')
    summary.insert(2, f'{len(classes.names)} classes in label order (the order of the file\'s categories): '
                   f'{classes.describe()}')
    if description:
        summary.extend(description.notes)
    return _Dataset(files, classes, description)


def _header(request: OwnDatasetRequest, stage: str, base: str, data: _Dataset, schedule: StageSchedule) -> List[str]:
    paragraphs = [
        f'Generated by `{request.command}` (direct_pretrain {__version__}): the {stage} stage of {base} on your '
        'dataset. Edit it and rerun it with the plain tools - `dp-train THIS.py`, `./dist_train.sh THIS.py GPUS`, or '
        '`dp-chain PRETRAIN.py FINETUNE.py` for both stages; `dp-chain --data` again rewrites it.',
        f'Dataset: {data.files.how}. Classes in label order = the order of the categories in the file.',
        f'Schedule: {schedule.summary}.']
    lines: List[str] = []
    for paragraph in paragraphs:
        lines += textwrap.wrap(paragraph, 100, break_on_hyphens=False, break_long_words=False)
    return lines


def write_own_dataset_configs(pretrain_config: str, finetune_config: str, request: OwnDatasetRequest,
                              work_root: str) -> OwnDatasetConfigs:
    """Write ``<work_root>/<pretrain name>_<dataset>.py`` and the fine-tune's: the pair on the dataset.

    Args:
        pretrain_config, finetune_config (str): The pair (paths or installed names).
        request (OwnDatasetRequest): The dataset and the run's options.
        work_root (str): Where the configs (and, with ``--val-split``, the split files) go; the
            chain's stage dirs are ``<work_root>/<config name>``.

    Returns:
        OwnDatasetConfigs: the two files and the summary lines (dataset, classes, schedule, LR).

    Raises:
        ConfigInputError: the dataset cannot be found or read, its classes or keypoints are
            inconsistent, or an option has the wrong type. Nothing is written then, except the
            val split when it was asked for and the error comes later.
    """
    paths = [resolve_config_path(pretrain_config), resolve_config_path(finetune_config)]
    options = [[('--cfg-options', request.cfg_options), ('--pretrain-cfg-options', request.pretrain_cfg_options)],
               [('--cfg-options', request.cfg_options), ('--finetune-cfg-options', request.finetune_cfg_options)]]
    cfgs = [_load_stage(path, opts) for path, opts in zip(paths, options)]
    work_root = osp.abspath(work_root)
    read = _Annotations()
    summary: List[str] = []
    data = _read_dataset(request, _is_keypoint_pair(*cfgs), work_root, read, summary)
    name = dataset_name(request.data_dir)
    out = [osp.join(work_root, _generated_name(path, name)) for path in paths]
    texts, schedules = [], []
    for stage, path, cfg, opts in zip(('pretrain', 'fine-tune'), paths, cfgs, options):
        recipe_images = recipe_train_images(cfg)  # the pair's own dataset, before the overlay replaces it
        settings = _overlay(cfg, data, request)
        schedule = _size(cfg, data, read, request, recipe_images)
        schedules.append(schedule)
        settings += [Setting(key, why) for key, why in schedule.changed.items()]
        if request.auto_scale_lr and isinstance(cfg.get('auto_scale_lr'), dict):
            cfg.auto_scale_lr.enable = True
            settings.append(Setting('auto_scale_lr.enable', 'LR x (GPUs x batch x --accumulate) / base_batch_size, '
                                    'as mmengine\'s --auto-scale-lr (dp-chain --data\'s default)'))
        for flag, values in opts:
            settings += [Setting(key, f'from {flag}') for key in values or {}]
        if stage == 'fine-tune':
            cfg.pretrain_config = out[0]
            cfg.load_from = osp.join(default_work_dir(out[0], work_root), final_checkpoint_name(cfgs[0]))
            settings += [Setting('pretrain_config', 'the pretrain stage on your dataset (named if load_from is gone)'),
                         Setting('load_from', 'the final checkpoint of that stage (dp-chain passes it too)')]
        variables = [('data_root', data.files.data_dir + '/', 'your dataset folder'),
                     ('metainfo', _metainfo(data), f'your {len(data.classes.names)} classes in label order: the '
                      f'order of the categories in the file (ids {", ".join(map(str, data.classes.ids))})'),
                     ('num_classes', len(data.classes.names), 'every head with a class count (the RPN stays at 1)')]
        texts.append(render_overlay(config_reference(path), _header(request, stage, osp.basename(path), data, schedule),
                                    variables, settings, cfg))
    os.makedirs(work_root, exist_ok=True)
    for path, text in zip(out, texts):
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)
    summary.append(f'schedule: pretrain {schedules[0].summary}; fine-tune {schedules[1].summary}')
    scaling = 'LR scaled to the batch (--auto-scale-lr)' if request.auto_scale_lr else 'LR as configured'
    summary.append(f'{scaling}: {_lr_text("pretrain", cfgs[0], request)}, {_lr_text("fine-tune", cfgs[1], request)} '
                   f'({request.world_size} process(es) x batch x {request.accumulate} accumulated)')
    summary.append(f'wrote {out[0]} and {out[1]}: thin overlays of the pair; edit and rerun them with dp-train, '
                   f'dist_train.sh, or dp-chain {out[0]} {out[1]}')
    return OwnDatasetConfigs(out[0], out[1], summary)
