"""Typed errors of the importer of the original direct-pretraining release's checkpoints.

Why a module of its own: the reader, the key tables, the converter, the
``direct-release://`` scheme and the CLI all raise or catch them by type, so they live
below all of them. Every message names the file or key and what to do.
"""
__all__ = ['ReleaseConversionError', 'ReleaseFormatError', 'ReleaseArchError', 'ReleaseKeysError',
           'ReleaseShapeError']


class ReleaseConversionError(ValueError):
    """Base class: a release checkpoint could not be converted as asked."""


class ReleaseFormatError(ReleaseConversionError):
    """The file is not an mmdet 2.x checkpoint of the release (no state dict, non-tensor
    values, or already in MMDetection 3.x layout)."""


class ReleaseArchError(ReleaseConversionError):
    """The keys match none of the release's rows; the message names the closest one."""


class ReleaseKeysError(ReleaseConversionError):
    """Source keys the row's table does not consume, or target keys nothing fills."""


class ReleaseShapeError(ReleaseConversionError):
    """A converted tensor's shape differs from the target model's, or from what the
    original layout implies (e.g. a PatchMerging weight that is not 4 x C wide)."""
