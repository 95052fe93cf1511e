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
import numpy as np
from mmcv.transforms import LoadImageFromFile

from mmdet.registry import TRANSFORMS
from ..image_check import image_data_problem
from ._common import BadImageError
from .bad_image_policy import BadImagePolicy

__all__ = ['LoadImageFromFileOrSkip']

logger = logging.getLogger(__name__)


@TRANSFORMS.register_module()
class LoadImageFromFileOrSkip(BadImagePolicy, LoadImageFromFile):
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
        self._init_bad_image_policy(on_bad_image, max_image_pixels, check_size, verify)
        super().__init__(**kwargs)

    def _load(self, filename: str, expected_size: Optional[Tuple[int, int]] = None) -> np.ndarray:
        data = self._read_bytes(filename, self.backend_args, self.file_client_args)
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
        return super().__repr__()[:-1] + f', {self._bad_image_repr()})'
