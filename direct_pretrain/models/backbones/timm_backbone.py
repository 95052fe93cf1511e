"""Any timm model as an mmdet backbone (feature pyramid, frozen stages, BN swap).

Why: direct pre-training works from random init, so any architecture timm can build is a
candidate backbone - but mmdet needs a tuple of ``(B, C, H, W)`` maps, mmdet's
``frozen_stages``/``norm_eval`` conventions and, for large batches, synchronized BN. This
wrapper builds the model with timm's ``features_only`` extraction, converts its BatchNorm
layers to the configured type after creation (timm's ``norm_layer`` arguments differ per
architecture and fuse activations, so a post-hoc swap that keeps the activations is the
one approach that works for all), and never touches the network unless asked to:
``pretrained`` is False by default and local weights go through the package's
weights-only loader.
"""
import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS
from ...runtime.safe_load import safe_torch_load
from ..layers import replace_batch_norm

__all__ = ['TimmBackbone']

logger = logging.getLogger(__name__)

_RESERVED_KWARGS = ('features_only', 'out_indices', 'pretrained', 'in_chans', 'pretrained_cfg_overlay')


def _import_timm() -> Any:
    # Imported here, not at the top: timm is optional and costs ~2 s to import, which every
    # ``import direct_pretrain`` would pay although only configs with a TimmBackbone need it.
    try:
        import timm
    except ImportError as error:
        raise ImportError('TimmBackbone needs timm: pip install timm (or pip install "direct_pretrain[timm]")') \
            from error
    return timm


def _checkpoint_state_dict(path: str) -> Dict[str, Tensor]:
    """The model weights of a local checkpoint, loaded weights-only."""
    checkpoint = safe_torch_load(path, map_location='cpu')
    state = checkpoint
    for key in ('state_dict', 'model', 'module'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f'checkpoint_path={path!r} holds no state dict of tensors (top-level keys: '
                         f'{sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint)}); '
                         'save model.state_dict() of the timm model.')
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}


