"""Checks that a config agrees with its own datasets: head class counts, evaluator files, warmup length.

Why: each of these mistakes builds, passes mmengine's and mmdet's own checks and then goes
wrong silently or late - a 3-class dataset trained with Cascade's three box heads or the mask
head left at 80 classes, an evaluator still reading COCO's ``instances_val2017.json`` (a
traceback ten seconds into training, the work dir already written), a 500-iteration warmup on
a set whose whole run is 120 iterations (the LR never reaches its value). They are found here,
from the config alone plus the image count of the training annotations, before a Runner
exists: one :class:`~direct_pretrain.errors.ConfigInputError` naming the key and the fix.
"""
import ast
import inspect
import logging
import math
import os.path as osp
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config

from mmdet.registry import DATASETS, MODELS
from ..datasets.coco_reader import read_coco_columns
from ..errors import ConfigInputError
from .batch_check import launcher_world_size
from .dataset_cfg import iter_evaluators, iter_leaf_datasets, repeat_factor, under_data_root
from .input_checks import checked_once_per_job
from .schedulers import OPEN_END, iter_schedulers

__all__ = ['ConfiguredClasses', 'configured_classes', 'check_head_classes', 'check_evaluator_files', 'RunLength',
           'run_length', 'check_warmup_length', 'check_train_consistency', 'check_test_consistency',
           'list_merge_advice']

logger = logging.getLogger(__name__)

_HEADS = ('bbox_head', 'mask_head')
_WARMUPS = tuple(f'{family}{kind}' for family in ('Linear', 'Constant', 'QuadraticWarmup')
                 for kind in ('LR', 'Momentum', 'ParamScheduler'))
# Wrappers whose length is the sum (Concat) or a multiple (Repeat, by ``times``) of their datasets'.
_COUNTED_WRAPPERS = ('RepeatDataset', 'ConcatDataset', 'MultiImageMixDataset')


# ---------------------------------------------------------------------------------------------
# classes of the datasets and of the heads


@dataclass
class ConfiguredClasses:
    """The classes one dataset trains or evaluates with.

    Attributes:
        key (str): The dataset's dotted key (``train_dataloader.dataset.dataset``).
        classes (tuple[str]): Its ``metainfo.classes``, else its class's default.
        keypoint_names (tuple[str], optional): Its keypoint names, when it has keypoints.
        from_default (bool): No ``metainfo.classes`` in the config: mmdet uses the dataset
            class's default (``CocoDataset``: COCO's 80 names).
        dataset_type (str): The dataset's ``type``.
    """
    key: str
    classes: Tuple[str, ...]
    keypoint_names: Optional[Tuple[str, ...]]
    from_default: bool
    dataset_type: str

    def describe(self) -> str:
        if self.from_default:
            return (f'{len(self.classes)} classes ({self.key} sets no metainfo.classes, so mmdet uses '
                    f'{self.dataset_type}\'s default ones)')
        shown = ', '.join(repr(c) for c in self.classes[:6]) + (', ...' if len(self.classes) > 6 else '')
        return f'{len(self.classes)} classes ({self.key}.metainfo.classes: {shown})'


def _type_name(value: Any) -> str:
    return value if isinstance(value, str) else getattr(value, '__name__', str(value))


def _registered(registry, value: Any):
    if not isinstance(value, str):
        return value if inspect.isclass(value) else None
    try:
        return registry.get(value)
    except KeyError:  # another scope's type that is not loaded here: nothing to compare with
        return None


def configured_classes(cfg: Config, loaders: Sequence[str]) -> List[ConfiguredClasses]:
    """The classes (and keypoint names) of every leaf dataset of ``loaders``; datasets whose
    type has no class list (not a detection dataset) are left out."""
    found = []
    for key, ds in iter_leaf_datasets(cfg, loaders):
        meta = ds.get('metainfo') or {}
        dataset_cls = _registered(DATASETS, ds.get('type'))
        default = getattr(dataset_cls, 'METAINFO', None) or {}
        classes = meta.get('classes')
        from_default = classes is None
        if from_default:
            classes = default.get('classes')
        if classes is None:
            continue
        classes = (classes, ) if isinstance(classes, str) else tuple(classes)
        keypoints = meta.get('keypoint_names', default.get('keypoint_names'))
        found.append(ConfiguredClasses(key, classes, tuple(keypoints) if keypoints else None, from_default,
                                    _type_name(ds.get('type'))))
    return found


