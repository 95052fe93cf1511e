"""The original release's (mmdet 2.x) checkpoints: the weights-only reader, the per-row key tables,
the converter and the ``direct-release://`` scheme."""
from .converter import ReleaseCheckpoint, ReleaseConversionReport, convert_release, read_release_checkpoint
from .errors import ReleaseArchError, ReleaseConversionError, ReleaseFormatError, ReleaseKeysError, ReleaseShapeError
from .mapping import RELEASE_ROWS, ReleaseRow
from .scheme import load_from_release, register_release_scheme

__all__ = [
    'ReleaseCheckpoint', 'ReleaseConversionReport', 'convert_release', 'read_release_checkpoint', 'ReleaseArchError',
    'ReleaseConversionError', 'ReleaseFormatError', 'ReleaseKeysError', 'ReleaseShapeError', 'RELEASE_ROWS',
    'ReleaseRow', 'load_from_release', 'register_release_scheme'
]
