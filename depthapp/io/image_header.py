"""Image sizes from file headers, read before anything is decoded.

A 400 KB PNG can declare 20000 x 20000 pixels and take gigabytes to decode, so
:func:`depthapp.io.images.read_image` asks :func:`image_size` of the file's first bytes and
refuses what exceeds the pixel limit before reading on. :func:`check_complete` then walks a PNG
chunk by chunk (lengths and CRCs) and looks for a JPEG's end marker, so a truncated or damaged
file is refused in one line, before libpng or libjpeg print their own.
"""

from __future__ import annotations

import struct
import zlib
from typing import Optional

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (every one except DHT C4, JPG C8 and DAC CC) carry the size.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class HeaderError(ValueError):
    """The header is recognised but damaged; the message says how (no file name)."""


def image_size(data: bytes) -> Optional[tuple[int, int]]:
    """``(width, height)`` declared by an image file's header, None when the format is unknown.

    Raises:
        HeaderError: a known format whose header is truncated or inconsistent.
    """
    if data.startswith(PNG_SIGNATURE):
        length, kind, width, height = _unpack(">I4sII", data, len(PNG_SIGNATURE), "PNG")
        if kind != b"IHDR" or length != 13:
            raise HeaderError("damaged PNG (first chunk is not IHDR)")
        return width, height
    if data.startswith(b"\xff\xd8"):
        return _jpeg(data)
    if data.startswith(b"BM"):
        return _bmp(data)
    if data[:2] in (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6"):
        return _pnm(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    return None


def _unpack(fmt: str, data: bytes, offset: int, what: str) -> tuple:
    try:
        return struct.unpack_from(fmt, data, offset)
    except struct.error:
        raise HeaderError(f"truncated {what} header") from None


def check_complete(data: bytes) -> None:
    """Raise HeaderError for a PNG whose chunks do not add up or a JPEG without its end."""
    if data.startswith(PNG_SIGNATURE):
        _png_chunks(data)
    elif data.startswith(b"\xff\xd8") and b"\xff\xd9" not in data[-4096:]:
        raise HeaderError("truncated JPEG (no end-of-image marker)")


def _png_chunks(data: bytes) -> None:
    """Walk every chunk: the declared lengths must fit, the CRCs match, IHDR come first and IEND last."""
    offset, size, seen_data = len(PNG_SIGNATURE), None, False
    while True:
        length, kind = _unpack(">I4s", data, offset, "PNG chunk")
        end = offset + 8 + length + 4
        if length > 0x7FFFFFFF or end > len(data):
            raise HeaderError("truncated PNG (a chunk runs past the end of the file)")
        body = data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack_from(">I", data, offset + 8 + length)
        if zlib.crc32(kind + body) != crc:
            raise HeaderError(f"damaged PNG (CRC mismatch in chunk {kind.decode('latin-1')!r})")
        if size is None:
            if kind != b"IHDR" or length != 13:
                raise HeaderError("damaged PNG (first chunk is not IHDR)")
            size = struct.unpack(">II", body[:8])
        seen_data |= kind == b"IDAT"
        offset = end
        if kind == b"IEND":
            break
    if not seen_data:
        raise HeaderError("damaged PNG (no image data)")


def _jpeg(data: bytes) -> tuple[int, int]:
    offset, size = 2, None
    while offset < len(data):
        if data[offset] != 0xFF:
            raise HeaderError("damaged JPEG (expected a marker)")
        marker = data[offset + 1] if offset + 1 < len(data) else None
        if marker is None:
            break
        if marker == 0xFF:
            offset += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            offset += 2
            continue
        (length,) = _unpack(">H", data, offset + 2, "JPEG segment")
        if length < 2:
            raise HeaderError("damaged JPEG (segment length below 2)")
        if marker in _JPEG_SOF:
            height, width = _unpack(">HH", data, offset + 5, "JPEG frame")
            size = (width, height)
            break
        if marker == 0xDA:
            break
        offset += 2 + length
    if size is None:
        raise HeaderError("damaged JPEG (no frame header)")
    return size


def _bmp(data: bytes) -> tuple[int, int]:
    (header_size,) = _unpack("<I", data, 14, "BMP")
    if header_size == 12:
        width, height = _unpack("<HH", data, 18, "BMP")
    else:
        width, height = _unpack("<ii", data, 18, "BMP")
    return abs(width), abs(height)


def _pnm(data: bytes) -> tuple[int, int]:
    numbers: list[int] = []
    position = 2
    head = data[:4096]
    while len(numbers) < 2:
        while position < len(head) and head[position:position + 1].isspace():
            position += 1
        if head[position:position + 1] == b"#":
            newline = head.find(b"\n", position)
            if newline < 0:
                raise HeaderError("truncated PNM header")
            position = newline + 1
            continue
        start = position
        while position < len(head) and head[position:position + 1].isdigit():
            position += 1
        if start == position or position - start > 9:
            raise HeaderError("damaged PNM header (expected width and height)")
        numbers.append(int(head[start:position]))
    return numbers[0], numbers[1]


def _tiff(data: bytes) -> tuple[int, int]:
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = _unpack(order + "I", data, 4, "TIFF")
    (count,) = _unpack(order + "H", data, offset, "TIFF directory")
    width = height = None
    for index in range(count):
        tag, kind, _, value = _unpack(order + "HHI4s", data, offset + 2 + 12 * index, "TIFF entry")
        if tag in (256, 257):
            if kind == 3:
                number = struct.unpack(order + "H", value[:2])[0]
            elif kind == 4:
                number = struct.unpack(order + "I", value)[0]
            else:
                raise HeaderError("damaged TIFF (image size of an unexpected type)")
            if tag == 256:
                width = number
            else:
                height = number
    if width is None or height is None:
        raise HeaderError("damaged TIFF (no image width/length)")
    return width, height


def _webp(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = _unpack("<HH", data, 26, "WebP")
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        (bits,) = _unpack("<I", data, 21, "WebP")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8X":
        raw = _unpack("<6s", data, 24, "WebP")[0]
        return 1 + int.from_bytes(raw[:3], "little"), 1 + int.from_bytes(raw[3:], "little")
    raise HeaderError("damaged WebP (unknown chunk)")
