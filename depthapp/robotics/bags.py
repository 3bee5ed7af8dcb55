"""ROS bags on disk: open one for reading, find its stereo topics, write one atomically.

Reading takes ROS 1 ``.bag`` files and ROS 2 bags (a folder with ``metadata.yaml``, or a bare
``.mcap`` / ``.db3`` file) through ``rosbags``' ``AnyReader``. Writing makes ROS 2 bags (MCAP by
default, or sqlite3) or, for a path ending in ``.bag``, ROS 1.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from ..errors import InputError, OutputExistsError, UsageError
from . import require
from .messages import CAMERA_INFO, IMAGE_TYPES

STORAGES = ("mcap", "sqlite3")
#: Files that are bags: ROS 1, and ROS 2's storage files (their folder holds metadata.yaml).
BAG_EXTENSIONS = (".bag", ".mcap", ".db3")


def looks_like_bag(path: str | os.PathLike) -> bool:
    """A ROS 1 ``.bag``, a ROS 2 bag folder, or a bare ``.mcap`` / ``.db3`` file."""
    path = Path(path)
    if path.is_dir():
        return (path / "metadata.yaml").is_file()
    return path.suffix.lower() in BAG_EXTENSIONS


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]


class OpenBag:
    """A bag opened for reading; a context manager. Errors are one-line :class:`InputError`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: no such bag")
        highlevel = require("rosbags.highlevel")
        self._reader = highlevel.AnyReader([self.path])
        try:
            self._reader.open()
        except Exception as error:  # rosbags raises its own and struct/sqlite/zstd errors
            raise InputError(f"{self.path}: not a readable ROS bag ({_one_line(error)})") from None
        self.connections = list(self._reader.connections)

    def __enter__(self) -> "OpenBag":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._reader is not None:
            try:
                self._reader.close()
            finally:
                self._reader = None

    @property
    def duration(self) -> float:
        """Seconds from the first to the last message."""
        return max(0, int(getattr(self._reader, "duration", 0) or 0)) / 1e9

    def topics(self) -> dict[str, str]:
        """``{topic: msgtype}``."""
        return {c.topic: c.msgtype for c in self.connections}

    def count(self, topic: str) -> int:
        return sum(c.msgcount for c in self.connections if c.topic == topic)

    def messages(self, topics: list[str], start: Optional[int] = None,
                 stop: Optional[int] = None) -> Iterator[tuple[str, str, int, Any]]:
        """``(topic, msgtype, log time ns, message)`` in log-time order, optionally only log
        times in ``[start, stop)``; a damaged bag raises one line."""
        connections = [c for c in self.connections if c.topic in topics]
        iterator = self._reader.messages(connections=connections, start=start, stop=stop)
        while True:
            try:
                connection, log_time, raw = next(iterator)
                message = self._reader.deserialize(raw, connection.msgtype)
            except StopIteration:
                return
            except Exception as error:
                raise InputError(f"{self.path}: damaged or truncated bag ({_one_line(error)})") from None
            yield connection.topic, connection.msgtype, log_time, message


# Topic detection -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class StereoTopics:
    left: str
    right: str
    left_info: Optional[str]
    right_info: Optional[str]

    @property
    def rectified(self) -> bool:
        """Whether the topics carry rectified images (ROS names them ``image_rect*``)."""
        return all("rect" in topic.lower() for topic in (self.left, self.right))

    def describe(self) -> str:
        return f"{self.left} + {self.right}"


def camera_info_topic(image_topic: str, topics: dict[str, str]) -> Optional[str]:
    """The ``camera_info`` beside an image topic (``/cam/left/image_rect[/compressed]``)."""
    parts = image_topic.rstrip("/").split("/")
    for cut in (1, 2):
        if len(parts) > cut:
            candidate = "/".join(parts[:-cut] + ["camera_info"])
            if topics.get(candidate) == CAMERA_INFO:
                return candidate
    return None


#: Words that name the left and the right camera in a topic (RealSense: infra1 / infra2).
CAMERA_WORDS = (("left", "right"), ("infra1", "infra2"))


def _partner(topic: str) -> Optional[str]:
    """The right camera's topic for a left camera's: the last left word becomes its right word."""
    for left_word, right_word in CAMERA_WORDS:
        matches = list(re.finditer(left_word, topic))
        if matches:
            last = matches[-1]
            return topic[:last.start()] + right_word + topic[last.end():]
    return None


def _rank(topic: str, msgtype: str) -> tuple[int, int]:
    """Preference among pairs of one camera: rectified before raw, plain before compressed."""
    name = topic.lower()
    return (0 if "rect" in name else 1, 0 if msgtype != IMAGE_TYPES[1] else 1)


