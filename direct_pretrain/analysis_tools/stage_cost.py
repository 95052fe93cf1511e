"""What one training step of each stage costs: FLOPs counted over a real forward + backward.

Why: mmdet's ``get_flops.py`` needs the COCO val set and measures the *val* pipeline, so a
pretrain config and its fine-tune report the same number and hide what the method saves. The
saving is also smaller than the pixel ratio suggests: RoI heads cost the same per sampled RoI at
any image size (the recipe's 4conv1fc box head is more than half of a 448x448 pretrain step).
Here each config's detector is built, fed a synthetic batch shaped like its *train* pipeline's
output, and one step is run under :class:`torch.utils.flop_counter.FlopCounterMode`, which counts
the matmuls and convolutions of the forward and of autograd's backward per module. A few timed
steps after that give seconds per image on the machine at hand.

What is and is not counted: convolutions, matmuls and attention (the ops that dominate); not
element-wise ops, norms, RoIAlign (an mmcv kernel) or the data pipeline. Inputs are synthetic
(``mmdet.testing.demo_mm_inputs``: random pixels, a fixed number of random boxes and masks per
image, seeded), so the RPN proposals and sampled RoIs are those of a random-init detector; the
sampler sizes (512 RoIs per image for the R-50 recipes) fix the RoI heads' share.
"""
import logging
import math
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from ..config.dataset_cfg import train_pipeline
from ..errors import StageCostError
from ..report.tables import markdown_table

__all__ = ['FlopCount', 'StageCost', 'count_step_flops', 'train_canvas', 'build_train_model',
           'find_num_classes', 'synthetic_train_batch', 'measure_stage', 'compare_stages', 'format_cost_table']

logger = logging.getLogger(__name__)


@dataclass
class FlopCount:
    """FLOPs of one step: the total and the part of it spent inside each named module.

    ``modules`` maps module paths relative to the root (``'backbone'``, ``'roi_head.bbox_head'``)
    to the FLOPs spent inside them (a path includes its children); ``'other'`` holds what ran
    outside every submodule, so the top-level paths plus ``'other'`` add up to ``total``.
    """
    total: int
    modules: Dict[str, int]

    def share(self, name: str) -> float:
        return self.modules.get(name, 0) / self.total if self.total else 0.0


class _Attribution:
    """Who runs now: the innermost module in the forward, the module whose autograd node
    executes in the backward.

    Why not ``FlopCounterMode``'s own per-module counts: its module tracker pops a module in the
    backward when the gradients of the module's inputs are done, which never happens for inputs
    that need no gradient (the image, anything after a frozen stage), so in a fine-tune the
    backbone's backward is booked to the neck. Here every autograd node created in a module's
    forward carries a pre-hook that names that module before the node runs.
    """

    def __init__(self, model: nn.Module) -> None:
        self.names = {module: name for name, module in model.named_modules() if name}
        self.stack: List[str] = []
        self.backward_module: Optional[str] = None
        self.in_backward = False
        self.handles: list = []
        self.tagged: set = set()
        self.nodes: list = []  # keeps tagged nodes alive so their ids stay unique

    def current(self) -> Optional[str]:
        if self.in_backward:
            return self.backward_module
        return self.stack[-1] if self.stack else None

    def pre_hook(self, module, args) -> None:
        name = self.names.get(module)
        if name is not None:
            self.stack.append(name)

    def post_hook(self, module, args, output) -> None:
        if module in self.names and self.stack:
            self.stack.pop()

    def tag(self, outputs) -> None:
        module = self.current()
        if module is None or self.in_backward:
            return
        for out in tree_flatten(outputs)[0]:
            node = getattr(out, 'grad_fn', None) if isinstance(out, torch.Tensor) else None
            if node is None or id(node) in self.tagged:
                continue
            self.tagged.add(id(node))
            self.nodes.append(node)
            self.handles.append(node.register_prehook(self._enter(module)))

    def _enter(self, module: str):
        def hook(grad_outputs):
            self.backward_module = module
        return hook

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        self.nodes.clear()


