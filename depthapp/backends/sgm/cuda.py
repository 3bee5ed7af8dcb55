"""The census + SGM pipeline as CUDA kernels (numba-cuda), and CUDA SGM aggregation for any
cost volume.

    compute_sgm_cuda(grey_left, grey_right, config, device="cuda")  -> SGMOutput (numpy)
    aggregate_cost_cuda(cost, p1, p2, paths=8)                      -> numpy (H, W, D)
    aggregate_tensor_cuda(cost, p1, p2, paths=8)    -> torch (H, W, D), on the tensor's device

Same definitions, layouts and results as the CPU kernels (:mod:`.cost`, :mod:`.aggregation`);
tests compare both with :mod:`.reference`, in numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``
set before numba is imported) on a machine without a GPU, and on a GPU when there is one.

Kernels: census (a thread per pixel), cost (a thread per volume entry, coalesced writes),
aggregation (a warp per path line, each lane a few consecutive disparities; neighbours and the
per-step minimum through warp shuffles, so a step has no block barrier; every path of every line
in one launch, each path into its own volume, then summed; frames whose per-path volumes exceed
``CONCURRENT_BUDGET`` fall back to a block per line, one launch per line family),
winner-take-all and right-view winners (a thread per pixel), left-right check and median
(a thread per pixel), speckle removal (connected components by union-find with atomics, then
region sizes; the same regions as the CPU flood fill). Only the result is downloaded.
Aggregation runs in float32, which is exact for the integer costs used here (sums < 2**24).

Importing this module never fails on a machine without CUDA; :func:`cuda_kernels_available`
says whether the kernels can run.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Callable, Optional

import numpy as np

from . import aggregation
from .aggregation import PATH_DIRECTIONS, path_indices
from .cost import check_window
from .pipeline import SGMConfig, SGMOutput

# numba-cuda <= 0.30 registers an overload of np.row_stack, which NumPy 2.5 removed, and fails
# at the first kernel compile without it (seen on the GPU image: numba-cuda 0.30.4, NumPy 2.5.2).
if not hasattr(np, "row_stack"):
    np.row_stack = np.vstack

try:
    from numba import cuda
    from numba import float32 as _f32
    _IMPORT_ERROR: Optional[str] = None
except Exception as error:  # numba without a CUDA target
    cuda = None
    _IMPORT_ERROR = f"{type(error).__name__}: {error}"

MAX_DISPARITIES = 1024  # one thread per disparity in a block
# Shared-array sizes must be plain global constants: numba-cuda types `MAX + 2` inside a kernel
# as a run-time int64 and refuses it (the simulator accepts it, a real compile does not).
_SHARED_PREVIOUS = MAX_DISPARITIES + 2
_BIG = 1e30


def simulator_enabled() -> bool:
    from numba import config

    return bool(config.ENABLE_CUDASIM)


def unavailable_reason() -> Optional[str]:
    """Why the kernels cannot run here, or None."""
    if cuda is None:
        return f"numba has no CUDA target ({_IMPORT_ERROR})"
    try:
        if not cuda.is_available():
            return "no CUDA device or driver found by numba"
    except Exception as error:  # driver errors surface here
        return f"CUDA driver error: {error}"
    return None


def cuda_kernels_available() -> bool:
    return unavailable_reason() is None


if cuda is not None:

    @cuda.jit(cache=True)
    def _census_kernel(image, window_height, window_width, out):
        x, y = cuda.grid(2)
        height, width = image.shape
        if y >= height or x >= width:
            return
        ry = window_height // 2
        rx = window_width // 2
        centre = image[y, x]
        bits = np.uint64(0)
        bit = np.uint64(0)
        for dy in range(-ry, ry + 1):
            yy = min(max(y + dy, 0), height - 1)
            for dx in range(-rx, rx + 1):
                if dy == 0 and dx == 0:
                    continue
                xx = min(max(x + dx, 0), width - 1)
                if image[yy, xx] < centre:
                    bits |= np.uint64(1) << bit
                bit += np.uint64(1)
        out[y, x] = bits

    @cuda.jit(cache=True)
    def _luma_kernel(rgb, out):
        """BT.601 luma of an RGB uint8 image, as StereoPair.grey computes it."""
        x, y = cuda.grid(2)
        height, width = out.shape
        if y >= height or x >= width:
            return
        out[y, x] = (_f32(rgb[y, x, 0]) * _f32(0.299) + _f32(rgb[y, x, 1]) * _f32(0.587)
                     + _f32(rgb[y, x, 2]) * _f32(0.114))

    @cuda.jit(cache=True)
    def _gradient_kernel(image, out):
        x, y = cuda.grid(2)
        height, width = image.shape
        if y >= height or x >= width:
            return
        out[y, x] = (image[y, min(x + 1, width - 1)] - image[y, max(x - 1, 0)]) * _f32(0.5)

    @cuda.jit(cache=True)
    def _cost_kernel(census_left, census_right, grey_left, grey_right, grad_left, grad_right,
                     min_disp, census_weight, intensity_weight, intensity_cap, gradient_weight,
                     gradient_cap, border_cost, out):
        index = cuda.grid(1)
        height, width, n_disp = out.shape
        if index >= height * width * n_disp:
            return
        k = index % n_disp
        x = (index // n_disp) % width
        y = index // (n_disp * width)
        xr = x - min_disp - k
        if xr < 0 or xr >= width:
            out[y, x, k] = border_cost
            return
        value = (census_weight * _f32(cuda.popc(census_left[y, x] ^ census_right[y, xr]))
                 + intensity_weight * min(abs(grey_left[y, x] - grey_right[y, xr]), intensity_cap)
                 + gradient_weight * min(abs(grad_left[y, x] - grad_right[y, xr]), gradient_cap))
        out[y, x, k] = np.uint8(min(value + _f32(0.5), _f32(255.0)))

    @cuda.jit(cache=True)
    def _p2_kernel(grey, p1, p2, p2_gradient, out):
        """``out[path, y, x]``: P2 lowered across the intensity step into (y, x) along path."""
        x, y = cuda.grid(2)
        height, width = grey.shape
        if y >= height or x >= width:
            return
        for path in range(8):
            if path == 0:
                dy, dx = 0, 1
            elif path == 1:
                dy, dx = 0, -1
            elif path == 2:
                dy, dx = 1, 0
            elif path == 3:
                dy, dx = -1, 0
            elif path == 4:
                dy, dx = 1, 1
            elif path == 5:
                dy, dx = 1, -1
            elif path == 6:
                dy, dx = -1, 1
            else:
                dy, dx = -1, -1
            qy = min(max(y - dy, 0), height - 1)
            qx = min(max(x - dx, 0), width - 1)
            if p2_gradient > 0:
                change = abs(grey[y, x] - grey[qy, qx])
                value = p2 * p2_gradient / (p2_gradient + change)
                out[path, y, x] = max(math.floor(value + _f32(0.5)), p1)
            else:
                out[path, y, x] = p2

    @cuda.jit(device=True)
    def _line_pixel(family, line, step, height, width):
        """(y, x) of step ``step`` (forward order) on line ``line`` of a family, and length."""
        if family == 0:  # rows, travelling right
            return line, step, width
        if family == 1:  # columns, travelling down
            return step, line, height
        if family == 2:  # x - y = k, travelling down-right
            k = line - (height - 1)
            y0 = max(0, -k)
            x0 = y0 + k
            return y0 + step, x0 + step, min(height - y0, width - x0)
        k = line  # x + y = k, travelling down-left
        y0 = max(0, k - (width - 1))
        x0 = k - y0
        return y0 + step, x0 - step, min(height - y0, x0 + 1)

    @cuda.jit(cache=True)
    def _aggregate_kernel(cost, p1, p2, families, first_block, slots, overwrite, use, volumes):
        """One block per path line, a thread per disparity.

        Entry ``e`` of the launch covers blocks ``first_block[e] .. first_block[e + 1] - 1``:
        the lines of family ``families[e]``, whose two paths (forward, then backward along the
        same line, so they never race) go to ``volumes[slots[e]]``, overwriting it first when
        ``overwrite[e]``. One launch can hold every family, each with its own volume, so all
        lines run concurrently; or one family per launch into a shared volume.
        """
        height, width, n_disp = cost.shape
        entry = 0
        while cuda.blockIdx.x >= first_block[entry + 1]:
            entry += 1
        family = families[entry]
        line = cuda.blockIdx.x - first_block[entry]
        volume = volumes[slots[entry]]
        if family == 0:
            path_forward, path_backward = 0, 1
        elif family == 1:
            path_forward, path_backward = 2, 3
        elif family == 2:
            path_forward, path_backward = 4, 7
        else:
            path_forward, path_backward = 5, 6
        t = cuda.threadIdx.x
        threads = cuda.blockDim.x
        previous = cuda.shared.array(_SHARED_PREVIOUS, _f32)
        minimum = cuda.shared.array(MAX_DISPARITIES, _f32)
        if t == 0:
            previous[0] = _BIG
            previous[n_disp + 1] = _BIG
        cuda.syncthreads()
        _, _, length = _line_pixel(family, line, 0, height, width)
        first = True
        for direction in range(2):
            path = path_forward if direction == 0 else path_backward
            if not use[path]:
                continue
            write = overwrite[entry] and first
            first = False
            y, x, _ = _line_pixel(family, line, 0 if direction == 0 else length - 1, height,
                                  width)
            upcoming = _f32(cost[y, x, t]) if t < n_disp else _f32(0.0)
            for i in range(length):
                if i + 1 < length:  # issue the next cost load early: it hides its latency
                    step = i + 1 if direction == 0 else length - 2 - i
                    y_next, x_next, _ = _line_pixel(family, line, step, height, width)
                    following = _f32(cost[y_next, x_next, t]) if t < n_disp else _f32(0.0)
                else:
                    y_next, x_next, following = y, x, _f32(0.0)
                value = upcoming
                if t < n_disp and i > 0:
                    pen1 = p1[path, y, x]
                    best = minimum[0]
                    candidate = previous[t + 1]
                    candidate = min(candidate, previous[t] + pen1)
                    candidate = min(candidate, previous[t + 2] + pen1)
                    candidate = min(candidate, best + p2[path, y, x])
                    value = value + candidate - best
                cuda.syncthreads()  # everyone has read previous/minimum
                if t < n_disp:
                    previous[t + 1] = value
                    minimum[t] = value
                    if write:
                        volume[y, x, t] = value
                    else:
                        volume[y, x, t] = _f32(volume[y, x, t]) + value
                else:
                    minimum[t] = _BIG
                cuda.syncthreads()
                half = threads // 2
                while half > 0:
                    if t < half:
                        minimum[t] = min(minimum[t], minimum[t + half])
                    cuda.syncthreads()
                    half //= 2
                y, x, upcoming = y_next, x_next, following

    @cuda.jit(cache=True)
    def _sum_kernel(volumes, count, out):
        index = cuda.grid(1)
        height, width, n_disp = out.shape
        if index >= height * width * n_disp:
            return
        k = index % n_disp
        x = (index // n_disp) % width
        y = index // (n_disp * width)
        total = _f32(0.0)
        for slot in range(count):
            total += _f32(volumes[slot, y, x, k])
        out[y, x, k] = total

    @cuda.jit(cache=True)
    def _wta_kernel(aggregated, uniqueness, subpixel, min_disp, disparity, confidence):
        x, y = cuda.grid(2)
        height, width, n_disp = aggregated.shape
        if y >= height or x >= width:
            return
        best = _f32(aggregated[y, x, 0])
        best_index = 0
        for d in range(1, n_disp):
            value = _f32(aggregated[y, x, d])
            if value < best:
                best = value
                best_index = d
        second = _f32(_BIG)
        found = False
        for d in range(n_disp):
            if d < best_index - 1 or d > best_index + 1:
                value = _f32(aggregated[y, x, d])
                if value < second:
                    second = value
                found = True
        if found and second > 0:
            confidence[y, x] = max(_f32(0.0), _f32(1.0) - best / second)
        else:
            confidence[y, x] = _f32(0.0) if found else _f32(1.0)
        keep = (_f32(100.0) - uniqueness) / _f32(100.0)
        if uniqueness > 0 and found and second * keep < best:
            disparity[y, x] = math.nan
            return
        value = _f32(best_index)
        if subpixel and 0 < best_index < n_disp - 1:
            left = _f32(aggregated[y, x, best_index - 1])
            right = _f32(aggregated[y, x, best_index + 1])
            curvature = left + right - _f32(2.0) * best
            if curvature > 0:
                value += _f32(0.5) * (left - right) / curvature
        disparity[y, x] = value + min_disp

    @cuda.jit(cache=True)
    def _right_kernel(aggregated, min_disp, right):
        xr, y = cuda.grid(2)
        height, width, n_disp = aggregated.shape
        if y >= height or xr >= width:
            return
        best = _f32(aggregated[y, xr, 0])
        best_index = 0
        for d in range(1, min(n_disp, width - xr)):
            value = _f32(aggregated[y, xr + d, d])
            if value < best:
                best = value
                best_index = d
        right[y, xr] = best_index + min_disp

    @cuda.jit(cache=True)
    def _lr_kernel(disparity, right, max_diff, out):
        """OpenCV's sub-pixel rule, as the CPU ``left_right_check``."""
        x, y = cuda.grid(2)
        height, width = disparity.shape
        if y >= height or x >= width:
            return
        d = disparity[y, x]
        if not math.isfinite(d):
            out[y, x] = math.nan
            return
        out[y, x] = d
        low = math.floor(d)
        high = math.ceil(d)
        x_low = int(x - low)
        x_high = int(x - high)
        if x_low < 0 or x_low >= width or x_high < 0 or x_high >= width:
            return
        if abs(right[y, x_low] - low) > max_diff and abs(right[y, x_high] - high) > max_diff:
            out[y, x] = math.nan

    @cuda.jit(cache=True)
    def _median_kernel(disparity, size, out):
        x, y = cuda.grid(2)
        height, width = disparity.shape
        if y >= height or x >= width:
            return
        if not math.isfinite(disparity[y, x]):
            out[y, x] = math.nan
            return
        window = cuda.local.array(81, _f32)
        radius = size // 2
        count = 0
        for yy in range(max(0, y - radius), min(height, y + radius + 1)):
            for xx in range(max(0, x - radius), min(width, x + radius + 1)):
                value = disparity[yy, xx]
                if math.isfinite(value):
                    j = count
                    while j > 0 and window[j - 1] > value:  # insertion sort
                        window[j] = window[j - 1]
                        j -= 1
                    window[j] = value
                    count += 1
        out[y, x] = window[(count - 1) // 2]


_FULL_WARP = 0xFFFFFFFF
_FAMILY_PATHS = ((0, 0, 1), (1, 2, 3), (2, 4, 7), (3, 5, 6))  # family, forward, backward
_PATH_FAMILY = {path: family for family, *pair in _FAMILY_PATHS for path in pair}
_BACKWARD_PATHS = frozenset(backward for _, _, backward in _FAMILY_PATHS)
_WARP_KERNELS: dict = {}


def _warp_aggregation_kernel(per_lane: int):
    """The aggregation kernel for ``per_lane`` consecutive disparities a lane (compiled once
    per value; a compile-time count keeps the lane's values in registers).

    A warp per (path, line): lanes hold disparities ``lane * per_lane ...``; the d +- 1
    neighbours across lanes and the minimum over all disparities come from warp shuffles, so
    a step has no block barrier; the next pixel's costs and penalties are loaded a step ahead.
    Each path writes its own volume (no read-modify-write), so the forward and backward paths
    of a line run concurrently.
    """
    if per_lane in _WARP_KERNELS:
        return _WARP_KERNELS[per_lane]

    @cuda.jit(cache=True)
    def kernel(cost, p1, p2, paths, families, backwards, first_line, volumes):
        height, width, n_disp = cost.shape
        lane = cuda.threadIdx.x
        index = cuda.blockIdx.x * cuda.blockDim.y + cuda.threadIdx.y
        if index >= first_line[first_line.shape[0] - 1]:
            return
        entry = 0
        while index >= first_line[entry + 1]:
            entry += 1
        path = paths[entry]
        family = families[entry]
        backward = backwards[entry]
        volume = volumes[entry]
        line = index - first_line[entry]
        _, _, length = _line_pixel(family, line, 0, height, width)
        base = lane * per_lane
        previous = cuda.local.array(per_lane, _f32)
        upcoming = cuda.local.array(per_lane, _f32)
        following = cuda.local.array(per_lane, _f32)
        y, x, _ = _line_pixel(family, line, length - 1 if backward else 0, height, width)
        for j in range(per_lane):
            upcoming[j] = _f32(cost[y, x, base + j]) if base + j < n_disp else _f32(_BIG)
        pen1 = p1[path, y, x]
        pen2 = p2[path, y, x]
        best = _f32(0.0)
        for i in range(length):
            y_next, x_next = y, x
            pen1_next, pen2_next = pen1, pen2
            if i + 1 < length:  # issue the next pixel's loads now: they hide their latency
                y_next, x_next, _ = _line_pixel(family, line, length - 2 - i if backward
                                                else i + 1, height, width)
                for j in range(per_lane):
                    following[j] = (_f32(cost[y_next, x_next, base + j]) if base + j < n_disp
                                    else _f32(_BIG))
                pen1_next = p1[path, y_next, x_next]
                pen2_next = p2[path, y_next, x_next]
            if i > 0:
                lower_edge = cuda.shfl_up_sync(_FULL_WARP, previous[per_lane - 1], 1)
                upper_edge = cuda.shfl_down_sync(_FULL_WARP, previous[0], 1)
                if lane == 0:
                    lower_edge = _f32(_BIG)
                if lane == 31:
                    upper_edge = _f32(_BIG)
                jump = best + pen2
                below = lower_edge
                for j in range(per_lane):
                    above = previous[j + 1] if j + 1 < per_lane else upper_edge
                    candidate = min(previous[j], below + pen1)
                    candidate = min(candidate, above + pen1)
                    candidate = min(candidate, jump)
                    below = previous[j]
                    if base + j < n_disp:
                        previous[j] = upcoming[j] + candidate - best
            else:
                for j in range(per_lane):
                    previous[j] = upcoming[j]
            lowest = _f32(_BIG)
            for j in range(per_lane):
                if base + j < n_disp:
                    volume[y, x, base + j] = previous[j]
                    lowest = min(lowest, previous[j])
            for offset in (16, 8, 4, 2, 1):
                lowest = min(lowest, cuda.shfl_xor_sync(_FULL_WARP, lowest, offset))
            best = lowest
            for j in range(per_lane):
                upcoming[j] = following[j]
            y, x, pen1, pen2 = y_next, x_next, pen1_next, pen2_next

    _WARP_KERNELS[per_lane] = kernel
    return kernel


if cuda is not None:

    # Speckle removal as connected-component labelling (union-find with atomicMin, after
    # Playne & Hawick 2018): regions are 4-connected pixels whose disparities differ by at
    # most max_diff, as the CPU flood fill defines them, so both remove the same pixels.
    @cuda.jit(device=True)
    def _find_root(labels, node):
        while labels[node] != node:
            node = labels[node]
        return node

    @cuda.jit(device=True)
    def _union(labels, a, b):
        while True:
            a = _find_root(labels, a)
            b = _find_root(labels, b)
            if a == b:
                return
            if a < b:
                old = cuda.atomic.min(labels, b, a)
                if old == b:
                    return
                b = old
            else:
                old = cuda.atomic.min(labels, a, b)
                if old == a:
                    return
                a = old

    @cuda.jit(cache=True)
    def _speckle_init_kernel(disparity, labels, sizes):
        index = cuda.grid(1)
        height, width = disparity.shape
        if index >= height * width:
            return
        y = index // width
        labels[index] = index if math.isfinite(disparity[y, index - y * width]) else -1
        sizes[index] = 0

    @cuda.jit(cache=True)
    def _speckle_merge_kernel(disparity, max_diff, labels):
        index = cuda.grid(1)
        height, width = disparity.shape
        if index >= height * width:
            return
        y = index // width
        x = index - y * width
        value = disparity[y, x]
        if not math.isfinite(value):
            return
        if x + 1 < width:
            neighbour = disparity[y, x + 1]
            if math.isfinite(neighbour) and abs(neighbour - value) <= max_diff:
                _union(labels, index, index + 1)
        if y + 1 < height:
            neighbour = disparity[y + 1, x]
            if math.isfinite(neighbour) and abs(neighbour - value) <= max_diff:
                _union(labels, index, index + width)

    @cuda.jit(cache=True)
    def _speckle_count_kernel(labels, sizes):
        index = cuda.grid(1)
        if index >= labels.shape[0] or labels[index] < 0:
            return
        root = _find_root(labels, index)
        labels[index] = root
        cuda.atomic.add(sizes, root, 1)

    @cuda.jit(cache=True)
    def _speckle_apply_kernel(labels, sizes, max_size, disparity):
        index = cuda.grid(1)
        height, width = disparity.shape
        if index >= height * width or labels[index] < 0:
            return
        if sizes[labels[index]] <= max_size:
            y = index // width
            disparity[y, index - y * width] = math.nan


def _remove_speckles_device(disparity, max_size: int, max_diff: float, labels, sizes) -> None:
    """:func:`.aggregation.remove_speckles` in place on a device ``(H, W)`` float32 array."""
    grid = _grid1(disparity.shape[0] * disparity.shape[1])
    _speckle_init_kernel[grid](disparity, labels, sizes)
    _speckle_merge_kernel[grid](disparity, np.float64(max_diff), labels)
    _speckle_count_kernel[grid](labels, sizes)
    _speckle_apply_kernel[grid](labels, sizes, int(max_size), disparity)



def _grid2(height: int, width: int):
    """Launch shape for a thread per pixel, x fastest (coalesced rows). The simulator runs each
    thread as a Python thread, so it gets small blocks."""
    block = (4, 4) if simulator_enabled() else (32, 8)
    return (math.ceil(width / block[0]), math.ceil(height / block[1])), block


def _grid1(count: int):
    block = 16 if simulator_enabled() else 256
    return math.ceil(count / block), block


def _threads_for(n_disp: int) -> int:
    if n_disp > MAX_DISPARITIES:
        raise ValueError(f"the CUDA kernels handle at most {MAX_DISPARITIES} disparities, "
                         f"got {n_disp}")
    return 1 << max(0, math.ceil(math.log2(n_disp)))


def _line_count(family: int, height: int, width: int) -> int:
    return (height, width, height + width - 1, height + width - 1)[family]


def used_families(indices) -> list[int]:
    """Line families (0 rows, 1 columns, 2 and 3 diagonals) holding any of the paths."""
    return [family for family, forward, backward in _FAMILY_PATHS
            if forward in indices or backward in indices]


def _launch_aggregation(cost, p1_maps, p2_maps, indices, volumes, entries) -> None:
    """One kernel launch over ``entries`` = ``[(family, slot, overwrite), ...]``."""
    height, width, n_disp = cost.shape
    first_block = [0]
    for family, _, _ in entries:
        first_block.append(first_block[-1] + _line_count(family, height, width))
    use = [i in indices for i in range(8)]
    _aggregate_kernel[first_block[-1], _threads_for(n_disp)](
        cost, p1_maps, p2_maps, _small_table([e[0] for e in entries], np.int32),
        _small_table(first_block, np.int32), _small_table([e[1] for e in entries], np.int32),
        _small_table([e[2] for e in entries], np.bool_), _small_table(use, np.bool_), volumes)


def _small_table(values, dtype):
    """A few launch constants as a device array: passing a host array to a kernel copies it
    anyway and makes numba-cuda print a performance warning on every run."""
    return cuda.to_device(np.array(values, dtype))


def _warps_per_block() -> int:
    # The simulator's shuffles (tests) are block barriers, so it gets one warp per block.
    return 1 if simulator_enabled() else 4


def _aggregate_device(cost, p1_maps, p2_maps, indices, out, path_volumes=None) -> None:
    """Aggregate on the device into ``out`` ``(H, W, D)``.

    With ``path_volumes`` (``(len(indices), H, W, D)`` scratch), a warp per (path, line), all
    in one launch, each path into its own volume, then one kernel sums them. Without it (frames
    too large for the scratch), one launch per line family accumulates into ``out`` (a block per
    line, forward then backward).
    """
    height, width, n_disp = cost.shape
    if path_volumes is not None:
        first_line = [0]
        for path in indices:
            first_line.append(first_line[-1] + _line_count(_PATH_FAMILY[path], height, width))
        warps = _warps_per_block()
        kernel = _warp_aggregation_kernel(max(1, math.ceil(n_disp / 32)))
        kernel[math.ceil(first_line[-1] / warps), (32, warps)](
            cost, p1_maps, p2_maps, _small_table(indices, np.int32),
            _small_table([_PATH_FAMILY[path] for path in indices], np.int32),
            _small_table([path in _BACKWARD_PATHS for path in indices], np.bool_),
            _small_table(first_line, np.int32), path_volumes)
        _sum_kernel[_grid1(height * width * n_disp)](path_volumes, len(indices), out)
        return
    volumes = out.reshape((1,) + tuple(out.shape))
    for number, family in enumerate(used_families(indices)):
        _launch_aggregation(cost, p1_maps, p2_maps, indices, volumes, [(family, 0, number == 0)])


def _device_context(device: str):
    if cuda is None or simulator_enabled():
        return nullcontext()
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    return cuda.gpus[index]


def _check_available() -> None:
    reason = unavailable_reason()
    if reason:
        from ...errors import BackendUnavailableError

        raise BackendUnavailableError(f"sgm CUDA kernels cannot run: {reason}")


def aggregate_cost_cuda(cost: np.ndarray, p1, p2, paths=8, device: str = "cuda") -> np.ndarray:
    """:func:`depthapp.backends.sgm.aggregation.aggregate_cost` on the GPU: ``cost`` a numpy
    array or a numba device array (``numba.cuda.as_cuda_array(tensor)`` wraps a torch CUDA
    tensor without a copy); returns numpy. Same dtypes and penalty shapes."""
    _check_available()
    host_cost = cost if isinstance(cost, np.ndarray) else None
    shape = cost.shape
    if len(shape) != 3:
        raise ValueError(f"cost must be (H, W, D), got shape {shape}")
    height, width, n_disp = shape
    indices = path_indices(paths)
    p1_maps = np.ascontiguousarray(aggregation._penalty_maps(p1, "p1", indices, height, width,
                                                             np.float32))
    p2_maps = np.ascontiguousarray(aggregation._penalty_maps(p2, "p2", indices, height, width,
                                                             np.float32))
    if host_cost is not None:
        max_cost = float(host_cost.max())
        dtype = aggregation.accumulator_dtype(host_cost.dtype, len(indices), max_cost,
                                              float(p2_maps.max()))
    else:  # a numba device array: bound the costs by their type
        cost_dtype = np.dtype(cost.dtype)
        bound = np.iinfo(cost_dtype).max if cost_dtype.kind in "ui" else 0.0
        dtype = aggregation.accumulator_dtype(cost_dtype, len(indices), bound,
                                              float(p2_maps.max()))
    with _device_context(device):
        d_cost = cuda.to_device(np.ascontiguousarray(host_cost)) if host_cost is not None else cost
        d_out = cuda.device_array(shape, dtype)
        scratch = _path_scratch(len(indices), shape, dtype)
        _aggregate_device(d_cost, cuda.to_device(p1_maps), cuda.to_device(p2_maps), indices,
                          d_out, scratch)
        return d_out.copy_to_host()



def aggregate_tensor_cuda(cost, p1, p2, paths=8):
    """:func:`aggregate_cost_cuda` of a torch ``(H, W, D)`` float32 tensor that stays on its CUDA
    device: the kernels read it in place (``__cuda_array_interface__``) and write a tensor on
    the same device (torch's allocator owns it). Penalties as :func:`aggregate_cost_cuda` takes
    them (uploaded as float32 maps up to the last path used), or as ``(n_paths, H, W)`` tensors
    already on the device, which are used where they are.

    The kernels run on numba's default stream, which is torch's unless the caller made another
    stream current; then that stream is synchronised before and the device after. In numba's
    CUDA simulator (tests) the tensor is on the CPU and goes through host copies.
    """
    import torch

    _check_available()
    if cost.dim() != 3 or min(cost.shape) < 1:
        raise ValueError(f"cost must be (H, W, D), got shape {tuple(cost.shape)}")
    indices = path_indices(paths)
    cost = cost.detach().to(torch.float32).contiguous()
    p1_maps, p2_maps = (_penalty_tensor(value, name, indices, cost)
                        for value, name in ((p1, "p1"), (p2, "p2")))
    if simulator_enabled():
        d_cost = cuda.to_device(cost.cpu().numpy())
        d_out = cuda.device_array(d_cost.shape, np.float32)
        scratch = _path_scratch(len(indices), d_cost.shape, np.float32)
        _aggregate_device(d_cost, cuda.to_device(p1_maps.numpy()),
                          cuda.to_device(p2_maps.numpy()), indices, d_out, scratch)
        return torch.from_numpy(d_out.copy_to_host()).to(cost.device)
    if cost.device.type != "cuda":
        raise ValueError(f"cost must be a CUDA tensor, got one on {cost.device}")
    out = torch.empty_like(cost)
    scratch_bytes = len(indices) * cost.numel() * 4
    scratch = (torch.empty((len(indices),) + tuple(cost.shape), dtype=torch.float32,
                           device=cost.device) if scratch_bytes <= CONCURRENT_BUDGET else None)
    foreign_stream = torch.cuda.current_stream(cost.device).cuda_stream != 0
    if foreign_stream:
        torch.cuda.current_stream(cost.device).synchronize()
    with _device_context(str(cost.device)):
        _aggregate_device(cuda.as_cuda_array(cost), cuda.as_cuda_array(p1_maps),
                          cuda.as_cuda_array(p2_maps), indices, cuda.as_cuda_array(out),
                          None if scratch is None else cuda.as_cuda_array(scratch))
        if foreign_stream:
            cuda.synchronize()
    return out


def _penalty_tensor(value, name: str, indices: tuple[int, ...], cost):
    """Penalty maps for the kernels as a contiguous float32 tensor on ``cost``'s device,
    ``(indices[-1] + 1, H, W)``: the kernels read no path beyond the last one used."""
    import torch

    height, width, _ = cost.shape
    if isinstance(value, torch.Tensor) and tuple(value.shape) == (len(indices), height, width):
        value = value.to(device=cost.device, dtype=torch.float32)
        if not bool(torch.isfinite(value).all()) or bool((value < 0).any()):
            raise ValueError(f"{name} must be finite and non-negative")
        if indices == tuple(range(len(indices))):
            return value.contiguous()
        maps = torch.zeros((indices[-1] + 1, height, width), dtype=torch.float32, device=cost.device)
        maps[list(indices)] = value
        return maps
    maps = aggregation._penalty_maps(value, name, indices, height, width, np.float32)
    return torch.from_numpy(np.ascontiguousarray(maps[: indices[-1] + 1])).to(cost.device)


CONCURRENT_BUDGET = 4 * 1024 ** 3  # bytes of per-path volumes worth the concurrency


def _path_scratch(paths: int, shape, dtype):
    """Per-path volumes for the one-launch aggregation, or None when over budget."""
    nbytes = paths * int(np.prod(shape)) * np.dtype(dtype).itemsize
    if nbytes > CONCURRENT_BUDGET:
        return None
    return cuda.device_array((paths,) + tuple(shape), dtype)


class _Workspace:
    """Device buffers for one frame size, reused across frames (no allocation per frame)."""

    def __init__(self, height: int, width: int, n_disp: int, accumulator, paths: int):
        self.key = (height, width, n_disp, np.dtype(accumulator).str)
        shape2 = (height, width)
        self.rgb = [cuda.device_array((height, width, 3), np.uint8) for _ in range(2)]
        self.grey = [cuda.device_array(shape2, np.float32) for _ in range(2)]
        self.grad = [cuda.device_array(shape2, np.float32) for _ in range(2)]
        self.census = [cuda.device_array(shape2, np.uint64) for _ in range(2)]
        self.cost = cuda.device_array((height, width, n_disp), np.uint8)
        self.aggregated = cuda.device_array((height, width, n_disp), accumulator)
        self.path_volumes = _path_scratch(paths, (height, width, n_disp), accumulator)
        self.labels = cuda.device_array(height * width, np.int32)
        self.region_sizes = cuda.device_array(height * width, np.int32)
        self.p1 = cuda.device_array((8, height, width), np.float32)
        self.p2 = cuda.device_array((8, height, width), np.float32)
        self.disparity = cuda.device_array(shape2, np.float32)
        self.right = cuda.device_array(shape2, np.float32)
        self.checked = cuda.device_array(shape2, np.float32)
        self.filtered = cuda.device_array(shape2, np.float32)
        self.confidence = cuda.device_array(shape2, np.float32)


_WORKSPACES: dict = {}


def _workspace(device: str, height: int, width: int, n_disp: int, accumulator,
               paths: int) -> _Workspace:
    key = (device, height, width, n_disp, np.dtype(accumulator).str, paths)
    if key not in _WORKSPACES:
        _WORKSPACES.clear()  # one frame size at a time: a new size frees the old buffers
        _WORKSPACES[key] = _Workspace(height, width, n_disp, accumulator, paths)
    return _WORKSPACES[key]


def compute_sgm_cuda(grey_left: np.ndarray, grey_right: np.ndarray, config: SGMConfig,
                     device: str = "cuda", timer: Optional[Callable] = None,
                     check_cancel: Optional[Callable[[], None]] = None) -> SGMOutput:
    """:func:`depthapp.backends.sgm.pipeline.compute_sgm` on the GPU; same output.

    ``grey_left``/``grey_right``: ``(H, W)`` grey images (0..255 float), or ``(H, W, 3)`` RGB
    uint8 images, which are uploaded as bytes and converted to luma on the device (a third of
    the transfer, no CPU pass) when contiguous, else converted on the host.
    """
    _check_available()
    config.validate()
    timer = timer or (lambda stage: nullcontext())
    check_cancel = check_cancel or (lambda: None)
    rgb = np.ndim(grey_left) == 3
    if rgb and not (grey_left.flags.c_contiguous and grey_right.flags.c_contiguous):
        # A strided view (e.g. channel-last over a torch tensor's planes): luma on the host reads
        # the planes in place, about 6x cheaper than gathering the bytes into a copy to upload.
        from ...data import luma

        grey_left, grey_right, rgb = luma(grey_left), luma(grey_right), False
    if rgb:
        grey_left = np.ascontiguousarray(grey_left, dtype=np.uint8)
        grey_right = np.ascontiguousarray(grey_right, dtype=np.uint8)
    else:
        grey_left = np.ascontiguousarray(grey_left, dtype=np.float32)
        grey_right = np.ascontiguousarray(grey_right, dtype=np.float32)
    height, width = grey_left.shape[:2]
    n_disp = config.n_disp
    window_height, window_width = check_window(config.window)
    indices = path_indices(config.paths)
    accumulator = aggregation.accumulator_dtype(np.uint8, len(indices), 255, config.p2)
    weights = config.weights
    grid, block = _grid2(height, width)
    with _device_context(device):
        work = _workspace(device, height, width, n_disp, accumulator, len(indices))
        with timer("upload"):
            if rgb:
                for side, image in enumerate((grey_left, grey_right)):
                    work.rgb[side].copy_to_device(image)
                    _luma_kernel[grid, block](work.rgb[side], work.grey[side])
            else:
                work.grey[0].copy_to_device(grey_left)
                work.grey[1].copy_to_device(grey_right)
        with timer("cost"):
            for side in range(2):
                _census_kernel[grid, block](work.grey[side], window_height, window_width,
                                            work.census[side])
                _gradient_kernel[grid, block](work.grey[side], work.grad[side])
            _cost_kernel[_grid1(height * width * n_disp)](
                work.census[0], work.census[1], work.grey[0], work.grey[1], work.grad[0],
                work.grad[1], int(config.min_disp), np.float32(weights.census),
                np.float32(weights.intensity), np.float32(weights.intensity_cap),
                np.float32(weights.gradient), np.float32(weights.gradient_cap),
                np.uint8(min(255, max(0, weights.border_cost))), work.cost)
            _p2_kernel[grid, block](work.grey[0], np.float32(config.p1), np.float32(config.p2),
                                    np.float32(config.p2_gradient), work.p2)
            _fill_kernel[_grid1(8 * height * width)](
                work.p1.reshape(8 * height * width), np.float32(config.p1))
        check_cancel()
        with timer("aggregation"):
            _aggregate_device(work.cost, work.p1, work.p2, indices, work.aggregated,
                              work.path_volumes)
        check_cancel()
        with timer("winner-take-all"):
            _wta_kernel[grid, block](work.aggregated, np.float32(config.uniqueness),
                                     bool(config.subpixel), np.float32(config.min_disp),
                                     work.disparity, work.confidence)
            _right_kernel[grid, block](work.aggregated, np.float32(config.min_disp),
                                       work.right)
        with timer("post-processing"):
            current = work.disparity
            if config.lr_max_diff >= 0:
                _lr_kernel[grid, block](current, work.right, np.float32(config.lr_max_diff),
                                        work.checked)
                current = work.checked
            if config.median_size > 1:
                _median_kernel[grid, block](current, int(config.median_size), work.filtered)
                current = work.filtered
            if config.speckle_size > 0:
                _remove_speckles_device(current, config.speckle_size, config.speckle_range,
                                        work.labels, work.region_sizes)
            disparity = current.copy_to_host()
            confidence = work.confidence.copy_to_host()
    return SGMOutput(disparity, confidence)


if cuda is not None:

    @cuda.jit(cache=True)
    def _fill_kernel(array, value):
        i = cuda.grid(1)
        if i < array.size:
            array[i] = value


def device_memory_bytes(height: int, width: int, config: SGMConfig) -> int:
    """Device bytes :func:`compute_sgm_cuda` keeps for one frame size."""
    n_paths = len(path_indices(config.paths))
    accumulator = aggregation.accumulator_dtype(np.uint8, n_paths, 255, config.p2)
    pixels = height * width
    scratch = n_paths * pixels * config.n_disp * accumulator.itemsize
    volume = pixels * config.n_disp * (1 + accumulator.itemsize)
    volume += scratch if scratch <= CONCURRENT_BUDGET else 0
    return int(volume + pixels * (2 * 4 * 2 + 2 * 8 + 2 * 8 * 4 + 5 * 4 + 2 * 4))


__all__ = ["MAX_DISPARITIES", "aggregate_cost_cuda", "aggregate_tensor_cuda", "compute_sgm_cuda",
           "cuda_kernels_available", "device_memory_bytes", "simulator_enabled",
           "unavailable_reason", "PATH_DIRECTIONS"]
