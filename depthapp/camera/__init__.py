"""The live stereo camera feed: the Qt-free processing loop and recording. Its sources
(cameras, side-by-side cameras, video files, image folders) are :mod:`depthapp.sources`.

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

__all__ = ["CameraLoop", "LiveFrame", "LoopStats", "Recorder"]