def _agreed_classes(cfg: Config, loaders: Sequence[str]) -> Optional[ConfiguredClasses]:
    """The one class list all datasets of ``loaders`` share; raises when two differ."""
    datasets = configured_classes(cfg, loaders)
    if not datasets:
        return None
    first = datasets[0]
    for other in datasets[1:]:
        if other.classes != first.classes:
            fix = (f'set metainfo=dict(classes={first.classes!r}) on {other.key}' if other.from_default else
                   f'make {other.key}.metainfo.classes the same tuple, in the same order')
            raise ConfigInputError(f'{first.key} has {first.describe()}, but {other.key} has {other.describe()}; '
                                   f'every dataset of a run needs the same classes in the same order (a label is an '
                                   f'index into them): {fix}.')
        if other.keypoint_names != first.keypoint_names and other.keypoint_names and first.keypoint_names:
            raise ConfigInputError(f'{first.key} has {len(first.keypoint_names)} keypoints {first.keypoint_names}, '
                                   f'but {other.key} has {len(other.keypoint_names)} {other.keypoint_names}; set the '
                                   'same metainfo.keypoint_names on every dataset.')
    return first


def _heads(model: dict) -> Iterator[Tuple[str, bool, dict]]:
    """``(key, inside a list, head cfg)`` of every box / mask head, at top level or in ``roi_head``."""
    for prefix, parent in (('model', model), ('model.roi_head', model.get('roi_head'))):
        if not isinstance(parent, dict):
            continue
        for name in _HEADS:
            head = parent.get(name)
            if isinstance(head, dict):
                yield f'{prefix}.{name}', False, head
            elif isinstance(head, (list, tuple)):
                for index, item in enumerate(head):
                    if isinstance(item, dict):
                        yield f'{prefix}.{name}.{index}', True, item


def _head_value(head: dict, name: str) -> Optional[int]:
    """``head[name]``, else the default the head class gives the argument (FCNMaskHead: 80 classes),
    looked up along its bases (``Shared2FCBBoxHead`` passes ``num_classes`` on to ``BBoxHead``)."""
    if name in head:
        return head[name]
    head_cls = _registered(MODELS, head.get('type'))
    for cls in inspect.getmro(head_cls) if head_cls is not None else ():
        try:
            parameter = inspect.signature(cls.__init__).parameters.get(name)
        except (TypeError, ValueError):
            return None
        if parameter is not None:
            default = parameter.default
            return default if isinstance(default, int) and not isinstance(default, bool) else None
    return None


def _nested_line(keys: Sequence[str], value: int) -> str:
    """``model.roi_head.bbox_head.num_classes`` -> ``model = dict(roi_head=dict(bbox_head=dict(num_classes=3)))``,
    several keys merged into one line."""
    tree: Dict[str, Any] = {}
    for key in keys:
        node = tree
        parts = key.split('.')
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def render(node: Dict[str, Any]) -> str:
        return ', '.join(f'{k}=dict({render(v)})' if isinstance(v, dict) else f'{k}={v!r}' for k, v in node.items())

    (top, body), = tree.items()
    return f'{top} = dict({render(body)})'


def check_head_classes(cfg: Config, loaders: Sequence[str]) -> None:
    """Every box / mask head's ``num_classes`` equals the datasets' class count, and a keypoint
    head's ``num_keypoints`` their keypoint count; the datasets of ``loaders`` agree on both.

    Raises:
        ConfigInputError: naming every wrong key, with the config line (and ``--cfg-options``) that fixes it.
    """
    data = _agreed_classes(cfg, loaders)
    model = cfg.get('model')
    if data is None or not isinstance(model, dict):
        return
    count = len(data.classes)
    wrong = [(key, listed, value) for key, listed, head in _heads(model)
             for value in [_head_value(head, 'num_classes')] if isinstance(value, int) and value != count]
    if wrong:
        found = ', '.join(f'{key}.num_classes={value}' for key, _, value in wrong)
        options = ' '.join(f'{key}.num_classes={count}' for key, _, _ in wrong)
        fixes = []
        dict_keys = [f'{key}.num_classes' for key, listed, _ in wrong if not listed]
        if dict_keys:
            fixes.append(f'set {_nested_line(dict_keys, count)} in the config')
        listed_heads = sorted({key.rsplit('.', 1)[0] for key, listed, _ in wrong if listed})
        for heads in listed_heads:
            fixes.append(f'write the whole list {heads} in the config with num_classes={count} in every item '
                         f'({heads.rsplit(".", 1)[1]}=[dict(type=..., num_classes={count}, ...), ...]; mmengine cannot '
                         f'merge a dict such as {heads.rsplit(".", 1)[1]}=dict(num_classes={count}) into a list)')
        default_note = ''
        if data.from_default:
            default_note = (' If your data has other classes, set metainfo=dict(classes=(...)) on every dataset '
                            'instead of changing the heads.')
        raise ConfigInputError(f'{found}, but the datasets have {data.describe()}: the heads would train '
                               f'and predict the wrong number of classes. Fix: {"; ".join(fixes)}; or pass '
                               f'--cfg-options {options}.{default_note}')
    roi_head = model.get('roi_head')
    keypoint_head = roi_head.get('keypoint_head') if isinstance(roi_head, dict) else None
    if isinstance(keypoint_head, dict) and data.keypoint_names:
        value = _head_value(keypoint_head, 'num_keypoints')
        if isinstance(value, int) and value != len(data.keypoint_names):
            key = 'model.roi_head.keypoint_head.num_keypoints'
            raise ConfigInputError(
                f'{key}={value}, but the datasets have {len(data.keypoint_names)} keypoints (metainfo.keypoint_names '
                f'of {data.key}); set {_nested_line([key], len(data.keypoint_names))} in the config, or pass '
                f'--cfg-options {key}={len(data.keypoint_names)}.')


