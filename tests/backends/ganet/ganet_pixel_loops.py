"""Direct per-pixel loops for SGA and LGA, written from the authors' CUDA kernels
(GANet/libs/GANet/src/GANet_kernel.cu: sga_{down,up,right,left}_forward, Max, and
lga_filtering_forward), used as ground truth for the vectorised implementations.

Slow by design: plain Python over every element, for tiny inputs only.
"""

from __future__ import annotations

import numpy as np


def sga_one_direction(cost: np.ndarray, weights: np.ndarray, direction: str) -> np.ndarray:
    """``cost`` (N, K, D, H, W), ``weights`` (N, K, 5, H, W) -> aggregated (N, K, D, H, W)."""
    n_, k_, depth, height, width = cost.shape
    out = np.zeros_like(cost, dtype=np.float64)
    for n in range(n_):
        for k in range(k_):
            if direction in ("down", "up"):
                lines = [[(y, x) for y in range(height)] for x in range(width)]
            else:
                lines = [[(y, x) for x in range(width)] for y in range(height)]
            for line in lines:
                if direction in ("up", "left"):
                    line = line[::-1]
                previous = None
                for y, x in line:
                    w = weights[n, k, :, y, x]
                    for d in range(depth):
                        c = cost[n, k, d, y, x]
                        if previous is None:
                            total = c * w[0] + c * w[1] + c * w[2] + c * w[3] + c * w[4]
                        else:
                            py, px = previous
                            prev = out[n, k, :, py, px]
                            total = c * w[0] + prev[d] * w[1]
                            total += (prev[d - 1] if d - 1 >= 0 else c) * w[2]
                            total += (prev[d + 1] if d + 1 < depth else c) * w[3]
                            total += max(prev[i] for i in range(depth)) * w[4]
                        out[n, k, d, y, x] = total
                    previous = (y, x)
    return out


def sga_loops(cost, down, up, right, left) -> np.ndarray:
    result = sga_one_direction(cost, down, "down")
    for weights, direction in ((up, "up"), (right, "right"), (left, "left")):
        other = sga_one_direction(cost, weights, direction)
        result = np.where(result < other, other, result)
    return result


def lga_loops(volume: np.ndarray, filters: np.ndarray, radius: int) -> np.ndarray:
    """``volume`` (N, D, H, W), ``filters`` (N, 3(2r+1)^2, H, W) -> (N, D, H, W)."""
    n_, depth, height, width = volume.shape
    size = 2 * radius + 1
    out = np.zeros_like(volume, dtype=np.float64)
    for n in range(n_):
        for d in range(depth):
            for y in range(height):
                for x in range(width):
                    total = 0.0
                    for e in range(-1, 2):
                        for i in range(-radius, radius + 1):
                            for j in range(-radius, radius + 1):
                                dd, yy, xx = d + e, y + i, x + j
                                inside = 0 <= dd < depth and 0 <= yy < height and 0 <= xx < width
                                value = volume[n, dd, yy, xx] if inside else volume[n, d, y, x]
                                tap = (e + 1) * size * size + (i + radius) * size + (j + radius)
                                total += value * filters[n, tap, y, x]
                    out[n, d, y, x] = total
    return out
