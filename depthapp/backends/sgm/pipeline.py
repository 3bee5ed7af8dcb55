"""The census + SGM pipeline on the CPU, as plain functions of numpy arrays (no IO, no Qt).

    grey images -> matching_cost (uint8 (H, W, D)) -> path penalties -> aggregate_cost
      -> winner_take_all (+ uniqueness, sub-pixel) -> left_right_check -> median_filter
      -> remove_speckles -> disparity (H, W) float32 NaN invalid, confidence (H, W)
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Callable, ContextManager, Optional

import numpy as np

from . import aggregation
from .aggregation import PATH_DIRECTIONS, path_indices
from .cost import CostWeights, check_window, matching_cost


@dataclass(frozen=True)
class SGMConfig:
    """Every knob of the pipeline; :class:`~depthapp.backends.sgm.SGMBackend` fills it from its
    declared parameters. Penalties are in cost units (uint8 cost volume)."""

    n_disp: int = 64
    min_disp: int = 0
    window: tuple[int, int] = (7, 7)
    weights: CostWeights = field(default_factory=CostWeights)
    paths: int = 8
    p1: int = 20
    p2: int = 200
    p2_gradient: float = 10.0  # |dI| at which P2 halves; 0 keeps P2 constant
    uniqueness: float = 0.0
    lr_max_diff: float = 1.0  # < 0 disables the left-right check
    subpixel: bool = True
    median_size: int = 3
    speckle_size: int = 100
    speckle_range: float = 2.0

    def validate(self) -> "SGMConfig":
        check_window(self.window)
        path_indices(self.paths)
        if self.n_disp < 1:
            raise ValueError(f"n_disp must be at least 1, got {self.n_disp}")
        if self.p1 < 0 or self.p2 < 0:
            raise ValueError(f"penalties must be non-negative, got P1={self.p1}, P2={self.p2}")
        return self

    def with_(self, **changes) -> "SGMConfig":
        return replace(self, **changes)


def path_penalty_p2(grey_left: np.ndarray, config: SGMConfig) -> np.ndarray | int:
    """P2 per path and pixel, lowered across intensity edges (Hirschmueller 2008 sec. 3.1):
    ``P2_r(p) = max(P1, P2 * g / (g + |I(p) - I(p - r)|))`` with ``g = p2_gradient``;
    a scalar when ``p2_gradient`` is 0. Returns ``(n_paths, H, W)`` int32."""
    if config.p2_gradient <= 0:
        return int(config.p2)
    indices = path_indices(config.paths)
    grey = np.asarray(grey_left, dtype=np.float32)
    height, width = grey.shape
    padded = np.pad(grey, 1, mode="edge")
    maps = np.empty((len(indices), height, width), np.int32)
    scale = np.float32(config.p2_gradient)
    for i, path in enumerate(indices):
        dy, dx = PATH_DIRECTIONS[path]
        previous = padded[1 - dy:1 - dy + height, 1 - dx:1 - dx + width]
        change = np.abs(grey - previous)
        p2 = np.float32(config.p2) * scale / (scale + change)
        maps[i] = np.maximum(np.floor(p2 + np.float32(0.5)), config.p1)
    return maps


@dataclass
class SGMOutput:
    disparity: np.ndarray  # (H, W) float32, NaN invalid
    confidence: np.ndarray  # (H, W) float32 in [0, 1]


StageFactory = Callable[[str], ContextManager]


def _no_timer(stage: str) -> ContextManager:
    return nullcontext()


def compute_sgm(grey_left: np.ndarray, grey_right: np.ndarray, config: SGMConfig,
                timer: Optional[StageFactory] = None,
                check_cancel: Optional[Callable[[], None]] = None) -> SGMOutput:
    """Disparity of the left view of a rectified grey pair ``(H, W)`` (0..255 float)."""
    config.validate()
    timer = timer or _no_timer
    check_cancel = check_cancel or (lambda: None)
    with timer("cost"):
        cost = matching_cost(grey_left, grey_right, config.n_disp, config.min_disp,
                             config.window, config.weights)
        p2 = path_penalty_p2(grey_left, config)
    check_cancel()
    with timer("aggregation"):
        aggregated = aggregation.aggregate_cost(cost, config.p1, p2, paths=config.paths)
    del cost
    check_cancel()
    with timer("winner-take-all"):
        wta = aggregation.winner_take_all(aggregated, config.uniqueness, config.subpixel,
                                          config.min_disp)
    del aggregated
    with timer("post-processing"):
        disparity = wta.disparity
        if config.lr_max_diff >= 0:
            disparity = aggregation.left_right_check(disparity, wta.right_disparity,
                                                     config.lr_max_diff)
        disparity = aggregation.median_filter(disparity, config.median_size)
        disparity = aggregation.remove_speckles(disparity, config.speckle_size,
                                                config.speckle_range)
    return SGMOutput(disparity, wta.confidence)


def memory_bytes(height: int, width: int, config: SGMConfig) -> int:
    """Peak bytes :func:`compute_sgm` allocates for one ``height x width`` frame (an estimate
    within a few percent; the peak is during aggregation, when the uint8 cost volume and the
    uint16 aggregated volume coexist)."""
    n_paths = len(path_indices(config.paths))
    pixels = height * width
    cost = pixels * config.n_disp  # uint8
    dtype = aggregation.accumulator_dtype(np.uint8, n_paths, 255, config.p2)
    aggregated = aggregation.aggregation_bytes(height, width, config.n_disp, np.uint8,
                                               config.paths, dtype)
    images = pixels * (2 * 4 + 2 * 8 + 2 * 4)  # grey, census, gradients
    penalties = pixels * n_paths * 4 if config.p2_gradient > 0 else 0
    return int(cost + aggregated + images + penalties)
