"""Semi-global aggregation and the steps around it, for any matching cost (census, MC-CNN, ...).

Layout: a cost volume is ``(H, W, D)``, C-contiguous, disparity index innermost; index ``k``
is disparity ``min_disp + k`` (left pixel ``x`` matches right pixel ``x - min_disp - k``).
Lower cost = better match. Everything is numpy in, numpy out, on the CPU (the compiled kernels of
``_native.cpp``, on :func:`~depthapp.backends.sgm.native.threads` threads); the CUDA versions live
in :mod:`depthapp.backends.sgm.cuda`.

    aggregate_cost(cost, p1, p2, paths=8)             -> aggregated (H, W, D)
    aggregate_and_select(cost, p1, p2, paths, rows, uniqueness, subpixel)
        -> WTAResult of ``rows``: both in one pass, the aggregated volume never completed
        cost: float32 (aggregated in float32) or uint8/uint16 (aggregated in int32, returned
        as uint16, or uint32 when ``paths * (max cost + max P2)`` exceeds 65535).
        p1, p2: scalars, ``(H, W)`` arrays (same for every path) or ``(n_paths, H, W)`` arrays
        (one map per path, in the order of ``paths``), e.g. penalties lowered at image edges
        or scaled on vertical paths.
        paths: 4 (horizontal + vertical), 8 (+ diagonals) or a sequence of path indices into
        PATH_DIRECTIONS, e.g. ``(2,)`` for the top-to-bottom path alone.
    winner_take_all(aggregated, uniqueness=0, subpixel=True, min_disp=0)
        -> WTAResult(disparity (H, W) float32 NaN where not unique,
                     right_disparity (H, W) float32 of the right view, confidence (H, W))
    subpixel_refine(aggregated, index)                -> (H, W) float32 parabola fit
    left_right_check(disparity, right_disparity, max_diff=1)  -> (H, W) float32
    median_filter(disparity, size=3)                  -> (H, W) float32, NaN-aware
    remove_speckles(disparity, max_size=100, max_diff=2)      -> (H, W) float32
    aggregation_bytes(height, width, n_disp, cost_dtype, paths) -> bytes aggregate_cost needs

The recurrence is Hirschmueller's (PAMI 2008, eq. 13) along path direction ``r``:
``L_r(p, d) = C(p, d) + min(L_r(p-r, d), L_r(p-r, d+-1) + P1, min_k L_r(p-r, k) + P2)
- min_k L_r(p-r, k)``; a path starts at the image border with ``L_r = C``. The result is
``sum_r L_r``. Penalties are taken at ``p`` (the pixel being entered) for path ``r``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from .native import native

# (dy, dx): the direction a path travels; the previous pixel on path r is p - r. The compiled
# sweeps take paths 0, 2, 4, 5 downwards and 1, 3, 6, 7 upwards (see _native.cpp).
PATH_DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))
PATHS_4 = (0, 1, 2, 3)
PATHS_8 = (0, 1, 2, 3, 4, 5, 6, 7)

Penalty = Union[float, int, np.ndarray]

_INT_BIG = np.int32(1 << 28)
_SHORT_BIG = np.int16(1 << 14)
_FLOAT_BIG = np.float32(1e30)
# Type codes of the compiled kernels: cost, working and sum (accumulator) types
_COST_CODES = {np.dtype(np.uint8): 0, np.dtype(np.uint16): 1, np.dtype(np.float32): 2}
_WORK_CODES = {np.dtype(np.int16): 0, np.dtype(np.int32): 1, np.dtype(np.float32): 2}
_SUM_CODES = {np.dtype(np.uint16): 0, np.dtype(np.uint32): 1, np.dtype(np.float32): 2}


def path_indices(paths: Union[int, Sequence[int]]) -> tuple[int, ...]:
    """``4``/``8`` or explicit indices into :data:`PATH_DIRECTIONS` -> sorted unique indices."""
    if isinstance(paths, (int, np.integer)):
        if int(paths) == 4:
            return PATHS_4
        if int(paths) == 8:
            return PATHS_8
        raise ValueError(f"paths must be 4, 8 or a sequence of path indices, got {paths}")
    indices = tuple(sorted({int(p) for p in paths}))
    if not indices or indices[0] < 0 or indices[-1] > 7:
        raise ValueError(f"path indices must be in 0..7, got {tuple(paths)}")
    return indices


def accumulator_dtype(cost_dtype, n_paths: int, max_cost: float, max_p2: float) -> np.dtype:
    """The dtype :func:`aggregate_cost` returns for this cost type and bound on its values."""
    if np.issubdtype(np.dtype(cost_dtype), np.floating):
        return np.dtype(np.float32)
    bound = n_paths * (float(max_cost) + float(max_p2))
    return np.dtype(np.uint16) if bound <= np.iinfo(np.uint16).max else np.dtype(np.uint32)


def aggregation_bytes(height: int, width: int, n_disp: int, cost_dtype=np.uint8,
                      paths: Union[int, Sequence[int]] = 8, accumulator=np.uint16) -> int:
    """Peak bytes :func:`aggregate_cost` allocates beyond its input: the ``(H, W, D)`` result
    plus, for each of the two sweeps, six rows of padded path costs and their minima (the
    working type counted at 4 bytes). The cost volume itself is the caller's
    (``H*W*D*itemsize``); so are penalty maps given per pixel."""
    del cost_dtype, paths
    result = height * width * n_disp * np.dtype(accumulator).itemsize
    per_sweep = 6 * width * (n_disp + 3) * 4
    return int(result + 2 * per_sweep + height)


def _checked_penalty(value: Penalty, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"{name} must be a number or a numeric array")
    integer = np.issubdtype(array.dtype, np.integer)
    if (not integer and not np.all(np.isfinite(array))) or array.min(initial=0) < 0:
        raise ValueError(f"{name} must be finite and non-negative")
    return array


def _penalty_maps(value: Penalty, name: str, indices: tuple[int, ...], height: int,
                  width: int, work_type) -> np.ndarray:
    """``(8, H, W)`` penalties in the working type; rows of paths not in ``indices`` are unused."""
    array = _checked_penalty(value, name)
    if np.issubdtype(work_type, np.integer) and not np.issubdtype(array.dtype, np.integer):
        array = np.rint(array)
    array = array.astype(work_type, copy=False)
    # Every form becomes an (8, H, W) view, broadcasts with zero strides: the one layout the
    # compiled sweeps read (by strides) and the CUDA path uploads.
    if array.ndim == 0:
        base = np.full((1, 1), array, work_type)
        return np.lib.stride_tricks.as_strided(base, (8, height, width), (0, 0, 0),
                                               writeable=False)
    if array.shape == (height, width):
        base = np.ascontiguousarray(array)
        return np.lib.stride_tricks.as_strided(base, (8, height, width), (0,) + base.strides,
                                               writeable=False)
    if array.shape == (8, height, width) and len(indices) == 8:  # one per path, no copy
        return array
    if array.shape == (len(indices), height, width):
        full = np.zeros((8, height, width), work_type)
        full[list(indices)] = array
        return full
    raise ValueError(f"{name} has shape {array.shape}; expected a scalar, ({height}, {width}) or "
                     f"({len(indices)}, {height}, {width}) for {len(indices)} paths")


def _fits_short(max_cost: float, max_p1: float, max_p2: float) -> bool:
    """Whether the integer recurrence fits int16 lanes (four times as many per vector as the
    int32 fallback): path costs stay at most ``max_cost + max_p2`` and the padding value
    ``_SHORT_BIG`` may get ``p1`` added."""
    return max_cost + max_p2 + max_p1 < _SHORT_BIG and _SHORT_BIG + max_p1 < 2 ** 15


@dataclass
class _Sweeps:
    """Checked arguments of the compiled aggregation."""

    cost: np.ndarray
    p1: np.ndarray
    p2: np.ndarray
    use: np.ndarray
    work_type: np.dtype
    sum_type: np.dtype
    big: float

    def run(self, volume: np.ndarray, cancel_flag=None, *selection) -> None:
        height, width, n_disp = self.cost.shape
        native.aggregate(self.cost, height, width, n_disp, self.p1, self.p2, self.use,
                         _COST_CODES[self.cost.dtype], _WORK_CODES[self.work_type],
                         _SUM_CODES[self.sum_type], float(self.big), volume, cancel_flag,
                         *selection)


def _sweeps(cost: np.ndarray, p1: Penalty, p2: Penalty,
            paths: Union[int, Sequence[int]]) -> _Sweeps:
    cost = np.asarray(cost)
    if cost.ndim != 3 or min(cost.shape) < 1:
        raise ValueError(f"cost must be (H, W, D), got shape {cost.shape}")
    if cost.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise TypeError(f"cost must be uint8, uint16 or float32, got {cost.dtype}")
    if cost.dtype == np.float64:
        cost = cost.astype(np.float32)
    cost = np.ascontiguousarray(cost)
    floating = cost.dtype == np.float32
    if floating and not np.all(np.isfinite(cost)):
        raise ValueError("cost contains NaN or inf; give unknown costs a finite value first")
    height, width, _ = cost.shape
    indices = path_indices(paths)
    p1 = _checked_penalty(p1, "p1")
    p2 = _checked_penalty(p2, "p2")
    # uint8: the type's bound, so the working and result types never change with the data
    # (and the 24 MB volume of a KITTI frame is not read once more to find its maximum)
    max_cost = 255.0 if cost.dtype == np.uint8 else float(cost.max())
    max_p1, max_p2 = (float(np.rint(np.max(p))) for p in (p1, p2))
    if floating:
        work_type = np.dtype(np.float32)
    elif _fits_short(max_cost, max_p1, max_p2):
        work_type = np.dtype(np.int16)
    else:
        work_type = np.dtype(np.int32)
    big = _FLOAT_BIG if floating else (_SHORT_BIG if work_type == np.int16 else _INT_BIG)
    return _Sweeps(cost, _penalty_maps(p1, "p1", indices, height, width, work_type),
                   _penalty_maps(p2, "p2", indices, height, width, work_type),
                   np.array([i in indices for i in range(8)], np.uint8), work_type,
                   accumulator_dtype(cost.dtype, len(indices), max_cost, max_p2), big)


def aggregate_cost(cost: np.ndarray, p1: Penalty, p2: Penalty,
                   paths: Union[int, Sequence[int]] = 8,
                   out: Optional[np.ndarray] = None) -> np.ndarray:
    """Sum of the SGM path costs ``sum_r L_r(p, d)`` of a ``(H, W, D)`` cost volume.

    See the module docstring for dtypes and penalty shapes. ``out``: optional preallocated
    result of the right shape and dtype (see :func:`accumulator_dtype`), reused by callers that
    process a stream of same-size frames.
    """
    sweeps = _sweeps(cost, p1, p2, paths)
    shape, dtype = sweeps.cost.shape, sweeps.sum_type
    if out is None:
        out = np.empty(shape, dtype)
    elif out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {dtype} array of shape {shape}")
    sweeps.run(out)
    return out


def aggregate_and_select(cost: np.ndarray, p1: Penalty, p2: Penalty,
                         paths: Union[int, Sequence[int]] = 8,
                         rows: Optional[tuple[int, int]] = None, uniqueness: float = 0.0,
                         subpixel: bool = True, min_disp: int = 0,
                         cancel_flag: Optional[bytearray] = None,
                         scratch=None) -> "WTAResult":
    """:func:`winner_take_all` of :func:`aggregate_cost` for the image rows ``rows``
    (``(first, end)``, all rows by default), without a second pass over the aggregated volume:
    each row is selected as soon as both sweeps have added their paths to it.

    ``cancel_flag``: a byte (:attr:`depthapp.jobs.CancelToken.flag`) the sweeps poll every
    row; once it is set they stop and the result is incomplete: the caller checks its token.
    ``scratch(name, shape, dtype)``: where the volume of sums comes from (a
    :meth:`~depthapp.backends.sgm.pipeline.Workspace.array`); a new array by default."""
    sweeps = _sweeps(cost, p1, p2, paths)
    _check_uniqueness(uniqueness)
    height, width, _ = sweeps.cost.shape
    first, end = (0, height) if rows is None else (int(rows[0]), int(rows[1]))
    if not 0 <= first < end <= height:
        raise ValueError(f"rows {rows} outside the cost's {height} rows")
    result = _empty_result(end - first, width)
    scratch = scratch or (lambda name, shape, dtype: np.empty(shape, dtype))
    sweeps.run(scratch("sums", sweeps.cost.shape, sweeps.sum_type), cancel_flag, first, end,
               float(uniqueness), bool(subpixel), result.disparity, result.right_disparity,
               result.confidence)
    return _shifted(result, min_disp)


@dataclass
class WTAResult:
    """Winner-take-all of an aggregated cost, all ``(H, W)`` float32.

    disparity: left view, in pixels (``min_disp`` added), sub-pixel if asked, NaN where the
        uniqueness test failed. right_disparity: the right view's integer winners in pixels,
        for :func:`left_right_check`. confidence: ``1 - best / second best`` in [0, 1].
    """

    disparity: np.ndarray
    right_disparity: np.ndarray
    confidence: np.ndarray


def _check_volume(aggregated: np.ndarray) -> np.ndarray:
    aggregated = np.asarray(aggregated)
    if aggregated.ndim != 3:
        raise ValueError(f"aggregated cost must be (H, W, D), got shape {aggregated.shape}")
    if aggregated.dtype == np.float64:
        aggregated = aggregated.astype(np.float32)
    return np.ascontiguousarray(aggregated)


def _check_uniqueness(uniqueness: float) -> None:
    if not 0 <= uniqueness < 100:
        raise ValueError(f"uniqueness must be in [0, 100), got {uniqueness}")


def _empty_result(height: int, width: int) -> WTAResult:
    return WTAResult(*(np.empty((height, width), np.float32) for _ in range(3)))


def _shifted(result: WTAResult, min_disp: int) -> WTAResult:
    if min_disp:
        result.disparity += np.float32(min_disp)
        result.right_disparity += np.float32(min_disp)
    return result


def winner_take_all(aggregated: np.ndarray, uniqueness: float = 0.0, subpixel: bool = True,
                    min_disp: int = 0) -> WTAResult:
    """Lowest-cost disparity per pixel of a ``(H, W, D)`` (aggregated) cost.

    ``uniqueness``: OpenCV's uniquenessRatio in percent; a pixel is invalid when a disparity
    more than one level from the winner costs less than ``best * 100 / (100 - uniqueness)``.
    ``subpixel``: parabola through the winner and its neighbours (see :func:`subpixel_refine`).
    The right view's winner of pixel ``xr`` is ``argmin_d S(y, xr + d, d)`` (Hirschmueller 2008,
    sec. 3.4), the smallest ``d`` on ties.
    """
    aggregated = _check_volume(aggregated)
    _check_uniqueness(uniqueness)
    if aggregated.dtype not in _SUM_CODES:
        aggregated = aggregated.astype(np.float32)
    height, width, n_disp = aggregated.shape
    result = _empty_result(height, width)
    native.winner_take_all(aggregated, _SUM_CODES[aggregated.dtype], height, width, n_disp,
                           float(uniqueness), bool(subpixel), result.disparity,
                           result.right_disparity, result.confidence)
    return _shifted(result, min_disp)


def subpixel_refine(aggregated: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Parabola fit through ``S(index - 1), S(index), S(index + 1)``: the returned ``(H, W)``
    float32 is ``index + (S- - S+) / (2 (S- + S+ - 2 S))``, in index units; unchanged at the
    ends of the range, where the curvature is not positive, and where ``index`` is NaN."""
    aggregated = _check_volume(aggregated)
    index = np.asarray(index, dtype=np.float32)
    if index.shape != aggregated.shape[:2]:
        raise ValueError(f"index is {index.shape}, aggregated cost {aggregated.shape}")
    n_disp = aggregated.shape[2]
    valid = np.isfinite(index)
    k = np.where(valid, index, 0).astype(np.int64)
    inner = valid & (k > 0) & (k < n_disp - 1)
    lower = np.take_along_axis(aggregated, np.clip(k - 1, 0, n_disp - 1)[..., None], 2)[..., 0]
    centre = np.take_along_axis(aggregated, k[..., None], 2)[..., 0]
    upper = np.take_along_axis(aggregated, np.clip(k + 1, 0, n_disp - 1)[..., None], 2)[..., 0]
    lower, centre, upper = (a.astype(np.float64) for a in (lower, centre, upper))
    curvature = lower + upper - 2 * centre
    refine = inner & (curvature > 0)
    offset = np.zeros(index.shape, np.float64)
    offset[refine] = 0.5 * (lower[refine] - upper[refine]) / curvature[refine]
    return np.where(valid, k + offset, np.nan).astype(np.float32)


