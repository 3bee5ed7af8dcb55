"""Matching cost of the ``sgm`` backend: census Hamming distance combined with truncated
absolute differences of intensity and horizontal gradient (an AD-census variant).

    census_transform(image, window)                  -> (H, W) uint64 bit strings
    horizontal_gradient(image)                       -> (H, W) float32 central difference
    matching_cost(left, right, n_disp, min_disp, weights, ...) -> (H, W, D) uint8

Census (Zabih & Woodfill 1994): bit ``k`` is set when window neighbour ``k`` (row-major,
centre skipped) is darker than the centre; pixels outside the image repeat the border. Windows
up to 63 neighbours (e.g. 9x7) fit one uint64, so the Hamming distance is one popcount.

The combined cost, clipped to 0..255 and stored as uint8 to keep the volume small:

    C = round(census_weight * hamming + intensity_weight * min(|I_L - I_R|, intensity_cap)
              + gradient_weight * min(|G_L - G_R|, gradient_cap))

Census is robust to gain/bias differences; the intensity and gradient terms add information
in low-texture areas where census bits are noise (Mei et al. 2011 use the same idea).
Where the right pixel ``x - d`` lies outside the image the cost is ``border_cost``: the same
value for every such disparity, so the aggregation fills the left border band from its
neighbours instead of the cost choosing an arbitrary disparity there. It is set relative to
the image's mean best-match cost (``border_scale``), so it means the same on clean and on
noisy images.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

MAX_CENSUS_BITS = 64


@intrinsic
def _popcount64(typingctx, value):
    """LLVM ``ctpop`` on a uint64: one POPCNT instruction where the CPU has it."""
    if value != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen


def check_window(window: tuple[int, int]) -> tuple[int, int]:
    """``(height, width)``, both odd, at most 64 neighbours; ValueError otherwise."""
    height, width = (int(v) for v in window)
    if height < 1 or width < 1 or height % 2 == 0 or width % 2 == 0:
        raise ValueError(f"census window must have odd sides, got {height}x{width}")
    if height * width - 1 > MAX_CENSUS_BITS:
        raise ValueError(f"census window {height}x{width} has {height * width - 1} neighbours; "
                         f"at most {MAX_CENSUS_BITS} fit a 64-bit census")
    return height, width


@njit(cache=True, parallel=True, boundscheck=False)
def _census(padded, window_height, window_width, out):
    """``padded``: the image with ``window // 2`` border pixels replicated on each side."""
    height, width = out.shape
    for y in prange(height):
        row_bits = np.zeros(width, np.uint64)
        centre = padded[y + window_height // 2, window_width // 2:window_width // 2 + width]
        bit = 0
        for dy in range(window_height):
            for dx in range(window_width):
                if dy == window_height // 2 and dx == window_width // 2:
                    continue
                neighbour = padded[y + dy, dx:dx + width]
                shift = np.uint64(bit)
                for x in range(width):  # vectorised over the row
                    row_bits[x] |= np.uint64(neighbour[x] < centre[x]) << shift
                bit += 1
        out[y] = row_bits


def census_transform(image: np.ndarray, window: tuple[int, int] = (7, 7)) -> np.ndarray:
    """Census bit strings ``(H, W)`` uint64 of a ``(H, W)`` grey image (see module docstring)."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"census needs a (H, W) image, got shape {image.shape}")
    window_height, window_width = check_window(window)
    padded = np.pad(image, ((window_height // 2,) * 2, (window_width // 2,) * 2), mode="edge")
    out = np.empty(image.shape, np.uint64)
    _census(padded, window_height, window_width, out)
    return out


def horizontal_gradient(image: np.ndarray) -> np.ndarray:
    """``(I(x+1) - I(x-1)) / 2`` of a ``(H, W)`` image, border replicated; float32."""
    image = np.asarray(image, dtype=np.float32)
    padded = np.pad(image, ((0, 0), (1, 1)), mode="edge")
    return (padded[:, 2:] - padded[:, :-2]) * np.float32(0.5)


@dataclass(frozen=True)
class CostWeights:
    """Weights and caps of the combined cost (module docstring)."""

    census: float = 1.0
    intensity: float = 0.5
    intensity_cap: float = 20.0
    gradient: float = 1.0
    gradient_cap: float = 10.0
    border_cost: int = 20
    # When set, border_cost is replaced by border_scale x the mean best-match cost of the
    # pixels whose whole disparity range lies inside the right image (see border_cost_for).
    border_scale: float | None = None


@njit(cache=True, parallel=True, boundscheck=False, fastmath=True)
def _cost_volume(census_left, census_right, grey_left, grey_right, grad_left, grad_right,
                 min_disp, census_weight, intensity_weight, intensity_cap, gradient_weight,
                 gradient_cap, border_cost, out, row_min_sum, row_min_count):
    """Right-image rows arrive reversed and padded (see :func:`_reversed_padded`) so the inner
    loop over disparities walks forward through memory with no bounds tests and vectorises
    (AVX-512 has a vector popcount); entries whose right pixel is outside the image are then
    overwritten with ``border_cost``. ``row_min_sum/count[y]``: sum and number of the
    per-pixel minimum costs of row ``y`` over pixels whose every disparity is inside."""
    height, width, n_disp = out.shape
    padded_width = census_right.shape[1]
    pad_left = padded_width - width - max(0, -min_disp)
    for y in prange(height):
        right_bits = census_right[y]
        right_grey = grey_right[y]
        right_grad = grad_right[y]
        min_sum = 0
        min_count = 0
        for x in range(width):
            left_bits = census_left[y, x]
            left_grey = grey_left[y, x]
            left_grad = grad_left[y, x]
            out_px = out[y, x]
            # right pixel x - min_disp - k sits at padded index pad_left + x - min_disp - k,
            # i.e. at reversed index base + k
            base = padded_width - 1 - (pad_left + x - min_disp)
            # Slices, not ``base + k`` indices: a possibly negative index makes numba emit a
            # wraparound select that keeps the loop scalar; slices vectorise (measured 3x).
            bits = right_bits[base:base + n_disp]
            greys = right_grey[base:base + n_disp]
            grads = right_grad[base:base + n_disp]
            for k in range(n_disp):
                value = (census_weight * np.float32(_popcount64(left_bits ^ bits[k]))
                         + intensity_weight * min(abs(left_grey - greys[k]), intensity_cap)
                         + gradient_weight * min(abs(left_grad - grads[k]), gradient_cap))
                out_px[k] = np.uint8(min(value + np.float32(0.5), np.float32(255.0)))
            inside_from = max(0, x - min_disp - width + 1)
            inside_to = min(n_disp, x - min_disp + 1)
            if inside_from == 0 and inside_to == n_disp:
                best = out_px[0]
                for k in range(1, n_disp):
                    best = min(best, out_px[k])
                min_sum += best
                min_count += 1
            for k in range(max(0, inside_to), n_disp):  # right pixel left of the image
                out_px[k] = border_cost
            for k in range(0, min(n_disp, inside_from)):  # right of the image
                out_px[k] = border_cost
        row_min_sum[y] = min_sum
        row_min_count[y] = min_count


@njit(cache=True, parallel=True, boundscheck=False)
def _fill_border(min_disp, border_cost, out):
    height, width, n_disp = out.shape
    for y in prange(height):
        for x in range(width):
            for k in range(max(0, x - min_disp + 1), n_disp):
                out[y, x, k] = border_cost
            for k in range(0, min(n_disp, x - min_disp - width + 1)):
                out[y, x, k] = border_cost


def border_cost_for(weights: "CostWeights", min_sum: float, min_count: int) -> int:
    """The cost given to matches outside the right image: ``weights.border_cost``, or with
    ``border_scale`` set, that multiple of the mean best-match cost (``min_sum / min_count``)
    so "unknown" sits at the same place among the image's costs whatever their scale (window
    size, cost weights, image noise); the fixed value when no pixel has its whole range."""
    if weights.border_scale is None or min_count == 0:
        return int(min(255, max(0, weights.border_cost)))
    return int(min(255, max(0, round(weights.border_scale * min_sum / min_count))))

def _reversed_padded(image: np.ndarray, pad_left: int, pad_right: int) -> np.ndarray:
    padded = np.pad(image, ((0, 0), (pad_left, pad_right)), mode="edge")
    return np.ascontiguousarray(padded[:, ::-1])


def matching_cost(grey_left: np.ndarray, grey_right: np.ndarray, n_disp: int, min_disp: int = 0,
                  window: tuple[int, int] = (7, 7), weights: CostWeights = CostWeights(),
                  out: np.ndarray | None = None) -> np.ndarray:
    """``(H, W, n_disp)`` uint8 cost of matching left ``x`` with right ``x - min_disp - k``.

    ``grey_left``/``grey_right``: ``(H, W)`` float images (0..255 scale for the caps).
    """
    return matching_cost_with_minima(grey_left, grey_right, n_disp, min_disp, window, weights,
                                     out)[0]


def matching_cost_with_minima(grey_left, grey_right, n_disp, min_disp=0, window=(7, 7),
                              weights: CostWeights = CostWeights(), out=None):
    """:func:`matching_cost` and the sum and count of the per-pixel minimum costs over the
    pixels whose whole disparity range lies inside the right image."""
    grey_left = np.ascontiguousarray(grey_left, dtype=np.float32)
    grey_right = np.ascontiguousarray(grey_right, dtype=np.float32)
    if grey_left.shape != grey_right.shape or grey_left.ndim != 2:
        raise ValueError(f"grey images must be (H, W) of one size, got {grey_left.shape} and "
                         f"{grey_right.shape}")
    if n_disp < 1:
        raise ValueError(f"n_disp must be at least 1, got {n_disp}")
    height, width = grey_left.shape
    census_left = census_transform(grey_left, window)
    census_right = census_transform(grey_right, window)
    if weights.intensity > 0 or weights.gradient > 0:
        grad_left = horizontal_gradient(grey_left)
        grad_right = horizontal_gradient(grey_right)
    else:
        grad_left, grad_right = grey_left, grey_right
    pad_left = max(0, min_disp + n_disp)
    pad_right = max(0, -min_disp)
    if out is None:
        out = np.empty((height, width, n_disp), np.uint8)
    row_min_sum = np.empty(height, np.int64)
    row_min_count = np.empty(height, np.int64)
    fixed = border_cost_for(replace(weights, border_scale=None), 0, 0)
    _cost_volume(census_left, _reversed_padded(census_right, pad_left, pad_right),
                 grey_left, _reversed_padded(grey_right, pad_left, pad_right),
                 grad_left, _reversed_padded(grad_right, pad_left, pad_right),
                 int(min_disp), np.float32(weights.census), np.float32(weights.intensity),
                 np.float32(weights.intensity_cap), np.float32(weights.gradient),
                 np.float32(weights.gradient_cap), np.uint8(fixed), out, row_min_sum,
                 row_min_count)
    min_sum, min_count = float(row_min_sum.sum()), int(row_min_count.sum())
    border = border_cost_for(weights, min_sum, min_count)
    if border != fixed:
        _fill_border(int(min_disp), np.uint8(border), out)
    return out, min_sum, min_count
