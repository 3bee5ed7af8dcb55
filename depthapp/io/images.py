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
from .atomic import atomic_path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".pnm", ".bmp", ".tif", ".tiff",
                    ".webp")


def read_image(path: str | os.PathLike, grey: bool = False) -> np.ndarray:
    """Read an image as stored: ``(H, W)`` grey or ``(H, W, 3)`` RGB, uint8 or uint16.

    With ``grey=True`` colour images are converted to luma. Alpha is dropped.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected an image")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error})") from None
    if data.size == 0:
        raise InputError(f"{path}: file is empty")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
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
