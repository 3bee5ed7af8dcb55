"""Numba CPU kernels of semi-global matching. Use them through :mod:`.aggregation`.

Layout everywhere: cost and aggregated cost are ``(H, W, D)`` C-contiguous, disparity index
innermost so the per-pixel recurrence runs over contiguous memory and vectorises. Integer costs
are aggregated in int16 working buffers when path costs fit (int32 otherwise) and stored in the
output type; every intermediate is cast back to the working type, because numba computes integer
arithmetic in int64 and LLVM then keeps 64-bit lanes. Penalty arrays are ``(8, H, W)`` in path
order (``PATH_DIRECTIONS``), usually zero-stride broadcasts of scalars.

Every kernel is compiled with ``cache=True``: the on-disk cache turns seconds of compilation in
each new process into milliseconds.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# (dy, dx): the direction a path travels; the previous pixel on path r is p - r.
PATH_DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))


# How a path step stores its L(p, .) into the output pixel (the result volume or a buffer)
WRITE, ADD, ADD_WITH, WRITE_WITH = 0, 1, 2, 3  # o = L; o += L; o += e + L; o = e + L


@njit(cache=True, inline="always", boundscheck=False)
def _store(cur, out_px, extra_px, n_disp, mode):
    """Store ``cur[1:D+1]`` into ``out_px`` by ``mode``; one tight loop per mode so each
    vectorises (a mode test inside the recurrence loop would not)."""
    if mode == WRITE:
        for d in range(n_disp):
            out_px[d] = cur[d + 1]
    elif mode == ADD:
        for d in range(n_disp):
            out_px[d] = out_px[d] + cur[d + 1]
    elif mode == ADD_WITH:
        for d in range(n_disp):
            out_px[d] = out_px[d] + extra_px[d] + cur[d + 1]
    else:
        for d in range(n_disp):
            out_px[d] = extra_px[d] + cur[d + 1]


@njit(cache=True, inline="always", boundscheck=False)
def _path_start(cost_px, cur, out_px, extra_px, n_disp, big, mode):
    """First pixel of a path: L = C. Returns min_d L."""
    work = type(big)
    best = big
    for d in range(n_disp):
        value = work(cost_px[d])
        cur[d + 1] = value
        best = min(best, value)
    _store(cur, out_px, extra_px, n_disp, mode)
    return best


@njit(cache=True, inline="always", boundscheck=False)
def _path_step(cost_px, prev, prev_min, p1, p2, cur, out_px, extra_px, n_disp, big, mode):
    """One step of the SGM recurrence (Hirschmueller 2008, eq. 13), q = p - r:

        L(p, d) = C(p, d) + min(L(q, d), L(q, d-1) + P1, L(q, d+1) + P1, min_k L(q, k) + P2)
                  - min_k L(q, k)

    ``prev``/``cur`` are padded: index ``d + 1`` holds disparity ``d``; indices 0 and ``D + 1``
    hold ``big`` so the d-1/d+1 terms need no branches. Returns min_d L(p, d).

    Every intermediate is cast back to the working type (``type(big)``): numba computes
    integer arithmetic in int64, and without the casts LLVM keeps 64-bit lanes (8 per AVX-512
    register); with them an int16 working type runs 32 lanes (measured 4x faster).
    """
    work = type(big)
    jump = work(prev_min + p2)
    best = big
    for d in range(n_disp):
        value = min(prev[d + 1], work(prev[d] + p1))
        value = min(value, work(prev[d + 2] + p1))
        value = min(value, jump)
        value = work(work(cost_px[d]) + work(value - prev_min))
        cur[d + 1] = value
        best = min(best, value)
    _store(cur, out_px, extra_px, n_disp, mode)
    return best


@njit(cache=True, parallel=True, boundscheck=False)
def sweep_horizontal(cost, p1, p2, use_forward, use_backward, out, work_type, big):
    """Paths 0 (left to right) and 1 (right to left), rows in parallel; writes ``out``.

    With both paths, the forward one goes to a row buffer (cache resident) and the backward
    one writes ``out = forward + backward``: the volume is written once and never read.
    ``p1``/``p2``: ``(8, H, W)`` in the working type.
    """
    height, width, n_disp = cost.shape
    for y in prange(height):
        prev = np.empty(n_disp + 2, work_type)
        cur = np.empty(n_disp + 2, work_type)
        prev[0] = big
        prev[n_disp + 1] = big
        cur[0] = big
        cur[n_disp + 1] = big
        row = np.empty((width if use_backward else 1, n_disp), out.dtype)
        if use_forward:
            target = row if use_backward else out[y]
            best = _path_start(cost[y, 0], prev, target[0], target[0], n_disp, big, WRITE)
            for x in range(1, width):
                best = _path_step(cost[y, x], prev, best, p1[0, y, x], p2[0, y, x], cur,
                                  target[x], target[x], n_disp, big, WRITE)
                prev, cur = cur, prev
        if use_backward:
            mode = WRITE_WITH if use_forward else WRITE
            best = _path_start(cost[y, width - 1], prev, out[y, width - 1],
                               row[(width - 1) if use_forward else 0], n_disp, big, mode)
            for x in range(width - 2, -1, -1):
                best = _path_step(cost[y, x], prev, best, p1[1, y, x], p2[1, y, x], cur,
                                  out[y, x], row[x if use_forward else 0], n_disp, big, mode)
                prev, cur = cur, prev


# Lines of the non-horizontal path pairs: pixel (y, x) of line k has x = k + slope * y. The
# forward path travels down the line (dy = +1, dx = slope), the backward path up it.
LINE_FAMILIES = {0: (2, 3), 1: (4, 7), -1: (5, 6)}  # slope -> (forward path, backward path)


@njit(cache=True, parallel=True, boundscheck=False)
def sweep_lines(cost, p1, p2, slope, path_forward, path_backward, use_forward, use_backward,
                out, work_type, big, band):
    """Both paths along the vertical (slope 0) or one diagonal (slope +-1) family of lines,
    added to ``out``.

    Lines are independent, so bands of ``band`` adjacent lines run in parallel with no
    synchronisation: every pixel belongs to one line, so no two threads touch the same output.
    Within a band the lines advance row by row, so each step reads ``band`` neighbouring pixels
    of one image row. The forward pass stores its L in a band buffer (cache resident); the
    backward pass adds both to ``out``, so the volume is read and written once per family.
    One parallel region per family instead of one per image row keeps the sweep fast when
    other processes compete for the cores.
    """
    height, width, n_disp = cost.shape
    if slope == 0:
        k_first, k_count = 0, width
    elif slope == 1:
        k_first, k_count = -(height - 1), width + height - 1
    else:
        k_first, k_count = 0, width + height - 1
    both = use_forward and use_backward
    n_bands = (k_count + band - 1) // band
    for band_index in prange(n_bands):
        k0 = k_first + band_index * band
        lines = min(band, k_first + k_count - k0)
        buffers = np.empty((2, band, n_disp + 2), work_type)  # previous/current row
        minima = np.empty((2, band), work_type)
        buffers[:, :, 0] = big
        buffers[:, :, n_disp + 1] = big
        forward = np.empty((height if both else 1, band, n_disp), out.dtype)
        for direction in range(2):
            if direction == 0 and not use_forward:
                continue
            if direction == 1 and not use_backward:
                continue
            path = path_forward if direction == 0 else path_backward
            step = 1 if direction == 0 else -1
            if both:
                mode = WRITE if direction == 0 else ADD_WITH
            else:
                mode = ADD
            for row in range(height):
                y = row if direction == 0 else height - 1 - row
                now = row & 1
                before = 1 - now
                for b in range(lines):
                    x = k0 + b + slope * y
                    if x < 0 or x >= width:
                        continue
                    if both and direction == 0:
                        target = forward[y, b]
                        extra = target
                    else:
                        target = out[y, x]
                        extra = forward[y if both else 0, b]
                    xq = x - slope * step  # previous pixel on the path: (y - step, xq)
                    if row == 0 or xq < 0 or xq >= width:
                        minima[now, b] = _path_start(cost[y, x], buffers[now, b], target, extra,
                                                     n_disp, big, mode)
                    else:
                        minima[now, b] = _path_step(cost[y, x], buffers[before, b],
                                                    minima[before, b], p1[path, y, x],
                                                    p2[path, y, x], buffers[now, b], target,
                                                    extra, n_disp, big, mode)


@njit(cache=True, parallel=True, boundscheck=False)
def winner_take_all(aggregated, uniqueness, subpixel, disparity, right_disparity, confidence):
    """Per pixel: the index of the lowest aggregated cost, refined and checked.

    ``uniqueness`` (percent, OpenCV's definition): invalid (NaN) when some disparity more than
    one level away costs less than ``best * 100 / (100 - uniqueness)``. ``subpixel``: fit a
    parabola through the minimum and its two neighbours. ``right_disparity`` gets the right
    view's winner, ``argmin_d S(y, x + d, d)`` (Hirschmueller 2008, sec. 3.4), as an index.
    ``confidence``:
    ``1 - best / second best`` (second best more than one level away), in [0, 1].
    """
    height, width, n_disp = aggregated.shape
    keep = (100.0 - uniqueness) / 100.0
    for y in prange(height):
        running = np.empty(width, aggregated.dtype)
        running_index = np.empty(width, np.int32)
        for x in range(width):
            costs = aggregated[y, x]
            best = costs[0]
            for d in range(1, n_disp):  # vectorised reduction
                best = min(best, costs[d])
            best_index = 0
            while costs[best_index] != best:
                best_index += 1
            # second best more than one level away: two vectorised reductions
            second_native = best
            found = False
            if best_index >= 2:
                second_native = costs[0]
                for d in range(1, best_index - 1):
                    second_native = min(second_native, costs[d])
                found = True
            if best_index + 2 < n_disp:
                tail = costs[best_index + 2]
                for d in range(best_index + 3, n_disp):
                    tail = min(tail, costs[d])
                second_native = min(second_native, tail) if found else tail
                found = True
            second = np.float64(second_native) if found else np.inf
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
        # right view: pixel xr is matched by (xr + d, d); first (smallest d) minimum. Running
        # minima kept in reversed order (slot width - 1 - xr), so the right pixels a left pixel
        # x reaches, x - d for d = 0..D-1, are contiguous slots and the update is one vector
        # loop of selects; left pixels come in increasing x, i.e. increasing d for each xr, so
        # ``<`` keeps the first minimum (3x faster than gathering aggregated[y, xr + d, d]).
        for xr in range(width):
            running[width - 1 - xr] = aggregated[y, xr, 0]
            running_index[width - 1 - xr] = 0
        for x in range(1, width):
            base = width - 1 - x
            count = min(n_disp, x + 1)
            costs = aggregated[y, x]
            slots = running[base:base + count]
            indices = running_index[base:base + count]
            for d in range(1, count):
                value = costs[d]
                old = slots[d]
                better = value < old
                slots[d] = value if better else old
                indices[d] = np.int32(d) if better else indices[d]
        for xr in range(width):
            right_disparity[y, xr] = running_index[width - 1 - xr]


@njit(cache=True, parallel=True, boundscheck=False)
def left_right_check(disparity, right_disparity, max_diff, offset, out):
    """Invalidate left disparities whose right-view match points elsewhere.

    ``disparity``/``right_disparity`` are in the same units (index or pixels); ``offset`` is
    added to turn them into pixel shifts (``min_disp`` when they are indices). OpenCV's rule for
    sub-pixel disparities: with ``lo = floor(d)`` and ``hi = ceil(d)``, the pixel is invalid
    only when both ``|d_R(x - lo) - lo|`` and ``|d_R(x - hi) - hi|`` exceed ``max_diff``. A
    pixel whose candidate match falls outside the right image cannot be checked and is kept:
    this is what keeps the left border band dense.
    """
    height, width = disparity.shape
    for y in prange(height):
        for x in range(width):
            d = disparity[y, x]
            if not np.isfinite(d):
                out[y, x] = np.nan
                continue
            out[y, x] = d
            shifted = d + offset
            low = np.floor(shifted)
            high = np.ceil(shifted)
            x_low = int(x - low)
            x_high = int(x - high)
            if x_low < 0 or x_low >= width or x_high < 0 or x_high >= width:
                continue
            if (abs(right_disparity[y, x_low] + offset - low) > max_diff
                    and abs(right_disparity[y, x_high] + offset - high) > max_diff):
                out[y, x] = np.nan


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
        if size == 3 and 0 < y < height - 1:
            # Fast path for full 3x3 windows without holes: sort each column triple once,
            # then median = med(max of lows, med of mids, min of highs) (exact for 3x3).
            low = np.empty(width, np.float32)
            mid = np.empty(width, np.float32)
            high = np.empty(width, np.float32)
            full = np.empty(width, np.bool_)
            for x in range(width):
                a = disparity[y - 1, x]
                b = disparity[y, x]
                c = disparity[y + 1, x]
                full[x] = np.isfinite(a) and np.isfinite(b) and np.isfinite(c)
                lo_ab = min(a, b)
                hi_ab = max(a, b)
                low[x] = min(lo_ab, c)
                high[x] = max(hi_ab, c)
                mid[x] = max(lo_ab, min(hi_ab, c))
        for x in range(width):
            centre = disparity[y, x]
            if not np.isfinite(centre):
                out[y, x] = np.nan
                continue
            if size == 3 and 0 < y < height - 1 and 0 < x < width - 1:
                if full[x - 1] and full[x] and full[x + 1]:
                    p = max(max(low[x - 1], low[x]), low[x + 1])
                    r = min(min(high[x - 1], high[x]), high[x + 1])
                    q1 = mid[x - 1]
                    q2 = mid[x]
                    q3 = mid[x + 1]
                    q = max(min(q1, q2), min(max(q1, q2), q3))
                    out[y, x] = max(min(p, q), min(max(p, q), r))
                    continue
            count = 0
            for yy in range(max(0, y - radius), min(height, y + radius + 1)):
                for xx in range(max(0, x - radius), min(width, x + radius + 1)):
                    v = disparity[yy, xx]
                    if np.isfinite(v):
                        window[count] = v
                        count += 1
            out[y, x] = _lower_median(window, count)


@njit(cache=True, inline="always")
def _lower_median(values, count):
    """The ``(count - 1) // 2``-th smallest of ``values[:count]`` (quickselect, in place)."""
    target = (count - 1) // 2
    lo = 0
    hi = count - 1
    while lo < hi:
        pivot = values[(lo + hi) // 2]
        i = lo
        j = hi
        while i <= j:
            while values[i] < pivot:
                i += 1
            while values[j] > pivot:
                j -= 1
            if i <= j:
                values[i], values[j] = values[j], values[i]
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            break
    return values[target]


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
