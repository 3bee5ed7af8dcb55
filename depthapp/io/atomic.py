"""Atomic, non-clobbering file output: write to a temporary name in the same folder, then rename.

Every file depthapp writes goes through :func:`atomic_path` (or, for a temporary folder,
:func:`use_default_permissions`), so outputs get the permissions the user's umask asks for.

Temporary names are ``.<stem>.<pid>-<random>.tmp<suffix>``: a later run into the folder
removes those whose process is gone (:func:`remove_stale_temporaries`), so a run killed with
-9 leaves nothing behind for long, while concurrent runs keep their files.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import InputError, OutputExistsError

# mkstemp's random part is 8 characters; 4..16 also covers hand-made and older names
_TEMPORARY = re.compile(r"^\..+\.(?:(?P<pid>\d+)-)?[A-Za-z0-9_]{4,16}\.tmp(?:\.[A-Za-z0-9]{1,8})?$")


def write_error(path: str | os.PathLike, error: OSError) -> InputError:
    """One line for an OSError while writing ``path`` (no space, read-only, no permission)."""
    reasons = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
               errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
               errno.EPERM: "permission denied", errno.ENOTDIR: "a parent is a file, not a folder"}
    reason = reasons.get(error.errno, error.strerror or str(error))
    return InputError(f"{path}: cannot write ({reason})")


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

def check_output_folder(folder: str | os.PathLike, needed_bytes: int = 0) -> Path:
    """Refuse, before any computation, a folder that cannot receive ``needed_bytes``: a part of
    its path is a file, the nearest existing folder is not writable, or its disk is too full."""
    folder = Path(folder)
    existing = folder
    while not existing.exists():
        if existing.is_symlink():
            raise InputError(f"{folder}: {existing} is a broken link")
        existing = existing.parent
    if not existing.is_dir():
        what = "exists and is not a folder" if existing == folder else f"{existing} is a file, not a folder"
        raise InputError(f"{folder}: {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        reason = "read-only file system" if _read_only(existing) else "no permission"
        raise InputError(f"{folder}: cannot write into {existing} ({reason})")
    if needed_bytes > 0:
        free = shutil.disk_usage(existing).free
        if free < needed_bytes:
            raise InputError(f"{folder}: only {free / 2**20:.1f} MiB free on its disk, the outputs "
                             f"need about {needed_bytes / 2**20:.1f} MiB")
    return folder


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid < 2**22  # someone else's live process (or an impossible pid: stale)
    return True


def remove_stale_temporaries(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Delete the temporary files of runs that are gone (killed, crashed) from ``folder``.

    A temporary of a live process (including this one) is kept; one whose name carries no
    process id was written by an older depthapp and is stale."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    walker = os.walk(folder) if recursive else [(str(folder), [], os.listdir(folder))]
    for root, folders, names in walker:
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in names:
            match = _TEMPORARY.match(name)
            if not match:
                continue
            pid = match.group("pid")
            if pid is not None and _alive(int(pid)):
                continue
            path = Path(root) / name
            try:
                if path.is_file() and not path.is_symlink():
                    path.unlink()
                    removed.append(path)
            except OSError:
                pass  # someone else removed it, or we may not: not ours to fight over
    return removed


def _temporary_beside(path: Path) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.{os.getpid()}-",
                                        suffix=f".tmp{path.suffix}", dir=path.parent)
    except FileExistsError:
        raise InputError(f"{path}: cannot write (a parent is a file, not a folder)") from None
    except OSError as error:
        raise write_error(path, error) from None
    os.close(fd)
    return Path(tmp_name)


@contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary name keeps the extension, so writers that pick a format by extension
    (OpenCV) still work. On failure the temporary file is removed and ``path`` is untouched;
    an OSError while writing (no space, read-only) becomes one InputError line.
    """
    path = check_writable(path, overwrite)
    tmp = _temporary_beside(path)
    try:
        yield tmp
        if not overwrite and path.exists():
            raise OutputExistsError(f"{path}: appeared while writing (pass --force to overwrite)")
        use_default_permissions(tmp)
        os.replace(tmp, path)
    except OSError as error:
        raise write_error(path, error) from None
    finally:
        if tmp.exists():
            tmp.unlink()


class OutputSet:
    """Outputs that appear together or not at all (``depthapp run``'s disparity, depth, cloud).

    Each :meth:`path` is a temporary beside its final name; leaving the ``with`` block without
    an error renames them all, an error removes them all. With ``overwrite``, files named in
    ``replaces`` that this run did not write are removed, so a folder never mixes two runs.
    """

    def __init__(self, folder: str | os.PathLike, overwrite: bool = False,
                 replaces: Iterable[str] = ()):
        self.folder = Path(folder)
        self.overwrite = overwrite
        self.replaces = tuple(replaces)
        self._pending: dict[Path, Path] = {}

    def path(self, name: str) -> Path:
        """A temporary to write ``name`` into (writers may replace it: pass overwrite=True)."""
        final = check_writable(self.folder / name, self.overwrite)
        tmp = _temporary_beside(final)
        self._pending[final] = tmp
        return tmp

    def write(self, name: str, writer, *args, **options) -> None:
        """``writer(temporary, *args, overwrite=True, **options)`` for output ``name``; its
        errors name ``name``, not the temporary."""
        tmp = self.path(name)
        try:
            writer(tmp, *args, overwrite=True, **options)
        except InputError as error:
            raise InputError(str(error).replace(str(tmp), str(self.folder / name))) from None

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            try:
                self._commit()
            except OSError as failure:
                raise write_error(self.folder, failure) from None
            finally:
                self._discard()
        else:
            self._discard()

    @property
    def written(self) -> list[Path]:
        return list(self._pending)

    def _commit(self) -> None:
        if not self.overwrite:
            for final in self._pending:
                if final.exists():
                    raise OutputExistsError(f"{final}: appeared while writing (pass --force to overwrite)")
        renamed: list[Path] = []
        try:
            for final, tmp in self._pending.items():
                use_default_permissions(tmp)
                os.replace(tmp, final)
                renamed.append(final)
        except BaseException:
            for final in renamed:
                final.unlink(missing_ok=True)
            raise
        if self.overwrite:
            for name in self.replaces:
                old = self.folder / name
                if old not in self._pending and old.is_file():
                    old.unlink()

    def _discard(self) -> None:
        for tmp in self._pending.values():
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass


def write_bytes_atomic(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> Path:
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)

