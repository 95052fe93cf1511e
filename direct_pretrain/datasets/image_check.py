"""Find empty, truncated and non-image files among a dataset's images before training.

Why: a zero-byte or half-written JPEG otherwise crashes training at the iteration that
reaches it - on COCO hours into the run - and ``--resume`` crashes again at the same
image. Checking a file's size and its first and last few bytes (JPEG start/end-of-image
markers, the PNG signature and ``IEND`` chunk, the signatures of the other formats OpenCV
decodes) costs a stat and two small reads per image, so the whole training set is checked
up front (``quick``). The same reads give the size in the header (JPEG SOF, PNG IHDR), which
must be the annotation file's ``width``/``height`` and stay under the pixel limit
(:mod:`.image_header`). ``full`` also parses each file's structure with Pillow.

The same tests (:func:`image_data_problem`) are made by the skipping loaders at training
time, on the bytes they have read anyway and before decoding, so every file this check
reports as "will be skipped" is skipped.
"""
import io
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple

from PIL import Image

from .image_header import image_size_from_bytes, image_size_from_file, size_problem

__all__ = ['IMAGE_CHECK_MODES', 'ImageCheckReport', 'image_bytes_problem', 'image_data_problem',
           'image_header_problem', 'check_image_file', 'check_images']

Size = Optional[Tuple[float, float]]

logger = logging.getLogger(__name__)

IMAGE_CHECK_MODES = ('quick', 'full', 'off')

_HEAD = 16
_TAIL = 4096  # the end-of-image marker must lie in the last 4 KiB (or be found by a full read)
_JPEG_SOI = b'\xff\xd8\xff'
_JPEG_EOI = b'\xff\xd9'
_JPEG_SOS = b'\xff\xda'
_PNG_SIG = b'\x89PNG\r\n\x1a\n'
_PNG_IEND = b'IEND'
# Other formats OpenCV decodes, by their first bytes; they get the size check only.
_OTHER_SIGNATURES = (
    (b'BM', 'BMP'), (b'II*\x00', 'TIFF'), (b'MM\x00*', 'TIFF'), (b'GIF87a', 'GIF'), (b'GIF89a', 'GIF'),
    (b'\x00\x00\x00\x0cjP  ', 'JPEG 2000'), (b'\xff\x4f\xff\x51', 'JPEG 2000'), (b'v/1\x01', 'OpenEXR'),
    (b'#?RADIANCE', 'HDR'), (b'#?RGBE', 'HDR'), (b'\x59\xa6\x6a\x95', 'Sun raster'),
)
_PNM_MAGIC = tuple(b'P%d' % i for i in range(1, 8)) + (b'PF', b'Pf')


def _format_of(head: bytes) -> Optional[str]:
    if head.startswith(_JPEG_SOI):
        return 'JPEG'
    if head.startswith(_PNG_SIG):
        return 'PNG'
    if head[:4] == b'RIFF' and head[8:12] == b'WEBP':
        return 'WebP'
    for signature, name in _OTHER_SIGNATURES:
        if head.startswith(signature):
            return name
    if head[:2] in _PNM_MAGIC and head[2:3].isspace():
        return 'PNM'
    return None


def _jpeg_end_problem(data: bytes) -> Optional[str]:
    """None when the last start-of-scan marker in ``data`` is followed by an end-of-image
    marker. Inside entropy-coded data 0xFF is always stuffed, so 0xFFD9 cannot occur there."""
    eoi, sos = data.rfind(_JPEG_EOI), data.rfind(_JPEG_SOS)
    if eoi < 0:
        return 'truncated JPEG (no end-of-image marker)'
    if sos > eoi:
        return 'truncated JPEG (its last scan has no end-of-image marker)'
    return None


def image_bytes_problem(data: bytes) -> Optional[str]:
    """What is wrong with the bytes of an image file, or None when nothing is seen.

    Checks: not empty; a known image signature; for JPEG an end-of-image marker after the
    last scan; for PNG an ``IEND`` chunk. Decoding problems beyond that are not seen here.
    """
    if not data:
        return 'empty file (0 bytes)'
    fmt = _format_of(data[:_HEAD])
    if fmt is None:
        return f'not an image (it starts with {data[:8]!r}, no JPEG/PNG/BMP/TIFF/WebP/... signature)'
    if fmt == 'JPEG':
        return _jpeg_end_problem(data)
    if fmt == 'PNG' and _PNG_IEND not in data[-_TAIL:]:
        return 'truncated PNG (no IEND chunk)'
    return None


def _verify_problem(source: io.BytesIO) -> Optional[str]:
    """Pillow's structure check (PNG chunk CRCs, headers of the other formats) of a file's bytes."""
    try:
        with Image.open(source) as im:
            width, height = im.size
            im.verify()  # PNG: chunk CRCs; other formats: structure as far as Pillow checks it
    except Exception as error:  # noqa: BLE001  (Pillow raises many types for broken files)
        detail = str(error).replace(repr(source), 'the file')  # the same text wherever the bytes came from
        return f'header cannot be decoded ({type(error).__name__}: {detail})'
    if width < 1 or height < 1:
        return f'header gives an empty image ({width}x{height})'
    return None


def image_data_problem(data: bytes, expected_size: Size = None, max_pixels: Optional[int] = None,
                       verify: bool = False, oriented: bool = True) -> Optional[str]:
    """What is wrong with an image file's bytes, or None: :func:`image_bytes_problem`, then its
    header size against ``expected_size`` (width, height) and ``max_pixels``, then (``verify``)
    Pillow's structure check - what ``quick`` and ``full`` check up front, in the same order.
    Nothing here decodes pixels."""
    return image_bytes_problem(data) or image_header_problem(data, expected_size, max_pixels, verify, oriented)


