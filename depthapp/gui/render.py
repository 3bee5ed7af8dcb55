"""What each image view shows, as RGB arrays (Qt-free, so tests can check the pictures).

Every view is in the pixel grid of the left image: disparity, depth, error and overlays line up
with the input, so hover coordinates are the same in every pane. Colours come from
:mod:`depthapp.visualize`; each coloured view carries a :class:`Legend` (its colour ramp and
value range) that the pane draws as a crisp bar under the image at any zoom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from ..visualize import LEGEND_STEPS, Legend, colorize, colormap_legend, error_map, value_range
from .state import COMPARE, PRIMARY, ViewerState

# kind -> menu label; ":compare" kinds show the compare backend's result.
VIEW_KINDS = {
    "left": "Left image",
    "right": "Right image",
    "disparity": "Disparity",
    "depth": "Depth (m)",
    "error": "Error vs ground truth",
    "invalid": "Invalid pixels",
    "gt": "Ground-truth disparity",
    "disparity:compare": "Disparity (compare)",
    "depth:compare": "Depth (compare, m)",
    "error:compare": "Error vs GT (compare)",
}
INVALID_TINT = np.array([255, 0, 255], dtype=np.float32)  # magenta: no colour map uses it


def error_legend(max_error: float) -> Legend:
    ramp = np.linspace(0.0, max_error, LEGEND_STEPS, dtype=np.float32)[None, :]
    return Legend(0.0, max_error, "|error| [px]   (grey: no prediction, black: no GT)",
                  error_map(ramp, np.zeros_like(ramp), max_error)[0])


@dataclass
class RenderedView:
    """``rgb`` ``(H, W, 3)`` uint8 in the left image's pixel grid, with its legend if coloured."""

    rgb: np.ndarray
    title: str
    caption: str = ""
    legend: Optional[Legend] = None


def _grey_backdrop(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.repeat((0.35 * grey + 40.0)[:, :, None], 3, axis=2)


def overlay_invalid(rgb: np.ndarray, invalid: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Paint ``invalid`` pixels as the dimmed left image tinted magenta (so the structure that
    failed to match stays visible)."""
    out = rgb.copy()
    if invalid.any():
        tinted = 0.55 * _grey_backdrop(left) + 0.45 * INVALID_TINT
        out[invalid] = np.clip(tinted[invalid], 0, 255).astype(np.uint8)
    return out


def render_view(state: ViewerState, kind: str) -> Optional[RenderedView]:
    """The picture for view ``kind`` (a key of :data:`VIEW_KINDS`), or None if it has no data."""
    base, _, which = kind.partition(":")
    slot = COMPARE if which == "compare" else PRIMARY
    outcome = state.outputs.get(slot)
    primary = state.outputs.get(PRIMARY)
    pair = outcome.output.pair if outcome is not None else (
        primary.output.pair if primary is not None else state.pair)
    if pair is None:
        return None
    display = state.display
    label = f" ({outcome.backend})" if outcome is not None else ""
    if base == "left":
        return RenderedView(pair.left, "Left", pair.name)
    if base == "right":
        return RenderedView(pair.right, "Right", pair.name)
    gt = pair.gt_disparity
    if base == "gt":
        if gt is None:
            return None
        vmin, vmax = state.disparity_range()
        rgb = colorize(gt, vmin, vmax, display.colormap)
        if display.show_invalid:
            rgb = overlay_invalid(rgb, ~np.isfinite(gt), pair.left)
        return RenderedView(rgb, "Ground truth", f"{100 * np.isfinite(gt).mean():.1f} % known",
                            colormap_legend(vmin, vmax, "GT disparity [px]", display.colormap))
    if outcome is None:
        return None
    disparity = outcome.disparity
    invalid = ~np.isfinite(disparity)
    density = f"{100.0 * (1.0 - invalid.mean()):.1f} % valid"
    if base == "disparity":
        vmin, vmax = state.disparity_range()
        rgb = colorize(disparity, vmin, vmax, display.colormap)
        if display.show_invalid:
            rgb = overlay_invalid(rgb, invalid, pair.left)
        return RenderedView(rgb, "Disparity" + label, density,
                            colormap_legend(vmin, vmax, "disparity [px]", display.colormap))
    if base == "depth":
        depth = outcome.output.depth
        if depth is None:
            return None
        primary_depth = primary.output.depth if primary is not None else None
        vmin, vmax = value_range(primary_depth if primary_depth is not None else depth, 2.0)
        # invert: near is warm, as in the disparity view
        rgb = colorize(depth, vmin, vmax, display.colormap, invert=True)
        no_depth = ~np.isfinite(depth)
        if display.show_invalid:
            rgb = overlay_invalid(rgb, no_depth, pair.left)
        return RenderedView(rgb, "Depth" + label, f"{100.0 * (1.0 - no_depth.mean()):.1f} % valid",
                            colormap_legend(vmin, vmax, "depth [m]   (near = warm)",
                                            display.colormap, invert=True))
    if base == "error":
        if gt is None or gt.shape != disparity.shape:
            return None
        rgb = error_map(disparity, gt, display.max_error)
        caption = outcome.metrics.summary() if outcome.metrics is not None else ""
        return RenderedView(rgb, "Error" + label, caption, error_legend(display.max_error))
    if base == "invalid":
        rgb = overlay_invalid(_grey_backdrop(pair.left).astype(np.uint8), invalid, pair.left)
        return RenderedView(rgb, "Invalid pixels" + label,
                            f"{100.0 * invalid.mean():.1f} % invalid (magenta)")
    raise ValueError(f"unknown view kind {kind!r}")


def render_grid_views(state: ViewerState, kinds: list[str]) -> list[Optional[RenderedView]]:
    return [render_view(state, kind) for kind in kinds]