# ---------------------------------------------------------------------------------------------
# evaluators


def _loader_ann_file(cfg: Config, loader: str) -> Optional[str]:
    for _, ds in iter_leaf_datasets(cfg, (loader, )):
        if ds.get('ann_file'):
            return under_data_root(ds['ann_file'], ds.get('data_root') or '')
    return None


def check_evaluator_files(cfg: Config, names: Sequence[str]) -> None:
    """The ``ann_file`` of every evaluator in ``names`` (``val_evaluator``, ``test_evaluator``;
    one metric or a list) exists: the metric reads its ground truth from it at the first evaluation.

    Raises:
        ConfigInputError: naming the key, the missing file and the dataset's own annotation file.
    """
    for name in names:
        loader = name.replace('_evaluator', '_dataloader')
        for key, evaluator in iter_evaluators(cfg, name):
            ann_file = evaluator.get('ann_file')
            if not isinstance(ann_file, str) or not ann_file or '://' in ann_file or osp.isfile(ann_file):
                continue
            dataset_ann = _loader_ann_file(cfg, loader)
            hint = (f'; it should be the annotation file of {loader} ({dataset_ann}): --cfg-options '
                    f'{key}.ann_file={dataset_ann}' if dataset_ann and osp.isfile(dataset_ann) else
                    f'; point it at the annotation file of {loader}: --cfg-options {key}.ann_file=<file>')
            raise ConfigInputError(f'{key}.ann_file {ann_file!r} does not exist (the evaluator reads the ground '
                                   f'truth from it when it first evaluates){hint}.')


# ---------------------------------------------------------------------------------------------
# warmup against the run's length


@dataclass
class RunLength:
    """How long a run is.

    Attributes:
        iterations (int, optional): Training iterations of the whole run (None: unknown).
        epochs (int, optional): Epochs of an epoch-based run.
        how (str): How ``iterations`` was counted, for messages.
    """
    iterations: Optional[int]
    epochs: Optional[int]
    how: str


def _image_count(ann_file: str, reports: Sequence[Any]) -> Optional[int]:
    """Images mmdet keeps of ``ann_file``: the dataset check's count, else the file's image count."""
    for report in reports:
        if osp.normpath(getattr(report, 'ann_file', '') or '') == osp.normpath(ann_file):
            return int(report.trained_images)
    if not ann_file.endswith('.json') or not osp.isfile(ann_file):
        return None
    return read_coco_columns(ann_file).num_images  # streamed: a COCO-size file without json.load's gigabytes