def _check_map(name: str, disparity: np.ndarray) -> np.ndarray:
    disparity = np.asarray(disparity, dtype=np.float32)
    if disparity.ndim != 2:
        raise ValueError(f"{name} must be (H, W), got shape {disparity.shape}")
    return np.ascontiguousarray(disparity)


def left_right_check(disparity: np.ndarray, right_disparity: np.ndarray,
                     max_diff: float = 1.0) -> np.ndarray:
    """Left ``(H, W)`` disparity with NaN where the right view disagrees (OpenCV's rule for
    sub-pixel values): with ``lo = floor(d)``, ``hi = ceil(d)``, invalid when both
    ``|d_R(x - lo) - lo|`` and ``|d_R(x - hi) - hi|`` exceed ``max_diff``.

    Both maps in pixels. Pixels whose match falls outside the right image cannot be checked and
    are kept (this keeps the left border band dense). ``max_diff < 0`` disables the check.
    """
    disparity = _check_map("disparity", disparity)
    right_disparity = _check_map("right_disparity", right_disparity)
    if disparity.shape != right_disparity.shape:
        raise ValueError(f"disparity {disparity.shape} and right disparity "
                         f"{right_disparity.shape} differ")
    if max_diff < 0:
        return disparity.copy()
    out = np.empty_like(disparity)
    native.left_right_check(disparity, right_disparity, *disparity.shape, float(max_diff), out)
    return out


def median_filter(disparity: np.ndarray, size: int = 3) -> np.ndarray:
    """NaN-aware ``size x size`` median of a ``(H, W)`` disparity; holes stay holes.
    ``size`` 0 or 1 returns a copy."""
    disparity = _check_map("disparity", disparity)
    size = int(size)
    if size <= 1:
        return disparity.copy()
    if size % 2 == 0:
        raise ValueError(f"median size must be odd, got {size}")
    out = np.empty_like(disparity)
    native.median_filter(disparity, *disparity.shape, size, out)
    return out


def remove_speckles(disparity: np.ndarray, max_size: int = 100, max_diff: float = 2.0) -> np.ndarray:
    """Copy of a ``(H, W)`` disparity with 4-connected regions of at most ``max_size`` pixels set
    to NaN; neighbours differing by at most ``max_diff`` pixels are one region (OpenCV's
    filterSpeckles). ``max_size`` 0 returns a copy."""
    disparity = _check_map("disparity", disparity).copy()
    if max_size > 0:
        native.remove_speckles(disparity, *disparity.shape, int(max_size), float(max_diff))
    return disparity