def image_header_problem(data: bytes, expected_size: Size = None, max_pixels: Optional[int] = None,
                         verify: bool = False, oriented: bool = True) -> Optional[str]:
    """The header part of :func:`image_data_problem`: size against ``expected_size`` and
    ``max_pixels``, then (``verify``) Pillow's structure check."""
    problem = None
    if expected_size is not None or max_pixels is not None:
        problem = size_problem(image_size_from_bytes(data, oriented), expected_size, max_pixels)
    if problem is None and verify:
        problem = _verify_problem(io.BytesIO(data))
    return problem


def _quick(path: str, expected_size: Size = None, max_pixels: Optional[int] = None) -> Optional[str]:
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return 'file not found'
    except OSError as error:
        return f'cannot be read ({error})'
    if size == 0:
        return 'empty file (0 bytes)'
    try:
        with open(path, 'rb') as f:
            problem = _quick_bytes(f, size)
    except OSError as error:
        return f'cannot be read ({error})'
    if problem is None and (expected_size is not None or max_pixels is not None):
        try:
            problem = size_problem(image_size_from_file(path), expected_size, max_pixels)
        except OSError as error:
            return f'cannot be read ({error})'
    return problem


def _quick_bytes(f, size: int) -> Optional[str]:
    head = f.read(_HEAD)
    fmt = _format_of(head)
    if fmt not in ('JPEG', 'PNG'):
        return image_bytes_problem(head) if fmt is None else None
    f.seek(max(0, size - _TAIL))
    tail = f.read()
    if fmt == 'PNG':
        return image_bytes_problem(head + tail) if size > _TAIL else image_bytes_problem(tail)
    if _jpeg_end_problem(tail) is None:
        return None
    # Suspicious tail (trailers after the end-of-image marker exist): read it all.
    f.seek(0)
    return _jpeg_end_problem(f.read())


def _full(path: str, expected_size: Size = None, max_pixels: Optional[int] = None) -> Optional[str]:
    problem = _quick(path, expected_size, max_pixels)
    if problem:
        return problem
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as error:
        return f'cannot be read ({error})'
    return _verify_problem(io.BytesIO(data))  # from bytes, as the loaders run it: the same reason text


def check_image_file(path: str, mode: str = 'quick', expected_size: Size = None,
                     max_pixels: Optional[int] = None) -> Optional[str]:
    """The problem with the image at ``path`` (a short reason), or None.

    Args:
        path (str): Image file.
        mode (str): 'quick' (size, signature, end marker, header size) or 'full' (also parse
            the structure with Pillow). Defaults to 'quick'.
        expected_size (tuple, optional): (width, height) the annotation file gives; a header
            that says otherwise is a problem. Defaults to None (not compared).
        max_pixels (int, optional): More pixels in the header is a problem. Defaults to None.
    """
    if mode == 'quick':
        return _quick(path, expected_size, max_pixels)
    if mode == 'full':
        return _full(path, expected_size, max_pixels)
    raise ValueError(f'image check mode must be one of {IMAGE_CHECK_MODES[:2]}, got {mode!r}')


@dataclass
class ImageCheckReport:
    """Result of :func:`check_images`.

    Attributes:
        mode (str): The check mode.
        num_checked (int): Files looked at.
        bad (list[tuple[str, str]]): (path, reason) of every bad file, in input order.
        seconds (float): Wall time of the check.
    """
    mode: str
    num_checked: int = 0
    bad: List[Tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self, show: int = 5) -> str:
        head = f'image check ({self.mode}): {self.num_checked} files in {self.seconds:.1f} s, {len(self.bad)} bad'
        if not self.bad:
            return head
        shown = '; '.join(f'{path}: {reason}' for path, reason in self.bad[:show])
        return f'{head}: {shown}' + (f'; ... ({len(self.bad) - show} more)' if len(self.bad) > show else '')


def check_images(paths: Iterable[str], mode: str = 'quick', num_threads: int = 8,
                 sizes: Optional[Sequence[Size]] = None, max_pixels: Optional[int] = None) -> ImageCheckReport:
    """Check every file in ``paths`` (duplicates once); IO-bound, so threads run it.

    Args:
        paths (Iterable[str]): Image files.
        mode (str): 'quick', 'full' or 'off' (nothing is checked). Defaults to 'quick'.
        num_threads (int): Parallel readers. Defaults to 8.
        sizes (Sequence, optional): (width, height) per path from the annotation file (None
            where it gives none). Defaults to None (sizes not compared).
        max_pixels (int, optional): Pixel limit of the header size. Defaults to None.
    """
    if mode not in IMAGE_CHECK_MODES:
        raise ValueError(f'image check mode must be one of {IMAGE_CHECK_MODES}, got {mode!r}')
    report = ImageCheckReport(mode)
    if mode == 'off':
        return report
    paths = list(paths)
    expected = dict(zip(paths, sizes)) if sizes is not None else {}
    unique = list(dict.fromkeys(paths))
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, num_threads)) as pool:
        problems = list(pool.map(lambda p: check_image_file(p, mode, expected.get(p), max_pixels), unique))
    report.num_checked = len(unique)
    report.bad = [(path, problem) for path, problem in zip(unique, problems) if problem]
    report.seconds = time.perf_counter() - start
    return report
