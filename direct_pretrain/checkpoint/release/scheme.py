"""The ``direct-release://`` checkpoint scheme: load the original release's files directly.

Why: with the scheme registered, a fine-tune starts from a released pre-trained
checkpoint, and a test evaluates a released fine-tuned one, without a conversion step::

    python tools/train.py configs/direct_pretraining/mask-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py \\
        --cfg-options load_from=direct-release://checkpoints/mask_rcnn_pretrain.pth
    ./dist_test.sh <finetune config> direct-release://checkpoints/mask_rcnn_finetune.pth 8 --eval bbox segm

mmengine's ``load_checkpoint`` / ``_load_checkpoint`` (runner ``load_from``, tests,
``LoadFromCheckHook``) then go through the same weights-only reader and strict table
converter as ``tools/convert_release.py``; the row is inferred from the keys. Files that
need ``--allow-unused`` / ``--allow-missing`` or an explicit ``--arch`` are converted once
with the tool and loaded as plain ``.pth``. A sibling of ``detectron://``.
"""
import logging
from typing import Any, Dict

from mmengine.runner.checkpoint import CheckpointLoader

from ..uri import RELEASE_PREFIX, parse_checkpoint_uri
from .converter import convert_release, read_release_checkpoint, release_checkpoint_dict

__all__ = ['RELEASE_PREFIX', 'load_from_release', 'register_release_scheme']

logger = logging.getLogger(__name__)


def load_from_release(filename: str, map_location: Any = None) -> Dict[str, Any]:
    """mmengine checkpoint loader for ``direct-release://PATH`` (a local release ``.pth``).

    Returns:
        dict: ``{'state_dict': ..., 'meta': {'dataset_meta', 'release_meta', 'release_conversion'}}``.
    """
    path = parse_checkpoint_uri(filename).path
    location = map_location if map_location is not None and not callable(map_location) else 'cpu'
    ckpt = read_release_checkpoint(path, map_location=location)
    state_dict, report = convert_release(ckpt, 'auto')
    return release_checkpoint_dict(state_dict, report, ckpt.meta)


def register_release_scheme() -> None:
    """Register ``direct-release://`` with mmengine's ``CheckpointLoader``. Idempotent."""
    if CheckpointLoader._schemes.get(RELEASE_PREFIX) is not load_from_release:
        CheckpointLoader.register_scheme(prefixes=RELEASE_PREFIX, loader=load_from_release, force=True)
