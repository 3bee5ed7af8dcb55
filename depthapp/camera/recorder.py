"""Lossless recording of a stereo stream as a folder that every reader of depthapp understands.

Layout (read back by :func:`depthapp.sources.find_pairs`, ``depthapp run``, ``depthapp camera
--folder``, ``eval --dataset folder`` and ``train``)::

    DIR/left/000000.png   DIR/right/000000.png   (RGB PNG, as captured, before rectification)
    DIR/left/000001.png   DIR/right/000001.png
    ...
    DIR/timestamps.csv    frame,index,t_left,t_right   (seconds since the first recorded pair;
                                                        index = the frame number in the source)
    DIR/calib.<ext>       a copy of the calibration file, when one was given

Every file is written atomically (temporary name, then rename). Images are encoded on a
writer thread behind a bounded queue so the loop does not wait on the disk; when the disk is
slower than the stream the queue fills and ``write`` blocks: frames are never dropped.
"""

from __future__ import annotations

import csv
import io
import os
import queue
import re
import threading
import time
from pathlib import Path
from typing import Optional, Union

from ..errors import InputError, OutputExistsError
from ..sources import TIMESTAMPS_FILE, FramePair

FRAME_NAME = "{:06d}"
_OUR_IMAGE = re.compile(r"^\d{6}\.png$")
CSV_COLUMNS = ("frame", "index", "t_left", "t_right")


