"""Calibration image sets on disk: globs and folders of left/right images, paired by name.

``depthapp calibrate`` and the calibration wizard read their image sets through these, so both
pair the same files the same way.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ...errors import InputError
from ...io.images import IMAGE_EXTENSIONS, read_image
from ...sources.files import find_pairs
from ...jobs import CancelToken
from .model import CalibrationWizardModel, Candidate


def expand_globs(patterns: Sequence[str], label: str, side: str, folder_hint: str = "") -> list[Path]:
    """The files the globs (or file names) match, in order, each once. Globs are expanded here,
    so quoted globs work on every shell. ``label`` names the input in messages (``--left``,
    ``left images``); ``side`` is ``left`` or ``right``."""
    files: list[Path] = []
    for pattern in patterns:
        pattern = os.path.expanduser(pattern.strip())
        if not pattern:
            continue
        path = Path(pattern)
        if path.is_dir():
            raise InputError(f"{label} {pattern}: is a folder; give a pattern such as "
                             f"{path / (side + '*')}{folder_hint}")
        matches = sorted(glob.glob(pattern, recursive=True)) or ([pattern] if path.is_file() else [])
        if not matches:
            raise InputError(f"{label} {pattern}: no files match")
        files.extend(Path(m) for m in matches if Path(m).is_file())
    unique = list(dict.fromkeys(files))
    if not unique:
        raise InputError(f"{label}: no image files found")
    return unique


def _keys(paths: list[Path]) -> list[str]:
    """What distinguishes each file from the others of its side: the stem without the prefix
    and suffix they all share (left01.jpg, left02.jpg -> 01, 02)."""
    stems = [p.stem for p in paths]
    if len(stems) == 1:
        return [""]
    prefix = os.path.commonprefix(stems)
    suffix = os.path.commonprefix([s[::-1] for s in stems])[::-1]
    keys = []
    for stem in stems:
        end = len(stem) - len(suffix) if len(prefix) + len(suffix) <= len(stem) else len(stem)
        keys.append(stem[len(prefix):end])
    if len(set(keys)) != len(keys):
        return [str(p) for p in paths]
    return keys


def pair_by_name(lefts: list[Path], rights: list[Path]) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """``(name, left, right)`` for files whose distinguishing parts match, plus notes on the rest."""
    left_keys, right_keys = _keys(lefts), _keys(rights)
    by_key = dict(zip(right_keys, rights))
    pairs, notes = [], []
    for key, left in zip(left_keys, lefts):
        if key in by_key:
            pairs.append((left.name, left, by_key.pop(key)))
        else:
            notes.append(f"{left}: no right image with a matching name")
    notes.extend(f"{right}: no left image with a matching name" for right in by_key.values())
    return pairs, notes


NO_PAIRS = "no left/right images pair up by name (e.g. left01.jpg with right01.jpg)"


def file_pairs(left: Sequence[str], right: Sequence[str]) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """``(name, left, right)`` from globs or file names, paired by name as ``depthapp
    calibrate`` pairs them, and notes on files without a partner."""
    hint = " or pick the folder as the source"
    pairs, notes = pair_by_name(expand_globs(left, "left images", "left", hint),
                                expand_globs(right, "right images", "right", hint))
    if not pairs:
        raise InputError(NO_PAIRS)
    return pairs, notes


def folder_pairs(folder: str | os.PathLike) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Pairs in a folder: ``left*``/``right*`` images paired by name (a calibration set like
    opencv-doc's left01.jpg/right01.jpg), else any layout :func:`depthapp.sources.find_pairs`
    knows (``left/`` + ``right/`` folders, ``*_left``/``*_right`` ...)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")

    def images(prefix: str) -> list[str]:
        return sorted(str(p) for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                      and p.name.lower().startswith(prefix))

    lefts, rights = images("left"), images("right")
    if lefts and rights:
        try:
            return file_pairs(lefts, rights)
        except InputError:
            pass
    return [(p.left.name, p.left, p.right) for p in find_pairs(folder)], []


def read_file_pair(left: Path, right: Path) -> tuple[np.ndarray, np.ndarray]:
    """Both images as stored (grey stays grey), 16-bit scaled to 8-bit."""
    out = []
    for path in (left, right):
        image = read_image(path)
        if image.dtype == np.uint16:
            image = (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
        out.append(image)
    return out[0], out[1]


def inspect_files(model: CalibrationWizardModel, pairs: Sequence[tuple[str, Path, Path]],
                  on_candidate: Optional[Callable[[int, Candidate], None]] = None,
                  cancel: Optional[CancelToken] = None) -> list[Candidate]:
    """Read and inspect each pair (unreadable files become candidates with a ``not-found``
    problem naming the file), calling ``on_candidate(index, candidate)`` as each is done."""
    cancel = cancel or CancelToken()
    out = []
    for index, (name, left_path, right_path) in enumerate(pairs):
        cancel.raise_if_cancelled()
        source = f"{left_path} + {right_path}"
        try:
            left, right = read_file_pair(left_path, right_path)
        except InputError as error:
            blank = np.zeros((1, 1), np.uint8)
            candidate = Candidate(name, blank, blank, (None, None), None, (np.nan, np.nan), None,
                                  [("not-found", str(error))], source=source)
        else:
            candidate = model.inspect(name, left, right, source=source)
        out.append(candidate)
        if on_candidate:
            on_candidate(index, candidate)
    return out
