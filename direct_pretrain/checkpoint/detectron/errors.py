"""Typed errors of the Detectron (Caffe2) checkpoint converter.

Why a module of its own: the reader, the mapping tables and the converter all raise
them, and callers (the CLI, the ``detectron://`` scheme, tests) catch them by type, so
they live below all three. Every message names the offending file/blob/key and the fix.
"""
from ...errors import UnsafeCheckpointError

__all__ = [
    'DetectronConversionError', 'DetectronFormatError', 'UnsafeDetectronPickleError', 'DetectronArchError',
    'MappingConflictError', 'UnmappedBlobsError', 'MissingTargetError', 'ShapeMismatchError'
]


class DetectronConversionError(ValueError):
    """Base class: a Detectron checkpoint could not be converted as asked."""


class DetectronFormatError(DetectronConversionError):
    """The file is not a Detectron blob pickle (wrong structure, corrupt, non-numeric arrays)."""


class UnsafeDetectronPickleError(UnsafeCheckpointError):
    """The pickle references a type outside the Detectron allow-list; nothing was executed.

    A subclass of :class:`~direct_pretrain.runtime.safe_load.UnsafeCheckpointError`, so
    code that guards mmengine checkpoints catches refused Detectron files too.
    """


class DetectronArchError(DetectronConversionError):
    """The target architecture is unknown, or cannot be inferred unambiguously from the blobs."""


class MappingConflictError(DetectronConversionError):
    """The renaming is not one-to-one: two blobs map to one key, or one blob to two keys."""


class UnmappedBlobsError(DetectronConversionError):
    """Source blobs that the architecture's tables do not consume (and are not known leftovers)."""


class MissingTargetError(DetectronConversionError):
    """Target parameters that no source blob fills."""


class ShapeMismatchError(DetectronConversionError):
    """A converted tensor's shape differs from the target model's parameter."""
