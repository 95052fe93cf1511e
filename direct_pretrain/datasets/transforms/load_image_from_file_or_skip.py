"""``LoadImageFromFile`` that skips a bad image during training instead of ending the run.

Why: with the stock loader an empty, truncated or undecodable file raises inside a
dataloader worker and the whole run ends at that iteration - on a large dataset hours in,
and again at the same image after ``--resume``. This subclass checks the bytes it has read
anyway - empty, no image signature, JPEG without end-of-image marker, PNG without ``IEND``,
a header size other than the annotation file's ``width``/``height`` or above the pixel limit
(read from the header: such a file is never decoded), with ``verify`` Pillow's structure
check: the up-front image check's tests - and on a bad file returns None, which makes a
training ``BaseDataset`` draw another index.
Every skip is counted (:class:`SkipCounter`, shared by the workers) and recorded with the
file and the reason, so ``BadImageCountHook`` can report the files and stop the run above
``dataset_check.max_bad_images``. The train tool puts it in place of ``LoadImageFromFile``
in training pipelines.
"""
import logging
from typing import Optional, Tuple

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile

from mmdet.registry import TRANSFORMS
from ..bad_image_log import record_bad_image
from ..image_check import image_data_problem
from ._common import BadImageError, SkipCounter

__all__ = ['LoadImageFromFileOrSkip']

logger = logging.getLogger(__name__)


@TRANSFORMS.register_module()
class LoadImageFromFileOrSkip(LoadImageFromFile):
    """Load an image like ``LoadImageFromFile``; skip (or raise on) bad files.

    Required Keys:

    - img_path (str)

    Added Keys:

    - img (np.uint8 | np.float32, (H, W, C))
    - img_shape (tuple[int, int])
    - ori_shape (tuple[int, int])

    Args:
        on_bad_image (str): 'skip' (return None, count and record the file) or 'raise'
            (:class:`BadImageError` naming the file). Defaults to 'skip'.
        max_image_pixels (int, optional): A header with more pixels is a bad file, not
            decoded. Defaults to None (no limit).
        check_size (bool): A header size other than ``results['width']``/``['height']`` (the
            annotation file's) is a bad file. Defaults to False (the train tool turns it on for
            training pipelines).
        verify (bool): Also run Pillow's structure check (what ``--check-images full`` checks
            up front). Defaults to False.
        **kwargs: ``LoadImageFromFile`` arguments (``to_float32``, ``color_type``,
            ``imdecode_backend``, ``backend_args``, ...).
    """

    def __init__(self, on_bad_image: str = 'skip', max_image_pixels: Optional[int] = None, check_size: bool = False,
                 verify: bool = False, **kwargs) -> None:
        if on_bad_image not in ('raise', 'skip'):
            raise ValueError(f"{type(self).__name__}: on_bad_image must be 'raise' or 'skip', got {on_bad_image!r}")
        super().__init__(**kwargs)
        self.on_bad_image = on_bad_image
        self.max_image_pixels = max_image_pixels
        self.check_size = check_size
        self.verify = verify
        self.skip_counter = SkipCounter()
        #: Set by ``BadImageCountHook`` to ``<work_dir>/bad_images.jsonl``; None records nothing.
        self.bad_image_log: Optional[str] = None
        self._warned_skip = False

    def _load(self, filename: str, expected_size: Optional[Tuple[int, int]] = None) -> np.ndarray:
        try:
            if self.file_client_args is not None:
                data = fileio.FileClient.infer_client(self.file_client_args, filename).get(filename)
            else:
                data = fileio.get(filename, backend_args=self.backend_args)
        except FileNotFoundError as error:
            raise BadImageError(filename, 'file not found') from error
        except OSError as error:
            raise BadImageError(filename, f'file could not be read ({error})') from error
        # the decoders apply the EXIF orientation with these flags (OpenCV's IMREAD_COLOR, mmcv's pillow path)
        oriented = self.color_type in ('color', 'grayscale')
        problem = image_data_problem(data, expected_size, self.max_image_pixels, self.verify, oriented)
        if problem:
            raise BadImageError(filename, problem)
        try:
            img = mmcv.imfrombytes(data, flag=self.color_type, backend=self.imdecode_backend)
        except Exception as error:  # noqa: BLE001  (decoders raise many types)
            raise BadImageError(filename, f'could not be decoded ({type(error).__name__}: {error})') from error
        if img is None:
            raise BadImageError(filename, 'could not be decoded (corrupt or unsupported image data)')
        return img

    def _skip(self, error: BadImageError) -> None:
        self.skip_counter.increment()
        record_bad_image(self.bad_image_log, error.path, error.reason)
        if not self._warned_skip:
            logger.warning('%s (skipped; later skips in this process are logged at DEBUG, BadImageCountHook reports '
                           'the totals)', error)
            self._warned_skip = True
        else:
            logger.debug('%s (skipped)', error)

    def transform(self, results: dict) -> Optional[dict]:
        """Load ``results['img_path']``; None when the file is bad and ``on_bad_image='skip'``."""
        filename = results['img_path']
        expected = (results['width'], results['height']) if self.check_size and results.get('width') and \
            results.get('height') else None
        try:
            img = self._load(filename, expected)
        except BadImageError as error:
            if self.on_bad_image == 'raise':
                raise
            self._skip(error)
            return None
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + (f', on_bad_image={self.on_bad_image!r}, max_image_pixels='
                                          f'{self.max_image_pixels}, check_size={self.check_size}, '
                                          f'verify={self.verify})')
