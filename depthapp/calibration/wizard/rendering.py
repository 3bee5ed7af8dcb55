"""The calibration wizard's pictures (corner overlay, coverage map, rectified pair with guide
lines, the pattern) drawn with OpenCV as ``(H, W, 3)`` uint8 RGB arrays, testable without Qt."""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from ..stereo_calibrate import CharucoPattern, ChessboardPattern, Pattern
from .model import CalibrationWizardModel, Candidate, RectifiedPreview


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(image[:, :, :3])


def _fit_width(image: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    scale = min(1.0, width / image.shape[1])
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image, scale


GOOD = (40, 200, 80)
WARN = (250, 170, 30)
BAD = (230, 50, 50)


def _draw_corners(image: np.ndarray, corners: np.ndarray, scale: float, columns: Optional[int],
                  radius: Optional[int] = None, thickness: int = 1) -> None:
    """Corners as rings coloured along the board (OpenCV's rainbow order) joined row by row."""
    points = corners * scale
    count = len(points)
    radius = radius or max(2, int(round(image.shape[1] / 160)))
    for index, (x, y) in enumerate(points):
        hue = int(170 * index / max(1, count - 1))
        colour = cv2.cvtColor(np.uint8([[[hue, 255, 230]]]), cv2.COLOR_HSV2RGB)[0, 0].tolist()
        centre = (int(round(x * 16)), int(round(y * 16)))
        cv2.circle(image, centre, radius * 16, colour, thickness, cv2.LINE_AA, shift=4)
        if columns and index % columns:
            previous = (int(round(points[index - 1][0] * 16)), int(round(points[index - 1][1] * 16)))
            cv2.line(image, previous, centre, colour, thickness, cv2.LINE_AA, shift=4)


def render_candidate(candidate: Candidate, pattern: Optional[Pattern] = None,
                     max_width: int = 1280) -> np.ndarray:
    """Left | right side by side with the detected corners, framed green (good), orange
    (found, with a problem) or red (not found). ``(H, W, 3)`` uint8 RGB."""
    columns = pattern.columns if isinstance(pattern, ChessboardPattern) else None
    halves = []
    for camera, image in enumerate((candidate.left, candidate.right)):
        rgb, scale = _fit_width(_rgb(image), max(16, max_width // 2 - 4))
        rgb = rgb.copy()
        corners = candidate.corners[camera]
        if corners is not None:
            _draw_corners(rgb, corners, scale, columns)
        colour = BAD if corners is None else (GOOD if candidate.acceptable else WARN)
        thickness = max(2, rgb.shape[1] // 200)
        cv2.rectangle(rgb, (0, 0), (rgb.shape[1] - 1, rgb.shape[0] - 1), colour, thickness)
        halves.append(rgb)
    height = max(h.shape[0] for h in halves)
    gap = np.full((height, 8, 3), 32, np.uint8)
    padded = [np.pad(h, ((0, height - h.shape[0]), (0, 0), (0, 0))) for h in halves]
    return np.hstack([padded[0], gap, padded[1]])


def _heat(count: int, most: int) -> tuple[int, int, int]:
    if count <= 0:
        return (150, 30, 30)
    t = min(1.0, np.log1p(count) / np.log1p(max(most, 4)))
    return (int(240 * (1 - t) + 30 * t), int(190 * (1 - t) + 170 * t), int(40 * (1 - t) + 70 * t))


def render_coverage(model: CalibrationWizardModel, camera: int, width: int = 360,
                    background: Optional[np.ndarray] = None) -> np.ndarray:
    """One camera's coverage map: the grid cells tinted by how many corners they hold (red:
    none yet, yellow: few, green: many) over a dimmed image, with every captured corner."""
    size = model.image_size
    if size is None and background is not None:
        size = (background.shape[1], background.shape[0])
    size = size or (640, 480)
    height = max(1, int(round(width * size[1] / size[0])))
    if background is None and model.views:
        view = model.views[-1]
        background = view.left if camera == 0 else view.right
    if background is not None:
        base = cv2.resize(_rgb(background), (width, height), interpolation=cv2.INTER_AREA)
        base = (base.astype(np.float32) * 0.45).astype(np.uint8)
    else:
        base = np.full((height, width, 3), 40, np.uint8)
    coverage = model.coverage()
    counts = coverage.counts[camera]
    rows, columns = counts.shape
    tint = np.zeros_like(base)
    most = int(counts.max()) if counts.size else 0
    for r in range(rows):
        for c in range(columns):
            y0, y1 = r * height // rows, (r + 1) * height // rows
            x0, x1 = c * width // columns, (c + 1) * width // columns
            tint[y0:y1, x0:x1] = _heat(int(counts[r, c]), most)
    image = cv2.addWeighted(base, 1.0, tint, 0.55, 0)
    for r in range(1, rows):
        y = r * height // rows
        image[y, :] = (image[y, :].astype(np.int32) * 3 // 4).astype(np.uint8)
    for c in range(1, columns):
        x = c * width // columns
        image[:, x] = (image[:, x].astype(np.int32) * 3 // 4).astype(np.uint8)
    scale = width / size[0]
    for captured in model.views:
        points = (captured.view.left if camera == 0 else captured.view.right) * scale
        for x, y in points:
            cv2.circle(image, (int(round(x * 4)), int(round(y * 4))), 4, (255, 255, 255), -1,
                       cv2.LINE_AA, shift=2)
    return image


def render_rectified(preview: RectifiedPreview, max_width: int = 1400, lines: int = 16) -> np.ndarray:
    """The rectified pair side by side with ``lines`` horizontal guide lines across both
    images and the view's corners (a corner and its match lie on the same row)."""
    halves = []
    scale = 1.0
    for image in (preview.left, preview.right):
        rgb, scale = _fit_width(_rgb(image), max(16, max_width // 2 - 2))
        halves.append(rgb)
    gap = np.full((halves[0].shape[0], 4, 3), 32, np.uint8)
    out = np.hstack([halves[0], gap, halves[1]])
    height, width = out.shape[:2]
    offset = halves[0].shape[1] + gap.shape[1]
    for k in range(1, lines + 1):
        y = k * height / (lines + 1)
        colour = (60, 230, 90) if k % 2 else (60, 200, 240)
        cv2.line(out, (0, int(round(y * 16))), ((width - 1) * 16, int(round(y * 16))), colour, 1,
                 cv2.LINE_AA, shift=4)
    radius = max(2, int(round(halves[0].shape[1] / 200)))
    for camera, shift in ((0, 0), (1, offset)):
        for x, y in preview.corners[camera] * scale:
            centre = (int(round((x + shift) * 16)), int(round(y * 16)))
            cv2.circle(out, centre, radius * 16, (255, 60, 200), 1, cv2.LINE_AA, shift=4)
    return out


def render_pattern(pattern: Pattern, width: int = 360) -> np.ndarray:
    """A picture of the target with its inner corners marked (what COLSxROWS counts)."""
    if isinstance(pattern, CharucoPattern):
        squares = (pattern.columns, pattern.rows)
        cell = max(4, width // (squares[0] + 1))
        image = pattern.board().generateImage((cell * squares[0], cell * squares[1]))
        image = cv2.copyMakeBorder(image, cell // 2, cell // 2, cell // 2, cell // 2,
                                   cv2.BORDER_CONSTANT, value=255)
        return _rgb(image)
    squares = (pattern.columns + 1, pattern.rows + 1)
    cell = max(4, width // (squares[0] + 1))
    margin = cell // 2
    image = np.full((squares[1] * cell + 2 * margin, squares[0] * cell + 2 * margin, 3), 255, np.uint8)
    for r in range(squares[1]):
        for c in range(squares[0]):
            if (r + c) % 2 == 0:
                y0, x0 = margin + r * cell, margin + c * cell
                image[y0:y0 + cell, x0:x0 + cell] = 0
    corners = np.array([[margin + (c + 1) * cell, margin + (r + 1) * cell]
                        for r in range(pattern.rows) for c in range(pattern.columns)], np.float32)
    _draw_corners(image, corners, 1.0, pattern.columns, radius=max(3, cell // 6), thickness=2)
    return image
