"""Results logged to Rerun: a live viewer (spawned or connected) and/or an ``.rrd`` file.

Entities (Rerun's right-down-forward camera convention, metres):

- ``world/camera``: the pinhole of the left rectified camera (from the calibration);
- ``world/camera/image``: the left image; ``world/camera/depth``: depth (``DepthImage``,
  metres, 0 where unknown) so the viewer back-projects it with the pinhole;
- ``disparity``: the disparity in pixels (float, 0 where invalid);
- ``world/points``: the coloured point cloud;
- ``timings/<stage>``: each stage's time in ms.

Everything is on the ``stamp`` timeline (the pair's capture time) and the ``frame`` sequence.
The ``.rrd`` file is written under a temporary name and renamed when the logger closes.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Mapping, Optional
from urllib.parse import urlparse

import numpy as np

from ..calibration.model import StereoCalibration
from ..errors import InputError, UsageError
from ..io.atomic import check_writable
from . import require
from .bag_sink import frame_stamp

APPLICATION_ID = "depthapp"
SPAWN = "spawn"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300] or type(error).__name__


def check_reachable(url: str, timeout: float = 3.0) -> None:
    """Fail in one line, before any work, when nothing listens at a viewer's gRPC URL
    (``rerun+http://host:9876/proxy``); the SDK itself would only report it at the end."""
    parsed = urlparse(url.removeprefix("rerun+"))
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(f"--rerun {url}: expected a viewer URL like rerun+http://127.0.0.1:9876/proxy")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    deadline = time.monotonic() + timeout
    while True:  # a viewer started a moment ago may not listen yet
        try:
            socket.create_connection((parsed.hostname, port), timeout=timeout).close()
            return
        except OSError as error:
            if time.monotonic() >= deadline:
                raise InputError(f"--rerun {url}: no Rerun viewer answers "
                                 f"({error.strerror or error})") from None
            time.sleep(0.1)


def _respect_umask(path: Path) -> None:
    """mkstemp makes 0600 files; give the output the mode a plain ``open`` would."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


class RerunLogger:
    """Log processed pairs to Rerun.

    Args:
        viewer: None (no live viewer), ``"spawn"`` (start a local viewer) or a gRPC URL to
            connect to (``rerun+http://host:9876/proxy``).
        save: an ``.rrd`` path; refused if it exists unless ``overwrite``.
    """

    def __init__(self, viewer: Optional[str] = None, save: Optional[str | os.PathLike] = None, *,
                 overwrite: bool = False, application_id: str = APPLICATION_ID):
        self.rr = require("rerun")
        self.save_path = check_writable(save, overwrite) if save else None
        self.overwrite = overwrite
        self._tmp: Optional[Path] = None
        rr = self.rr
        self.recording = rr.RecordingStream(application_id)
        sinks = []
        if viewer == SPAWN:
            try:
                rr.spawn(connect=False, recording=self.recording)  # returns once it listens
            except Exception as error:  # the viewer binary missing or failing to start
                raise InputError(f"--rerun: cannot start a Rerun viewer ({_one_line(error)})") from None
            sinks.append(rr.GrpcSink())
        elif viewer:
            check_reachable(viewer)
            sinks.append(rr.GrpcSink(viewer))
        if self.save_path is not None:
            self.save_path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{self.save_path.stem}.", suffix=".tmp.rrd",
                                        dir=self.save_path.parent)
            os.close(fd)
            self._tmp = Path(name)
            sinks.append(rr.FileSink(str(self._tmp)))
        if sinks:
            self.recording.set_sinks(*sinks)
        self.recording.log("world", rr.ViewCoordinates.RDF, static=True)
        self.frames_logged = 0

    def log(self, live) -> None:
        """Log one :class:`~depthapp.camera.loop.LiveFrame`."""
        cloud = live.cloud
        self.log_result(frame_stamp(live.frame), live.number, live.pair.left, live.result.disparity,
                        live.depth, None if cloud is None else cloud.points,
                        None if cloud is None else cloud.colors, live.pair.calibration,
                        live.result.timings)

    def log_result(self, stamp_ns: int, index: int, left: np.ndarray, disparity: np.ndarray,
                   depth: Optional[np.ndarray], points: Optional[np.ndarray],
                   colors: Optional[np.ndarray], calibration: Optional[StereoCalibration],
                   timings: Mapping[str, float]) -> None:
        rr, recording = self.rr, self.recording
        recording.set_time("stamp", timestamp=np.datetime64(int(stamp_ns), "ns"))
        recording.set_time("frame", sequence=int(index))
        if calibration is not None:
            k = np.asarray(calibration.P1, dtype=np.float64)[:, :3]
            recording.log("world/camera", rr.Pinhole(image_from_camera=k,
                                                     resolution=list(calibration.image_size)))
        recording.log("world/camera/image", rr.Image(np.asarray(left)))
        recording.log("disparity", rr.Image(np.nan_to_num(np.asarray(disparity, dtype=np.float32),
                                                          nan=0.0), color_model="L"))
        if depth is not None:
            metres = np.nan_to_num(np.asarray(depth, dtype=np.float32), nan=0.0, posinf=0.0)
            recording.log("world/camera/depth", rr.DepthImage(metres, meter=1.0))
        if points is not None:
            recording.log("world/points", rr.Points3D(points, colors=colors))
        for stage, seconds in timings.items():
            recording.log(f"timings/{stage}", rr.Scalars(1000.0 * float(seconds)))
        self.frames_logged += 1

    def close(self) -> Optional[Path]:
        """Flush everything; move the ``.rrd`` into place. Returns its path (or None)."""
        recording, self.recording = self.recording, None
        if recording is None:
            return self.save_path
        try:
            try:
                recording.flush()
                recording.disconnect()
            except RuntimeError as error:  # the viewer went away (gRPC), or the disk is full
                raise InputError(f"Rerun: {_one_line(error)}") from None
            if self._tmp is not None:
                check_writable(self.save_path, self.overwrite)
                _respect_umask(self._tmp)
                os.replace(self._tmp, self.save_path)
                self._tmp = None
        finally:
            if self._tmp is not None and self._tmp.exists():
                self._tmp.unlink()
        return self.save_path

    def abort(self) -> None:
        recording, self.recording = self.recording, None
        if recording is not None:
            recording.disconnect()
        if self._tmp is not None and self._tmp.exists():
            self._tmp.unlink()
