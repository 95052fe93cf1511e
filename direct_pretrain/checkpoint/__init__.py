"""Checkpoint formats: weights-only mmengine loading and the Detectron (Caffe2) converter/scheme."""
from .atomic_save import (AtomicLocalBackend, atomic_write_bytes, find_resumable_checkpoint,
                          install_atomic_checkpoint_saving, is_complete_checkpoint)
from .c2_mapping import C2Arch, build_mapping, infer_arch, parse_arch
from .detectron_converter import ConversionReport, convert_detectron, plan_conversion, retina_anchor_permutation
from .detectron_errors import (DetectronArchError, DetectronConversionError, DetectronFormatError, MappingConflictError,
                               MissingTargetError, ShapeMismatchError, UnmappedBlobsError, UnsafeDetectronPickleError)
from .detectron_pickle import DetectronBlobs, load_detectron_blobs, read_detectron_pickle
from .detectron_scheme import load_from_detectron, register_detectron_scheme
from .safe_load import (UnsafeCheckpointError, install_safe_checkpoint_loading, load_from_local_safely,
                        mmengine_checkpoint_safe_globals, safe_torch_load)

register_detectron_scheme()

__all__ = [
    'AtomicLocalBackend', 'atomic_write_bytes', 'find_resumable_checkpoint', 'install_atomic_checkpoint_saving',
    'is_complete_checkpoint',
    'UnsafeCheckpointError', 'install_safe_checkpoint_loading', 'load_from_local_safely',
    'mmengine_checkpoint_safe_globals', 'safe_torch_load', 'C2Arch', 'build_mapping', 'infer_arch', 'parse_arch',
    'ConversionReport', 'convert_detectron', 'plan_conversion', 'retina_anchor_permutation',
    'DetectronConversionError', 'DetectronFormatError', 'UnsafeDetectronPickleError', 'DetectronArchError',
    'MappingConflictError', 'UnmappedBlobsError', 'MissingTargetError', 'ShapeMismatchError', 'DetectronBlobs',
    'load_detectron_blobs', 'read_detectron_pickle', 'load_from_detectron', 'register_detectron_scheme'
]
