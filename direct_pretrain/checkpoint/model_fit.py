"""Does a checkpoint fill the model a config builds, and are its weights finite?

Why: mmengine loads a checkpoint into a model non-strictly - missing, unexpected and
shape-mismatched keys are warnings, those tensors keep their random init - and loads NaN
weights like any others. A test then evaluates a half-random model without a word, a
``--resume`` with another config's shapes trains on, a fine-tune from a diverged pretrain
starts from NaN. This module is the one name/shape comparison, used before the Runner
exists (``dp-test``, ``dp-infer``, the train tool's ``load_from`` and ``--resume``, on a
model built on the meta device: no memory, no init) and by
:class:`~direct_pretrain.engine.hooks.LoadFromCheckHook` on the loaded model; it reads a
mismatch in a class layer as what it is (``num_classes``), and names non-finite tensors.
Each failure is one :class:`CheckpointCheckError` naming the file, the tensors and the fix.
"""
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn

from mmdet.registry import MODELS
from ..errors import CheckpointCheckError, UnsafeCheckpointError

__all__ = ['ShapeMismatch', 'ModelFit', 'compare_shapes', 'checkpoint_state_dict', 'build_model_skeleton',
           'load_checkpoint_state', 'non_finite_tensors', 'check_finite_weights', 'class_count_message',
           'check_checkpoint_fits_model']

logger = logging.getLogger(__name__)

_SHOW = 5
# Layers whose output count is the number of classes (or keypoints): mmdet's fc_cls, retina_cls,
# conv_cls, conv_logits, atss_cls..., the keypoint head's score_lowres.
_CLASS_LAYER = re.compile(r'(^|_)(cls|logits)(_|$)|^score')
_COUNT_ATTRS = (('num_classes', 'classes'), ('num_keypoints', 'keypoints'))


def _shown(items: Sequence[Any]) -> str:
    return ', '.join(str(i) for i in items[:_SHOW]) + (' ...' if len(items) > _SHOW else '')


@dataclass
class ShapeMismatch:
    """A key present on both sides with different shapes."""
    key: str
    checkpoint: Tuple[int, ...]
    model: Tuple[int, ...]

    def __str__(self) -> str:
        return f'{self.key}: checkpoint {self.checkpoint} vs model {self.model}'


