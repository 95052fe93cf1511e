"""What both image loaders do with a bad file: read it, and skip (counted, recorded) or raise.

Why one place: ``LoadImageFromFileOrSkip`` (the stock loader's replacement in training) and
``LoadImageReduced`` (the low-resolution decoder) take the same settings (``on_bad_image``,
``max_image_pixels``, ``check_size``, ``verify``), name a missing or unreadable file the same
way, and must count and record every skip the same way, or ``BadImageCountHook``'s totals and
the run report would depend on which loader a config uses.
"""
import logging
from typing import Optional

import mmengine.fileio as fileio

from ..bad_image_log import record_bad_image
from ._common import BadImageError, SkipCounter

__all__ = ['BadImagePolicy']

logger = logging.getLogger(__name__)


class BadImagePolicy:
    """Mixin of the image loaders: their bad-file settings, the file read, and the skip."""

    def _init_bad_image_policy(self, on_bad_image: str, max_image_pixels: Optional[int], check_size: bool,
                               verify: bool) -> None:
        if on_bad_image not in ('raise', 'skip'):
            raise ValueError(f"{type(self).__name__}: on_bad_image must be 'raise' or 'skip', got {on_bad_image!r}")
        self.on_bad_image = on_bad_image
        self.max_image_pixels = max_image_pixels
        self.check_size = check_size
        self.verify = verify
        self.skip_counter = SkipCounter()
        #: Set by ``BadImageCountHook`` to ``<work_dir>/bad_images.jsonl``; None records nothing.
        self.bad_image_log: Optional[str] = None
        self._warned_skip = False

    @staticmethod
    def _read_bytes(path: str, backend_args: Optional[dict] = None, client_args: Optional[dict] = None) -> bytes:
        """The file's bytes through mmengine's file backends; a missing or unreadable file is a
        :class:`BadImageError`."""
        try:
            if client_args is not None:  # the deprecated file_client_args of mmcv's LoadImageFromFile
                return fileio.FileClient.infer_client(client_args, path).get(path)
            return fileio.get(path, backend_args=backend_args)
        except FileNotFoundError as error:
            raise BadImageError(path, 'file not found') from error
        except OSError as error:
            raise BadImageError(path, f'file could not be read ({error})') from error

    def _skip(self, error: BadImageError) -> None:
        """Count and record a skipped file; warn about the first one of this process."""
        self.skip_counter.increment()
        record_bad_image(self.bad_image_log, error.path, error.reason)
        if not self._warned_skip:
            logger.warning('%s (skipped; later skips in this process are logged at DEBUG, BadImageCountHook reports '
                           'the totals)', error)
            self._warned_skip = True
        else:
            logger.debug('%s (skipped)', error)

    def _bad_image_repr(self) -> str:
        return (f'on_bad_image={self.on_bad_image!r}, max_image_pixels={self.max_image_pixels}, '
                f'check_size={self.check_size}, verify={self.verify}')
