"""Which source the user named: ``--left``/``--right``, ``--sbs`` or ``--folder`` (cameras,
video files, image folders), and the registry of source kinds that extensions add to."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..errors import InputError, UsageError
from .base import FrameSource, StatusCallback
from .clock import PacingClock
from .device import DeviceGrabber
from .files import SUBFOLDER_PAIRS
from .folder import FolderPairGrabber, ImageFolderSource
from .live import LiveSource
from .video import SideBySideVideoSource, VideoFileGrabber, VideoFilesSource


@dataclass(frozen=True)
class SourceKind:
    """A kind of recorded stereo source a path can name, added by a module of this package (a ROS
    bag, ...) with :func:`register_source_kind`.

    ``matches(path)`` says whether the file or folder is one; ``open(path, realtime=...,
    on_status=..., clock=...)`` returns its (unopened) :class:`FrameSource`. :func:`open_source`
    asks the registered kinds first, for ``--sbs`` files and ``--folder`` folders alike.
    """

    name: str
    matches: Callable[[Path], bool]
    open: Callable[..., FrameSource]


_KINDS: dict[str, SourceKind] = {}


def register_source_kind(kind: SourceKind, replace: bool = False) -> SourceKind:
    """Add a kind of source; a second kind of the same name is refused unless ``replace``."""
    if kind.name in _KINDS and not replace:
        raise ValueError(f"source kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def source_kinds() -> tuple[SourceKind, ...]:
    return tuple(_KINDS.values())


def _registered_kind(path: str) -> Optional[SourceKind]:
    return next((kind for kind in _KINDS.values() if kind.matches(Path(path))), None)


def _looks_like_device(text: str) -> bool:
    if text.isdigit() or text.startswith(("/dev/video", "/dev/v4l/")):
        return True
    try:
        return stat.S_ISCHR(os.stat(text).st_mode)
    except OSError:
        return False


def describe_kind(spec: str) -> str:
    """``device``, ``video``, ``folder`` or ``missing`` for a ``--left``/``--right``/``--sbs`` value."""
    text = str(spec).strip()
    if _looks_like_device(text):
        return "device"
    path = Path(text)
    if path.is_dir():
        return "folder"
    if path.exists():
        return "video"
    return "missing"


def open_source(left: Optional[str] = None, right: Optional[str] = None, sbs: Optional[str] = None,
                folder: Optional[str] = None, realtime: bool = False,
                on_status: Optional[StatusCallback] = None, width: Optional[int] = None,
                height: Optional[int] = None, fps: Optional[float] = None,
                fourcc: Optional[str] = None, clock: Optional[PacingClock] = None) -> FrameSource:
    """Build the right source from what the user named (not opened yet).

    - ``left`` + ``right``: two cameras (index or ``/dev/videoN``), two video files, or two
      image folders with the same file names.
    - ``sbs``: a side-by-side camera or video file.
    - ``folder``: an image folder (any :func:`depthapp.sources.find_pairs` layout, or a recording).

    Cameras are always live. Files and folders are lossless unless ``realtime`` asks them to
    emulate a camera (paced by their FPS, frames dropped when the consumer is slow).
    ``width``/``height``/``fps``/``fourcc`` are requested from cameras. ``clock`` paces realtime
    files (default: a new :class:`PacingClock` on the wall clock).
    """
    given = [name for name, value in (("--left/--right", left or right), ("--sbs", sbs),
                                      ("--folder", folder)) if value]
    if len(given) != 1:
        raise UsageError("give one source: --left SRC --right SRC, --sbs SRC or --folder DIR")
    if (left or right) and not (left and right):
        raise UsageError("--left and --right go together (use --sbs for a side-by-side source)")
    device_options = dict(width=width, height=height, fps=fps, fourcc=fourcc)

    registered = _registered_kind(sbs or folder) if (sbs or folder) else None
    if registered is not None:
        return registered.open(Path(sbs or folder), realtime=realtime, on_status=on_status, clock=clock)
    if sbs:
        kind = describe_kind(sbs)
        if kind == "device":
            doubled = dict(device_options, width=width * 2 if width else None)
            return LiveSource([lambda: DeviceGrabber(sbs, **doubled)], description=f"side-by-side camera {sbs}",
                              on_status=on_status, nominal_fps=fps)
        if kind == "missing":
            raise InputError(f"{sbs}: no such file or camera")
        if kind == "folder":
            raise UsageError(f"--sbs {sbs}: is a folder; use --folder for a folder of pairs")
        if realtime:
            clock = clock or PacingClock()
            return LiveSource([lambda: VideoFileGrabber(sbs, clock)], description=f"side-by-side video {sbs}",
                              on_status=on_status, on_close=clock.stop, now=clock.now)
        return SideBySideVideoSource(sbs, on_status=on_status)

    if folder:
        if not Path(folder).is_dir():
            raise InputError(f"{folder}: not a folder")
        return _folder_source(folder, realtime, on_status, clock)

    kinds = (describe_kind(left), describe_kind(right))
    for spec, kind in zip((left, right), kinds):
        if kind == "missing":
            raise InputError(f"{spec}: no such file or camera")
    if kinds == ("device", "device"):
        return LiveSource([lambda: DeviceGrabber(left, **device_options),
                           lambda: DeviceGrabber(right, **device_options)],
                          description=f"cameras {left} + {right}", on_status=on_status, nominal_fps=fps)
    if kinds == ("video", "video"):
        if realtime:
            clock = clock or PacingClock()
            return LiveSource([lambda: VideoFileGrabber(left, clock), lambda: VideoFileGrabber(right, clock)],
                              description=f"video files {left} + {right} (realtime)",
                              on_status=on_status, on_close=clock.stop, now=clock.now)
        return VideoFilesSource(left, right, on_status=on_status)
    if kinds == ("folder", "folder"):
        return _two_folder_source(left, right, realtime, on_status, clock)
    raise UsageError(f"--left is a {kinds[0]} and --right a {kinds[1]}; give two of the same kind")


def _folder_source(folder, realtime, on_status, clock=None) -> FrameSource:
    if realtime:
        clock = clock or PacingClock()
        return LiveSource([lambda: FolderPairGrabber(folder, clock)], split=lambda pair: pair,
                          description=f"image folder {folder} (realtime)", on_status=on_status,
                          on_close=clock.stop, now=clock.now)
    return ImageFolderSource(folder, on_status=on_status)


def _two_folder_source(left, right, realtime, on_status, clock=None) -> FrameSource:
    """Two folders of images paired by file name, e.g. ``rec/left`` + ``rec/right``."""
    left_dir, right_dir = Path(left).resolve(), Path(right).resolve()
    if left_dir.parent == right_dir.parent and (left_dir.name, right_dir.name) in SUBFOLDER_PAIRS:
        return _folder_source(str(left_dir.parent), realtime, on_status, clock)
    raise UsageError(f"--left {left} --right {right}: two folders are read as one recording; "
                     "pass their parent with --folder DIR (left/ + right/ or another layout "
                     "depthapp.sources.find_pairs knows)")
