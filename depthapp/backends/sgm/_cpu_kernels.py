"""Numba CPU kernels of semi-global matching. Use them through :mod:`.aggregation`.

Layout everywhere: cost and aggregated cost are ``(H, W, D)`` C-contiguous, disparity index
innermost so the per-pixel recurrence runs over contiguous memory and vectorises. Integer costs
are aggregated in int32 working buffers and stored in the (narrower) output type: the int32
recurrence vectorises, while arithmetic written on uint16 is widened to int64 by numba and does
not. Penalty arrays are ``(8, H, W)`` in path order (see ``PATH_DIRECTIONS``), possibly
zero-stride broadcasts of scalars.

Every kernel is compiled with ``cache=True`` (the on-disk cache makes the second process start
in milliseconds instead of seconds).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# (dy, dx): the direction a path travels; the previous pixel on path r is p - r.
PATH_DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))


@njit(cache=True, inline="always", boundscheck=False)
def _path_start(cost_px, cur, out_px, n_disp, write):
    """First pixel of a path: L = C. Returns min_d L."""
    best = cost_px[0] + cur[0] - cur[0]  # typed like the working buffer
    best = cur[0] + 0
    for d in range(n_disp):
        value = cur.dtype.type(cost_px[d]) if False else cost_px[d]
        cur[d + 1] = value
    best = cur[1]
    for d in range(n_disp):
        value = cur[d + 1]
        if value < best:
            best = value
        if write:
            out_px[d] = value
        else:
            out_px[d] = out_px[d] + value
    return best


@njit(cache=True, inline="always", boundscheck=False)
def _path_step(cost_px, prev, prev_min, p1, p2, cur, out_px, n_disp, write):
    """One step of the SGM recurrence (Hirschmueller 2008, eq. 13):

        L(p, d) = C(p, d) + min(L(q, d), L(q, d-1) + P1, L(q, d+1) + P1, min_k L(q, k) + P2)
                  - min_k L(q, k)

    ``prev``/``cur`` are padded: index ``d + 1`` holds disparity ``d``; indices 0 and ``D + 1``
    hold a large value so the d-1/d+1 terms need no branches. Returns min_d L(p, d).
    """
    jump = prev_min + p2
    best = cur[0]
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

    The first enabled path writes ``out``, the second adds to it.
    """
    height, width, n_disp = cost.shape
    for y in prange(height):
        prev = np.empty(n_disp + 2, work_type)
        cur = np.empty(n_disp + 2, work_type)
        for buf in (prev, cur):
            buf[0] = big
            buf[n_disp + 1] = big
        if use_forward:
            cur[0] = big
            best = _path_start(cost[y, 0], prev, out[y, 0], n_disp, True)
            for x in range(1, width):
                cur[0] = big
                best = _path_step(cost[y, x], prev, best, p1[0, y, x], p2[0, y, x], cur,
                                  out[y, x], n_disp, True)
                cur[0] = big
                prev, cur = cur, prev
            prev[0] = big
            cur[0] = big
        if use_backward:
            write = not use_forward
            best = _path_start(cost[y, width - 1], prev, out[y, width - 1], n_disp, write)
            for x in range(width - 2, -1, -1):
                cur[0] = big
                best = _path_step(cost[y, x], prev, best, p1[1, y, x], p2[1, y, x], cur,
                                  out[y, x], n_disp, write)
                prev, cur = cur, prev
