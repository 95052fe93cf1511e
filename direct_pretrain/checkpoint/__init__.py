"""Checkpoints the package reads: one parser of checkpoint arguments (``detectron://``,
``direct-release://``, paths), the pre-check every entry point runs on a file before reading it,
whether a checkpoint fills a config's model with finite weights, where a missing ``load_from`` came
from, and the two converters with their schemes (:mod:`.detectron`, :mod:`.release`) sharing one
report type. Loading and writing mmengine checkpoints safely is :mod:`direct_pretrain.runtime`'s."""
from .checkpoint_check import CheckpointContents, check_checkpoint_file, inspect_checkpoint_file
from .conversion_report import ConversionReport, ConvertedEntry, target_shapes
from .detectron import convert_detectron, register_detectron_scheme
from .model_fit import ModelFit, check_checkpoint_fits_model, compare_shapes
from .pretrain_origin import missing_checkpoint_message
from .release import convert_release, register_release_scheme
from .uri import DETECTRON_PREFIX, RELEASE_PREFIX, CheckpointURI, local_checkpoint_path, parse_checkpoint_uri

__all__ = [
    'CheckpointContents', 'check_checkpoint_file', 'inspect_checkpoint_file', 'ModelFit', 'check_checkpoint_fits_model',
    'compare_shapes', 'missing_checkpoint_message', 'ConversionReport', 'ConvertedEntry', 'target_shapes', 'convert_detectron',
    'register_detectron_scheme', 'convert_release', 'register_release_scheme', 'DETECTRON_PREFIX', 'RELEASE_PREFIX',
    'CheckpointURI', 'local_checkpoint_path', 'parse_checkpoint_uri'
]