class Recorder:
    """Writes every pair it is given to ``folder`` (see the module docstring).

    Args:
        folder: the recording folder; created if missing. A non-empty folder is refused unless
            ``overwrite`` is True, which first removes a previous recording's frames,
            ``timestamps.csv`` and calibration copy (other files are left alone).
        overwrite: ``--force``.
        calibration_file: a calibration file to copy into the recording as ``calib<ext>``.
        threaded: encode and write on a background thread (default); False writes inline.
        queue_size: pairs waiting for the writer thread before ``write`` blocks.
        csv_interval: seconds between rewrites of ``timestamps.csv`` while recording (it is
            always rewritten on ``close``), so a crash loses at most that much of the index.

    Use as a context manager, or ``open()`` / ``write(frame)`` / ``close()``. Errors of the
    writer thread (disk full, permissions) are raised by the next ``write`` or ``close``.
    """

    def __init__(self, folder: Union[str, os.PathLike], overwrite: bool = False,
                 calibration_file: Optional[Union[str, os.PathLike]] = None, threaded: bool = True,
                 queue_size: int = 16, csv_interval: float = 1.0):
        self.folder = Path(folder)
        self.overwrite = overwrite
        self.calibration_file = Path(calibration_file) if calibration_file else None
        self.threaded = threaded
        self.csv_interval = csv_interval
        self.frames_written = 0
        self._count = 0
        self._rows: list[tuple[str, int, float, float]] = []
        self._origin: Optional[float] = None
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None
        self._last_csv = 0.0
        self._open = False
        self._created: list[Path] = []  # what open() made, deepest last
        self._life = threading.Lock()  # open/close may come from the loop and the GUI thread

    # Life cycle --------------------------------------------------------------------------------
    def open(self) -> "Recorder":
        with self._life:
            if self._open:
                return self
            self._prepare_folder()
            if self.calibration_file is not None:
                try:
                    self._copy_calibration()
                except BaseException:
                    self._remove_created()
                    raise
            if self.threaded:
                self._thread = threading.Thread(target=self._writer, name="depthapp-recorder",
                                                daemon=True)
                self._thread.start()
            self._open = True
            return self

    def close(self) -> None:
        """Finish writing every queued pair and the final ``timestamps.csv``. A recording that
        got no pair (the source failed, the window was closed at once) removes what ``open``
        made, so the same command can run again without ``--force``."""
        with self._life:
            if self._open:
                self._open = False
                if self._thread is not None:
                    self._queue.put(None)
                    self._thread.join()
                    self._thread = None
                if self._count:
                    self._write_csv()
                else:
                    self._remove_created()
        self._raise_pending()

    @property
    def is_open(self) -> bool:
        return self._open

    def __enter__(self) -> "Recorder":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # Writing -----------------------------------------------------------------------------------
    def write(self, frame: FramePair) -> str:
        """Queue one pair; returns its name in the recording (``000042``)."""
        if not self._open:
            if self._count:
                raise RuntimeError(f"{self.folder}: the recording was closed")
            self.open()
        self._raise_pending()
        name = FRAME_NAME.format(self._count)
        self._count += 1
        if self._origin is None:
            self._origin = min(frame.t_left, frame.t_right)
        item = (name, frame)
        if self._thread is None:
            self._store(*item)
        else:
            self._queue.put(item)
        return name

    @property
    def pending(self) -> int:
        """Pairs queued but not yet on disk."""
        return self._queue.qsize()

    def _writer(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue  # keep draining so ``write`` never blocks on a dead writer
            try:
                self._store(*item)
            except BaseException as error:  # re-raised in the recording thread
                self._error = error

    def _store(self, name: str, frame: FramePair) -> None:
        from ..io.images import write_image

        write_image(self.folder / "left" / f"{name}.png", frame.left, overwrite=self.overwrite)
        write_image(self.folder / "right" / f"{name}.png", frame.right, overwrite=self.overwrite)
        with self._lock:
            self._rows.append((name, int(frame.index), frame.t_left - self._origin,
                               frame.t_right - self._origin))
            self.frames_written += 1
        if time.monotonic() - self._last_csv >= self.csv_interval:
            self._write_csv()

    def _write_csv(self) -> None:
        from ..io.atomic import write_bytes_atomic

        with self._lock:
            rows = sorted(self._rows)
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for name, index, t_left, t_right in rows:
            writer.writerow((name, index, f"{t_left:.6f}", f"{t_right:.6f}"))
        write_bytes_atomic(self.folder / TIMESTAMPS_FILE, text.getvalue().encode(), overwrite=True)
        self._last_csv = time.monotonic()

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    # Folder --------------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`OutputExistsError` now if ``open()`` would refuse the folder (a folder
        holding any file, unless ``overwrite``); creates nothing."""
        folder = self.folder
        if folder.exists() and not folder.is_dir():
            raise OutputExistsError(f"{folder}: exists and is not a folder")
        if not self.overwrite and folder.is_dir() and any(p.is_file() for p in folder.rglob("*")):
            raise OutputExistsError(f"{folder}: is not empty; record into a new folder "
                                    "(or pass --force to replace the recording in it)")

    def _prepare_folder(self) -> None:
        folder = self.folder
        self.check()
        if folder.is_dir() and self.overwrite:
            self._remove_previous_recording()
        missing = [path for path in (*reversed(folder.parents), folder) if not path.exists()]
        self._created = missing + [folder / side for side in ("left", "right")
                                   if not (folder / side).exists()]
        try:
            for side in ("left", "right"):
                (folder / side).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"{folder}: cannot create the recording folder "
                             f"({error.strerror or error})") from None

    def _remove_previous_recording(self) -> None:
        # Only what a recording writes: stale frames would otherwise be read back as new ones.
        for side in ("left", "right"):
            directory = self.folder / side
            if directory.is_dir():
                for path in directory.iterdir():
                    if path.is_file() and _OUR_IMAGE.match(path.name):
                        path.unlink()
        for path in self.folder.iterdir():
            if path.is_file() and (path.name == TIMESTAMPS_FILE or path.stem == "calib"):
                path.unlink()

    def _copy_calibration(self) -> None:
        from ..io.atomic import write_bytes_atomic

        source = self.calibration_file
        try:
            data = source.read_bytes()
        except OSError as error:
            raise InputError(f"{source}: cannot read ({error.strerror or error})") from None
        copy = self.folder / f"calib{source.suffix.lower()}"
        if not copy.exists():
            self._created.append(copy)
        write_bytes_atomic(copy, data, overwrite=self.overwrite)

    def _remove_created(self) -> None:
        for path in reversed(self._created):
            try:
                if path.is_dir():
                    path.rmdir()
                else:
                    path.unlink()
            except OSError:
                pass  # not empty (someone else's files) or already gone: leave it
        self._created = []


__all__ = ["CSV_COLUMNS", "Recorder"]
