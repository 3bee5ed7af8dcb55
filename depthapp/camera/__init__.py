"""The live stereo camera feed: sources, the Qt-free processing loop, and recording.

- :mod:`.sources`: :class:`FrameSource` and its implementations (cameras, side-by-side
  cameras, video files, image folders), :class:`LiveSource` for threaded capture.
- :mod:`.loop`: :class:`CameraLoop`, source -> rectify -> backend -> callback, with FPS and skew.
- :mod:`.recorder`: :class:`Recorder`, lossless ``left/ right/ timestamps.csv`` recordings.

- :mod:`.viewer` (imports PyQt6; not imported here): the viewer's Live panel,
  ``create_live_panel(window, state)`` for the hook in :mod:`depthapp.gui.live`.
- :mod:`.preview` (PyQt6 imported lazily): the small window of ``depthapp camera``.

Nothing imported by this package imports Qt; the viewer and ``depthapp camera`` drive these
from their own threads.
"""

from .loop import CameraLoop, LiveFrame, LoopStats
from .recorder import Recorder
from .sources import (EndOfStream, FramePair, FrameSource, FrameTimeout, ImageFolderSource,
                      LiveSource, PacingClock, SideBySideVideoSource, SourceStats,
                      VideoFileGrabber, VideoFilesSource, open_source)

__all__ = ["CameraLoop", "EndOfStream", "FramePair", "FrameSource", "FrameTimeout",
           "ImageFolderSource", "LiveFrame", "LiveSource", "LoopStats", "PacingClock", "Recorder",
           "SideBySideVideoSource", "SourceStats", "VideoFileGrabber", "VideoFilesSource",
           "open_source"]
