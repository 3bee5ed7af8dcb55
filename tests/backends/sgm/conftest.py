from __future__ import annotations

import numpy as np
import pytest


def _textured_pair(height: int, width: int, disparity: int, seed: int = 0):
    """A random-texture grey pair whose left view is the right view shifted ``disparity``
    pixels to the right (left x matches right x - d), smoothed so sub-pixel fits are stable."""
    rng = np.random.default_rng(seed)
    base = rng.random((height, width + disparity)).astype(np.float32) * 255
    kernel = np.array([1, 2, 1], np.float32) / 4
    base = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), 1, base)
    left = base[:, :width]
    right = base[:, disparity:disparity + width]
    return np.ascontiguousarray(left), np.ascontiguousarray(right)


@pytest.fixture(scope="session")
def textured_pair():
    """``textured_pair(height, width, disparity, seed=0) -> (left, right)`` grey float32."""
    return _textured_pair
