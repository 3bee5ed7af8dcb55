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
from . import checks
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
    words = text.strip().strip("[]").replace(";", " ").split()
    if len(words) != 9:
        raise CalibrationError(f"{source}: {name} must be a 3x3 matrix, got {len(words)} values")
    try:
        numbers = [float(word) for word in words]
    except ValueError:
        raise CalibrationError(f"{source}: {name} is not a matrix of numbers: {text[:60]!r}") from None
    return checks.finite_matrix(source, name, numbers).reshape(3, 3)


def _number(values: dict[str, str], key: str, source: str, required: bool = True) -> Optional[float]:
    if key not in values:
        if required:
            raise CalibrationError(f"{source}: missing field {key!r}")
        return None
    try:
        value = float(values[key].split()[0])
    except (ValueError, IndexError):
        raise CalibrationError(f"{source}: field {key!r} is not a number: {values[key][:60]!r}") from None
    return checks.number(source, f"field {key!r}", value)


def parse_middlebury_calib(text: str, source: str = "<text>",
                           image_size: Optional[tuple[int, int]] = None) -> StereoCalibration:
    values = parse_key_values(text)
    for key in ("cam0", "cam1", "baseline"):
        if key not in values:
            raise CalibrationError(f"{source}: missing field {key!r} (Middlebury calib.txt)")
    cam0 = _matrix(values["cam0"], "cam0", source)
    cam1 = _matrix(values["cam1"], "cam1", source)
    baseline_mm = checks.number(source, "field 'baseline'", _number(values, "baseline", source),
                                positive=True, low=checks.MIN_BASELINE_M * 1e3,
                                high=checks.MAX_BASELINE_M * 1e3, unit="mm")
    checks.camera_matrix(source, "cam0", cam0)
    checks.camera_matrix(source, "cam1", cam1)
    width = _number(values, "width", source, required=False)
    height = _number(values, "height", source, required=False)
    size_estimated = False
    if width is None or height is None:
        size_estimated = image_size is None
        if image_size is None:
            # Middlebury's principal point is near the centre; a size is needed only for
            # rectification and validation, so estimate it rather than refuse the file.
            image_size = checks.image_size(source, (round(2 * cam0[0, 2]), round(2 * cam0[1, 2])),
                                           ("width (estimated as 2 cx)", "height (estimated as 2 cy)"))
        width, height = image_size
    size = checks.image_size(source, (width, height), ("field 'width'", "field 'height'"))
    ndisp = checks.ndisp(source, _number(values, "ndisp", source, required=False), "field 'ndisp'")
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
    return StereoCalibration(image_size=size, P1=p1, P2=p2, rectified=True, ndisp=ndisp,
                             source=source, extra=extra, labels={"P1": "cam0", "P2": "cam1"})


def read_middlebury_calib(path: str | os.PathLike, **options) -> StereoCalibration:
    from .readers import read_calibration_text

    path = Path(path)
    return parse_middlebury_calib(read_calibration_text(path), source=str(path), **options)
