"""The stereo method of Zbontar & LeCun (JMLR 2016, sec. 3) around the MC-CNN matching cost.

Steps, each a function of numpy arrays (numba kernels, CPU, parallel over rows or columns):
    cross_arms / cross_aggregate   cross-based cost aggregation (Zhang et al. 2009), the
                                   support region being the intersection of the left pixel's
                                   cross and its match's cross
    sgm_penalties                  P1/P2 per pixel and path, reduced at intensity edges and
                                   scaled on vertical paths (the aggregation itself is the
                                   shared one of the sgm backend)
    classify_outliers              left-right check: match / occlusion / mismatch
    interpolate_outliers           occlusions take the nearest correct disparity to the left
                                   (background), mismatches the median of the nearest correct
                                   disparities in 16 directions
    subpixel                       parabola through the cost minimum, offset clamped to 1 px
    bilateral_mean                 Gaussian mean over neighbours within a disparity threshold

Shapes: images and disparities ``(H, W)`` float32; cost volumes ``(H, W, D)`` float32, left
pixel ``x`` against right pixel ``x - d``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

MATCH, OCCLUSION, MISMATCH = 0, 1, 2

# 16 directions (dx, dy) of the mismatch interpolation, as in the paper's implementation.
_DIRECTIONS_16 = np.array([
    (0, 1), (-0.5, 1), (-1, 1), (-1, 0.5), (-1, 0), (-1, -0.5), (-1, -1), (-0.5, -1),
    (0, -1), (0.5, -1), (1, -1), (1, -0.5), (1, 0), (1, 0.5), (1, 1), (0.5, 1)], np.float32)


# ----------------------------------------------------------------------------- cross aggregation

@njit(cache=True, parallel=True, boundscheck=False)
def _cross_arms(image, max_length, tau, arms):
    height, width = image.shape
    for y in prange(height):
        for x in range(width):
            centre = image[y, x]
            for direction in range(4):
                dx, dy = (-1, 0) if direction == 0 else (1, 0) if direction == 1 else \
                    (0, -1) if direction == 2 else (0, 1)
                xx, yy = x + dx, y + dy
                while 0 <= xx < width and 0 <= yy < height:
                    distance = max(abs(xx - x), abs(yy - y))
                    if distance > 1:
                        if abs(image[yy, xx] - centre) >= tau or distance >= max_length:
                            break
                    xx += dx
                    yy += dy
                arms[direction, y, x] = xx if direction <= 1 else yy


def cross_arms(image: np.ndarray, max_length: int, tau: float) -> np.ndarray:
    """``(4, H, W)`` int32 exclusive ends of each pixel's cross: left x, right x, top y, bottom y.

    An arm grows while the intensity differs from the centre by less than ``tau`` and the
    length stays below ``max_length``; the direct neighbours always belong to the cross.
    """
    image = np.ascontiguousarray(image, dtype=np.float32)
    arms = np.empty((4,) + image.shape, np.int32)
    _cross_arms(image, int(max_length), float(tau), arms)
    return arms


@njit(cache=True, parallel=True, boundscheck=False)
def _horizontal_sums(cost, arms_left, arms_right, sums, counts):
    height, width, n_disp = cost.shape
    for y in prange(height):
        prefix = np.zeros((width + 1, n_disp), np.float64)
        for x in range(width):
            for d in range(n_disp):
                prefix[x + 1, d] = prefix[x, d] + cost[y, x, d]
        for x in range(width):
            for d in range(n_disp):
                xr = x - d
                if xr < 0:
                    continue
                low = max(arms_left[0, y, x], arms_right[0, y, xr] + d)
                high = min(arms_left[1, y, x], arms_right[1, y, xr] + d)
                if high - low > 1:
                    sums[y, x, d] = prefix[high, d] - prefix[low + 1, d]
                    counts[y, x, d] = high - low - 1
                else:
                    sums[y, x, d] = 0.0
                    counts[y, x, d] = 0


@njit(cache=True, parallel=True, boundscheck=False)
def _vertical_means(cost, sums, counts, arms_left, arms_right, out):
    height, width, n_disp = cost.shape
    for x in prange(width):
        prefix = np.zeros((height + 1, n_disp), np.float64)
        prefix_count = np.zeros((height + 1, n_disp), np.int64)
        for y in range(height):
            for d in range(n_disp):
                prefix[y + 1, d] = prefix[y, d] + sums[y, x, d]
                prefix_count[y + 1, d] = prefix_count[y, d] + counts[y, x, d]
        for y in range(height):
            for d in range(n_disp):
                xr = x - d
                if xr < 0:
                    out[y, x, d] = cost[y, x, d]
                    continue
                top = max(arms_left[2, y, x], arms_right[2, y, xr])
                bottom = min(arms_left[3, y, x], arms_right[3, y, xr])
                count = prefix_count[bottom, d] - prefix_count[top + 1, d]
                if count > 0:
                    out[y, x, d] = (prefix[bottom, d] - prefix[top + 1, d]) / count
                else:
                    out[y, x, d] = cost[y, x, d]


def cross_aggregate(cost: np.ndarray, arms_left: np.ndarray, arms_right: np.ndarray,
                    iterations: int) -> np.ndarray:
    """Mean of the ``(H, W, D)`` cost over the intersection of the crosses of left pixel
    ``(x, y)`` and right pixel ``(x - d, y)``, repeated ``iterations`` times. Each row of the
    region uses that row's horizontal arms (the paper's vertical-then-horizontal support);
    summed with per-row and per-column prefix sums, so the cost per pixel does not grow with
    the arm length."""
    cost = np.ascontiguousarray(cost, dtype=np.float32)
    if iterations <= 0:
        return cost
    sums = np.empty(cost.shape, np.float32)
    counts = np.empty(cost.shape, np.int32)
    out = np.empty_like(cost)
    for _ in range(iterations):
        _horizontal_sums(cost, arms_left, arms_right, sums, counts)
        _vertical_means(cost, sums, counts, arms_left, arms_right, out)
        cost, out = out, cost
    return cost


# ----------------------------------------------------------------------------- SGM penalties

def intensity_steps(image: np.ndarray) -> np.ndarray:
    """``(4, H, W)`` absolute intensity change entering each pixel along SGM paths 0..3 of
    :data:`depthapp.backends.sgm.aggregation.PATH_DIRECTIONS` (left-to-right, right-to-left,
    top-to-bottom, bottom-to-top); 0 where the path starts."""
    image = np.asarray(image, dtype=np.float32)
    steps = np.zeros((4,) + image.shape, np.float32)
    horizontal = np.abs(np.diff(image, axis=1))
    vertical = np.abs(np.diff(image, axis=0))
    steps[0, :, 1:] = horizontal
    steps[1, :, :-1] = horizontal
    steps[2, 1:, :] = vertical
    steps[3, :-1, :] = vertical
    return steps


def sgm_penalties(grey_left: np.ndarray, grey_right: np.ndarray, guide_disparity: np.ndarray,
                  p1: float, p2: float, tau: float, q1: float, q2: float,
                  vertical_factor: float) -> tuple[np.ndarray, np.ndarray]:
    """``(4, H, W)`` P1 and P2 for SGM paths 0..3, the paper's rule.

    With ``D1`` the intensity step entering ``p`` in the left image and ``D2`` the step at its
    match in the right image: both below ``tau``: ``P1, P2``; one above: divided by ``q1``;
    both above: divided by ``q1 * q2``. P1 is divided by ``vertical_factor`` on vertical paths.

    The shared SGM aggregation takes penalties per pixel and path, not per disparity, so
    ``D2`` is read at the match given by ``guide_disparity`` (the winner of the raw cost)
    rather than at every disparity, and the vertical factor applies to both neighbouring
    disparities (the paper's code lowers only the one continuing a slope that recedes upwards).
    """
    height, width = grey_left.shape
    d1 = intensity_steps(grey_left)
    right_steps = intensity_steps(grey_right)
    guide = np.nan_to_num(np.asarray(guide_disparity, dtype=np.float32), nan=0.0)
    xs = np.clip(np.arange(width)[None, :] - np.rint(guide).astype(np.int64), 0, width - 1)
    ys = np.broadcast_to(np.arange(height)[:, None], (height, width))
    d2 = right_steps[:, ys, xs]
    edges = (d1 >= tau).astype(np.int8) + (d2 >= tau).astype(np.int8)
    divisor = np.where(edges == 0, 1.0, np.where(edges == 1, q1, q1 * q2)).astype(np.float32)
    p1_maps = np.float32(p1) / divisor
    p2_maps = np.float32(p2) / divisor
    p1_maps[2:4] /= np.float32(vertical_factor)
    return p1_maps, np.maximum(p2_maps, p1_maps)


# ----------------------------------------------------------------------------- left-right check

@njit(cache=True, parallel=True, boundscheck=False)
def _classify(left, right, n_disp, tolerance, out):
    height, width = left.shape
    for y in prange(height):
        for x in range(width):
            d = int(left[y, x])
            if x - d < 0:
                out[y, x] = OCCLUSION
            elif abs(left[y, x] - right[y, x - d]) < tolerance:
                out[y, x] = MATCH
            else:
                out[y, x] = OCCLUSION
                for k in range(min(n_disp, x + 1)):
                    if abs(k - right[y, x - k]) < tolerance:
                        out[y, x] = MISMATCH
                        break


def classify_outliers(left: np.ndarray, right: np.ndarray, n_disp: int,
                      tolerance: float = 1.1) -> np.ndarray:
    """``(H, W)`` uint8 labels from integer left and right disparities (pixels): MATCH where
    ``|d_L(x) - d_R(x - d_L(x))| < tolerance``; else MISMATCH when some disparity would have been
    consistent (the match was found wrong), else OCCLUSION (the point is hidden in the right view)."""
    left = np.ascontiguousarray(left, dtype=np.float32)
    right = np.ascontiguousarray(right, dtype=np.float32)
    out = np.empty(left.shape, np.uint8)
    _classify(left, right, int(n_disp), float(tolerance), out)
    return out


@njit(cache=True, parallel=True, boundscheck=False)
def _interpolate(disparity, labels, directions, out):
    height, width = disparity.shape
    for y in prange(height):
        values = np.empty(16, np.float32)
        for x in range(width):
            label = labels[y, x]
            if label == MATCH:
                out[y, x] = disparity[y, x]
            elif label == OCCLUSION:
                xx = x
                while xx >= 0 and labels[y, xx] != MATCH:
                    xx -= 1
                if xx < 0:
                    xx = x
                    while xx < width and labels[y, xx] != MATCH:
                        xx += 1
                out[y, x] = disparity[y, xx] if xx < width else disparity[y, x]
            else:
                count = 0
                for k in range(16):
                    fx = np.float64(x)
                    fy = np.float64(y)
                    xi = np.int64(x)
                    yi = np.int64(y)
                    while 0 <= yi < height and 0 <= xi < width and labels[yi, xi] == MISMATCH:
                        fx += directions[k, 0]
                        fy += directions[k, 1]
                        xi = np.int64(math.floor(fx + 0.5))
                        yi = np.int64(math.floor(fy + 0.5))
                    if 0 <= yi < height and 0 <= xi < width:
                        values[count] = disparity[yi, xi]
                        count += 1
                if count == 0:
                    out[y, x] = disparity[y, x]
                else:
                    sorted_values = np.sort(values[:count])
                    out[y, x] = sorted_values[count // 2]


def interpolate_outliers(disparity: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Fill occluded and mismatched pixels of a ``(H, W)`` disparity (see module docstring).
    Occlusions look left first because the occluded side of an object is background."""
    disparity = np.ascontiguousarray(disparity, dtype=np.float32)
    out = np.empty_like(disparity)
    _interpolate(disparity, np.ascontiguousarray(labels), _DIRECTIONS_16, out)
    return out


# ----------------------------------------------------------------------------- refinement

def subpixel(aggregated: np.ndarray, disparity: np.ndarray) -> np.ndarray:
    """Parabola through the costs at ``d - 1, d, d + 1`` of integer ``disparity`` (``(H, W)``),
    the offset clamped to one pixel (interpolated pixels need not sit at a minimum)."""
    from ..sgm.aggregation import subpixel_refine

    refined = subpixel_refine(aggregated, disparity)
    return np.clip(refined, disparity - 1.0, disparity + 1.0).astype(np.float32)


@njit(cache=True, parallel=True, boundscheck=False, fastmath=True)
def _bilateral_mean(disparity, kernel, threshold, out):
    height, width = disparity.shape
    radius = kernel.shape[0] // 2
    for y in prange(height):
        for x in range(width):
            centre = disparity[y, x]
            x0 = max(0, x - radius)
            x1 = min(width, x + radius + 1)
            total = np.float32(0.0)
            weight = np.float32(0.0)
            for yy in range(max(0, y - radius), min(height, y + radius + 1)):
                row = kernel[yy - y + radius]
                values = disparity[yy]
                # branch-free so the loop vectorises
                for xx in range(x0, x1):
                    value = values[xx]
                    w = row[xx - x + radius] * np.float32(abs(value - centre) < threshold)
                    total += w * value
                    weight += w
            out[y, x] = total / weight if weight > 0 else centre


def gaussian_kernel(sigma: float) -> np.ndarray:
    """``(2r + 1, 2r + 1)`` unnormalised Gaussian, ``r = ceil(3 sigma)``."""
    radius = int(math.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    return np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma * sigma)).astype(np.float32)


def bilateral_mean(disparity: np.ndarray, sigma: float, threshold: float) -> np.ndarray:
    """Gaussian-weighted mean of the ``(H, W)`` disparity over neighbours that differ from the
    centre by less than ``threshold`` pixels (the paper's final filter: smooths without
    blurring depth edges). ``sigma <= 0`` returns a copy."""
    disparity = np.ascontiguousarray(disparity, dtype=np.float32)
    if sigma <= 0:
        return disparity.copy()
    out = np.empty_like(disparity)
    _bilateral_mean(disparity, gaussian_kernel(sigma), float(threshold), out)
    return out
