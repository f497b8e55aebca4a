"""Turn what callers hand the scanner (an array, a path, encoded bytes) into a grey image.

Encoded images are measured from their header before anything is decompressed, so a
decompression bomb costs a few microseconds, and truncated files are refused rather than
decoded into half-grey pictures.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, TypeAlias

import cv2
import numpy as np
import numpy.typing as npt

from scanner.errors import ImageTooLarge, UnreadableImage

Grey: TypeAlias = npt.NDArray[np.uint8]
ImageInput: TypeAlias = npt.NDArray[np.generic] | str | Path | bytes | bytearray | memoryview

# 50 megapixels is more than any phone or warehouse camera takes; beyond it, a decoded image
# (plus the ladder's copies of it) would cost hundreds of megabytes.
MAX_PIXELS = 50_000_000
MAX_FILE_BYTES = 64 * 1024 * 1024
# A progressive JPEG is decoded scan by scan, each pass over the whole image, so its cost
# grows with its scans, not its bytes: 200 KB repeating one scan 1,000 times kept a decoder
# busy for 40 s. Encoders write 1 (baseline) to about 10 (libjpeg's progressive script);
# libjpeg-turbo's own tools refuse files past a scan limit for this reason (-maxscans).
MAX_JPEG_SCANS = 100

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# SOF markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def load(image: ImageInput, *, max_pixels: int = MAX_PIXELS) -> Grey:
    """A contiguous 2-D uint8 grey image, or UnreadableImage / ImageTooLarge."""
    if isinstance(image, np.ndarray):
        return from_array(image, max_pixels=max_pixels)
    if isinstance(image, str | Path):
        return from_bytes(_read_file(Path(image)), max_pixels=max_pixels)
    if isinstance(image, bytes | bytearray | memoryview):
        return from_bytes(bytes(image), max_pixels=max_pixels)
    raise UnreadableImage(f"expected an array, a path or bytes, not {type(image).__name__}")


def from_array(array: npt.NDArray[np.generic], *, max_pixels: int = MAX_PIXELS) -> Grey:
    if array.dtype != np.uint8:
        raise UnreadableImage(f"expected 8-bit pixels, not {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise UnreadableImage(f"expected a grey, BGR or BGRA image, not shape {array.shape}")
    height, width = array.shape[:2]
    _check_size(width, height, max_pixels)
    pixels = array.astype(np.uint8, copy=False)
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        return _flatten_alpha(pixels)
    if pixels.ndim == 3:
        return as_grey(cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY))
    return as_grey(pixels)


def as_grey(image: npt.NDArray[Any]) -> Grey:
    """``image`` as the contiguous uint8 array the decoders take (a copy only if needed)."""
    return np.ascontiguousarray(image, dtype=np.uint8)


def from_bytes(data: bytes, *, max_pixels: int = MAX_PIXELS) -> Grey:
    if not data:
        raise UnreadableImage("empty file")
    width, height, has_alpha = dimensions(data)
    _check_size(width, height, max_pixels)
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        if has_alpha:
            decoded = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
        else:
            decoded = cv2.imdecode(buffer, cv2.IMREAD_GRAYSCALE)
    except cv2.error as exc:
        raise UnreadableImage(f"cannot decode the image: {exc}") from exc
    if decoded is None or decoded.size == 0:
        raise UnreadableImage("cannot decode the image (corrupt or truncated)")
    if decoded.dtype != np.uint8:
        # 16-bit PNGs: the top byte is all a barcode needs.
        decoded = (np.asarray(decoded, dtype=np.uint16) >> 8).astype(np.uint8)
    return from_array(decoded, max_pixels=max_pixels)


def dimensions(data: bytes) -> tuple[int, int, bool]:
    """(width, height, has_alpha) from a PNG, JPEG or WebP header; UnreadableImage otherwise.

    Also refuses PNG and JPEG files whose end is missing: OpenCV would decode them into
    an image whose lower part is flat grey, and a decoder would then report nothing.
    """
    if data.startswith(_PNG_SIGNATURE):
        return _png_dimensions(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_dimensions(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_dimensions(data)
    raise UnreadableImage("not a PNG, JPEG or WebP image")


def _png_dimensions(data: bytes) -> tuple[int, int, bool]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise UnreadableImage("truncated PNG header")
    width, height = struct.unpack(">II", data[16:24])
    colour_type = data[25]
    if b"IEND" not in data[-16:]:
        raise UnreadableImage("truncated PNG (no IEND chunk)")
    return width, height, colour_type in (4, 6)


def _jpeg_dimensions(data: bytes) -> tuple[int, int, bool]:
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            raise UnreadableImage("corrupt JPEG header")
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            offset += 2
            continue
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        if marker in _JPEG_SOF:
            if offset + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            # Scan data never holds FF D9 (FF bytes are stuffed), so the last EOI must come
            # after this frame header; an EXIF thumbnail's EOI comes before it.
            if data.rfind(b"\xff\xd9") < offset:
                raise UnreadableImage("truncated JPEG (no end of image marker)")
            # Entropy-coded data never holds FF DA (its FF bytes are stuffed), so counting
            # start-of-scan markers over the whole file (one pass in C, about 1 ms for
            # 5 MB) bounds the scans from above; a thumbnail's few count too.
            scans = data.count(b"\xff\xda")
            if scans > MAX_JPEG_SCANS:
                raise UnreadableImage(
                    f"a JPEG of {scans} scans (more than {MAX_JPEG_SCANS} is not a photo)"
                )
            return width, height, False
        if marker in (0xD9, 0xDA):
            break
        offset += 2 + length
    raise UnreadableImage("truncated or corrupt JPEG header")


def _webp_dimensions(data: bytes) -> tuple[int, int, bool]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF, False
    if chunk == b"VP8L" and len(data) >= 25:
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool(bits >> 28 & 1)
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height, bool(data[20] & 0x10)
    raise UnreadableImage("truncated or unsupported WebP header")


def _read_file(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UnreadableImage(exc.strerror or str(exc)) from exc
    if len(data) > MAX_FILE_BYTES:
        raise ImageTooLarge(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    return data


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise UnreadableImage(f"the image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLarge(f"{width}x{height} is more than {max_pixels} pixels")


def _flatten_alpha(bgra: Grey) -> Grey:
    # Transparent pixels often hold black; laid on white, a transparent label background
    # reads as the light background a code needs.
    grey = cv2.cvtColor(bgra, cv2.COLOR_BGRA2GRAY).astype(np.uint16)
    alpha = bgra[:, :, 3].astype(np.uint16)
    flat = (grey * alpha + 255 * (255 - alpha)) // 255
    return as_grey(flat)
