"""The ``detectron://`` checkpoint scheme: convert Detectron ``.pkl`` files on the fly.

Why: with the scheme registered, configs can point straight at Detectron weights -
``load_from='detectron://work/model_final.pkl'`` for a model-zoo detector, or
``init_cfg=dict(type='Pretrained', checkpoint='detectron://work/R-50.pkl')`` for an
ImageNet backbone - and mmengine's ``load_checkpoint``/``_load_checkpoint`` (runner,
``PretrainedInit``, tools) go through the same safe reader and strict converter as the
CLI. The architecture is inferred from the blobs; when that is ambiguous, or a file
needs ``--allow-unused``/``--allow-missing``, convert it once with
``tools/convert_detectron.py`` and load the ``.pth`` instead.

It is a sibling of the weights-only local loader in :mod:`direct_pretrain.runtime.safe_load`.
"""
import logging
from typing import Any, Dict

from mmengine.runner.checkpoint import CheckpointLoader

from ..uri import DETECTRON_PREFIX, parse_checkpoint_uri
from .converter import convert_detectron

__all__ = ['DETECTRON_PREFIX', 'load_from_detectron', 'register_detectron_scheme']

logger = logging.getLogger(__name__)


def load_from_detectron(filename: str, map_location: Any = None) -> Dict[str, Any]:
    """mmengine checkpoint loader for ``detectron://PATH`` (a local ``.pkl``).

    Returns:
        dict: ``{'state_dict': ..., 'meta': {'detectron_conversion': report summary}}``.
    """
    path = parse_checkpoint_uri(filename).path
    state_dict, report = convert_detectron(path, 'auto')
    if map_location is not None and not callable(map_location) and str(map_location) != 'cpu':
        state_dict = type(state_dict)((key, value.to(map_location)) for key, value in state_dict.items())
    meta = dict(detectron_conversion=dict(arch=report.arch, summary=report.summary(), edits=report.edits,
                                          ignored_leftovers=report.ignored_leftovers,
                                          momentum_dropped=len(report.momentum_dropped)))
    return dict(state_dict=state_dict, meta=meta)


def register_detectron_scheme() -> None:
    """Register ``detectron://`` with mmengine's ``CheckpointLoader``. Idempotent."""
    if CheckpointLoader._schemes.get(DETECTRON_PREFIX) is not load_from_detectron:
        CheckpointLoader.register_scheme(prefixes=DETECTRON_PREFIX, loader=load_from_detectron, force=True)
