"""MC-CNN matching-cost volumes, device-agnostic torch.

Layout of every volume: ``(H, W, D)`` float32, disparity innermost (what the SGM aggregation
takes); ``cost[y, x, d]`` compares left pixel ``x`` with right pixel ``x - d``. Where ``x - d``
falls outside the right image the cost is the worst value of the measure, so those
disparities lose wherever a real match exists.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numba import njit, prange

from .model import PATCH_RADIUS, AccurateMCCNN

_TILE = 64


def network_input(standardised, device) -> torch.Tensor:
    """``(H, W)`` standardised grey -> ``(1, 1, H + 10, W + 10)`` edge-replicated so the valid
    convolutions return features for every pixel."""
    image = torch.as_tensor(standardised, dtype=torch.float32, device=device)[None, None]
    return F.pad(image, (PATCH_RADIUS,) * 4, mode="replicate")


def correlation_volume(left: torch.Tensor, right: torch.Tensor, n_disp: int,
                       invalid_cost: float = 1.0) -> torch.Tensor:
    """Fast MC-CNN cost ``-<f_L(x), f_R(x - d)>``: ``(C, H, W)`` unit features -> ``(H, W, D)``.

    On the CPU a compiled kernel takes one dot product of 64 contiguous floats per pixel and
    disparity (measured 7x less CPU time than the matrix products below on this 2-core
    machine); elsewhere :func:`correlation_volume_matmul`.
    """
    if left.device.type == "cpu":
        left_rows = np.ascontiguousarray(left.permute(1, 2, 0).float().numpy())
        right_rows = np.ascontiguousarray(right.permute(1, 2, 0).float().numpy())
        volume = np.empty(left_rows.shape[:2] + (n_disp,), np.float32)
        _correlation(left_rows, right_rows, int(n_disp), np.float32(invalid_cost), volume)
        return torch.from_numpy(volume)
    return correlation_volume_matmul(left, right, n_disp, invalid_cost)


@njit(cache=True, parallel=True, fastmath=True, boundscheck=False)
def _correlation(left, right, n_disp, invalid, out):
    height, width, channels = left.shape
    for y in prange(height):
        for x in range(width):
            features = left[y, x]
            for d in range(n_disp):
                if d > x:
                    out[y, x, d] = invalid
                else:
                    other = right[y, x - d]
                    total = np.float32(0.0)
                    for c in range(channels):
                        total += features[c] * other[c]
                    out[y, x, d] = -total


def correlation_volume_matmul(left: torch.Tensor, right: torch.Tensor, n_disp: int,
                              invalid_cost: float = 1.0) -> torch.Tensor:
    """:func:`correlation_volume` with batched matrix products (any device, e.g. CUDA).

    Each tile of 64 left columns is one batched matrix product against the right columns it
    can match (``64 + D - 1`` of them); the band ``x - d`` is read out of the product with a
    strided view. No Python loop runs over pixels or disparities.
    """
    channels, height, width = left.shape
    left_rows = left.permute(1, 2, 0)                                   # (H, W, C)
    right_padded = F.pad(right, (n_disp - 1, 0)).permute(1, 0, 2)      # (H, C, W + D - 1)
    volume = left.new_empty(height, width, n_disp)
    for start in range(0, width, _TILE):
        stop = min(width, start + _TILE)
        tile = stop - start
        span = tile + n_disp - 1
        scores = torch.matmul(left_rows[:, start:stop], right_padded[:, :, start:start + span])
        # scores[y, t, m] = f_L(start + t) . f_R(start + m - (D - 1)); m = t + (D - 1 - d).
        band = scores.as_strided((height, tile, n_disp), (tile * span, span + 1, 1))
        volume[:, start:stop] = band.flip(-1).neg()
    _fill_invalid(volume, invalid_cost)
    return volume


def accurate_volume(network: AccurateMCCNN, left: torch.Tensor, right: torch.Tensor, n_disp: int,
                    invalid_cost: float = 0.0, chunk_pixels: int = 1 << 20) -> torch.Tensor:
    """Accurate MC-CNN cost ``-sigmoid(FC([f_L(x), f_R(x - d)]))``: ``(112, H, W)`` -> ``(H, W, D)``.

    The first fully connected layer is split into a left and a right half computed once per
    image; the remaining layers run per disparity on ``chunk_pixels`` pixels at a time.
    """
    _, height, width = left.shape
    left_hidden, right_hidden = network.split_first_layer(left.permute(1, 2, 0), right.permute(1, 2, 0))
    volume = left.new_full((height, width, n_disp), float(invalid_cost))
    rows = max(1, chunk_pixels // max(1, width))
    for d in range(min(n_disp, width)):
        for top in range(0, height, rows):
            bottom = min(height, top + rows)
            hidden = left_hidden[top:bottom, d:] + right_hidden[top:bottom, : width - d]
            volume[top:bottom, d:, d] = network.decide(hidden).neg()
    return volume


def _fill_invalid(volume: torch.Tensor, value: float) -> None:
    """Set ``volume[:, x, d]`` for ``d > x`` (no right pixel) to ``value``."""
    n_disp = volume.shape[2]
    for x in range(min(volume.shape[1], n_disp - 1)):
        volume[:, x, x + 1:] = value