class _TagNodes(TorchFunctionMode):
    """Tags the autograd node of every torch function's output with the running module."""

    def __init__(self, attribution: _Attribution) -> None:
        super().__init__()
        self.attribution = attribution

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.attribution.tag(out)
        return out


class _CountFlops(TorchDispatchMode):
    """Counts FLOPs with torch's own formulas (``FlopCounterMode``'s registry) per module."""

    def __init__(self, attribution: _Attribution) -> None:
        super().__init__()
        self.attribution = attribution
        self.registry = FlopCounterMode(display=False).flop_registry
        self.counts: Dict[Optional[str], int] = defaultdict(int)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = self.registry.get(func._overloadpacket)
        if formula is not None:
            self.counts[self.attribution.current()] += int(formula(*args, **kwargs, out_val=out))
        return out


def count_step_flops(model: nn.Module, step: Callable[[], torch.Tensor], depth: int = 2) -> FlopCount:
    """Run ``step`` (forward, returns a scalar loss) and its backward, counting FLOPs per module.

    The FLOP formulas are torch's (``torch.utils.flop_counter``: convolutions, matmuls, attention,
    their backward ops). Forward FLOPs go to the innermost running submodule of ``model``; backward
    FLOPs to the module whose forward created the autograd node that runs them.

    Args:
        model (nn.Module): The module ``step`` runs; its submodules are attributed FLOPs.
        step (Callable[[], Tensor]): Runs the forward pass and returns the loss.
        depth (int): Deepest module path kept in ``modules`` (1: direct children). Defaults to 2.
    """
    attribution = _Attribution(model)
    counter = _CountFlops(attribution)
    pre = register_module_forward_pre_hook(attribution.pre_hook)
    post = register_module_forward_hook(attribution.post_hook)
    try:
        with counter:
            with _TagNodes(attribution):
                loss = step()
            attribution.in_backward = True
            loss.backward()
    finally:
        pre.remove()
        post.remove()
        attribution.close()
    total = sum(counter.counts.values())
    modules: Dict[str, int] = defaultdict(int)
    for name, flops in counter.counts.items():
        if name is None:
            modules['other'] += flops
            continue
        parts = name.split('.')
        for level in range(1, min(depth, len(parts)) + 1):
            modules['.'.join(parts[:level])] += flops
    modules.setdefault('other', 0)
    return FlopCount(total, dict(modules))


# ---------------------------------------------------------------------------- input shape
def _wh(value) -> Optional[Tuple[int, int]]:
    """A (w, h) pair from an int side or a pair; None otherwise."""
    if isinstance(value, int):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    return None


def _keep_ratio_box(scale: Tuple[int, int]) -> Tuple[int, int]:
    """A keep-ratio resize to ``scale`` bounds the long side by max(scale) and the short side by
    min(scale); for landscape images (most of COCO) that is the (w, h) box below."""
    return max(scale), min(scale)


