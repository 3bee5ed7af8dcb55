"""Atomic, non-clobbering file output: write to a temporary name in the same folder, then rename.

Every file depthapp writes goes through :func:`atomic_path` (or, for a temporary folder,
:func:`use_default_permissions`), so outputs get the permissions the user's umask asks for.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import InputError, OutputExistsError


def check_writable(path: str | os.PathLike, overwrite: bool = False) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: already exists (pass --force to overwrite)")
    if path.exists() and path.is_dir():
        raise InputError(f"{path}: is a directory")
    return path


def current_umask() -> int:
    """The process umask. Linux reports it in /proc/self/status; elsewhere it is read by setting
    and restoring it (the only way POSIX offers)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def use_default_permissions(path: str | os.PathLike) -> None:
    """Give ``path`` the mode a plain ``open(path, "w")`` (or ``mkdir``) would have given it:
    0666 (0777 for a folder) less the umask, so 0644 under umask 022. ``mkstemp`` and
    ``mkdtemp`` create 0600/0700 whatever the umask, which would make every output private."""
    base = 0o777 if os.path.isdir(path) else 0o666
    os.chmod(path, base & ~current_umask())


@contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary name keeps the extension, so writers that pick a format by extension
    (OpenCV) still work. On failure the temporary file is removed and ``path`` is untouched.
    """
    path = check_writable(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}",
                                    dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not overwrite and path.exists():
            raise OutputExistsError(f"{path}: appeared while writing (pass --force to overwrite)")
        use_default_permissions(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> Path:
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)
