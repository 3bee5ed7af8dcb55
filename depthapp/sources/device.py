"""Cameras through ``cv2.VideoCapture``: the grabber a :class:`~.live.LiveSource` captures from."""

from __future__ import annotations

import math
import time
from typing import Optional, Union

import cv2
import numpy as np

from ..errors import InputError
from .video import _bgr_to_rgb, _quiet_opencv

DeviceSpec = Union[int, str]


def parse_device(spec: DeviceSpec) -> Union[int, str]:
    """A camera index (``0``, ``"1"``) or a device path (``/dev/video2``, ``/dev/v4l/by-id/...``)."""
    if isinstance(spec, int):
        return spec
    text = str(spec).strip()
    if text.isdigit():
        return int(text)
    return text


class DeviceGrabber:
    """A grabber over a camera through ``cv2.VideoCapture`` (V4L2 on Linux, MSMF/DSHOW on
    Windows, AVFoundation on macOS). ``width``/``height``/``fps`` are requested, and the
    driver's queue is shortened so frames are fresh; timestamps are ``time.monotonic()`` right
    after the grab."""

    def __init__(self, device: DeviceSpec, width: Optional[int] = None, height: Optional[int] = None,
                 fps: Optional[float] = None, fourcc: Optional[str] = None):
        self.device = parse_device(device)
        self.label = f"camera {device}"
        restore = _quiet_opencv()
        try:
            capture = cv2.VideoCapture(self.device)
        finally:
            restore()
        if not capture.isOpened():
            raise InputError(f"{self.label}: cannot open the camera (is it plugged in, and not "
                             "used by another program?)")
        if fourcc:
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc[:4].ljust(4)))
        if width:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            capture.set(cv2.CAP_PROP_FPS, fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.capture = capture
        measured = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(measured) if measured and math.isfinite(measured) and measured > 0 else None

    def __call__(self) -> tuple[np.ndarray, float]:
        if self.capture is None or not self.capture.grab():
            raise OSError(f"{self.label}: no frame (disconnected?)")
        stamp = time.monotonic()
        ok, frame = self.capture.retrieve()
        if not ok or frame is None:
            raise OSError(f"{self.label}: frame could not be decoded")
        return _bgr_to_rgb(frame), stamp

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None
