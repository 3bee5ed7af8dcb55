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

from .native import native

MAX_CENSUS_BITS = 64


def check_window(window: tuple[int, int]) -> tuple[int, int]:
    """``(height, width)``, both odd, at most 64 neighbours; ValueError otherwise."""
    height, width = (int(v) for v in window)
    if height < 1 or width < 1 or height % 2 == 0 or width % 2 == 0:
        raise ValueError(f"census window must have odd sides, got {height}x{width}")
    if height * width - 1 > MAX_CENSUS_BITS:
        raise ValueError(f"census window {height}x{width} has {height * width - 1} neighbours; "
                         f"at most {MAX_CENSUS_BITS} fit a 64-bit census")
    return height, width


def census_transform(image: np.ndarray, window: tuple[int, int] = (7, 7)) -> np.ndarray:
    """Census bit strings ``(H, W)`` uint64 of a ``(H, W)`` grey image (see module docstring)."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"census needs a (H, W) image, got shape {image.shape}")
    window_height, window_width = check_window(window)
    out = np.empty(image.shape, np.uint64)
    native.census(image, *image.shape, window_height, window_width, out)
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


def border_cost_for(weights: "CostWeights", min_sum: float, min_count: int) -> int:
    """The cost given to matches outside the right image: ``weights.border_cost``, or with
    ``border_scale`` set, that multiple of the mean best-match cost (``min_sum / min_count``)
    so "unknown" sits at the same place among the image's costs whatever their scale (window
    size, cost weights, image noise); the fixed value when no pixel has its whole range."""
    if weights.border_scale is None or min_count == 0:
        return int(min(255, max(0, weights.border_cost)))
    return int(min(255, max(0, round(weights.border_scale * min_sum / min_count))))

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
    if out is None:
        out = np.empty((height, width, n_disp), np.uint8)
    row_min_sum = np.empty(height, np.int64)
    row_min_count = np.empty(height, np.int64)
    fixed = border_cost_for(replace(weights, border_scale=None), 0, 0)
    native.cost_volume(census_left, census_right, grey_left, grey_right, grad_left, grad_right,
                       height, width, n_disp, int(min_disp), float(weights.census),
                       float(weights.intensity), float(weights.intensity_cap),
                       float(weights.gradient), float(weights.gradient_cap), fixed, out,
                       row_min_sum, row_min_count)
    min_sum, min_count = float(row_min_sum.sum()), int(row_min_count.sum())
    border = border_cost_for(weights, min_sum, min_count)
    if border != fixed:
        native.fill_border(height, width, n_disp, int(min_disp), border, out)
    return out, min_sum, min_count
