"""Numba CPU kernels of semi-global matching. Use them through :mod:`.aggregation`.

Layout everywhere: cost and aggregated cost are ``(H, W, D)`` C-contiguous, disparity index
innermost so the per-pixel recurrence runs over contiguous memory and vectorises. Integer costs
are aggregated in int32 working buffers and stored in the (narrower) output type: the int32
recurrence vectorises, while arithmetic written on uint16 is widened to int64 by numba and does
not (measured: 4x slower). Penalty arrays are ``(8, H, W)`` in path order (``PATH_DIRECTIONS``),
usually zero-stride broadcasts of scalars.

Every kernel is compiled with ``cache=True``: the on-disk cache turns seconds of compilation in
each new process into milliseconds.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# (dy, dx): the direction a path travels; the previous pixel on path r is p - r.
PATH_DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))


@njit(cache=True, inline="always", boundscheck=False)
def _path_start(cost_px, cur, out_px, n_disp, big, write):
    """First pixel of a path: L = C. Returns min_d L."""
    best = big
    for d in range(n_disp):
        cur[d + 1] = cost_px[d]
        value = cur[d + 1]
        if value < best:
            best = value
        if write:
            out_px[d] = value
        else:
            out_px[d] = out_px[d] + value
    return best


@njit(cache=True, inline="always", boundscheck=False)
def _path_step(cost_px, prev, prev_min, p1, p2, cur, out_px, n_disp, big, write):
    """One step of the SGM recurrence (Hirschmueller 2008, eq. 13), q = p - r:

        L(p, d) = C(p, d) + min(L(q, d), L(q, d-1) + P1, L(q, d+1) + P1, min_k L(q, k) + P2)
                  - min_k L(q, k)

    ``prev``/``cur`` are padded: index ``d + 1`` holds disparity ``d``; indices 0 and ``D + 1``
    hold ``big`` so the d-1/d+1 terms need no branches. Returns min_d L(p, d).
    """
    jump = prev_min + p2
    best = big
    for d in range(n_disp):
        value = prev[d + 1]
        lower = prev[d] + p1
        upper = prev[d + 2] + p1
        if lower < value:
            value = lower
        if upper < value:
            value = upper
        if jump < value:
            value = jump
        value = cost_px[d] + value - prev_min
        cur[d + 1] = value
        if value < best:
            best = value
        if write:
            out_px[d] = value
        else:
            out_px[d] = out_px[d] + value
    return best


@njit(cache=True, parallel=True, boundscheck=False)
def sweep_horizontal(cost, p1, p2, use_forward, use_backward, out, work_type, big):
    """Paths 0 (left to right) and 1 (right to left), rows in parallel.

    The first enabled path writes ``out``, the second adds to it. ``p1``/``p2``: ``(8, H, W)``
    in the working type.
    """
    height, width, n_disp = cost.shape
    for y in prange(height):
        prev = np.empty(n_disp + 2, work_type)
        cur = np.empty(n_disp + 2, work_type)
        prev[0] = big
        prev[n_disp + 1] = big
        cur[0] = big
        cur[n_disp + 1] = big
        if use_forward:
            best = _path_start(cost[y, 0], prev, out[y, 0], n_disp, big, True)
            for x in range(1, width):
                best = _path_step(cost[y, x], prev, best, p1[0, y, x], p2[0, y, x], cur,
                                  out[y, x], n_disp, big, True)
                prev, cur = cur, prev
        if use_backward:
            write = not use_forward
            best = _path_start(cost[y, width - 1], prev, out[y, width - 1], n_disp, big, write)
            for x in range(width - 2, -1, -1):
                best = _path_step(cost[y, x], prev, best, p1[1, y, x], p2[1, y, x], cur,
                                  out[y, x], n_disp, big, write)
                prev, cur = cur, prev


@njit(cache=True, parallel=True, boundscheck=False)
def sweep_vertical(cost, p1, p2, downward, use_vertical, use_right, use_left, out, work_type,
                   big):
    """The vertical and diagonal paths of one vertical direction, added to ``out``.

    ``downward``: paths 2 (top to bottom), 4 (down-right) and 5 (down-left); otherwise
    3 (bottom to top), 6 (up-right) and 7 (up-left); ``use_*`` enable each of the three.
    Rows are sequential; the pixels of a row depend only on the previous row, so each row runs
    in parallel over columns.
    """
    height, width, n_disp = cost.shape
    if downward:
        path_v, path_r, path_l = 2, 4, 5
        step_y = 1
        y0 = 0
    else:
        path_v, path_r, path_l = 3, 6, 7
        step_y = -1
        y0 = height - 1
    # slot 0: vertical, 1: travelling right (previous pixel x-1), 2: travelling left (x+1)
    prev = np.empty((3, width, n_disp + 2), work_type)
    cur = np.empty((3, width, n_disp + 2), work_type)
    prev_min = np.empty((3, width), work_type)
    cur_min = np.empty((3, width), work_type)
    prev[:, :, 0] = big
    prev[:, :, n_disp + 1] = big
    cur[:, :, 0] = big
    cur[:, :, n_disp + 1] = big
    enabled = (use_vertical, use_right, use_left)
    for x in prange(width):
        for slot in range(3):
            if enabled[slot]:
                prev_min[slot, x] = _path_start(cost[y0, x], prev[slot, x], out[y0, x], n_disp,
                                                big, False)
    for row in range(1, height):
        y = y0 + row * step_y
        for x in prange(width):
            cost_px = cost[y, x]
            out_px = out[y, x]
            if use_vertical:
                cur_min[0, x] = _path_step(cost_px, prev[0, x], prev_min[0, x], p1[path_v, y, x],
                                           p2[path_v, y, x], cur[0, x], out_px, n_disp, big, False)
            if use_right:
                if x == 0:
                    cur_min[1, x] = _path_start(cost_px, cur[1, x], out_px, n_disp, big, False)
                else:
                    cur_min[1, x] = _path_step(cost_px, prev[1, x - 1], prev_min[1, x - 1],
                                               p1[path_r, y, x], p2[path_r, y, x], cur[1, x],
                                               out_px, n_disp, big, False)
            if use_left:
                if x == width - 1:
                    cur_min[2, x] = _path_start(cost_px, cur[2, x], out_px, n_disp, big, False)
                else:
                    cur_min[2, x] = _path_step(cost_px, prev[2, x + 1], prev_min[2, x + 1],
                                               p1[path_l, y, x], p2[path_l, y, x], cur[2, x],
                                               out_px, n_disp, big, False)
        prev, cur = cur, prev
        prev_min, cur_min = cur_min, prev_min


@njit(cache=True, parallel=True, boundscheck=False)
def winner_take_all(aggregated, uniqueness, subpixel, disparity, right_disparity, confidence):
    """Per pixel: the index of the lowest aggregated cost, refined and checked.

    ``uniqueness`` (percent, OpenCV's definition): invalid (NaN) when some disparity more than
    one level away costs less than ``best * 100 / (100 - uniqueness)``. ``subpixel``: fit a
    parabola through the minimum and its two neighbours. ``right_disparity`` gets the right
    view's winner, ``argmin_d S(y, x + d, d)`` (Hirschmueller 2008, sec. 3.4), as an index.
    ``confidence``: ``1 - best / second best`` (second best more than one level away), in [0, 1].
    """
    height, width, n_disp = aggregated.shape
    keep = (100.0 - uniqueness) / 100.0
    for y in prange(height):
        for x in range(width):
            costs = aggregated[y, x]
            best_index = 0
            best = costs[0]
            for d in range(1, n_disp):
                if costs[d] < best:
                    best = costs[d]
                    best_index = d
            second = np.inf
            for d in range(n_disp):
                if (d < best_index - 1 or d > best_index + 1) and costs[d] < second:
                    second = costs[d]
            best_f = np.float64(best)
            if second < np.inf and second > 0:
                confidence[y, x] = max(0.0, 1.0 - best_f / second)
            else:
                confidence[y, x] = 1.0 if second == np.inf else 0.0
            if uniqueness > 0 and second < np.inf and second * keep < best_f:
                disparity[y, x] = np.nan
                continue
            value = np.float64(best_index)
            if subpixel and 0 < best_index < n_disp - 1:
                left = np.float64(costs[best_index - 1])
                right = np.float64(costs[best_index + 1])
                curvature = left + right - 2.0 * best_f
                if curvature > 0:
                    value += 0.5 * (left - right) / curvature
            disparity[y, x] = value
        for xr in range(width):
            best = aggregated[y, xr, 0]
            best_index = 0
            for d in range(1, min(n_disp, width - xr)):
                c = aggregated[y, xr + d, d]
                if c < best:
                    best = c
                    best_index = d
            right_disparity[y, xr] = best_index


@njit(cache=True, parallel=True, boundscheck=False)
def left_right_check(disparity, right_disparity, max_diff, offset, out):
    """Invalidate left disparities whose right-view match points elsewhere.

    ``disparity``/``right_disparity`` are in the same units (index or pixels); ``offset`` is
    added to turn them into pixel shifts (``min_disp`` when they are indices). A pixel whose
    match falls outside the right image cannot be checked and is kept: this is what keeps the
    left border band dense.
    """
    height, width = disparity.shape
    for y in prange(height):
        for x in range(width):
            d = disparity[y, x]
            if not np.isfinite(d):
                out[y, x] = np.nan
                continue
            xr = int(np.floor(x - (d + offset) + 0.5))
            if xr < 0 or xr >= width:
                out[y, x] = d
                continue
            dr = right_disparity[y, xr]
            if np.isfinite(dr) and abs(dr - d) <= max_diff:
                out[y, x] = d
            else:
                out[y, x] = np.nan


@njit(cache=True, inline="always")
def _insertion_sort(values, count):
    for i in range(1, count):
        v = values[i]
        j = i - 1
        while j >= 0 and values[j] > v:
            values[j + 1] = values[j]
            j -= 1
        values[j + 1] = v


@njit(cache=True, parallel=True, boundscheck=False)
def median_filter(disparity, size, out):
    """NaN-aware median over a ``size x size`` window clipped at the image border.

    Invalid pixels stay invalid; valid ones get the median of their valid neighbours (the
    lower median for even counts), so holes neither grow nor get filled.
    """
    height, width = disparity.shape
    radius = size // 2
    for y in prange(height):
        window = np.empty(size * size, np.float32)
        for x in range(width):
            centre = disparity[y, x]
            if not np.isfinite(centre):
                out[y, x] = np.nan
                continue
            count = 0
            for yy in range(max(0, y - radius), min(height, y + radius + 1)):
                for xx in range(max(0, x - radius), min(width, x + radius + 1)):
                    v = disparity[yy, xx]
                    if np.isfinite(v):
                        window[count] = v
                        count += 1
            _insertion_sort(window, count)
            out[y, x] = window[(count - 1) // 2]


@njit(cache=True, boundscheck=False)
def remove_speckles(disparity, max_size, max_diff):
    """Invalidate (in place) 4-connected regions of at most ``max_size`` pixels, where
    neighbours belong to one region when their disparities differ by at most ``max_diff``
    (OpenCV's filterSpeckles definition). Returns the number of pixels invalidated."""
    height, width = disparity.shape
    label = np.zeros((height, width), np.int32)
    stack = np.empty(height * width, np.int64)
    members = np.empty(height * width, np.int64)
    removed = 0
    current = 0
    for y0 in range(height):
        for x0 in range(width):
            if label[y0, x0] != 0 or not np.isfinite(disparity[y0, x0]):
                continue
            current += 1
            label[y0, x0] = current
            top = 0
            stack[top] = y0 * width + x0
            top = 1
            count = 0
            while top > 0:
                top -= 1
                index = stack[top]
                members[count] = index
                count += 1
                y = index // width
                x = index - y * width
                value = disparity[y, x]
                for k in range(4):
                    if k == 0:
                        ny, nx = y - 1, x
                    elif k == 1:
                        ny, nx = y + 1, x
                    elif k == 2:
                        ny, nx = y, x - 1
                    else:
                        ny, nx = y, x + 1
                    if ny < 0 or ny >= height or nx < 0 or nx >= width or label[ny, nx] != 0:
                        continue
                    neighbour = disparity[ny, nx]
                    if np.isfinite(neighbour) and abs(neighbour - value) <= max_diff:
                        label[ny, nx] = current
                        stack[top] = ny * width + nx
                        top += 1
            if count <= max_size:
                for i in range(count):
                    index = members[i]
                    y = index // width
                    disparity[y, index - y * width] = np.nan
                removed += count
    return removed