def find_stereo_topics(path: Path, topics: dict[str, str], left: Optional[str] = None,
                       right: Optional[str] = None) -> StereoTopics:
    """The left/right image topics to play: as given, or the one pair the bag's names imply.

    Pairs are image topics equal but for ``left``/``right`` (or RealSense's ``infra1``/``infra2``).
    Among the pairs of one camera
    (``image_raw``, ``image_rect``, ``.../compressed``) rectified and uncompressed win; pairs
    of different cameras are ambiguous and listed in one line.
    """
    images = {topic: kind for topic, kind in topics.items() if kind in IMAGE_TYPES}
    if left or right:
        if not (left and right):
            raise UsageError("--left-topic and --right-topic go together")
        for topic in (left, right):
            if topic not in topics:
                raise InputError(f"{path}: no topic {topic} (image topics: "
                                 f"{', '.join(sorted(images)) or 'none'})")
            if topic not in images:
                raise InputError(f"{path}: {topic} is {topics[topic]}, not an image topic")
        return StereoTopics(left, right, camera_info_topic(left, topics), camera_info_topic(right, topics))
    pairs = [(topic, _partner(topic)) for topic in sorted(images) if _partner(topic) in images]
    if not pairs:
        raise InputError(f"{path}: no left/right image topics found (image topics: "
                         f"{', '.join(sorted(images)) or 'none'}); name them with "
                         "--left-topic T --right-topic T")
    best = min(_rank(left_topic, images[left_topic]) for left_topic, _ in pairs)
    candidates = [(l, r) for l, r in pairs if _rank(l, images[l]) == best]
    if len(candidates) > 1:
        listed = "; ".join(f"{l} + {r}" for l, r in candidates)
        raise UsageError(f"{path}: several stereo image pairs ({listed}); choose one with "
                         "--left-topic T --right-topic T")
    chosen_left, chosen_right = candidates[0]
    return StereoTopics(chosen_left, chosen_right, camera_info_topic(chosen_left, topics),
                        camera_info_topic(chosen_right, topics))


# Writing -------------------------------------------------------------------------------------------

def bag_kind(path: Path, storage: str = "mcap") -> str:
    """``ros1`` for ``*.bag``, else the ROS 2 storage (``mcap`` or ``sqlite3``)."""
    if path.suffix == ".bag":
        return "ros1"
    if storage not in STORAGES:
        raise UsageError(f"unknown bag storage {storage!r} (use {' or '.join(STORAGES)})")
    return storage


class BagWriter:
    """Write a bag all or nothing: into a hidden temporary beside ``path``, renamed onto it by
    :meth:`close`; :meth:`abort` (or an exception inside ``with``) leaves nothing behind.

    ``path`` ending in ``.bag`` writes ROS 1, anything else a ROS 2 bag folder with ``storage``
    (``mcap`` or ``sqlite3``). An existing ``path`` is refused unless ``overwrite``.
    """

    def __init__(self, path: str | os.PathLike, *, storage: str = "mcap", overwrite: bool = False):
        self.path = Path(path)
        self.kind = bag_kind(self.path, storage)
        self.overwrite = overwrite
        self._holder: Optional[Path] = None
        self._writer = None
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self.check()

    def check(self) -> None:
        if self.path.exists() and not self.overwrite:
            raise OutputExistsError(f"{self.path}: already exists (pass --force to overwrite)")
        if self.path.exists() and self.kind == "ros1" and self.path.is_dir():
            raise InputError(f"{self.path}: is a folder")

    @property
    def typestore(self):
        typesys = require("rosbags.typesys")
        store = typesys.Stores.ROS1_NOETIC if self.kind == "ros1" else typesys.Stores.ROS2_HUMBLE
        return typesys.get_typestore(store)

    def open(self) -> "BagWriter":
        if self._writer is not None:
            return self
        self.check()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._holder = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                             dir=self.path.parent))
        target = self._holder / self.path.name
        self._store = self.typestore
        if self.kind == "ros1":
            self._writer = require("rosbags.rosbag1").Writer(target)
        else:
            rosbag2 = require("rosbags.rosbag2")
            plugin = rosbag2.StoragePlugin.MCAP if self.kind == "mcap" else rosbag2.StoragePlugin.SQLITE3
            self._writer = rosbag2.Writer(target, version=9, storage_plugin=plugin)
        self._writer.open()
        return self

    def write(self, topic: str, msgtype: str, stamp: int, message: Any) -> None:
        """Append ``message`` at log time ``stamp`` (ns; the header stamp, as recorders do)."""
        self.open()
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=self._store)
            self._connections[topic] = connection
        if self.kind == "ros1":
            data = self._store.serialize_ros1(message, msgtype)
        else:
            data = self._store.serialize_cdr(message, msgtype)
        self._writer.write(connection, int(stamp), data)
        self.counts[topic] = self.counts.get(topic, 0) + 1

    @property
    def store(self):
        """The typestore messages must be built with (ROS 1 or ROS 2)."""
        self.open()
        return self._store

    def close(self) -> Path:
        """Finish and move the bag into place (replacing an existing one if ``overwrite``)."""
        if self._writer is None:
            return self.path
        writer, self._writer = self._writer, None
        try:
            writer.close()
            written = self._holder / self.path.name
            if self.path.exists():
                if not self.overwrite:
                    raise OutputExistsError(f"{self.path}: appeared while writing (pass --force "
                                            "to overwrite)")
                os.replace(self.path, self._holder / ".replaced")
            written.rename(self.path)
        finally:
            shutil.rmtree(self._holder, ignore_errors=True)
            self._holder = None
        return self.path

    def abort(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.close()
            except Exception:  # the bag is discarded anyway
                pass
        if self._holder is not None:
            shutil.rmtree(self._holder, ignore_errors=True)
            self._holder = None

    def __enter__(self) -> "BagWriter":
        return self.open()

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
