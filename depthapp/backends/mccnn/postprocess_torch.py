"""The stereo method of :mod:`.postprocess` as device-agnostic torch, so that on a CUDA device the
MC-CNN cost volume never leaves the GPU.

    refine_volume(cost, grey_left, grey_right, params)  -> (disparity, confidence) tensors
        the whole method after the cost volume: cross aggregation, SGM (the sgm backend's
        CUDA warp aggregation, reading the tensor in place), winner, left-right check +
        interpolation, sub-pixel, median, bilateral mean

Each step gives what its numpy/numba twin gives on the same input (tests compare them on the
Motorcycle pair): selections and integer logic exactly, float arithmetic in the same precision
and order where the result is one expression (penalties, sub-pixel, confidence, cross-aggregation
means), and to float32 rounding where a sum runs in another order (the bilateral mean here; the
CUDA aggregation's sum of its paths).

Shapes: images and disparities ``(H, W)`` float32 tensors; cost volumes ``(H, W, D)`` float32,
left pixel ``x`` against right pixel ``x - d``. Disparity maps entering the left-right check
hold integer winners.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from . import postprocess as post
from .postprocess import MATCH, MISMATCH, OCCLUSION

_WALK_CHUNK = 8  # steps of the 16-direction walks taken per vectorised round
CROSS_SLAB_ENTRIES = 1 << 23  # volume entries cross aggregation works on at once
_FAR = 1e30  # a disparity farther than any threshold from every real one
CROSS_SLAB_BYTES = 160  # its peak bytes per slab entry (measured on the CPU: 125 to 161)


def _below(threshold: float) -> float:
    """The float32 ``t`` with ``value < t`` <=> ``value < threshold`` for every float32 value:
    the CPU kernels compare float32 values with a float64 threshold, torch with a float32 one."""
    bound = np.float32(threshold)
    if float(bound) < threshold:
        bound = np.nextafter(bound, np.float32(np.inf))
    return float(bound)


# ----------------------------------------------------------------------------- cross aggregation

def cross_arms(image: torch.Tensor, max_length: int, tau: float) -> torch.Tensor:
    """:func:`.postprocess.cross_arms`: ``(4, H, W)`` int64 exclusive arm ends (left x, right x,
    top y, bottom y). An arm stops at the image border, or past the direct neighbour where the
    intensity differs by ``tau`` or more or the length reaches ``max_length``."""
    height, width = image.shape
    xs = torch.arange(width, device=image.device).expand(height, width)
    ys = torch.arange(height, device=image.device)[:, None].expand(height, width)
    tau = _below(tau)
    arms = []
    for axis, sign, origin, size in ((1, -1, xs, width), (1, 1, xs, width), (0, -1, ys, height),
                                     (0, 1, ys, height)):
        end = torch.full_like(origin, -1 if sign < 0 else size)  # reached the border
        open_ = torch.ones_like(origin, dtype=torch.bool)
        for distance in range(1, min(size, max(2, int(max_length)) + 1)):
            position = origin + sign * distance
            inside = (position >= 0) & (position < size)
            if distance > 1:
                neighbour = image.gather(axis, position.clamp(0, size - 1))
                stops = inside & (((neighbour - image).abs() >= tau) | (distance >= max_length))
                end = torch.where(open_ & stops, position, end)
                open_ &= ~stops
            open_ &= inside
        arms.append(end)
    return torch.stack(arms)


def _shifted_by_disparity(values: torch.Tensor, first: int, stop: int, fill: float = 0) -> torch.Tensor:
    """``(H, W, stop - first)`` with ``[y, x, k] = values[y, x - first - k]`` (``fill`` where
    that is left of the image)."""
    levels = stop - first
    padded = F.pad(values, (stop - 1, 0), value=fill)
    return padded.unfold(1, levels, 1)[:, : values.shape[1]].flip(-1)


def cross_aggregate(cost: torch.Tensor, arms_left: torch.Tensor, arms_right: torch.Tensor,
                    iterations: int, chunk_entries: int = CROSS_SLAB_ENTRIES) -> torch.Tensor:
    """:func:`.postprocess.cross_aggregate`: the cost's mean over the intersection of the left
    and right crosses, ``iterations`` times, by float64 prefix sums along rows then columns.

    Each disparity aggregates on its own, so the volume goes through in slabs of disparities of
    at most ``chunk_entries`` entries: the region bounds (int64 gather indices) and float64
    prefix sums take :data:`CROSS_SLAB_BYTES` an entry, for a slab rather than the volume."""
    cost = cost.float().contiguous()
    if iterations <= 0:
        return cost
    height, width, n_disp = cost.shape
    out = torch.empty_like(cost)
    step = max(1, chunk_entries // (height * width))
    for first in range(0, n_disp, step):
        stop = min(n_disp, first + step)
        out[:, :, first:stop] = _cross_aggregate_slab(cost[:, :, first:stop], arms_left, arms_right,
                                                      first, iterations)
    return out


def _cross_aggregate_slab(cost: torch.Tensor, arms_left: torch.Tensor, arms_right: torch.Tensor,
                          first: int, iterations: int) -> torch.Tensor:
    """:func:`cross_aggregate` of disparities ``first ..`` (the slab ``cost``)."""
    height, width, levels = cost.shape
    disparities = torch.arange(first, first + levels, device=cost.device)
    xs = torch.arange(width, device=cost.device)[:, None]
    matched = (xs - disparities >= 0).expand(height, width, levels)  # right pixel exists
    # Exclusive ends of the region: columns low..high of each row, rows top..bottom.
    low = torch.maximum(arms_left[0][..., None], _shifted_by_disparity(arms_right[0], first, first + levels) + disparities)
    high = torch.minimum(arms_left[1][..., None], _shifted_by_disparity(arms_right[1], first, first + levels) + disparities)
    wide = matched & (high - low > 1)
    counts = torch.where(wide, high - low - 1, 0)
    # Clamped only where the entry is unused (no right pixel), so gathers stay in range.
    after_low, high = (low + 1).clamp_(0, width), high.clamp_(0, width)
    del low
    after_top = torch.maximum(arms_left[2][..., None], _shifted_by_disparity(arms_right[2], first, first + levels))
    after_top = after_top.add_(1).clamp_(0, height)
    bottom = torch.minimum(arms_left[3][..., None], _shifted_by_disparity(arms_right[3], first, first + levels))
    bottom = bottom.clamp_(0, height)
    column_counts = F.pad(counts.cumsum(0), (0, 0, 0, 0, 1, 0))
    del counts
    region_counts = column_counts.gather(0, bottom) - column_counts.gather(0, after_top)
    del column_counts
    filled = matched & (region_counts > 0)
    for _ in range(iterations):
        row_sums = F.pad(cost.double().cumsum(1), (0, 0, 1, 0))
        sums = torch.where(wide, row_sums.gather(1, high) - row_sums.gather(1, after_low), 0.0).float()
        del row_sums
        column_sums = F.pad(sums.double().cumsum(0), (0, 0, 0, 0, 1, 0))
        del sums
        region = column_sums.gather(0, bottom) - column_sums.gather(0, after_top)
        del column_sums
        cost = torch.where(filled, (region / region_counts).float(), cost)
    return cost


# ----------------------------------------------------------------------------- SGM penalties

def intensity_steps(image: torch.Tensor) -> torch.Tensor:
    """:func:`.postprocess.intensity_steps`: ``(4, H, W)`` absolute intensity change entering
    each pixel along SGM paths 0..3; 0 where the path starts."""
    height, width = image.shape
    steps = image.new_zeros((4, height, width))
    horizontal = (image[:, 1:] - image[:, :-1]).abs()
    vertical = (image[1:] - image[:-1]).abs()
    steps[0, :, 1:] = horizontal
    steps[1, :, :-1] = horizontal
    steps[2, 1:, :] = vertical
    steps[3, :-1, :] = vertical
    return steps


def sgm_penalties(cost: torch.Tensor, grey_left: torch.Tensor, grey_right: torch.Tensor,
                  params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`.postprocess.sgm_penalties` guided by the raw winner of ``cost``: ``(4, H, W)``
    P1 and P2 on the cost's device, in the same float32 operations (so the same values)."""
    grey_left, grey_right = grey_left.to(cost.device), grey_right.to(cost.device)
    height, width = grey_left.shape
    guide = torch.argmin(cost, dim=2)
    xs = (torch.arange(width, device=cost.device) - guide).clamp(0, width - 1)
    d1 = intensity_steps(grey_left)
    d2 = intensity_steps(grey_right).gather(2, xs.expand(4, height, width))
    tau, q1, q2 = params["sgm_intensity"], params["sgm_q1"], params["sgm_q2"]
    edges = (d1 >= tau).to(torch.int8) + (d2 >= tau).to(torch.int8)
    divisor = torch.where(edges == 0, 1.0, torch.where(edges == 1, q1, q1 * q2)).to(torch.float32)
    p1 = torch.tensor(params["p1"], dtype=torch.float32, device=cost.device) / divisor
    p2 = torch.tensor(params["p2"], dtype=torch.float32, device=cost.device) / divisor
    p1[2:4] /= torch.tensor(params["sgm_vertical"], dtype=torch.float32, device=cost.device)
    return p1, torch.maximum(p2, p1)


