"""Middlebury ``calib.txt`` (2014/2021 scenes and MiddEval3).

Format (one ``key=value`` per line)::

    cam0=[3979.911 0 1244.772; 0 3979.911 1019.507; 0 0 1]
    cam1=[3979.911 0 1369.115; 0 3979.911 1019.507; 0 0 1]
    doffs=124.343
    baseline=193.001        # millimetres
    width=2964
    height=1988
    ndisp=270

The images are rectified; ``doffs = cam1.cx - cam0.cx``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import CalibrationError
from .model import StereoCalibration

_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def parse_key_values(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def looks_like_middlebury(text: str) -> bool:
    values = parse_key_values(text)
    return "cam0" in values and "cam1" in values and "baseline" in values


def _matrix(text: str, name: str, source: str) -> np.ndarray:
    numbers = re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", text)
    if len(numbers) != 9:
        raise CalibrationError(f"{source}: {name} must be a 3x3 matrix, got {len(numbers)} numbers")
    return np.array([float(n) for n in numbers]).reshape(3, 3)


def _number(values: dict[str, str], key: str, source: str, required: bool = True) -> Optional[float]:
    if key not in values:
        if required:
            raise CalibrationError(f"{source}: missing field {key!r}")
        return None
    try:
        return float(values[key].split()[0])
    except (ValueError, IndexError):
        raise CalibrationError(f"{source}: field {key!r} is not a number: {values[key]!r}") from None


def parse_middlebury_calib(text: str, source: str = "<text>",
                           image_size: Optional[tuple[int, int]] = None) -> StereoCalibration:
    values = parse_key_values(text)
    for key in ("cam0", "cam1", "baseline"):
        if key not in values:
            raise CalibrationError(f"{source}: missing field {key!r} (Middlebury calib.txt)")
    cam0 = _matrix(values["cam0"], "cam0", source)
    cam1 = _matrix(values["cam1"], "cam1", source)
    baseline_mm = _number(values, "baseline", source)
    if baseline_mm is None or baseline_mm <= 0:
        raise CalibrationError(f"{source}: baseline must be positive, got {baseline_mm}")
    width = _number(values, "width", source, required=False)
    height = _number(values, "height", source, required=False)
    size_estimated = False
    if width is None or height is None:
        size_estimated = image_size is None
        if image_size is None:
            # Middlebury's principal point is near the centre; a size is needed only for
            # rectification and validation, so estimate it rather than refuse the file.
            image_size = (int(round(2 * cam0[0, 2])), int(round(2 * cam0[1, 2])))
        width, height = image_size
    ndisp = _number(values, "ndisp", source, required=False)
    doffs = _number(values, "doffs", source, required=False)
    if doffs is not None and abs((cam1[0, 2] - cam0[0, 2]) - doffs) > 1e-3 * max(1.0, abs(doffs)):
        raise CalibrationError(
            f"{source}: doffs={doffs} disagrees with cam1.cx - cam0.cx = {cam1[0, 2] - cam0[0, 2]}")
    baseline = baseline_mm / 1000.0
    p1 = np.hstack([cam0, np.zeros((3, 1))])
    p2 = np.hstack([cam1, np.array([[-cam1[0, 0] * baseline], [0.0], [0.0]])])
    extra = {k: v for k, v in values.items() if k not in ("cam0", "cam1", "baseline", "doffs",
                                                        "width", "height", "ndisp")}
    if size_estimated:
        extra["image_size_estimated"] = True
    return StereoCalibration(image_size=(int(width), int(height)), P1=p1, P2=p2, rectified=True,
                             ndisp=int(ndisp) if ndisp is not None else None, source=source,
                             extra=extra)


def read_middlebury_calib(path: str | os.PathLike, **options) -> StereoCalibration:
    path = Path(path)
    return parse_middlebury_calib(path.read_text(errors="replace"), source=str(path), **options)
