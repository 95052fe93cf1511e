"""Checkpoints the package reads: one parser of checkpoint arguments (``detectron://``,
``direct-release://``, paths), the pre-check every entry point runs on a file before reading it,
and the two converters with their schemes (:mod:`.detectron`, :mod:`.release`) sharing one
report type. Loading and writing mmengine checkpoints safely is :mod:`direct_pretrain.runtime`'s."""
from .checkpoint_check import check_checkpoint_file
from .conversion_report import ConversionReport, ConvertedEntry, target_shapes
from .detectron import convert_detectron, register_detectron_scheme
from .release import convert_release, register_release_scheme
from .uri import DETECTRON_PREFIX, RELEASE_PREFIX, CheckpointURI, local_checkpoint_path, parse_checkpoint_uri

__all__ = [
    'check_checkpoint_file', 'ConversionReport', 'ConvertedEntry', 'target_shapes', 'convert_detectron',
    'register_detectron_scheme', 'convert_release', 'register_release_scheme', 'DETECTRON_PREFIX', 'RELEASE_PREFIX',
    'CheckpointURI', 'local_checkpoint_path', 'parse_checkpoint_uri'
]
