"""Disparity maps on disk, by extension: ``.pfm`` (float, +inf invalid), ``.png`` (KITTI 16-bit,
value/256, 0 invalid), ``.npy`` (float32, NaN invalid)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..limits import max_pixels
from .atomic import atomic_path
from .kitti import read_kitti_disparity, write_kitti_disparity
from .pfm import read_pfm, write_pfm

DISPARITY_EXTENSIONS = (".pfm", ".png", ".npy")


_NPY_DESCR = re.compile(r"'descr':\s*'([<>|=]?[biuf][1248])'")
_NPY_ORDER = re.compile(r"'fortran_order':\s*(True|False)")
_NPY_SHAPE = re.compile(r"'shape':\s*\(((?:\s*\d{1,12}\s*,)*\s*(?:\d{1,12})?\s*)\)")


def _npy_header(handle, path: Path) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of a ``.npy`` header, parsed with three patterns
    rather than ``literal_eval`` (whose failures on crafted headers have no common type):
    only numeric dtypes pass, so nothing else needs understanding."""
    magic = handle.read(8)
    if magic[:6] != b"\x93NUMPY" or len(magic) < 8 or magic[6] not in (1, 2, 3):
        raise InputError(f"{path}: not a .npy file")
    size_bytes = 2 if magic[6] == 1 else 4
    raw_size = handle.read(size_bytes)
    if len(raw_size) != size_bytes:
        raise InputError(f"{path}: .npy header is truncated")
    size = int.from_bytes(raw_size, "little")
    if size > 65536:
        raise InputError(f"{path}: .npy header of {size} bytes is implausible")
    header = handle.read(size).decode("latin-1")
    descr, order, shape = _NPY_DESCR.search(header), _NPY_ORDER.search(header), _NPY_SHAPE.search(header)
    if not (header.startswith("{") and order and shape):
        raise InputError(f"{path}: .npy header is damaged")
    if not descr:
        raise InputError(f"{path}: .npy holds no plain numbers (header {header.strip()[:60]!r})")
    sides = tuple(int(side) for side in shape.group(1).replace(",", " ").split())
    return sides, order.group(1) == "True", np.dtype(descr.group(1))


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """A numeric ``.npy`` array, its header checked (dtype, shape against the pixel limit and
    the file's length) before anything is allocated; never unpickles."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            shape, fortran, dtype = _npy_header(handle, path)
            count = int(np.prod(shape, dtype=object)) if shape else 1
            if count > 4 * max_pixels():
                raise InputError(f"{path}: array of shape {shape} is above the pixel limit "
                                 "(pass --max-pixels to raise it)")
            array = np.empty(count, dtype=dtype)
            got = handle.readinto(memoryview(array).cast("B")) if count else 0
            extra = handle.read(1)
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error})") from None
    expected = count * dtype.itemsize
    if got != expected or extra:
        found = f"more than {expected}" if extra else str(got)
        raise InputError(f"{path}: .npy data is {found} bytes, its header ({dtype}, shape "
                         f"{shape}) says {expected}")
    return array.reshape(shape, order="F" if fortran else "C")


def write_npy(path: str | os.PathLike, array: np.ndarray, overwrite: bool = False) -> Path:
    with atomic_path(path, overwrite) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, np.asarray(array), allow_pickle=False)
    return Path(path)


def read_disparity(path: str | os.PathLike) -> np.ndarray:
    """Read a disparity map as float32 ``(H, W)`` with NaN where invalid."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pfm":
        disparity = read_pfm(path)
    elif suffix == ".png":
        disparity = read_kitti_disparity(path)
    elif suffix == ".npy":
        disparity = read_npy(path)
    else:
        raise InputError(f"{path}: unknown disparity format (use .pfm, .png or .npy)")
    disparity = np.asarray(disparity, dtype=np.float32)
    if disparity.ndim == 3 and disparity.shape[2] in (1, 3):
        disparity = disparity[:, :, 0]
    if disparity.ndim != 2:
        raise InputError(f"{path}: disparity must be a single-channel map, got {disparity.shape}")
    return np.where(np.isfinite(disparity), disparity, np.float32(np.nan))


def write_disparity(path: str | os.PathLike, disparity: np.ndarray, overwrite: bool = False) -> Path:
    """Write a float disparity (NaN invalid) in the format its extension names."""
    suffix = Path(path).suffix.lower()
    if suffix == ".pfm":
        return write_pfm(path, disparity, overwrite=overwrite)
    if suffix == ".png":
        return write_kitti_disparity(path, disparity, overwrite=overwrite)
    if suffix == ".npy":
        return write_npy(path, np.asarray(disparity, dtype=np.float32), overwrite=overwrite)
    raise InputError(f"{path}: unknown disparity format (use .pfm, .png or .npy)")
