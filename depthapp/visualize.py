"""Colour maps and legends for disparity, depth and error maps (arrays in, RGB arrays out)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

COLORMAPS = {"turbo": cv2.COLORMAP_TURBO, "jet": cv2.COLORMAP_JET, "viridis": cv2.COLORMAP_VIRIDIS,
             "magma": cv2.COLORMAP_MAGMA, "inferno": cv2.COLORMAP_INFERNO,
             "plasma": cv2.COLORMAP_PLASMA, "gray": None}


def value_range(values: np.ndarray, percentile: float = 1.0) -> tuple[float, float]:
    """A robust ``(low, high)`` display range of the finite values (percentiles), or (0, 1)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite, [percentile, 100 - percentile])
    if high <= low:
        high = low + 1.0
    return float(low), float(high)


def colorize(values: np.ndarray, vmin: Optional[float] = None, vmax: Optional[float] = None,
             colormap: str = "turbo", invalid_color=(0, 0, 0), invert: bool = False) -> np.ndarray:
    """Map ``(H, W)`` values to ``(H, W, 3)`` RGB uint8; non-finite pixels get ``invalid_color``."""
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colour map {colormap!r} (known: {', '.join(COLORMAPS)})")
    values = np.asarray(values, dtype=np.float32)
    low, high = value_range(values)
    vmin = low if vmin is None else vmin
    vmax = high if vmax is None else vmax
    scale = 255.0 / max(vmax - vmin, 1e-12)
    valid = np.isfinite(values)
    normalised = np.clip((np.where(valid, values, vmin) - vmin) * scale, 0, 255).astype(np.uint8)
    if invert:
        normalised = 255 - normalised
    code = COLORMAPS[colormap]
    if code is None:
        rgb = np.repeat(normalised[:, :, None], 3, axis=2)
    else:
        rgb = cv2.cvtColor(cv2.applyColorMap(normalised, code), cv2.COLOR_BGR2RGB)
    rgb[~valid] = invalid_color
    return rgb


LEGEND_STEPS = 256


@dataclass
class Legend:
    """A colour bar: ``colours`` ``(LEGEND_STEPS, 3)`` uint8 from ``vmin`` (left) to ``vmax``."""

    vmin: float
    vmax: float
    label: str
    colours: np.ndarray


def colormap_legend(vmin: float, vmax: float, label: str, colormap: str,
                    invert: bool = False) -> Legend:
    """The legend of ``colorize(values, vmin, vmax, colormap, invert=invert)``."""
    ramp = np.linspace(vmin, vmax, LEGEND_STEPS, dtype=np.float32)[None, :]
    return Legend(vmin, vmax, label, colorize(ramp, vmin, vmax, colormap, invert=invert)[0])


def with_legend(image: np.ndarray, vmin: float, vmax: float, label: str = "disparity [px]",
                colormap: str = "turbo", invert: bool = False, ticks: int = 5) -> np.ndarray:
    """Append a horizontal colour bar with tick labels under ``image`` (RGB uint8)."""
    height, width = image.shape[:2]
    bar_height, text_height = 14, 34
    ramp = np.tile(np.linspace(vmin, vmax, width, dtype=np.float32), (bar_height, 1))
    bar = colorize(ramp, vmin, vmax, colormap, invert=invert)
    panel = np.full((text_height, width, 3), 255, dtype=np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i in range(ticks):
        fraction = i / (ticks - 1)
        x = int(round(fraction * (width - 1)))
        text = f"{vmin + fraction * (vmax - vmin):.3g}"
        (text_width, _), _ = cv2.getTextSize(text, font, 0.4, 1)
        x_text = min(max(0, x - text_width // 2), width - text_width)
        cv2.line(panel, (x, 0), (x, 4), (0, 0, 0), 1)
        cv2.putText(panel, text, (x_text, 16), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    (label_width, _), _ = cv2.getTextSize(label, font, 0.4, 1)
    cv2.putText(panel, label, (max(0, (width - label_width) // 2), 30), font, 0.4, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.vstack([image, bar, panel])


def colorize_disparity(disparity: np.ndarray, vmin: Optional[float] = None,
                       vmax: Optional[float] = None, colormap: str = "turbo",
                       legend: bool = True) -> np.ndarray:
    """Disparity as a colour image (near = warm) with an optional legend."""
    low, high = value_range(disparity)
    vmin = low if vmin is None else vmin
    vmax = high if vmax is None else vmax
    image = colorize(disparity, vmin, vmax, colormap)
    return with_legend(image, vmin, vmax, "disparity [px]", colormap) if legend else image


def error_map(disparity: np.ndarray, gt: np.ndarray, max_error: float = 8.0) -> np.ndarray:
    """Absolute error coloured green (0) to red (``max_error`` px and above); black where GT is
    missing, grey where the prediction is missing."""
    valid_gt = np.isfinite(gt)
    valid = valid_gt & np.isfinite(disparity)
    error = np.abs(np.where(valid, disparity - gt, 0))
    fraction = np.clip(error / max_error, 0, 1)
    rgb = np.zeros(gt.shape + (3,), dtype=np.uint8)
    rgb[..., 0] = (255 * fraction).astype(np.uint8)
    rgb[..., 1] = (255 * (1 - fraction)).astype(np.uint8)
    rgb[valid_gt & ~valid] = (128, 128, 128)
    rgb[~valid_gt] = 0
    return rgb
