"""What a live depth view shows and does, without Qt: the model behind the camera window of
``depthapp camera`` and the viewer's Live tab (both draw it with
:class:`depthapp.gui.live_view.LiveView`).

It holds the newest :class:`~depthapp.camera.loop.LiveFrame` and answers what to draw: the
left image beside the disparity or the depth map, coloured over an automatic (1-99 %) or fixed
range, with its legend; the disparity and depth in metres under the cursor; the loop's frame
rate, latency and dropped frames. It starts and stops recording into a
:class:`~depthapp.camera.recorder.Recorder` and saves snapshots with the atomic writers of
:mod:`depthapp.io` (refusing to replace files unless told to). Tests drive it with no window.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..errors import InputError
from ..events import Signal
from ..visualize import Legend, colorize, colormap_legend, value_range
from .loop import LiveFrame, LoopStats
from .recorder import Recorder

QUANTITIES = ("disparity", "depth")
RANGE_MODES = ("auto", "fixed")
_UNITS = {"disparity": "px", "depth": "m"}
# Near is warm in both maps: depth runs the colour map backwards.
_INVERTED = {"disparity": False, "depth": True}
DEFAULT_DEPTH_RANGE = (0.5, 10.0)


@dataclass(frozen=True)
class LiveReadout:
    """The pixel ``(x, y)`` of the newest pair: disparity (px) and depth (m); None where the
    stream has no such value, NaN where the backend found no match."""

    x: int
    y: int
    disparity: float
    depth: Optional[float] = None

    def text(self) -> str:
        parts = [f"x {self.x}  y {self.y}",
                 f"disparity {self.disparity:.2f} px" if math.isfinite(self.disparity)
                 else "disparity invalid"]
        if self.depth is not None:
            parts.append(f"depth {self.depth:.3f} m" if math.isfinite(self.depth) else "depth -")
        return "   ".join(parts)


@dataclass
class LiveImages:
    """The two pictures of a live view: ``left`` and ``coloured`` ``(H, W, 3)`` uint8 in the
    same pixel grid, the ``legend`` of ``coloured``, and a caption (or why a map is missing)."""

    left: np.ndarray
    coloured: Optional[np.ndarray]
    legend: Optional[Legend]
    caption: str


class LiveViewModel:
    """The state of one live view. Signals: ``changed`` [] after any change that alters the
    picture or the read-outs, ``recording_changed`` [recording], ``message`` [text].

    Args:
        max_disp: the fixed disparity range's default top (the backend's search range).
        colormap: a name of :data:`depthapp.visualize.COLORMAPS`.
        snapshot_dir: where :meth:`snapshot` writes unless given a folder.
    """

    def __init__(self, max_disp: float = 128.0, colormap: str = "turbo",
                 snapshot_dir: Union[str, os.PathLike] = "."):
        self.quantity = "disparity"
        self.range_mode = "auto"
        self.fixed_ranges = {"disparity": (0.0, float(max_disp)), "depth": DEFAULT_DEPTH_RANGE}
        self.colormap = colormap
        self.snapshot_dir = Path(snapshot_dir)
        self.frame: Optional[LiveFrame] = None
        self.stats: Optional[LoopStats] = None
        self.shown = 0
        self.not_shown = 0
        self.recorder: Optional[Recorder] = None
        self.loop = None
        self.changed = Signal("changed")
        self.recording_changed = Signal("recording_changed")
        self.message = Signal("message")

    # ------------------------------------------------------------------ the stream
    def attach(self, loop) -> None:
        """Follow ``loop`` (a :class:`~depthapp.camera.CameraLoop`): recording switches go to
        it; a recorder it was created with counts as this view's recording."""
        self.loop = loop
        if loop is not None and loop.recorder is not None and self.recorder is None:
            self.recorder = loop.recorder
            self.recording_changed.emit(True)

    def show_frame(self, frame: LiveFrame) -> None:
        """Display ``frame`` (GUI thread). Pairs the loop processed in between were never on
        screen: they count as ``not_shown`` (the display was slower than the loop)."""
        if self.frame is not None and frame.number > self.frame.number:
            self.not_shown += frame.number - self.frame.number - 1
        self.frame = frame
        self.stats = frame.stats
        self.shown += 1
        self.changed.emit()

    def set_stats(self, stats: LoopStats) -> None:
        self.stats = stats
        self.changed.emit()

    def reset(self) -> None:
        """Forget the previous stream (a new run starts)."""
        self.frame = None
        self.stats = None
        self.shown = self.not_shown = 0
        self.changed.emit()

    @property
    def has_depth(self) -> bool:
        return self.frame is not None and self.frame.depth is not None

    # ------------------------------------------------------------------ display settings
    def set_quantity(self, quantity: str) -> None:
        """Show the ``disparity`` or the ``depth`` map beside the left image."""
        if quantity not in QUANTITIES:
            raise InputError(f"a live view shows {' or '.join(QUANTITIES)}, not {quantity!r}")
        self.quantity = quantity
        self.changed.emit()

    def set_colormap(self, colormap: str) -> None:
        colorize(np.zeros((1, 1), np.float32), 0.0, 1.0, colormap)  # raises for an unknown name
        self.colormap = colormap
        self.changed.emit()

    def set_range(self, mode: str, vmin: Optional[float] = None, vmax: Optional[float] = None) -> None:
        """``auto`` (the 1-99 % percentiles of each new map) or ``fixed`` (``vmin``..``vmax``
        in the shown quantity's unit; omitted bounds keep their previous value)."""
        if mode not in RANGE_MODES:
            raise InputError(f"the range is {' or '.join(RANGE_MODES)}, not {mode!r}")
        if mode == "fixed":
            low, high = self.fixed_ranges[self.quantity]
            low = low if vmin is None else float(vmin)
            high = high if vmax is None else float(vmax)
            if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
                raise InputError(f"a fixed {self.quantity} range needs finite min < max, "
                                 f"got {low:g} .. {high:g} {_UNITS[self.quantity]}")
            if self.quantity == "depth" and low < 0:
                raise InputError(f"depth is never negative: min {low:g} m")
            self.fixed_ranges[self.quantity] = (low, high)
        self.range_mode = mode
        self.changed.emit()

    def values(self) -> Optional[np.ndarray]:
        """The shown map: disparity (px) or depth (m, None without a calibration)."""
        if self.frame is None:
            return None
        return self.frame.disparity if self.quantity == "disparity" else self.frame.depth

    def value_range(self) -> tuple[float, float]:
        """The colour range in use: fixed, or the auto range of the newest map."""
        values = self.values()
        if self.range_mode == "fixed" or values is None or not np.isfinite(values).any():
            return self.fixed_ranges[self.quantity]
        return value_range(values)

    def render(self) -> Optional[LiveImages]:
        """The pictures of the newest pair, or None before the first one."""
        if self.frame is None:
            return None
        left = self.frame.pair.left
        values = self.values()
        if values is None:
            return LiveImages(left, None, None, "no depth without a calibration (--calib FILE)")
        vmin, vmax = self.value_range()
        inverted = _INVERTED[self.quantity]
        coloured = colorize(values, vmin, vmax, self.colormap, invert=inverted)
        label = f"{self.quantity} [{_UNITS[self.quantity]}]" + ("   (near = warm)" if inverted else "")
        valid = 100.0 * float(np.isfinite(values).mean())
        caption = f"pair {self.frame.number}: {valid:.1f} % valid, range {self.range_mode}"
        return LiveImages(left, coloured, colormap_legend(vmin, vmax, label, self.colormap, inverted),
                          caption)

    def readout(self, x: int, y: int) -> Optional[LiveReadout]:
        """What the newest pair says about pixel ``(x, y)``; None outside the image."""
        if self.frame is None:
            return None
        disparity = self.frame.disparity
        height, width = disparity.shape
        if not (0 <= x < width and 0 <= y < height):
            return None
        depth = None if self.frame.depth is None else float(self.frame.depth[y, x])
        return LiveReadout(int(x), int(y), float(disparity[y, x]), depth)

    def status_text(self) -> str:
        """Frame rate, latency, dropped frames and compute time, as one line."""
        stats = self.stats
        if stats is None:
            return "waiting for the first pair..."
        source = stats.source
        parts = [f"{stats.processing_fps:.1f} fps"]
        if source.capture_fps:
            parts[0] += " (capture " + "/".join(f"{fps:.1f}" for fps in source.capture_fps) + ")"
        parts.append("latency " + (f"{stats.latency_ms:.0f} ms" if stats.latency_ms is not None
                                   else "- (file source)"))
        dropped = f"dropped {source.total_dropped} by the source" if source.live else "no frame dropped by the source"
        parts.append(f"{dropped}, {self.not_shown} not drawn")
        parts.append(f"compute {stats.compute_ms:.0f} ms")
        parts.append(f"{stats.processed} pairs")
        if source.reconnects:
            parts.append(f"reconnects {source.reconnects}")
        if source.state == "reconnecting":
            parts.append("reconnecting...")
        if self.recorder is not None:
            parts.append(f"REC {self.recorder.folder} ({self.recorder.frames_written} written)")
        return " | ".join(parts)

    # ------------------------------------------------------------------ recording
    @property
    def recording(self) -> bool:
        return self.recorder is not None

    def start_recording(self, folder: Union[str, os.PathLike], overwrite: bool = False,
                        calibration_file: Optional[Union[str, os.PathLike]] = None) -> Recorder:
        """Record every processed pair into ``folder`` from the next one on. A folder that
        holds files is refused (:class:`~depthapp.errors.OutputExistsError`) unless
        ``overwrite``: the window asks first."""
        if self.recorder is not None:
            raise InputError(f"already recording to {self.recorder.folder}")
        recorder = Recorder(folder, overwrite=overwrite, calibration_file=calibration_file)
        recorder.open()  # a refused folder fails here, in the caller's thread
        self.recorder = recorder
        if self.loop is not None:
            self.loop.set_recorder(recorder)
        self.recording_changed.emit(True)
        self.changed.emit()
        return recorder

    def stop_recording(self) -> Optional[int]:
        """Stop recording; the number of pairs written (None when not recording)."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return None
        if self.loop is not None:
            self.loop.set_recorder(None)
        recorder.close()  # waits for the pairs still queued
        self.recording_changed.emit(False)
        self.message.emit(f"recorded {recorder.frames_written} pairs to {recorder.folder}")
        self.changed.emit()
        return recorder.frames_written

    # ------------------------------------------------------------------ snapshots
    def snapshot_paths(self, folder: Optional[Union[str, os.PathLike]] = None) -> dict[str, Path]:
        """Where :meth:`snapshot` writes the newest pair: ``left``/``right`` PNG, the
        ``disparity`` PFM (px), the ``depth`` PFM (m, with a calibration) and the ``view`` PNG
        (the coloured map as shown, when there is one). Images are the pair the backend saw."""
        if self.frame is None:
            raise InputError("no pair to save yet: wait for the first one")
        folder = Path(folder) if folder is not None else self.snapshot_dir
        stem = folder / f"snapshot-{self.frame.frame.index:06d}"
        paths = {"left": Path(f"{stem}-left.png"), "right": Path(f"{stem}-right.png"),
                 "disparity": Path(f"{stem}-disparity.pfm")}
        if self.frame.depth is not None:
            paths["depth"] = Path(f"{stem}-depth.pfm")
        if self.values() is not None:
            paths["view"] = Path(f"{stem}-{self.quantity}.png")
        return paths

    def snapshot(self, folder: Optional[Union[str, os.PathLike]] = None,
                 overwrite: bool = False) -> list[Path]:
        """Save the newest pair (see :meth:`snapshot_paths`): all files or none. An existing
        file is refused (:class:`~depthapp.errors.OutputExistsError`) before anything is
        written, unless ``overwrite``."""
        from ..io import write_image, write_pfm
        from ..io.atomic import check_writable

        paths = self.snapshot_paths(folder)
        for path in paths.values():
            check_writable(path, overwrite)
        frame = self.frame
        images = self.render()
        # The pair the backend saw (rectified when the calibration is raw): the maps line up.
        written = [write_image(paths["left"], frame.pair.left, overwrite=overwrite),
                   write_image(paths["right"], frame.pair.right, overwrite=overwrite),
                   write_pfm(paths["disparity"], frame.disparity, overwrite=overwrite)]
        if "depth" in paths:
            written.append(write_pfm(paths["depth"], frame.depth, overwrite=overwrite))
        if "view" in paths:
            written.append(write_image(paths["view"], images.coloured, overwrite=overwrite))
        self.message.emit(f"saved {len(written)} files: {', '.join(p.name for p in written)} "
                          f"in {paths['left'].parent}")
        return written


__all__ = ["LiveImages", "LiveReadout", "LiveViewModel", "QUANTITIES", "RANGE_MODES"]
