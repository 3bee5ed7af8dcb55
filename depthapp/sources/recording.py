"""Recordings: ``left/`` + ``right/`` image folders with ``timestamps.csv`` (written by
:class:`depthapp.camera.Recorder`, read back by :class:`~depthapp.sources.folder.ImageFolderSource`)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Union

from ..errors import InputError


TIMESTAMPS_FILE = "timestamps.csv"


def read_timestamps(folder: Union[str, os.PathLike]) -> dict[str, tuple[float, float]]:
    """``{frame name: (t_left, t_right)}`` from a recording's ``timestamps.csv``, or {} if absent."""
    path = Path(folder) / TIMESTAMPS_FILE
    if not path.exists():
        return {}
    times: dict[str, tuple[float, float]] = {}
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"frame", "t_left", "t_right"} - set(reader.fieldnames or ())
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            for line, row in enumerate(reader, start=2):
                try:
                    times[row["frame"]] = (float(row["t_left"]), float(row["t_right"]))
                except (TypeError, ValueError):
                    raise InputError(f"{path}: line {line}: t_left/t_right are not numbers") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error})") from None
    return times
