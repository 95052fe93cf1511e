"""Checkpoint formats: weights-only mmengine loading, the Detectron (Caffe2) and original-release
(mmdet 2.x) converters and their ``detectron://`` / ``direct-release://`` schemes."""
from .atomic_save import (ATOMIC_BACKEND, AtomicLocalBackend, atomic_write_bytes, find_resumable_checkpoint,
                          is_complete_checkpoint, register_atomic_backend)
from .c2_mapping import C2Arch, build_mapping, infer_arch, parse_arch
from .checkpoint_check import CheckpointCheckError, check_checkpoint_file
from .detectron_converter import ConversionReport, convert_detectron, plan_conversion, retina_anchor_permutation
from .detectron_errors import (DetectronArchError, DetectronConversionError, DetectronFormatError, MappingConflictError,
                               MissingTargetError, ShapeMismatchError, UnmappedBlobsError, UnsafeDetectronPickleError)
from .detectron_pickle import DetectronBlobs, load_detectron_blobs, read_detectron_pickle
from .detectron_scheme import load_from_detectron, register_detectron_scheme
from .release_converter import ReleaseCheckpoint, ReleaseConversionReport, convert_release, read_release_checkpoint
from .release_errors import (ReleaseArchError, ReleaseConversionError, ReleaseFormatError, ReleaseKeysError,
                             ReleaseShapeError)
from .release_mapping import RELEASE_ROWS, ReleaseRow
from .release_scheme import load_from_release, register_release_scheme
from .safe_load import (UnsafeCheckpointError, install_safe_checkpoint_loading, load_from_local_safely,
                        mmengine_checkpoint_safe_globals, safe_torch_load)
from .stale_temp import find_stale_temp_files, remove_stale_temp_files

register_detectron_scheme()
register_release_scheme()
register_atomic_backend()

__all__ = [
    'ATOMIC_BACKEND', 'AtomicLocalBackend', 'atomic_write_bytes', 'find_resumable_checkpoint', 'register_atomic_backend',
    'is_complete_checkpoint',
    'UnsafeCheckpointError', 'install_safe_checkpoint_loading', 'load_from_local_safely',
    'mmengine_checkpoint_safe_globals', 'safe_torch_load', 'C2Arch', 'build_mapping', 'infer_arch', 'parse_arch',
    'ConversionReport', 'convert_detectron', 'plan_conversion', 'retina_anchor_permutation',
    'DetectronConversionError', 'DetectronFormatError', 'UnsafeDetectronPickleError', 'DetectronArchError',
    'MappingConflictError', 'UnmappedBlobsError', 'MissingTargetError', 'ShapeMismatchError', 'DetectronBlobs',
    'load_detectron_blobs', 'read_detectron_pickle', 'load_from_detectron', 'register_detectron_scheme',
    'ReleaseCheckpoint', 'ReleaseConversionReport', 'convert_release', 'read_release_checkpoint', 'ReleaseArchError',
    'ReleaseConversionError', 'ReleaseFormatError', 'ReleaseKeysError', 'ReleaseShapeError', 'RELEASE_ROWS',
    'ReleaseRow', 'load_from_release', 'register_release_scheme', 'CheckpointCheckError', 'check_checkpoint_file',
    'find_stale_temp_files', 'remove_stale_temp_files'
]