# ----------------------------------------------------------------------------- winner

def winner_take_all(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integer winners of the left and right views and the confidence, as
    :func:`depthapp.backends.sgm.aggregation.winner_take_all` without uniqueness or sub-pixel:
    ``(H, W)`` float32 ``argmin_d C(y, x, d)``, ``argmin_d C(y, x + d, d)`` (first minimum) and
    ``1 - best / second best`` (second best more than one level away; 1 where there is none)."""
    height, width, n_disp = cost.shape
    index = torch.argmin(cost, dim=2)
    best = cost.gather(2, index[..., None])[..., 0]
    others = cost.clone()  # the winner and its two neighbours masked out
    for step in (-1, 0, 1):
        others.scatter_(2, (index + step).clamp(0, n_disp - 1)[..., None], torch.inf)
    second = others.amin(dim=2)
    del others
    has_second = (index >= 2) | (index + 2 < n_disp)
    ratio = 1.0 - best.double() / second.double()
    confidence = torch.where(has_second & (second > 0), ratio.clamp(min=0.0),
                             torch.where(has_second, 0.0, 1.0).double()).float()
    padded = torch.full((height, width + n_disp, n_disp), torch.inf, dtype=cost.dtype,
                        device=cost.device)
    padded[:, :width] = cost
    # [y, xr, d] = padded[y, xr + d, d]: the right pixel's candidates, +inf beyond the image
    diagonal = padded.as_strided((height, width, n_disp), ((width + n_disp) * n_disp, n_disp, n_disp + 1))
    right = torch.argmin(diagonal, dim=2)
    return index.float(), right.float(), confidence


# ----------------------------------------------------------------------------- left-right check

def classify_outliers(left: torch.Tensor, right: torch.Tensor, n_disp: int,
                      tolerance: float = 1.1) -> torch.Tensor:
    """:func:`.postprocess.classify_outliers`: ``(H, W)`` uint8 MATCH / OCCLUSION / MISMATCH."""
    height, width = left.shape
    tolerance = _below(tolerance)
    xs = torch.arange(width, device=left.device)
    match_x = xs - left.long()
    inside = match_x >= 0
    seen = right.gather(1, match_x.clamp(min=0))
    match = inside & ((left - seen).abs() < tolerance)
    candidates = _shifted_by_disparity(right, 0, n_disp, fill=torch.nan)  # right[y, x - k]
    levels = torch.arange(n_disp, device=left.device, dtype=right.dtype)
    consistent = (candidates - levels).abs_().lt_(tolerance).amax(dim=2) > 0  # NaN: no pixel
    labels = torch.where(match, MATCH, torch.where(inside & consistent, MISMATCH, OCCLUSION))
    return labels.to(torch.uint8)


def interpolate_outliers(disparity: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """:func:`.postprocess.interpolate_outliers`: occlusions take the nearest match to the left
    (else to the right), mismatches the upper median of the first non-mismatch pixels along 16
    directions, read from ``disparity`` itself."""
    height, width = disparity.shape
    device = disparity.device
    xs = torch.arange(width, device=device).expand(height, width)
    is_match = labels == MATCH
    last_match = torch.where(is_match, xs, -1).cummax(dim=1).values
    next_match = torch.where(is_match, xs, width).flip(1).cummin(dim=1).values.flip(1)
    source = torch.where(last_match >= 0, last_match, torch.where(next_match < width, next_match, xs))
    out = torch.where(labels == OCCLUSION, disparity.gather(1, source), disparity)
    mismatched = labels == MISMATCH
    if bool(mismatched.any()):
        out[mismatched] = _mismatch_medians(disparity, labels, mismatched)
    return out


def _mismatch_medians(disparity: torch.Tensor, labels: torch.Tensor,
                      mismatched: torch.Tensor) -> torch.Tensor:
    """Per mismatched pixel (in ``nonzero`` order): walk each of the 16 directions in steps of
    ``(dx, dy)`` (positions rounded half up, as the CPU kernel) to the first pixel that is not a
    mismatch, inside the image; the upper median of the disparities found.

    All walks advance together, ``_WALK_CHUNK`` steps a round; each round keeps only the walks
    still going, so memory follows the mismatched pixels, not the longest walk."""
    height, width = disparity.shape
    device = disparity.device
    ys, xs = mismatched.nonzero(as_tuple=True)
    walks = ys.shape[0] * 16
    pixel = torch.arange(walks, device=device) // 16
    directions = torch.from_numpy(post._DIRECTIONS_16).to(device=device, dtype=torch.float64)
    step_x, step_y = directions[:, 0].repeat(ys.shape[0]), directions[:, 1].repeat(ys.shape[0])
    start_x, start_y = xs[pixel].double(), ys[pixel].double()
    value = torch.full((walks,), torch.inf, dtype=disparity.dtype, device=device)
    inside_at_end = torch.zeros(walks, dtype=torch.bool, device=device)
    going = torch.arange(walks, device=device)
    # Each step moves a whole pixel along x or y, so every walk ends within max(H, W) + 1 steps.
    for first_step in range(1, max(height, width) + 2, _WALK_CHUNK):
        steps = torch.arange(first_step, first_step + _WALK_CHUNK, device=device, dtype=torch.float64)
        walk_x = torch.floor(start_x[going, None] + step_x[going, None] * steps + 0.5).long()
        walk_y = torch.floor(start_y[going, None] + step_y[going, None] * steps + 0.5).long()
        inside = (walk_x >= 0) & (walk_x < width) & (walk_y >= 0) & (walk_y < height)
        walk_x.clamp_(0, width - 1)
        walk_y.clamp_(0, height - 1)
        stops = ~inside | (labels[walk_y, walk_x] != MISMATCH)
        first = stops.to(torch.uint8).argmax(dim=1, keepdim=True)
        ended = stops.any(dim=1)
        done = going[ended]
        inside_at_end[done] = inside.gather(1, first)[ended, 0]
        value[done] = disparity[walk_y.gather(1, first)[ended, 0], walk_x.gather(1, first)[ended, 0]]
        going = going[~ended]
        if going.numel() == 0:
            break
    values = torch.where(inside_at_end, value, torch.inf).view(-1, 16)
    found = inside_at_end.view(-1, 16).sum(dim=1)
    median = values.sort(dim=1).values.gather(1, (found // 2).clamp(max=15)[:, None])[:, 0]
    return torch.where(found > 0, median, disparity[ys, xs])


# ----------------------------------------------------------------------------- refinement

def subpixel(cost: torch.Tensor, disparity: torch.Tensor) -> torch.Tensor:
    """:func:`.postprocess.subpixel`: parabola through the costs around integer ``disparity``,
    in float64 as :func:`depthapp.backends.sgm.aggregation.subpixel_refine`, clamped to 1 px."""
    n_disp = cost.shape[2]
    valid = torch.isfinite(disparity)
    index = torch.where(valid, disparity, 0.0).long()
    inner = valid & (index > 0) & (index < n_disp - 1)
    lower, centre, upper = (cost.gather(2, (index + step).clamp(0, n_disp - 1)[..., None])[..., 0].double()
                            for step in (-1, 0, 1))
    curvature = lower + upper - 2 * centre
    refine = inner & (curvature > 0)
    offset = torch.where(refine, 0.5 * (lower - upper) / torch.where(refine, curvature, 1.0), 0.0)
    refined = torch.where(valid, index + offset, torch.nan).float()
    return torch.minimum(torch.maximum(refined, disparity - 1.0), disparity + 1.0)


def median_filter(disparity: torch.Tensor, size: int) -> torch.Tensor:
    """:func:`depthapp.backends.sgm.aggregation.median_filter`: NaN-aware ``size x size``
    lower median, the window clipped at the border; NaN pixels stay NaN."""
    size = int(size)
    if size <= 1:
        return disparity.clone()
    if size % 2 == 0:
        raise ValueError(f"median size must be odd, got {size}")
    height, width = disparity.shape
    radius = size // 2
    padded = F.pad(disparity[None, None], (radius,) * 4, value=torch.nan)[0, 0]
    windows = padded.unfold(0, size, 1).unfold(1, size, 1).reshape(height, width, size * size)
    finite = torch.isfinite(windows)
    found = finite.sum(dim=2)
    ordered = torch.where(finite, windows, torch.inf).sort(dim=2).values  # holes last
    median = ordered.gather(2, ((found - 1).clamp(min=0) // 2)[..., None])[..., 0]
    return torch.where(torch.isfinite(disparity), median, torch.nan)


def bilateral_mean(disparity: torch.Tensor, sigma: float, threshold: float) -> torch.Tensor:
    """:func:`.postprocess.bilateral_mean`: the Gaussian mean over neighbours within
    ``threshold`` pixels of disparity, one kernel row at a time (a ``(H, W, 2r + 1)`` window,
    worked on in place). As in the CPU kernel, a NaN neighbour makes the mean NaN and a NaN
    centre stays NaN."""
    if sigma <= 0:
        return disparity.clone()
    height, width = disparity.shape
    kernel = torch.from_numpy(post.gaussian_kernel(sigma)).to(disparity.device)
    size = kernel.shape[0]
    radius = size // 2
    threshold = _below(threshold)
    # Outside the image: a finite value never near any disparity (weight 0, product 0).
    padded = F.pad(disparity[None, None], (radius,) * 4, value=_FAR)[0, 0]
    total = torch.zeros_like(disparity)
    weight = torch.zeros_like(disparity)
    for row in range(size):
        values = padded[row:row + height].unfold(1, size, 1)  # (H, W, size) view
        weights = (values - disparity[..., None]).abs_().lt_(threshold).mul_(kernel[row])
        weight += weights.sum(dim=2)
        total += weights.mul_(values).sum(dim=2)
    return torch.where(weight > 0, total / torch.where(weight > 0, weight, 1.0), disparity)


# ----------------------------------------------------------------------------- the method

def refine_volume(cost: torch.Tensor, grey_left: np.ndarray, grey_right: np.ndarray,
                  params: dict[str, Any], timer: Optional[Callable] = None,
                  check_cancel: Optional[Callable[[], None]] = None,
                  aggregate: Optional[Callable] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The MC-CNN backend's method after the cost volume, on the tensor's device: ``cost``
    ``(H, W, D)`` float32, the standardised grey images ``(H, W)`` (numpy, uploaded: they
    decide the crosses and penalties), ``params`` the backend's. Returns the ``(H, W)`` disparity and
    confidence on the same device. ``aggregate(cost, p1, p2, paths)`` runs SGM; default the
    CUDA warp aggregation (:func:`depthapp.backends.sgm.cuda.aggregate_tensor_cuda`)."""
    timer = timer or (lambda stage: nullcontext())
    check_cancel = check_cancel or (lambda: None)
    p = params
    n_disp = cost.shape[2]
    greys = [torch.from_numpy(np.ascontiguousarray(grey, np.float32)).to(cost.device)
             for grey in (grey_left, grey_right)]
    arms = None
    if p["cbca_before"] or p["cbca_after"]:
        with timer("cross aggregation"):
            arms = tuple(cross_arms(grey, p["cbca_distance"], p["cbca_intensity"]) for grey in greys)
            cost = cross_aggregate(cost, arms[0], arms[1], p["cbca_before"])
    check_cancel()
    if p["sgm"]:
        with timer("sgm"):
            if aggregate is None:
                from ..sgm.cuda import aggregate_tensor_cuda as aggregate
            p1, p2 = sgm_penalties(cost, greys[0], greys[1], p)
            cost = aggregate(cost, p1, p2, 4)
    check_cancel()
    if p["cbca_after"] and arms is not None:
        with timer("cross aggregation"):
            cost = cross_aggregate(cost, arms[0], arms[1], p["cbca_after"])
    with timer("winner"):
        disparity, right, confidence = winner_take_all(cost)
    if p["lr_check"]:
        with timer("left-right check"):
            labels = classify_outliers(disparity, right, n_disp)
            disparity = interpolate_outliers(disparity, labels)
    with timer("refinement"):
        if p["subpixel"]:
            disparity = subpixel(cost, disparity)
        disparity = median_filter(disparity, p["median_size"])
        disparity = bilateral_mean(disparity, p["blur_sigma"], p["blur_threshold"])
    return disparity, confidence


__all__ = ["bilateral_mean", "classify_outliers", "cross_aggregate", "cross_arms",
           "interpolate_outliers", "median_filter", "refine_volume", "sgm_penalties", "subpixel",
           "winner_take_all"]