def _train_dataset_length(cfg: Config, reports: Sequence[Any]) -> Tuple[Optional[int], str]:
    loader = cfg.get('train_dataloader') or {}
    node, wrappers = loader.get('dataset'), []
    while isinstance(node, dict) and isinstance(node.get('dataset'), dict):
        wrappers.append(_type_name(node.get('type')))
        node = node['dataset']
    unknown = [w for w in wrappers if w not in _COUNTED_WRAPPERS]
    if unknown:  # e.g. ClassBalancedDataset: its length depends on the labels
        return None, f'the length of {unknown[0]} is not known before it is built'
    total, parts = 0.0, []
    for key, ds in iter_leaf_datasets(cfg, ('train_dataloader', )):
        ann_file, data_root = ds.get('ann_file') or '', ds.get('data_root') or ''
        path = under_data_root(ann_file, data_root)
        count = _image_count(path, reports) if ann_file else None
        if count is None:
            return None, f'the images of {key} cannot be counted'
        times = repeat_factor(cfg, key)
        total += count * times
        parts.append(f'{count} images' + (f' x {times:g} (RepeatDataset)' if times != 1 else ''))
    return (int(total), ' + '.join(parts)) if parts else (None, 'no training dataset')


def run_length(cfg: Config, reports: Sequence[Any] = ()) -> RunLength:
    """Iterations of the training run of ``cfg``: ``max_iters`` of an iteration-based loop, else
    ``max_epochs`` x iterations per epoch (images after ``filter_cfg`` - from ``reports`` of the
    dataset check, else the annotation file - times ``RepeatDataset`` factors, over batch size x
    world size, as mmengine's sampler splits them)."""
    train_cfg = cfg.get('train_cfg') or {}
    if train_cfg.get('type') == 'IterBasedTrainLoop' or train_cfg.get('by_epoch') is False:
        iters = train_cfg.get('max_iters')
        return RunLength(int(iters) if isinstance(iters, int) else None, None, f'train_cfg.max_iters={iters}')
    epochs = train_cfg.get('max_epochs')
    if not isinstance(epochs, int):
        return RunLength(None, None, 'train_cfg.max_epochs is not set')
    loader = cfg.get('train_dataloader') or {}
    batch = loader.get('batch_size')
    images, how = _train_dataset_length(cfg, reports)
    if images is None or not isinstance(batch, int) or batch < 1:
        return RunLength(None, epochs, how if images is None else 'train_dataloader.batch_size is not set')
    world = launcher_world_size(cfg.get('launcher', 'none'))
    per_epoch = math.ceil(math.ceil(images / world) / batch)
    processes = f'{world} processes' if world != 1 else '1 process'
    return RunLength(epochs * per_epoch, epochs, f'{epochs} epoch{"s" if epochs != 1 else ""} x {per_epoch} '
                     f'iterations ({how} / batch {batch} x {processes})')


