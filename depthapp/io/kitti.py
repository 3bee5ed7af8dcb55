"""KITTI 16-bit disparity PNG: ``disparity = value / 256``, ``value == 0`` means invalid.

Source: KITTI stereo devkit, ``io_disp.h`` (``DisparityImage::readDisparityMap`` and
``writeDisparityMap``), values clamped to ``[1, 65535]`` when valid.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .images import read_image, write_image


def read_kitti_disparity(path: str | os.PathLike) -> np.ndarray:
    """Read a KITTI disparity PNG as float32 ``(H, W)`` with NaN where invalid."""
    image = read_image(path)
    if image.dtype != np.uint16 or image.ndim != 2:
        raise InputError(f"{path}: not a KITTI disparity map (expected 16-bit grey PNG, "
                         f"got {image.dtype} with shape {image.shape})")
    disparity = image.astype(np.float32) / 256.0
    disparity[image == 0] = np.nan
    return disparity


def encode_kitti_disparity(disparity: np.ndarray) -> np.ndarray:
    disparity = np.asarray(disparity, dtype=np.float64)
    valid = np.isfinite(disparity) & (disparity >= 0)
    values = np.zeros(disparity.shape, dtype=np.uint16)
    # The devkit rounds like (uint16)max(d*256, 1): a valid zero disparity stays valid as 1.
    scaled = np.clip(np.round(np.where(valid, disparity, 0) * 256.0), 1, 65535)
    values[valid] = scaled[valid].astype(np.uint16)
    return values


def write_kitti_disparity(path: str | os.PathLike, disparity: np.ndarray,
                          overwrite: bool = False) -> Path:
    """Write float disparity as a KITTI 16-bit PNG (NaN / negative -> 0 = invalid)."""
    return write_image(path, encode_kitti_disparity(disparity), overwrite=overwrite)
