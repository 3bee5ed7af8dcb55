"""Disparity maps on disk, by extension: ``.pfm`` (float, +inf invalid), ``.png`` (KITTI 16-bit,
value/256, 0 invalid), ``.npy`` (float32, NaN invalid)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .atomic import atomic_path
from .kitti import read_kitti_disparity, write_kitti_disparity
from .pfm import read_pfm, write_pfm

DISPARITY_EXTENSIONS = (".pfm", ".png", ".npy")


def read_npy(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not a readable .npy array ({error})") from None
    return array


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
