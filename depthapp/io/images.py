"""Image files (PNG, JPEG, PPM/PGM, BMP, TIFF; 8 or 16 bit; grey or colour) as RGB arrays.

OpenCV's BGR order stays inside this module: arrays returned are RGB, arrays written are RGB.
Files are decoded from bytes so paths with any characters work.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..limits import max_pixels
from .atomic import atomic_path
from .image_header import HeaderError, check_complete, image_size

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".pnm", ".bmp", ".tif", ".tiff",
                    ".webp")
HEAD_BYTES = 1 << 16


def check_image_header(data: bytes, source: str, limit: int | None = None) -> tuple[int, int]:
    """The ``(width, height)`` an image file's first bytes declare, refused in one line when the
    header is unknown or damaged, a side is zero, or there are more than ``limit`` pixels
    (default :func:`~depthapp.limits.max_pixels`); nothing is decoded."""
    try:
        size = image_size(data)
    except HeaderError as error:
        raise InputError(f"{source}: not a readable image ({error})") from None
    if size is None:
        raise InputError(f"{source}: not a readable image (unknown format; use PNG, JPEG, "
                         "PPM/PGM, BMP, TIFF or WebP)")
    width, height = size
    if width <= 0 or height <= 0:
        raise InputError(f"{source}: not a readable image (declares {width}x{height} pixels)")
    limit = max_pixels() if limit is None else limit
    if width * height > limit:
        raise InputError(f"{source}: {width}x{height} is {width * height / 1e6:.0f} megapixels, "
                         f"above the limit of {limit / 1e6:g} (pass --max-pixels to raise it)")
    return width, height


def _read_image_bytes(path: Path) -> bytes:
    """The file's bytes, read only as far as the size its header declares can justify: the
    header is checked from the first 64 KiB, so ``/dev/zero`` or a 20000 x 20000 PNG costs
    nothing. (A TIFF may keep its directory at the end: then the whole file, if regular and
    within what the pixel limit allows, is read first.)"""
    limit = max_pixels()
    try:
        with open(path, "rb") as handle:
            data = handle.read(HEAD_BYTES)
            if not data:
                raise InputError(f"{path}: file is empty")
            if len(data) == HEAD_BYTES and data[:4] in (b"II*\x00", b"MM\x00*") and path.is_file() \
                    and path.stat().st_size <= 8 * limit:
                data += handle.read()
            width, height = check_image_header(data, str(path), limit)
            # 16-bit RGBA stored raw is 8 bytes a pixel, plus row filters and container overhead
            allowed = 8 * width * height + height * 8 + (1 << 20)
            rest = handle.read(max(0, allowed - len(data)) + 1)
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error})") from None
    data += rest
    if len(data) > allowed:
        raise InputError(f"{path}: larger than a {width}x{height} image can be; not an image file")
    try:
        check_complete(data)
    except HeaderError as error:
        raise InputError(f"{path}: not a readable image ({error})") from None
    return data


def read_image(path: str | os.PathLike, grey: bool = False) -> np.ndarray:
    """Read an image as stored: ``(H, W)`` grey or ``(H, W, 3)`` RGB, uint8 or uint16.

    With ``grey=True`` colour images are converted to luma. Alpha is dropped. The size the
    header declares is checked against :func:`~depthapp.limits.max_pixels` before anything is
    decoded.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected an image")
    data = _read_image_bytes(path)
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        message = str(error).strip().splitlines()[-1][-120:] if str(error).strip() else "decoder error"
        raise InputError(f"{path}: not a readable image ({message})") from None
    if image is None or image.size == 0:
        raise InputError(f"{path}: not a readable image")
    if image.ndim == 3:
        if image.shape[2] == 4:
            image = image[:, :, :3]
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if grey:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{path}: unsupported pixel type {image.dtype}")
    return image


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image as ``(H, W, 3)`` RGB uint8 (16-bit is scaled down, grey replicated)."""
    image = read_image(path)
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return image


def encode_image(image: np.ndarray, extension: str) -> bytes:
    """Encode an RGB or grey array (uint8/uint16) into the bytes of a file with ``extension``."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(extension, image)
    if not ok:
        raise InputError(f"cannot encode a {image.dtype} {image.shape} image as {extension}")
    return buffer.tobytes()


def write_image(path: str | os.PathLike, image: np.ndarray, overwrite: bool = False) -> Path:
    """Write an RGB ``(H, W, 3)`` or grey ``(H, W)`` uint8/uint16 array atomically."""
    path = Path(path)
    data = encode_image(image, path.suffix.lower() or ".png")
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data)
    return path


def split_side_by_side(image: np.ndarray, source: str = "image") -> tuple[np.ndarray, np.ndarray]:
    """Split a side-by-side frame (left half | right half) into two views."""
    width = image.shape[1]
    if width < 2 or width % 2:
        raise InputError(f"{source}: a side-by-side frame needs an even width, got {width}")
    half = width // 2
    return np.ascontiguousarray(image[:, :half]), np.ascontiguousarray(image[:, half:])
