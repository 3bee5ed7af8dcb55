"""The census + SGM pipeline on the CPU, as plain functions of numpy arrays (no IO, no Qt).

    grey images -> matching_cost (uint8 (H, W, D)) -> path penalties
      -> aggregate_and_select (SGM paths, then winner-take-all + uniqueness, sub-pixel)
      -> left_right_check -> median_filter -> remove_speckles
      -> disparity (H, W) float32 NaN invalid, confidence (H, W)
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Callable, ContextManager, Optional

import numpy as np

from . import aggregation
from .aggregation import PATH_DIRECTIONS, path_indices
from ...jobs import CancelToken
from .cost import CostWeights, check_window, matching_cost
from .native import native


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
    # Bytes the computation may take; larger frames are processed in strips. 1.5 GiB keeps a
    # whole process (interpreter, numpy, OpenCV, images: ~0.3 GiB) within 2 GB (issue 18).
    max_memory: int = 3 * 1024 ** 3 // 2
    strip_overlap: int = 64  # rows each strip extends past the rows it keeps

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
    ``P2_r(p) = max(P1, P2 * g / (g + |I(p) - I(p - r)|))`` with ``g = p2_gradient``, rounded
    half up; a scalar when ``p2_gradient`` is 0. Returns ``(n_paths, H, W)`` int16 (P1 and P2
    are at most 1000; the maps go to the int16 recurrence without a copy)."""
    if config.p2_gradient <= 0:
        return int(config.p2)
    indices = path_indices(config.paths)
    grey = np.ascontiguousarray(grey_left, dtype=np.float32)
    height, width = grey.shape
    maps = np.empty((len(indices), height, width), np.int16)
    directions = np.array([PATH_DIRECTIONS[path] for path in indices], np.intc)
    native.path_penalties(grey, height, width, directions, len(indices), float(config.p1),
                          float(config.p2), float(config.p2_gradient), maps)
    return maps


