"""Detectron (Caffe2) ``.pkl`` weights: the safe reader, the blob-name tables, the converter and
the ``detectron://`` scheme (read -> infer arch -> explicit table -> apply with a report)."""
from .c2_mapping import C2Arch, build_mapping, infer_arch, parse_arch
from .converter import convert_detectron, plan_conversion, retina_anchor_permutation
from .errors import (DetectronArchError, DetectronConversionError, DetectronFormatError, MappingConflictError,
                     MissingTargetError, ShapeMismatchError, UnmappedBlobsError, UnsafeDetectronPickleError)
from .reader import DetectronBlobs, load_detectron_blobs, read_detectron_pickle
from .scheme import load_from_detectron, register_detectron_scheme

__all__ = [
    'C2Arch', 'build_mapping', 'infer_arch', 'parse_arch', 'convert_detectron', 'plan_conversion',
    'retina_anchor_permutation', 'DetectronArchError', 'DetectronConversionError', 'DetectronFormatError',
    'MappingConflictError', 'MissingTargetError', 'ShapeMismatchError', 'UnmappedBlobsError',
    'UnsafeDetectronPickleError', 'DetectronBlobs', 'load_detectron_blobs', 'read_detectron_pickle',
    'load_from_detectron', 'register_detectron_scheme'
]