@dataclass
class ModelFit:
    """How a checkpoint's state dict meets a model's, key by key.

    Attributes:
        missing (list[str]): Model keys the checkpoint lacks (model order), minus the allowed.
        allowed_missing (list[str]): Missing keys matched by an ``allowed_missing`` pattern.
        unexpected (list[str]): Checkpoint keys the model lacks (sorted).
        shape_mismatch (list[ShapeMismatch]): Keys on both sides with different shapes.
        matched (list[str]): Keys on both sides with the same shape (model order).
    """
    missing: List[str] = field(default_factory=list)
    allowed_missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    shape_mismatch: List[ShapeMismatch] = field(default_factory=list)
    matched: List[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every model tensor is filled and every checkpoint tensor used."""
        return not (self.missing or self.unexpected or self.shape_mismatch)

    def problems(self) -> str:
        parts = []
        if self.missing:
            parts.append(f'{len(self.missing)} model tensor(s) missing from it ({_shown(self.missing)})')
        if self.unexpected:
            parts.append(f'{len(self.unexpected)} tensor(s) the model does not have ({_shown(self.unexpected)})')
        if self.shape_mismatch:
            parts.append(f'{len(self.shape_mismatch)} of another shape ({_shown(self.shape_mismatch)})')
        return '; '.join(parts)


def compare_shapes(model_shapes: Mapping[str, Sequence[int]], checkpoint_shapes: Mapping[str, Sequence[int]],
                   allowed_missing: Sequence[str] = ()) -> ModelFit:
    """Compare names and shapes of a model's state dict with a checkpoint's.

    Args:
        model_shapes (Mapping[str, Sequence[int]]): Model key -> shape.
        checkpoint_shapes (Mapping[str, Sequence[int]]): Checkpoint key -> shape (wrapper
            prefix already stripped, see :func:`checkpoint_state_dict`).
        allowed_missing (Sequence[str]): Regex patterns of model keys that may be absent.

    Returns:
        ModelFit: The comparison.
    """
    patterns = [re.compile(p) for p in allowed_missing]
    fit = ModelFit()
    for key, shape in model_shapes.items():
        if key not in checkpoint_shapes:
            (fit.allowed_missing if any(p.search(key) for p in patterns) else fit.missing).append(key)
        elif tuple(checkpoint_shapes[key]) != tuple(shape):
            fit.shape_mismatch.append(ShapeMismatch(key, tuple(checkpoint_shapes[key]), tuple(shape)))
        else:
            fit.matched.append(key)
    fit.unexpected = sorted(set(checkpoint_shapes) - set(model_shapes))
    return fit


def checkpoint_state_dict(checkpoint: Any) -> Optional[Dict[str, Any]]:
    """The state dict of a loaded checkpoint (its ``state_dict``, or itself), with the
    ``module.`` prefix of a wrapped model stripped as mmengine's loader does; None when
    ``checkpoint`` is not a dict."""
    if not isinstance(checkpoint, Mapping):
        return None
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, Mapping):
        return None
    return {k[len('module.'):] if isinstance(k, str) and k.startswith('module.') else k: v for k, v in state.items()}


def build_model_skeleton(model_cfg: Mapping, default_scope: str = 'mmdet') -> nn.Module:
    """The model of a config, built on the meta device when it can be (only names and
    shapes are needed: no memory, nothing initialised), else on the CPU."""
    with DefaultScope.overwrite_default_scope(default_scope):
        try:
            with torch.device('meta'):
                return MODELS.build(model_cfg)
        except Exception:  # noqa: BLE001  (a module that computes a tensor in __init__)
            logger.debug('model does not build on the meta device; building it on the CPU', exc_info=True)
            return MODELS.build(model_cfg)


def load_checkpoint_state(checkpoint: str, what: str = 'checkpoint') -> Dict[str, torch.Tensor]:
    """Load ``checkpoint`` the way the Runner will (mmengine's loader: the package's
    weights-only local loader, ``detectron://``, ``direct-release://``) and return its state
    dict (prefix stripped).

    Raises:
        CheckpointCheckError: it cannot be loaded or converted, or holds no state dict.
    """
    try:
        loaded = _load_checkpoint(checkpoint, map_location='cpu')
    except UnsafeCheckpointError as error:
        raise CheckpointCheckError(checkpoint, 'unsafe', f'is unsafe to load: {error}', what) from error
    except Exception as error:  # noqa: BLE001  (converters and torch raise many types; each ends here as one line)
        raise CheckpointCheckError(checkpoint, 'unreadable',
                                   f'cannot be loaded ({type(error).__name__}: {error})', what) from error
    state = checkpoint_state_dict(loaded)
    tensors = {k: v for k, v in (state or {}).items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointCheckError(checkpoint, 'not_a_checkpoint', 'holds no tensors (no "state_dict" and no '
                                   'name -> tensor mapping); pass a .pth written by the train tool.', what)
    return tensors


def non_finite_tensors(state: Mapping[str, torch.Tensor]) -> List[str]:
    """Keys of the floating-point tensors holding a NaN or an infinity."""
    return [key for key, value in state.items()
            if isinstance(value, torch.Tensor) and (value.is_floating_point() or value.is_complex())
            and value.device.type != 'meta' and not bool(torch.isfinite(value).all())]


def check_finite_weights(state: Mapping[str, torch.Tensor], checkpoint: str, what: str = 'checkpoint') -> None:
    """Refuse a state dict with NaN/inf weights, naming the tensors.

    Raises:
        CheckpointCheckError: problem ``'non_finite'``.
    """
    bad = non_finite_tensors(state)
    if bad:
        raise CheckpointCheckError(
            checkpoint, 'non_finite', f'holds non-finite weights (NaN/inf) in {len(bad)} of {len(state)} tensors '
            f'({_shown(bad)}): the run that wrote it diverged. Use an earlier checkpoint of that run (its work dir '
            'keeps the last ones), or re-run it (a lower LR or another seed).', what)


def _owner(model: nn.Module, key: str) -> Tuple[Optional[str], Optional[nn.Module], str]:
    """The nearest module above ``key`` that has a class (or keypoint) count, its path, and
    the name of the layer holding the tensor."""
    parts = key.split('.')[:-1]
    layer = parts[-1] if parts else ''
    for end in range(len(parts) - 1, 0, -1):
        path = '.'.join(parts[:end])
        try:
            module = model.get_submodule(path)
        except AttributeError:
            return None, None, layer
        if any(isinstance(getattr(module, attr, None), int) for attr, _ in _COUNT_ATTRS):
            return path, module, layer
    return None, None, layer


def _config_key(path: str, attr: str) -> str:
    return 'model.' + re.sub(r'\.(\d+)(?=\.|$)', r'[\1]', path) + f'.{attr}'


def _heads_with(model: nn.Module, attr: str) -> List[str]:
    heads: List[str] = []
    for path, module in model.named_modules():
        if not path or path.startswith('rpn_head') or not isinstance(getattr(module, attr, None), int):
            continue
        if not any(path.startswith(head + '.') for head in heads):
            heads.append(path)
    return [_config_key(path, attr) for path in heads]


def class_count_message(model: nn.Module, mismatches: Sequence[ShapeMismatch], config_name: str) -> Optional[str]:
    """What a shape mismatch in a class layer means - another class (or keypoint) count -
    and the fix, or None when no mismatch is in a class layer.

    The count the checkpoint was trained for is read from the layer's outputs with the
    head's own relation (``rows = a * num_classes + b``: a = anchors per position for
    anchor heads, b = the background row of a softmax classifier), taken from the model.
    """
    for mismatch in mismatches:
        path, head, layer = _owner(model, mismatch.key)
        if head is None or path.startswith('rpn_head') or not _CLASS_LAYER.search(layer):
            continue
        if len(mismatch.checkpoint) != len(mismatch.model):
            continue
        dim = next(i for i, (c, m) in enumerate(zip(mismatch.checkpoint, mismatch.model)) if c != m)
        rows_ckpt, rows_model = mismatch.checkpoint[dim], mismatch.model[dim]
        attr, noun = next((a, n) for a, n in _COUNT_ATTRS if isinstance(getattr(head, a, None), int))
        count_model = getattr(head, attr)
        priors = getattr(head, 'num_base_priors', 1) if attr == 'num_classes' else 1
        priors = priors if isinstance(priors, int) and priors > 0 and rows_model % priors == 0 else 1
        offset = rows_model - priors * count_model
        count_ckpt, remainder = divmod(rows_ckpt - offset, priors)
        heads = ', '.join(_heads_with(model, attr))
        layer_path = mismatch.key.rsplit('.', 1)[0]
        if remainder or count_ckpt < 1:
            return (f'has {rows_ckpt} outputs in {layer_path} where the model of {config_name} has {rows_model} '
                    f'({attr}={count_model}): the checkpoint was trained for another {attr}. Set {attr} on every '
                    f'head of {config_name} ({heads}) to the checkpoint\'s, or use a checkpoint trained with '
                    f'{count_model} {noun}.')
        if attr == 'num_keypoints':
            detail = f'{rows_ckpt} heatmap channels'
        elif priors > 1:
            detail = f'{rows_ckpt} channels = {priors} anchors x {rows_ckpt // priors}'
        elif offset == 1:
            detail = f'{rows_ckpt} rows incl. background'
        else:
            detail = f'{rows_ckpt} outputs'
        return (f'has {count_ckpt} {noun} in {layer_path} ({detail}) but the config\'s head has {count_model}: set '
                f'{attr}={count_ckpt} on every head of {config_name} ({heads}), or use a checkpoint trained with '
                f'{count_model} {noun}.')
    return None


def check_checkpoint_fits_model(checkpoint: str,
                                model_cfg: Mapping,
                                what: str = 'checkpoint',
                                config_name: str = 'the config',
                                complete: bool = True,
                                allowed_missing: Sequence[str] = (),
                                finite: bool = True,
                                state_shapes: Optional[Mapping[str, Sequence[int]]] = None,
                                default_scope: str = 'mmdet',
                                fix: str = 'Use the config the checkpoint was trained with, or a checkpoint '
                                'trained with this config.') -> Optional[ModelFit]:
    """Check, before any Runner, that ``checkpoint`` fills the model of ``model_cfg``.

    Args:
        checkpoint (str): The checkpoint as given (a path, ``detectron://``,
            ``direct-release://``); run :func:`~.checkpoint_check.check_checkpoint_file` first.
        model_cfg (Mapping): The config's ``model``.
        what (str): How it was given, for the message. Defaults to 'checkpoint'.
        config_name (str): How to name the config in the message. Defaults to 'the config'.
        complete (bool): Refuse missing, unexpected and shape-mismatched tensors (a class
            layer's mismatch named as a class count). False: check the weights' finiteness
            only (the model is not built). Defaults to True.
        allowed_missing (Sequence[str]): Regex patterns of model keys that may be absent.
        finite (bool): Load the tensors and refuse NaN/inf ones. Defaults to True.
        state_shapes (Mapping, optional): Name -> shape when already known without loading
            (:func:`~.checkpoint_check.inspect_checkpoint_file` of a zip); used when
            ``finite`` is False. Defaults to None (load the checkpoint).
        default_scope (str): Registry scope of the model. Defaults to 'mmdet'.
        fix (str): The advice closing a generic mismatch message.

    Returns:
        ModelFit | None: The comparison; None when ``complete`` is False.

    Raises:
        CheckpointCheckError: problem ``'non_finite'`` or ``'does_not_fit'``, or the
            checkpoint cannot be loaded.
    """
    if finite or state_shapes is None:
        state = load_checkpoint_state(checkpoint, what)
        if finite:
            check_finite_weights(state, checkpoint, what)
        shapes: Mapping[str, Sequence[int]] = {k: tuple(v.shape) for k, v in state.items()}
    else:
        shapes = checkpoint_state_dict(state_shapes) or {}
    if not complete:
        return None
    model = build_model_skeleton(model_cfg, default_scope)
    fit = compare_shapes({k: tuple(v.shape) for k, v in model.state_dict().items()}, shapes, allowed_missing)
    if not fit.complete:
        message = class_count_message(model, fit.shape_mismatch, config_name)
        raise CheckpointCheckError(
            checkpoint, 'does_not_fit', message or f'does not fit the model of {config_name}: {fit.problems()}. {fix}',
            what)
    return fit
