"""Slow, direct numpy implementations of every SGM step: the reference the CPU and CUDA
kernels are tested against. Written for clarity (float64, one loop per definition), not speed.
"""

from __future__ import annotations

import numpy as np

from .aggregation import PATH_DIRECTIONS


def census_transform(image: np.ndarray, window: tuple[int, int]) -> np.ndarray:
    """Census bit strings of a ``(H, W)`` image: bit ``k`` is 1 when neighbour ``k`` (window
    offsets in row-major order, centre skipped) is darker than the centre. Pixels outside the
    image repeat the border. ``window`` is ``(height, width)``, odd; returns uint64 ``(H, W)``."""
    image = np.asarray(image, dtype=np.float64)
    wh, ww = window
    ry, rx = wh // 2, ww // 2
    height, width = image.shape
    padded = np.pad(image, ((ry, ry), (rx, rx)), mode="edge")
    bits = np.zeros((height, width), np.uint64)
    bit = 0
    for dy in range(-ry, ry + 1):
        for dx in range(-rx, rx + 1):
            if dy == 0 and dx == 0:
                continue
            neighbour = padded[ry + dy:ry + dy + height, rx + dx:rx + dx + width]
            bits |= (neighbour < image).astype(np.uint64) << np.uint64(bit)
            bit += 1
    return bits


def hamming_cost(census_left: np.ndarray, census_right: np.ndarray, n_disp: int,
                 min_disp: int = 0, outside: float = np.nan) -> np.ndarray:
    """``(H, W, D)`` float64 Hamming distance between left pixel ``x`` and right pixel
    ``x - (min_disp + k)``; ``outside`` where that right pixel is outside the image."""
    height, width = census_left.shape
    cost = np.full((height, width, n_disp), outside, np.float64)
    for k in range(n_disp):
        d = min_disp + k
        for x in range(width):
            xr = x - d
            if 0 <= xr < width:
                diff = census_left[:, x] ^ census_right[:, xr]
                cost[:, x, k] = [bin(int(v)).count("1") for v in diff]
    return cost


def aggregate_path(cost: np.ndarray, p1, p2, path: int) -> np.ndarray:
    """``L_r`` of one path (index into PATH_DIRECTIONS) by the literal recurrence, float64.

    ``p1``/``p2``: scalars or ``(H, W)`` maps for this path, taken at the pixel being entered.
    """
    cost = np.asarray(cost, dtype=np.float64)
    height, width, n_disp = cost.shape
    p1 = np.broadcast_to(np.asarray(p1, np.float64), (height, width))
    p2 = np.broadcast_to(np.asarray(p2, np.float64), (height, width))
    dy, dx = PATH_DIRECTIONS[path]
    result = np.zeros_like(cost)
    ys = range(height) if dy >= 0 else range(height - 1, -1, -1)
    xs = list(range(width)) if dx >= 0 else list(range(width - 1, -1, -1))
    # Rows in path order, columns in path order: p - r is always visited before p.
    for y, x in [(y, x) for y in ys for x in xs]:
        qy, qx = y - dy, x - dx
        if not (0 <= qy < height and 0 <= qx < width):
            result[y, x] = cost[y, x]
            continue
        prev = result[qy, qx]
        prev_min = prev.min()
        for d in range(n_disp):
            candidates = [prev[d], prev_min + p2[y, x]]
            if d > 0:
                candidates.append(prev[d - 1] + p1[y, x])
            if d < n_disp - 1:
                candidates.append(prev[d + 1] + p1[y, x])
            result[y, x, d] = cost[y, x, d] + min(candidates) - prev_min
    return result


def aggregate(cost: np.ndarray, p1, p2, paths=(0, 1, 2, 3, 4, 5, 6, 7)) -> np.ndarray:
    """Sum of :func:`aggregate_path` over ``paths``; ``p1``/``p2`` scalars or ``(n, H, W)``."""
    height, width = np.asarray(cost).shape[:2]
    total = 0
    for i, path in enumerate(paths):
        pen1 = p1 if np.ndim(p1) < 3 else np.asarray(p1)[i]
        pen2 = p2 if np.ndim(p2) < 3 else np.asarray(p2)[i]
        total = total + aggregate_path(cost, pen1, pen2, path)
    return total


def winner_take_all(aggregated: np.ndarray, uniqueness: float = 0.0, subpixel: bool = True):
    """``(disparity, right_disparity)`` in index units by the definitions in
    :func:`depthapp.backends.sgm.aggregation.winner_take_all`."""
    s = np.asarray(aggregated, dtype=np.float64)
    height, width, n_disp = s.shape
    disparity = np.full((height, width), np.nan)
    right = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            costs = s[y, x]
            k = int(np.argmin(costs))
            others = [costs[d] for d in range(n_disp) if abs(d - k) > 1]
            if uniqueness > 0 and others and min(others) * (100 - uniqueness) / 100 < costs[k]:
                continue
            value = float(k)
            if subpixel and 0 < k < n_disp - 1:
                curvature = costs[k - 1] + costs[k + 1] - 2 * costs[k]
                if curvature > 0:
                    value += 0.5 * (costs[k - 1] - costs[k + 1]) / curvature
            disparity[y, x] = value
        for xr in range(width):
            candidates = [s[y, xr + d, d] for d in range(n_disp) if xr + d < width]
            right[y, xr] = int(np.argmin(candidates))
    return disparity, right