def train_canvas(cfg: Config) -> Tuple[int, int]:
    """(w, h) of the largest image a training step sees: the canvas of the train pipeline's
    last resize / crop / pad step, padded to the data preprocessor's ``pad_size_divisor``.

    Keep-ratio resizes give their scale's box (1333x800 -> 1344x800 after padding to 32, the
    size of a landscape COCO image's batch); random-ratio resizes their nominal scale; a choice
    of scales the largest; crops and fixed-size pads their size.
    """
    size: Optional[Tuple[int, int]] = None
    for transform in train_pipeline(cfg):
        kind = transform.get('type', '')
        if kind in ('Resize', 'RandomResize', 'DirectPretrainResizeCrop') and 'scale' in transform:
            scale = _wh(transform['scale'])
            if scale is None and isinstance(transform['scale'], (list, tuple)):  # a (low, high) scale range
                scale = max((s for s in map(_wh, transform['scale']) if s), key=lambda s: s[0] * s[1], default=None)
            # mmdet's Resize / RandomResize default to keep_ratio=False; the recipe's unit keeps it.
            if scale:
                keep_ratio = transform.get('keep_ratio', kind == 'DirectPretrainResizeCrop')
                size = _keep_ratio_box(scale) if keep_ratio else scale
        elif kind == 'RandomChoiceResize' and transform.get('scales'):
            scales = [s for s in (_wh(v) for v in transform['scales']) if s]
            if scales:
                box = max(scales, key=lambda s: s[0] * s[1])
                size = _keep_ratio_box(box) if transform.get('keep_ratio', True) else box
        elif kind in ('RandomChoice', 'AutoAugment', 'Mosaic', 'CachedMosaic'):
            raise StageCostError(f'{kind} in the train pipeline: its output size is not fixed; pass the training '
                                 'resolution explicitly (dp-stage-cost --pretrain-size / --finetune-size WxH).')
        crop = _wh(transform.get('crop_size')) if kind != 'AspectRatioCrop' else None
        if crop and size:
            size = (min(size[0], crop[0]), min(size[1], crop[1]))
        elif crop:
            size = crop
        if kind == 'Pad' and _wh(transform.get('size')):
            size = _wh(transform['size'])
        if kind in ('DirectPretrainResizeCrop', ) and crop and transform.get('pad', True):
            size = crop
    if size is None:
        raise StageCostError('no resize, crop or pad step with a fixed size in the train pipeline; pass the training '
                             'resolution explicitly (dp-stage-cost --pretrain-size / --finetune-size WxH).')
    divisor = int((cfg.model.get('data_preprocessor') or {}).get('pad_size_divisor') or 1)
    return tuple(int(math.ceil(s / divisor) * divisor) for s in size)  # type: ignore[return-value]


