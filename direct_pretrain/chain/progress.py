"""Stage-level progress with an ETA for multi-stage jobs (the chain, the mini reproduction).

Why: mmengine prints an ETA inside one training run, but a chained job runs several
child processes of very different cost (a cheap low-resolution pretrain, an expensive
high-resolution fine-tune), and nothing says how long the *job* has left. Each stage gets
a planned relative cost estimated from its config - training passes over the data times
the square root of the pixels per training image - and the seconds the finished stages
took per cost unit turn the remaining plan into an ETA. The first estimate appears after the first stage that
actually ran; later stages refine it.
"""
import logging
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from mmengine.config import Config

from ..config.dataset_cfg import leaf_dataset, repeat_factor
from ..report.tables import format_duration

__all__ = ['StageProgress', 'estimate_train_cost']

logger = logging.getLogger(__name__)


def _area(value) -> Optional[float]:
    """Pixels of a (w, h) scale / crop size, an int side, or the mean of a list of them."""
    if isinstance(value, (int, float)):
        return float(value) ** 2
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return float(value[0]) * float(value[1])
    if isinstance(value, (list, tuple)) and value:
        areas = [a for a in (_area(v) for v in value) if a]
        return sum(areas) / len(areas) if areas else None
    return None


def _pixels(pipeline: Sequence[dict]) -> Optional[float]:
    """Pixels per training image: the last crop size of the pipeline, else its last scale."""
    crop = scale = None
    for transform in pipeline or []:
        for key in ('crop_size', ):
            if key in transform:
                crop = _area(transform[key]) or crop
        for key in ('scale', 'scales'):
            if key in transform:
                scale = _area(transform[key]) or scale
    return crop or scale


def estimate_train_cost(config: Union[str, Config]) -> Optional[float]:
    """Relative cost of training ``config``: epochs x dataset repeats x sqrt(pixels per image).

    The cost of a detector image grows sub-linearly with its pixels (RPN sampling and the
    RoI heads cost about the same per image at any size): on 2 CPU cores the toy pair's
    192x192 pretrain took 0.13 s/image and its 480x320 finetune 0.25 s/image, for 4.2x the
    pixels, i.e. ~ pixels^0.47. Comparable between stages that train on the same dataset
    (the chain's case); None when the config is not epoch-based or has no recognisable
    scale / crop size.
    """
    try:
        cfg = Config.fromfile(config) if isinstance(config, str) else config
        train_cfg = cfg.get('train_cfg') or {}
        epochs = train_cfg.get('max_epochs')
        key, dataset = leaf_dataset(cfg, 'train_dataloader')
        repeat = repeat_factor(cfg, key)
        pixels = _pixels(dataset.get('pipeline') or cfg.get('train_pipeline'))
    except (AttributeError, KeyError, TypeError) as error:
        logger.debug('no cost estimate for %s: %s', config, error)
        return None
    if not epochs or not pixels:
        return None
    return float(epochs) * repeat * pixels**0.5


class StageProgress:
    """Log ``[k/n] stage: ...`` lines with elapsed time and the job's ETA.

    Args:
        plan (Sequence[tuple[str, float | None]]): Stage names in order with their planned
            relative cost (e.g. from :func:`estimate_train_cost`); a None cost (a short
            test stage) is left out of the ETA.
        job (str): Name of the job in the messages. Defaults to 'job'.
        log (Callable[[str], None], optional): Where lines go. Defaults to this module's
            logger at INFO.
    """

    def __init__(self, plan: Sequence[Tuple[str, Optional[float]]], job: str = 'job',
                 log: Optional[Callable[[str], None]] = None) -> None:
        self.plan: List[Tuple[str, Optional[float]]] = list(plan)
        self.job = job
        self.log = log or logger.info
        self.start_time = time.time()
        self.seconds: Dict[str, float] = {}  # stages that ran (or resumed)
        self.done: Dict[str, str] = {}

    def _index(self, name: str) -> int:
        names = [n for n, _ in self.plan]
        if name not in names:
            raise KeyError(f'stage {name!r} is not in the plan {names}')
        return names.index(name) + 1

    def eta(self) -> Optional[float]:
        """Seconds left for the stages not finished yet; None before any stage ran."""
        measured = [(cost, self.seconds[n]) for n, cost in self.plan if n in self.seconds and cost]
        if not measured:
            return None
        rate = sum(s for _, s in measured) / sum(c for c, _ in measured)
        return sum(cost for n, cost in self.plan if n not in self.done and cost) * rate

    def _status(self) -> str:
        eta = self.eta()
        untimed = [n for n, cost in self.plan if n not in self.done and not cost]
        if eta is None:
            left = 'ETA unknown until a stage has run'
        elif eta == 0 and untimed:
            left = f'training done, left: {", ".join(untimed)}'
        else:
            left = f'ETA {format_duration(eta)}' + (f' + {", ".join(untimed)}' if untimed else '')
        return f'{self.job} elapsed {format_duration(time.time() - self.start_time)}, {left}'

    def start(self, name: str) -> None:
        self.log(f'[{self._index(name)}/{len(self.plan)}] {name}: starting ({self._status()})')

    def finish(self, name: str, seconds: float, status: str = 'ran') -> None:
        """Record a finished stage; ``status`` 'skipped' does not count towards the rate."""
        self.done[name] = status
        if status != 'skipped':
            self.seconds[name] = seconds
        self.log(f'[{self._index(name)}/{len(self.plan)}] {name}: {status} in {format_duration(seconds)} '
                 f'({self._status()})')
