"""Where stereo pairs come from: the first stage of source -> pair -> backend -> result -> sinks.

One package for every source, one interface (:mod:`.base`: every source streams as a
:class:`FrameSource`; the indexable ones are also a :class:`PairSequence`, whose ``frames()``
streams them) and one video decoder (:class:`~.video.VideoReader`):

- :mod:`.files`: two image files, a side-by-side image, the pair layouts of a folder;
- :mod:`.folder`: every pair of an image folder (lossless, or paced like a camera);
- :mod:`.video`: two video files, or one side-by-side video;
- :mod:`.device`: cameras (``cv2.VideoCapture``);
- :mod:`.live`: threaded capture of cameras and of files emulating them;
- :mod:`.recording`: recordings (``left/`` + ``right/`` + ``timestamps.csv``);
- :mod:`.dataset`: benchmark datasets, pair by pair with their ground truth;
- :mod:`.clock`: the injectable clock that paces recorded media;
- :mod:`.opener`: :func:`open_source` (what the user named) and :func:`register_source_kind`, so
  a new kind of source (a ROS bag) is one module here plus one registration;
- :mod:`.bag`: ROS bags (registered as the ``bag`` kind; reading needs ``depthapp[ros]``).

The viewer, the camera loop, ``depthapp run``/``rectify``, evaluation and training read pairs
through this package. Nothing here imports Qt.
"""

from .base import (EndOfStream, FramePair, FrameSource, FrameTimeout, PairSequence, SequenceSource,
                   SkewStats, SourceStats, StatusCallback)
from .clock import PacingClock, RateMeter
from .dataset import DatasetSequence
from .device import DeviceGrabber, parse_device
from .files import SUBFOLDER_PAIRS, PairFiles, find_pairs, load_pair, load_pair_files
from .folder import FolderPairGrabber, FolderSequence, ImageFolderSource
from .live import LiveSource
from .opener import SourceKind, describe_kind, open_source, register_source_kind, source_kinds
from .recording import TIMESTAMPS_FILE, read_timestamps
from .video import (VIDEO_EXTENSIONS, SideBySideVideoSource, VideoFileGrabber, VideoFilesSource,
                    VideoReader, VideoSequence)
from .bag import BagFramePair, BagSource  # registers the "bag" source kind

__all__ = ["BagFramePair", "BagSource", "DatasetSequence", "DeviceGrabber", "EndOfStream", "FolderPairGrabber",
           "FolderSequence", "FramePair", "FrameSource", "FrameTimeout", "ImageFolderSource",
           "LiveSource", "PacingClock", "PairFiles", "PairSequence", "RateMeter", "SequenceSource",
           "SUBFOLDER_PAIRS", "SideBySideVideoSource", "SkewStats", "SourceKind", "SourceStats",
           "StatusCallback", "TIMESTAMPS_FILE", "VIDEO_EXTENSIONS", "VideoFileGrabber",
           "VideoFilesSource", "VideoReader", "VideoSequence", "describe_kind", "find_pairs",
           "load_pair", "load_pair_files", "open_source", "parse_device", "read_timestamps",
           "register_source_kind", "source_kinds"]