# ---------------------------------------------------------------------------- one stage
@dataclass
class StageCost:
    """Per-image cost of one stage's training step.

    ``gflops_per_image`` is machine-independent; ``seconds_per_image`` is measured here.
    """
    name: str
    config: str
    size: Tuple[int, int]
    batch_size: int
    gflops_per_image: float
    shares: Dict[str, float]
    seconds_per_image: Optional[float] = None
    step_seconds: List[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------- a synthetic step
def build_train_model(cfg: Config, seed: int = 0) -> nn.Module:
    """The config's detector in train mode, random init, plain BN (single process)."""
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    torch.manual_seed(seed)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.train()
    return model


def find_num_classes(model: nn.Module) -> int:
    """Object classes of a built detector: the largest int ``num_classes`` of its heads (an
    RPN head's 1 is objectness, not the dataset's classes)."""
    found = [m.num_classes for m in model.modules() if isinstance(getattr(m, 'num_classes', None), int)]
    if not found or max(found) < 1:
        raise ValueError(f'{type(model).__name__} has no head with num_classes; cannot label synthetic boxes')
    return max(found)


def synthetic_train_batch(model: nn.Module, size: Tuple[int, int], batch_size: int, objects_per_image: int) -> dict:
    """A packed batch as a COCO data loader yields it (before the data preprocessor):
    ``batch_size`` images of ``size`` (w, h) with ``objects_per_image`` random boxes over the
    detector's classes, and bitmap masks when the model has a mask head
    (``mmdet.testing.demo_mm_inputs``)."""
    width, height = size
    return demo_mm_inputs(batch_size, image_shapes=(3, height, width), num_items=[objects_per_image] * batch_size,
                          num_classes=max(find_num_classes(model), 2),
                          with_mask=bool(getattr(model, 'with_mask', False)), use_box_type=True)


def measure_stage(cfg: Config, name: str = 'stage', config_path: str = '', batch_size: int = 2,
                  size: Optional[Tuple[int, int]] = None, timed_steps: int = 3, seed: int = 0,
                  depth: int = 2) -> StageCost:
    """FLOPs (and, with ``timed_steps`` > 0, seconds) per image of one training step of ``cfg``.

    The counted step doubles as the timing's warm-up; each timed step is a forward and a
    backward on the same batch, and the fastest is reported (the least disturbed by other work
    on the machine).

    Args:
        cfg (Config): A training config.
        name (str): Stage name in the result. Defaults to 'stage'.
        config_path (str): Shown in the result. Defaults to ''.
        batch_size (int): Images per step. Defaults to 2.
        size (tuple[int, int], optional): (w, h) of the inputs. Defaults to :func:`train_canvas`.
        timed_steps (int): Steps to time; 0 counts FLOPs only. Defaults to 3.
        seed (int): Seed of the random init and the synthetic boxes. Defaults to 0.
        depth (int): Module depth of the shares. Defaults to 2.
    """
    size = tuple(size) if size else train_canvas(cfg)
    model = build_train_model(cfg, seed)
    torch.manual_seed(seed)
    data = model.data_preprocessor(synthetic_train_batch(model, size, batch_size, objects_per_image=8), True)

    def step() -> torch.Tensor:
        losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        return loss

    flops = count_step_flops(model, step, depth=depth)
    shares = {k: v / flops.total for k, v in flops.modules.items() if flops.total}
    times = []
    for _ in range(timed_steps):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        step().backward()
        times.append(time.perf_counter() - start)
    best = min(times) if times else None
    logger.info('%s: %dx%d, %.1f GFLOP/image%s', name, size[0], size[1], flops.total / batch_size / 1e9,
                f', {best / batch_size:.3f} s/image' if best else '')
    return StageCost(name=name, config=config_path, size=size, batch_size=batch_size,
                     gflops_per_image=flops.total / batch_size / 1e9, shares=shares,
                     seconds_per_image=best / batch_size if best else None, step_seconds=times)


def compare_stages(pretrain: StageCost, finetune: StageCost) -> Dict[str, Optional[float]]:
    """Fine-tune / pretrain ratios of pixels, FLOPs and measured seconds per image."""
    pixels = (finetune.size[0] * finetune.size[1]) / (pretrain.size[0] * pretrain.size[1])
    flops = finetune.gflops_per_image / pretrain.gflops_per_image
    seconds = (finetune.seconds_per_image / pretrain.seconds_per_image
               if finetune.seconds_per_image and pretrain.seconds_per_image else None)
    return dict(pixels=pixels, flops=flops, seconds=seconds)


def _top_modules(stages: Sequence[StageCost]) -> List[str]:
    names: List[str] = []
    for stage in stages:
        for key in stage.shares:
            if key not in names and key != 'other':
                names.append(key)
    # direct children first, each followed by its own children
    ordered = [n for n in names if '.' not in n]
    result = []
    for parent in ordered:
        result.append(parent)
        result += [n for n in names if n.startswith(parent + '.')]
    return result + ['other']


def format_cost_table(stages: Sequence[StageCost], min_share: float = 0.01) -> str:
    """A Markdown table: size, GFLOP and seconds per image, then each module's share.

    Modules under ``min_share`` in every stage are left out (their FLOPs stay in the total).
    """
    header = ['', *[s.name for s in stages]]
    rows = [['train input (w x h)', *[f'{s.size[0]}x{s.size[1]}' for s in stages]],
            ['GFLOP / image (fwd + bwd)', *[f'{s.gflops_per_image:.1f}' for s in stages]],
            ['s / image (this machine)',
             *[f'{s.seconds_per_image:.3f}' if s.seconds_per_image else '—' for s in stages]]]
    for module in _top_modules(stages):
        shares = [s.shares.get(module, 0.0) for s in stages]
        if module != 'other' and max(shares) < min_share:
            continue
        label = ('  ' + module.split('.', 1)[1]) if '.' in module else module
        rows.append([f'share: {label}', *[f'{100 * v:.1f}%' for v in shares]])
    return markdown_table(header, rows)
