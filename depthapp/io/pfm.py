"""Portable Float Map (PFM), the Middlebury and Scene Flow disparity format.

Format: a header line ``PF`` (3 channels) or ``Pf`` (1 channel), a line ``width height``, a line
with the scale whose sign gives the byte order (negative = little endian), then float32 rows
stored bottom to top. Middlebury marks invalid pixels with +inf.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..limits import max_pixels
from .atomic import atomic_path


def read_pfm(path: str | os.PathLike) -> np.ndarray:
    """Read a PFM file as float32 ``(H, W)`` or ``(H, W, 3)``, top row first, values as stored."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(256)
            # Header: three whitespace-separated tokens after the magic, then one whitespace byte.
            match = re.match(rb"(P[Ff])\s+(\d{1,9})\s+(\d{1,9})\s+([-+0-9.eE]{1,32})\s", head)
            if not match:
                raise InputError(f"{path}: not a PFM file (bad header)")
            channels = 3 if match.group(1) == b"PF" else 1
            width, height = int(match.group(2)), int(match.group(3))
            try:
                scale = float(match.group(4))
            except ValueError:
                raise InputError(f"{path}: not a PFM file (bad scale {match.group(4)!r})") from None
            if width <= 0 or height <= 0:
                raise InputError(f"{path}: PFM has an empty size {width}x{height}")
            if not np.isfinite(scale) or scale == 0:
                raise InputError(f"{path}: not a PFM file (scale {scale!r} must be finite and non-zero)")
            if width * height > max_pixels():
                raise InputError(f"{path}: {width}x{height} is above the limit of {max_pixels() / 1e6:g} "
                                 "megapixels (pass --max-pixels to raise it)")
            count = width * height * channels
            handle.seek(match.end())
            body = handle.read(count * 4 + 1)
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error})") from None
    dtype = "<f4" if scale < 0 else ">f4"
    if len(body) != count * 4:
        state = "truncated" if len(body) < count * 4 else "longer than its header says"
        raise InputError(f"{path}: PFM is {state} ({width}x{height}x{channels} needs {count * 4} "
                         f"bytes of pixels, found {'more' if len(body) > count * 4 else len(body)})")
    array = np.frombuffer(body, dtype=dtype, count=count).astype(np.float32)
    shape = (height, width, 3) if channels == 3 else (height, width)
    return np.ascontiguousarray(np.flipud(array.reshape(shape)))


def write_pfm(path: str | os.PathLike, array: np.ndarray, overwrite: bool = False) -> Path:
    """Write float32 ``(H, W)`` or ``(H, W, 3)`` little-endian; NaN becomes +inf (Middlebury)."""
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ValueError(f"PFM holds (H, W) or (H, W, 3), got {array.shape}")
    array = np.where(np.isnan(array), np.float32(np.inf), array)
    magic = b"PF" if array.ndim == 3 else b"Pf"
    height, width = array.shape[:2]
    header = magic + b"\n" + f"{width} {height}\n-1.0\n".encode()
    with atomic_path(path, overwrite) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(header)
            handle.write(np.ascontiguousarray(np.flipud(array)).astype("<f4").tobytes())
    return Path(path)