def check_warmup_length(cfg: Config, reports: Sequence[Any] = ()) -> None:
    """No warmup (``LinearLR``, ``ConstantLR``, ``QuadraticWarmupLR`` and their momentum /
    param forms) ends after the run: such a run never trains at the LR it was configured with.
    Iteration-based warmups are compared with :func:`run_length`, epoch-based ones with
    ``max_epochs``.

    Raises:
        ConfigInputError: naming ``param_scheduler.N.end``, the run's length and a shorter end.
    """
    length = None
    for key, scheduler in iter_schedulers(cfg.get('param_scheduler')):
        kind = _type_name(scheduler.get('type'))
        end = scheduler.get('end')
        if kind not in _WARMUPS or not isinstance(end, int) or end >= OPEN_END:
            continue
        length = length or run_length(cfg, reports)
        by_epoch = scheduler.get('by_epoch', True)
        if by_epoch and length.epochs is not None and end > length.epochs:
            raise ConfigInputError(
                f'{key}.end={end} ({kind}, epochs) is longer than the whole run ({length.epochs} epochs): the LR never '
                f'reaches its configured value. Shorten it: --cfg-options {key}.end={max(1, length.epochs // 4)} '
                f'(or train longer: train_cfg.max_epochs).')
        if not by_epoch and length.iterations is not None and end > length.iterations:
            steps = int((cfg.get('optim_wrapper') or {}).get('accumulative_counts', 1) or 1)
            suggested = max(1, length.iterations // 10)
            fix = f'--cfg-options {key}.end={suggested}'
            if steps != 1:  # --accumulate N writes the warmup in micro-batch iterations (end x N)
                fix += (f' ({max(1, suggested // steps)} when --accumulate {steps} is given: the flag counts the '
                        'warmup in optimizer steps)')
            raise ConfigInputError(
                f'{key}.end={end} ({kind}, iterations) is longer than the whole run: {length.how} = '
                f'{length.iterations} iterations, so the LR never reaches its configured value. Shorten the warmup '
                f'to about a tenth of the run: {fix} (or train longer).')
        if length.iterations is None and not by_epoch:
            logger.debug('warmup check of %s skipped: %s', key, length.how)


# ---------------------------------------------------------------------------------------------
# entry points


def _active_loaders(cfg: Config, stage: str) -> Tuple[str, ...]:
    loaders = ['train_dataloader'] if stage == 'train' else []
    if stage == 'train' and cfg.get('val_cfg') and cfg.get('val_dataloader'):
        loaders.append('val_dataloader')
    if cfg.get('test_dataloader'):
        loaders.append('test_dataloader')
    return tuple(loaders)


def check_train_consistency(cfg: Config, dataset_reports: Optional[Sequence[Any]] = None) -> None:
    """The checks of a training config: heads against the classes of the train / val / test
    datasets, the validation evaluator's files (when validation runs), warmup against the run.

    Args:
        cfg (Config): The training config, options applied.
        dataset_reports (Sequence, optional): The dataset check's reports of the training
            annotation files (their ``trained_images`` size the run). Defaults to counting
            the files' images.

    Raises:
        ConfigInputError: the first mistake found.
    """
    check_head_classes(cfg, _active_loaders(cfg, 'train'))
    if cfg.get('val_cfg') and cfg.get('val_dataloader'):
        check_evaluator_files(cfg, ('val_evaluator', ))
    if not checked_once_per_job(cfg):  # a torchrun / srun worker: the launcher's pre-check or rank 0 sized the run
        check_warmup_length(cfg, dataset_reports or ())


def check_test_consistency(cfg: Config) -> None:
    """The checks of a test config: heads against the test dataset's classes, the test
    evaluator's files.

    Raises:
        ConfigInputError: the first mistake found.
    """
    check_head_classes(cfg, _active_loaders(cfg, 'test'))
    check_evaluator_files(cfg, ('test_evaluator', ))


# ---------------------------------------------------------------------------------------------
# mmengine's list/dict inheritance error, as advice

_LIST_MERGE = re.compile(r"^(?P<key>\w+)=(?P<value>.*) in child config cannot inherit from base because (?P=key) is "
                         r"a dict in the child config but is of type <class 'list'> in base config", re.S)


def _dict_key_path(config_path: str, key: str) -> Optional[str]:
    """The dotted path of the first ``key=dict(...)`` / ``key={...}`` nested in a top-level
    assignment of the config file, e.g. ``model.roi_head.bbox_head``."""
    try:
        with open(config_path, encoding='utf-8') as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError):
        return None

    def is_dict(node: ast.AST) -> bool:
        return isinstance(node, ast.Dict) or (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                                              and node.func.id == 'dict')

    def items(node: ast.AST) -> Iterator[Tuple[str, ast.AST]]:
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and isinstance(k.value, str):
                    yield k.value, v
        else:
            for keyword in node.keywords:
                if keyword.arg:
                    yield keyword.arg, keyword.value

    def search(node: ast.AST, path: str) -> Optional[str]:
        for name, value in items(node):
            if not is_dict(value):
                continue
            if name == key:
                return f'{path}.{name}'
            found = search(value, f'{path}.{name}')
            if found:
                return found
        return None

    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and \
                isinstance(statement.targets[0], ast.Name) and is_dict(statement.value):
            found = search(statement.value, statement.targets[0].id)
            if found:
                return found
    return None


def list_merge_advice(config_path: str, error: Exception) -> Optional[str]:
    """One line of advice for mmengine's "cannot inherit ... is a dict in the child config but
    is of type <class 'list'> in base config" (Cascade R-CNN's ``bbox_head=dict(num_classes=3)``);
    None for any other error."""
    match = _LIST_MERGE.match(str(error))
    if not match:
        return None
    key, value = match.group('key'), match.group('value')
    path = _dict_key_path(config_path, key) or key
    try:
        items = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        items = None
    if isinstance(items, dict) and items and all(isinstance(k, str) for k in items):
        arguments = ', '.join(f'{k}={v!r}' for k, v in items.items())
        per_item = ' '.join(f'{path}.{index}.{k}={v!r}' for index in range(3) for k, v in items.items())
        options = (f', or drop it, keep the base\'s list and set every item with --cfg-options, e.g. for Cascade '
                   f'R-CNN\'s three heads: {per_item}')
    else:
        arguments, options = '...', ''
    return (f'{config_path}: {path} is a list in the base config (one entry per head, e.g. Cascade R-CNN\'s three '
            f'box heads) and mmengine cannot merge {key}={value} into a list. Replace it by the whole list, '
            f'{key}=[dict(type=..., {arguments}, ...), ...] with every item{options}.')
