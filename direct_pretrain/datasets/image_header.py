"""An image's size from its header (JPEG SOF, PNG IHDR, others through Pillow), not its pixels.

Why: an image file whose real size differs from the annotation file's ``width``/``height``
trains its boxes on the wrong pixels, and a 20000x20000 file declared small is decoded at
full size (1.2 GB of BGR) in a dataloader worker. Both show in the first bytes of the file,
so the up-front image check and the skipping loaders read the header - a few hundred bytes
of a JPEG - and never decode a file they are going to refuse.

The size is the one the decoders produce: for a JPEG with an EXIF orientation that swaps the
axes (5-8), width and height are swapped, as OpenCV's ``IMREAD_COLOR`` and mmcv's loaders
do it.
"""
import io
import struct
from typing import BinaryIO, Optional, Tuple

from PIL import Image

__all__ = ['image_size_from_bytes', 'image_size_from_file', 'size_problem', 'DEFAULT_MAX_IMAGE_PIXELS']

#: Pillow's decompression-bomb guard (``PIL.Image.MAX_IMAGE_PIXELS``, 89,478,485 pixels:
#: ~0.25 GiB of 24-bit pixels): Pillow warns above it and refuses twice that. A decoded BGR
#: image of that size takes 268 MB in every dataloader worker; detection sets are far
#: below it (COCO's images are 640 px, an 8K frame is 33 MP).
DEFAULT_MAX_IMAGE_PIXELS = 89478485

_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (not DHT, JPG, DAC)
_NO_LENGTH = frozenset(range(0xD0, 0xDA)) | {0x01}  # RSTn, SOI, EOI, TEM: markers without a segment
_TRANSPOSING = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_PNG_SIG = b'\x89PNG\r\n\x1a\n'


def _exif_orientation(segment: bytes) -> int:
    """Orientation tag of an APP1 Exif segment's first IFD; 1 when absent or malformed."""
    if not segment.startswith(b'Exif\0\0') or len(segment) < 14:
        return 1
    tiff = segment[6:]
    order = {b'II': '<', b'MM': '>'}.get(tiff[:2])
    if order is None:
        return 1
    try:
        (offset, ) = struct.unpack_from(order + 'I', tiff, 4)
        (count, ) = struct.unpack_from(order + 'H', tiff, offset)
        for index in range(count):
            tag, kind, _, value = struct.unpack_from(order + 'HHI4s', tiff, offset + 2 + 12 * index)
            if tag == 0x0112:
                return struct.unpack_from(order + 'H', value)[0] if kind == 3 else 1
    except struct.error:
        return 1
    return 1


class _Reader:
    """Reads ``count`` bytes at ``offset`` from bytes or a file, with a small read-ahead."""

    def __init__(self, source) -> None:
        self.data = source if isinstance(source, (bytes, bytearray, memoryview)) else None
        self.file: Optional[BinaryIO] = None if self.data is not None else source
        self.start, self.buffer = 0, b''

    def read(self, offset: int, count: int) -> bytes:
        if self.data is not None:
            return bytes(self.data[offset:offset + count])
        if not self.start <= offset or offset + count > self.start + len(self.buffer):
            self.file.seek(offset)
            self.start, self.buffer = offset, self.file.read(max(count, 4096))
        return self.buffer[offset - self.start:offset - self.start + count]


def _jpeg_size(reader: _Reader, oriented: bool) -> Optional[Tuple[int, int]]:
    offset, orientation = 2, 1
    while True:
        head = reader.read(offset, 4)
        if len(head) < 2 or head[0] != 0xFF:
            return None
        marker = head[1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in _NO_LENGTH:
            offset += 2
            continue
        if len(head) < 4 or marker == 0xDA:  # start of scan before any frame header
            return None
        (length, ) = struct.unpack('>H', head[2:4])
        if marker in _SOF:
            frame = reader.read(offset + 4, 5)
            if len(frame) < 5:
                return None
            height, width = struct.unpack('>HH', frame[1:5])
            if oriented and orientation in _TRANSPOSING:
                width, height = height, width
            return width, height
        if marker == 0xE1 and orientation == 1:
            orientation = _exif_orientation(reader.read(offset + 4, length - 2))
        offset += 2 + length


def _image_size(source, oriented: bool) -> Optional[Tuple[int, int]]:
    reader = _Reader(source)
    head = reader.read(0, 24)
    if head[:3] == b'\xff\xd8\xff':
        return _jpeg_size(reader, oriented)
    if head[:8] == _PNG_SIG and head[12:16] == b'IHDR':
        return struct.unpack('>II', head[16:24])
    try:  # other formats: Pillow parses the header only (no pixels) on open
        if reader.data is not None:
            with Image.open(io.BytesIO(reader.data)) as im:
                return im.size
        reader.file.seek(0)
        with Image.open(reader.file) as im:
            return im.size
    except Exception:  # noqa: BLE001  (not an image Pillow knows: the byte checks report it)
        return None


def image_size_from_bytes(data: bytes, oriented: bool = True) -> Optional[Tuple[int, int]]:
    """(width, height) from the header in ``data``; None when it cannot be read.

    Args:
        data (bytes): The file's bytes (the whole file, or at least its header).
        oriented (bool): Swap the axes of JPEGs whose EXIF orientation transposes them, as
            the decoders do by default. Defaults to True.
    """
    return _image_size(data, oriented)


def image_size_from_file(path: str, oriented: bool = True) -> Optional[Tuple[int, int]]:
    """(width, height) from the header of the file at ``path`` (reads a few KB); None when
    it cannot be read."""
    with open(path, 'rb') as f:
        return _image_size(f, oriented)


def size_problem(size: Optional[Tuple[int, int]], expected: Optional[Tuple[float, float]],
                 max_pixels: Optional[int]) -> Optional[str]:
    """What is wrong with an image of header size ``size`` (None: unknown, nothing said), given
    the annotation file's ``expected`` (width, height) and the pixel limit."""
    if size is None:
        return None
    width, height = size
    if max_pixels is not None and width * height > max_pixels:
        return (f'{width}x{height} = {width * height / 1e6:.1f} MP, above dataset_check.max_image_pixels='
                f'{max_pixels} (not decoded)')
    if expected is not None and (width, height) != tuple(expected):
        ew, eh = expected
        return (f'the file is {width}x{height} but the annotation file says {ew:g}x{eh:g} (boxes would land on '
                'the wrong pixels)')
    return None