@MODELS.register_module()
class TimmBackbone(BaseModule):
    """A timm model's feature pyramid as an mmdet backbone.

    Stages follow mmdet's convention: stage ``k`` (1-based) is the ``k``-th timm feature
    level whose reduction is at least 4 (ResNet: ``layer1``..``layer4``; ConvNeXt:
    ``stages.0``..``stages.3``) and the stem is everything before stage 1.

    Args:
        model_name (str): timm model name, e.g. ``'resnet18'``.
        out_indices (Sequence[int], optional): timm feature levels to return (timm's
            numbering; ResNet level 1 is stride 4). None returns every level of stride
            >= 4, typically strides 4/8/16/32 for an FPN. Defaults to None.
        frozen_stages (int): Freeze (no grad, eval mode) the stem and the first
            ``frozen_stages`` stages; 0 freezes the stem only, -1 nothing.
            Defaults to -1.
        norm_eval (bool): Keep all BatchNorm layers in eval mode while training
            (fine-tune with frozen BN statistics). Defaults to False.
        norm_cfg (dict, optional): BatchNorm type the model's BN layers become, e.g.
            ``dict(type='SyncBNAnyBackend')`` to pretrain or
            ``dict(type='BN', requires_grad=False)`` to fine-tune; fused timm BN+act
            layers keep their activation. None keeps timm's layers. Defaults to None.
        pretrained (bool): Let timm load its published weights (downloads them).
            Defaults to False.
        checkpoint_path (str, optional): Local timm-format weights (a ``state_dict`` of
            the full classification model, optionally under ``state_dict``/``model``),
            loaded with the package's weights-only loader. Every backbone key must be
            present; classifier keys may be absent. Defaults to None.
        in_channels (int): Input channels. Defaults to 3.
        model_kwargs (dict, optional): Further ``timm.create_model`` arguments
            (``drop_path_rate``, ``output_stride``, ...). Defaults to None.
        init_cfg (dict, optional): mmengine init config; timm already initialises the
            model at creation, so None leaves it as timm built (or loaded) it.
            Defaults to None.
    """

    def __init__(self,
                 model_name: str,
                 out_indices: Optional[Sequence[int]] = None,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 norm_cfg: Optional[Dict[str, Any]] = None,
                 pretrained: bool = False,
                 checkpoint_path: Optional[str] = None,
                 in_channels: int = 3,
                 model_kwargs: Optional[Dict[str, Any]] = None,
                 init_cfg: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        timm = _import_timm()
        kwargs = dict(model_kwargs or {})
        reserved = sorted(set(kwargs) & set(_RESERVED_KWARGS))
        if reserved:
            raise ValueError(f'model_kwargs must not set {reserved}: TimmBackbone sets them from its own '
                             'arguments (out_indices, pretrained, checkpoint_path, in_channels).')
        if pretrained and checkpoint_path:
            raise ValueError(f'pretrained=True and checkpoint_path={checkpoint_path!r} both ask for weights; '
                             'set only one (checkpoint_path for local, offline weights).')
        self.model_name = model_name
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        create_kwargs: Dict[str, Any] = dict(features_only=True, in_chans=in_channels, pretrained=pretrained,
                                             **kwargs)
        if out_indices is not None:
            create_kwargs['out_indices'] = tuple(out_indices)
        if checkpoint_path:
            state_dict = _checkpoint_state_dict(checkpoint_path)
            self._check_checkpoint_keys(timm, state_dict, checkpoint_path, in_channels, kwargs)
            # timm loads it into the full model before wrapping (classifier dropped, in_chans adapted).
            create_kwargs.update(pretrained=True, pretrained_cfg_overlay=dict(state_dict=state_dict, source='timm'))
        try:
            self.model = timm.create_model(model_name, **create_kwargs)
        except (RuntimeError, TypeError, AssertionError) as error:
            raise ValueError(f'timm.create_model({model_name!r}, features_only=True, ...) failed: {error}. Pick a '
                             'model that supports feature extraction, or fix out_indices / model_kwargs / the '
                             'checkpoint.') from error

        if checkpoint_path:
            # timm keeps the overlay in pretrained_cfg: drop it, or every deepcopy (EMA) copies the weights.
            for module in self.model.modules():
                for attr in ('pretrained_cfg', 'default_cfg'):
                    cfg = getattr(module, attr, None)
                    if isinstance(cfg, dict):
                        cfg.pop('state_dict', None)

        levels: List[Dict[str, Any]] = list(self.model.feature_info.info)
        returned = list(self.model.feature_info.out_indices)
        wanted = returned if out_indices is not None else [i for i in returned if levels[i]['reduction'] >= 4]
        if not wanted:
            raise ValueError(f'{model_name!r} has no feature level with stride >= 4 among {returned}; '
                             'set out_indices explicitly.')
        self.out_indices: Tuple[int, ...] = tuple(wanted)
        self._select = [returned.index(i) for i in wanted]
        self.out_channels: List[int] = [levels[i]['num_chs'] for i in wanted]
        self.out_strides: List[int] = [levels[i]['reduction'] for i in wanted]
        fmt = getattr(self.model, 'output_fmt', 'NCHW')
        self._channels_last_output = getattr(fmt, 'value', fmt) == 'NHWC'

        if norm_cfg is not None:
            if not any(isinstance(m, _BatchNorm) for m in self.model.modules()):
                logger.warning('TimmBackbone %s has no BatchNorm layer; norm_cfg=%s changes nothing (choose its '
                               'norms through model_kwargs if the model supports it).', model_name, norm_cfg)
            replace_batch_norm(self.model, norm_cfg)
        self._frozen_modules, self._frozen_params = self._resolve_frozen(levels)
        self._freeze_stages()
        logger.info('TimmBackbone %s: out_indices=%s channels=%s strides=%s frozen params=%d', model_name,
                    self.out_indices, self.out_channels, self.out_strides, len(self._frozen_params))

    def _check_checkpoint_keys(self, timm: Any, state_dict: Dict[str, Tensor], path: str, in_channels: int,
                               kwargs: Dict[str, Any]) -> None:
        """Refuse a checkpoint that lacks backbone keys; timm would only log them at INFO
        and leave those weights at their random init."""
        build = dict(pretrained=False, in_chans=in_channels, **kwargs)
        try:
            with torch.device('meta'):  # key names only: no memory, no init cost
                reference = timm.create_model(self.model_name, **build)
        except Exception:  # some constructors call .item(), impossible on meta tensors
            reference = timm.create_model(self.model_name, **build)
        classifier = reference.pretrained_cfg.get('classifier') or ()
        classifier = (classifier, ) if isinstance(classifier, str) else tuple(classifier)
        missing = sorted(k for k in set(reference.state_dict()) - set(state_dict)
                         if not any(k.startswith(c + '.') for c in classifier))
        if missing:
            raise ValueError(f'checkpoint_path={path!r} lacks {len(missing)} weights of {self.model_name!r}, e.g. '
                             f'{missing[:5]}; it must be the state_dict of timm.create_model({self.model_name!r}) '
                             '(timm key names, classifier optional).')

    def _resolve_module(self, name: str) -> str:
        """Name in ``self.model`` of timm's feature module ``name`` (wrappers rename it)."""
        names = dict(self.model.named_modules())
        for candidate in (name, name.replace('.', '_')):
            if candidate in names:
                return candidate
        suffix = [n for n in names if n.endswith('.' + name)]
        if len(suffix) == 1:
            return suffix[0]
        raise ValueError(f'frozen_stages={self.frozen_stages}: stage module {name!r} of {self.model_name!r} is not '
                         'part of the feature model (is it beyond the last out_indices level?); lower '
                         'frozen_stages or return a later level.')

    def _resolve_frozen(self, levels: List[Dict[str, Any]]) -> Tuple[List[str], List[str]]:
        """Modules (non-recursive) and parameters that ``frozen_stages`` freezes."""
        if self.frozen_stages < 0:
            return [], []
        stages = [i for i, level in enumerate(levels) if level['reduction'] >= 4]
        if self.frozen_stages > len(stages):
            raise ValueError(f'frozen_stages={self.frozen_stages} but {self.model_name!r} has {len(stages)} stages '
                             f'(feature levels of stride >= 4); use at most {len(stages)}.')
        target = self._resolve_module(levels[stages[max(self.frozen_stages, 1) - 1]]['module'])
        ordered = [name for name, _ in self.model.named_modules()]
        start = ordered.index(target)
        if self.frozen_stages == 0:  # the stem: everything before stage 1
            end = start
        else:  # up to the end of the target stage's subtree
            end = max(i for i, n in enumerate(ordered) if n == target or n.startswith(target + '.')) + 1
        ancestors = {''} | {'.'.join(target.split('.')[:i]) for i in range(1, target.count('.') + 1)}
        # Containers of the target keep training mode; their own parameters (e.g. position
        # embeddings of ViT-like models) belong to the stem and are frozen with it.
        modules = [n for n in ordered[:end] if n not in ancestors]
        frozen = set(modules) | ancestors
        params = [f'{m}.{p}' if m else p for m in frozen for p, _ in self.model.get_submodule(m).named_parameters(
            recurse=False)]
        return modules, sorted(params)

    def _freeze_stages(self) -> None:
        params = dict(self.model.named_parameters())
        for name in self._frozen_params:
            params[name].requires_grad = False
        for name in self._frozen_modules:
            self.model.get_submodule(name).training = False

    def train(self, mode: bool = True) -> 'TimmBackbone':
        """Train mode with frozen stages and, if ``norm_eval``, BatchNorm kept in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def init_weights(self) -> None:
        """timm initialised (or loaded) the weights at creation; only an explicit
        ``init_cfg`` re-initialises. mmengine's default recursion would otherwise call
        timm's own ``init_weights`` on children and wipe a loaded checkpoint."""
        if self.init_cfg is not None:
            super().init_weights()

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Feature maps ``(B, C_i, H / s_i, W / s_i)`` for ``out_indices``."""
        features = self.model(x)
        outs = tuple(features[i] for i in self._select)
        if self._channels_last_output:
            outs = tuple(f.permute(0, 3, 1, 2).contiguous() for f in outs)
        return outs