class Workspace:
    """The cost and sums volumes kept from one frame to the next of the same size: a stream
    (the camera loop, a benchmark) then never waits for the kernel to hand over fresh zeroed
    pages, 70 MB a Motorcycle frame (OpenCV's matchers keep their buffer the same way).
    Volumes over ``limit`` bytes in all are not kept. Not thread-safe: one computation at a
    time (the backend holds a lock while it uses one)."""

    def __init__(self, limit: int = 512 * 1024 ** 2):
        self.limit = limit
        self._arrays: dict[str, np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialised array, the one kept under ``name`` when its shape and dtype fit."""
        dtype = np.dtype(dtype)
        kept = self._arrays.get(name)
        if kept is not None and kept.shape == shape and kept.dtype == dtype:
            return kept
        self._arrays.pop(name, None)
        array = np.empty(shape, dtype)
        if array.nbytes + sum(a.nbytes for a in self._arrays.values()) <= self.limit:
            self._arrays[name] = array
        return array


@dataclass
class SGMOutput:
    disparity: np.ndarray  # (H, W) float32, NaN invalid
    confidence: np.ndarray  # (H, W) float32 in [0, 1]


StageFactory = Callable[[str], ContextManager]


def _no_timer(stage: str) -> ContextManager:
    return nullcontext()


def compute_sgm(grey_left: np.ndarray, grey_right: np.ndarray, config: SGMConfig,
                timer: Optional[StageFactory] = None,
                cancel: Optional[CancelToken] = None,
                workspace: Optional[Workspace] = None) -> SGMOutput:
    """Disparity of the left view of a rectified grey pair ``(H, W)`` (0..255 float).

    ``cancel``: checked between stages, and every image row by the aggregation; a cancelled
    computation raises :class:`~depthapp.errors.Cancelled`. ``workspace``: volumes to reuse
    from the previous frame (see :class:`Workspace`).

    When one pass would need more than ``config.max_memory`` bytes (:func:`memory_bytes`), the
    volumes are built and aggregated in horizontal strips that overlap by
    ``config.strip_overlap`` rows on each side; only the overlap-free middle of each strip is
    kept. Vertical and diagonal paths then start at most ``strip_overlap`` rows early, which
    changes almost nothing: path costs forget a disparity decision within a few tens of rows.
    """
    config.validate()
    timer = timer or _no_timer
    cancel = cancel or CancelToken()
    workspace = workspace or Workspace(limit=0)
    grey_left = np.ascontiguousarray(grey_left, dtype=np.float32)
    grey_right = np.ascontiguousarray(grey_right, dtype=np.float32)
    height, width = grey_left.shape
    disparity = np.empty((height, width), np.float32)
    right = np.empty((height, width), np.float32)
    confidence = np.empty((height, width), np.float32)
    pieces = strips(height, width, config)
    if len(pieces) > 1 and config.weights.border_scale is not None:
        # One border cost for the whole image, so strips do not differ in it.
        with timer("cost"):
            config = config.with_(weights=replace(
                config.weights, border_scale=None,
                border_cost=_image_border_cost(grey_left, grey_right, config, pieces)))
    for top, bottom, keep_top, keep_bottom in pieces:
        _disparity_rows(grey_left[top:bottom], grey_right[top:bottom], config, timer,
                        cancel, workspace, keep_top - top, keep_bottom - top,
                        disparity[keep_top:keep_bottom], right[keep_top:keep_bottom],
                        confidence[keep_top:keep_bottom])
    with timer("post-processing"):
        if config.lr_max_diff >= 0:
            disparity = aggregation.left_right_check(disparity, right, config.lr_max_diff)
        disparity = aggregation.median_filter(disparity, config.median_size)
        disparity = aggregation.remove_speckles(disparity, config.speckle_size,
                                                config.speckle_range)
    return SGMOutput(disparity, confidence)


def _image_border_cost(grey_left, grey_right, config, pieces) -> int:
    """The border cost of the whole image, from the costs of every k-th row band (k chosen so
    the sampled volume fits one strip's budget)."""
    rows = max(bottom - top for top, bottom, _, _ in pieces)
    height = grey_left.shape[0]
    step = max(1, -(-height // rows))
    band = config.window[0]
    starts = range(0, height, step * band)
    sample_left = np.concatenate([grey_left[y:y + band] for y in starts])
    sample_right = np.concatenate([grey_right[y:y + band] for y in starts])
    estimate = border_cost_estimate(sample_left, sample_right, config)
    return estimate


def border_cost_estimate(grey_left, grey_right, config: SGMConfig) -> int:
    """The border cost :func:`matching_cost` derives for these images (see
    :func:`depthapp.backends.sgm.cost.border_cost_for`)."""
    from .cost import border_cost_for, matching_cost_with_minima

    _, min_sum, min_count = matching_cost_with_minima(grey_left, grey_right, config.n_disp,
                                                       config.min_disp, config.window,
                                                       config.weights)
    return border_cost_for(config.weights, min_sum, min_count)


def _disparity_rows(grey_left, grey_right, config, timer, cancel, workspace, keep_from, keep_to,
                    disparity_out, right_out, confidence_out) -> None:
    with timer("cost"):
        shape = grey_left.shape + (config.n_disp,)
        cost = matching_cost(grey_left, grey_right, config.n_disp, config.min_disp,
                             config.window, config.weights,
                             out=workspace.array("cost", shape, np.uint8))
        p2 = path_penalty_p2(grey_left, config)
    cancel.raise_if_cancelled()
    with timer("aggregation"):  # and winner-take-all, row by row as the sweeps finish them
        wta = aggregation.aggregate_and_select(cost, config.p1, p2, config.paths,
                                               (keep_from, keep_to), config.uniqueness,
                                               config.subpixel, config.min_disp, cancel.flag,
                                               workspace.array)
    del cost
    cancel.raise_if_cancelled()  # the sweeps stop early when cancelled: wta is incomplete
    disparity_out[...] = wta.disparity
    right_out[...] = wta.right_disparity
    confidence_out[...] = wta.confidence


def strips(height: int, width: int, config: SGMConfig) -> list[tuple[int, int, int, int]]:
    """``(top, bottom, keep_top, keep_bottom)`` row ranges :func:`compute_sgm` processes:
    one strip covering the image when it fits ``config.max_memory``, else overlapping strips."""
    if memory_bytes(height, width, config, whole=True) <= config.max_memory:
        return [(0, height, 0, height)]
    per_row = _volume_bytes_per_row(width, config)
    fixed = _image_bytes(height, width, config)
    rows = int((config.max_memory - fixed) // per_row) - 2 * config.strip_overlap
    rows = max(rows, 16)
    result = []
    for keep_top in range(0, height, rows):
        keep_bottom = min(height, keep_top + rows)
        result.append((max(0, keep_top - config.strip_overlap),
                       min(height, keep_bottom + config.strip_overlap), keep_top, keep_bottom))
    return result


def _volume_bytes_per_row(width: int, config: SGMConfig) -> int:
    n_paths = len(path_indices(config.paths))
    accumulator = aggregation.accumulator_dtype(np.uint8, n_paths, 255, config.p2)
    penalties = n_paths * 2 if config.p2_gradient > 0 else 0
    # uint8 cost + volume of sums + int16 penalty maps: what is alive during the aggregation,
    # the peak (census and gradients are freed before the sums are allocated, and their pages
    # serve later allocations)
    return width * (config.n_disp * (1 + accumulator.itemsize) + penalties)


def _image_bytes(height: int, width: int, config: SGMConfig) -> int:
    # grey inputs, disparity, right disparity, confidence, checked/filtered copies, speckle
    # labels and stacks (int32 + 2 x int64)
    return height * width * (2 * 4 + 5 * 4 + 4 + 16)


def memory_bytes(height: int, width: int, config: SGMConfig, whole: bool = False) -> int:
    """Peak bytes :func:`compute_sgm` allocates for one ``height x width`` frame: the uint8
    cost and uint16 aggregated volumes of the largest strip (the whole image unless that
    exceeds ``config.max_memory``, see :func:`strips`) plus image-sized buffers.
    ``whole=True``: the figure for a single strip whatever the budget."""
    if whole:
        strip_rows = height
    else:
        strip_rows = max(bottom - top for top, bottom, _, _ in strips(height, width, config))
    return int(strip_rows * _volume_bytes_per_row(width, config)
               + _image_bytes(height, width, config)
               + aggregation.aggregation_bytes(0, width, config.n_disp))
