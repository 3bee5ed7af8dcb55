"""Can Qt's platform plugin load here? Checked before any QApplication exists.

Qt aborts the process (SIGABRT, exit 134) when its xcb platform plugin cannot load, and its
message names only one of the possible missing packages. Every Qt entry point (the viewer,
``gui --screenshot``, the camera window) calls :func:`require_qt_platform` first, which lists
the libraries the plugin needs that the dynamic loader cannot find (``ldd`` resolves the whole
dependency tree, honouring the plugin's RUNPATH) and names the Debian/Ubuntu packages that
provide them, so the command exits 1 with one line instead. Imports no Qt.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

from ..errors import DepthAppError

# Debian names a library package after its soname (Policy 8.1: libfoo.so.1 -> libfoo1, a name
# ending in a digit gets a hyphen: libxkbcommon-x11.so.0 -> libxkbcommon-x11-0); these are the
# libraries of the xcb plugin whose package breaks that rule.
_PACKAGE_EXCEPTIONS = {
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
    "libGLdispatch.so.0": "libglvnd0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libXau.so.6": "libxau6",
    "libXdmcp.so.6": "libxdmcp6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libpng16.so.16": "libpng16-16",
    "libz.so.1": "zlib1g",
    "libstdc++.so.6": "libstdc++6",
    "libgcc_s.so.1": "libgcc-s1",
    "libc.so.6": "libc6",
    "libm.so.6": "libc6",
}
SYSTEM_PACKAGES = ("libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0", "libxkbcommon-x11-0")
"""What a minimal Debian/Ubuntu install usually lacks for Qt's xcb platform (the README's list)."""

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that ships the library ``soname`` (by Debian's naming rule)."""
    if soname in _PACKAGE_EXCEPTIONS:
        return _PACKAGE_EXCEPTIONS[soname]
    match = re.fullmatch(r"(lib[^/]+?)\.so\.(\d+)(?:\.\d+)*", soname)
    if not match:
        return soname
    name, version = match.group(1).lower(), match.group(2)
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def missing_libraries(library: str | os.PathLike) -> Optional[list[str]]:
    """Sonames that ``library`` needs (directly or through its dependencies) and the loader
    cannot find; None when this cannot be checked here (no ``ldd``, or it failed)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return None
    try:
        result = subprocess.run([ldd, str(library)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    missing = list(dict.fromkeys(_NOT_FOUND.findall(result.stdout)))
    if result.returncode != 0 and not missing:
        return None
    return missing


def qt_plugin_dir() -> Optional[Path]:
    """PyQt6's bundled Qt plugin folder, found without loading Qt."""
    spec = importlib.util.find_spec("PyQt6")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "Qt6" / "plugins"
    return folder if folder.is_dir() else None


def platform_qt_will_use() -> Optional[str]:
    """The platform plugin Qt will try first: ``QT_QPA_PLATFORM`` (its first entry), else Qt's
    choice on Linux (wayland in a Wayland session, xcb with a DISPLAY); None elsewhere."""
    requested = os.environ.get("QT_QPA_PLATFORM", "").strip()
    if requested:
        return requested.split(";")[0].split(":")[0].strip() or None
    if not sys.platform.startswith("linux"):
        return None
    if os.environ.get("WAYLAND_DISPLAY") and os.environ.get("XDG_SESSION_TYPE") == "wayland":
        return "wayland"
    return "xcb" if os.environ.get("DISPLAY") else None


def xcb_problem(plugin: Optional[str | os.PathLike] = None) -> Optional[str]:
    """One line naming the packages to install when Qt's xcb plugin cannot load, else None.

    ``plugin`` defaults to PyQt6's ``platforms/libqxcb.so``.
    """
    if plugin is None:
        folder = qt_plugin_dir()
        if folder is None or not (folder / "platforms" / "libqxcb.so").is_file():
            return None
        plugin = folder / "platforms" / "libqxcb.so"
    missing = missing_libraries(plugin)
    if not missing:
        return None
    packages = list(dict.fromkeys(debian_package(soname) for soname in missing))
    return (f"Qt's xcb platform (X11 display {os.environ.get('DISPLAY', 'unset')}) cannot load: "
            f"missing {', '.join(missing)}; on Debian/Ubuntu: sudo apt-get install "
            f"{' '.join(packages)} (or set QT_QPA_PLATFORM=offscreen to run without a window)")


def x_display_problem(display: Optional[str] = None) -> Optional[str]:
    """Why no connection to the X server ``display`` (default ``$DISPLAY``) can be made, or
    None when one can (or libxcb itself is missing, which :func:`xcb_problem` reports)."""
    import ctypes
    import ctypes.util

    display = os.environ.get("DISPLAY", "") if display is None else display
    try:
        xcb = ctypes.CDLL(ctypes.util.find_library("xcb") or "libxcb.so.1")
    except OSError:
        return None
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = (ctypes.c_char_p, ctypes.c_void_p)
    xcb.xcb_connection_has_error.argtypes = (ctypes.c_void_p,)
    xcb.xcb_disconnect.argtypes = (ctypes.c_void_p,)
    connection = xcb.xcb_connect(display.encode() or None, None)
    try:
        failed = xcb.xcb_connection_has_error(connection)
    finally:
        xcb.xcb_disconnect(connection)  # also frees the error object a failed connect returns
    if failed:
        return (f"cannot connect to the X display {display or '(DISPLAY unset)'}: is the X server "
                "running and may this user use it (xauth)? Or set QT_QPA_PLATFORM=offscreen")
    return None


def require_qt_platform() -> None:
    """Raise :class:`DepthAppError` (exit 1, one line) if the platform Qt is about to load is the
    xcb plugin and it cannot start here (libraries missing, or no X server to talk to): Qt would
    abort the process instead. Call before creating the QApplication."""
    if platform_qt_will_use() != "xcb":
        return
    problem = xcb_problem() or x_display_problem()
    if problem:
        raise DepthAppError(problem)


__all__ = ["SYSTEM_PACKAGES", "debian_package", "missing_libraries", "platform_qt_will_use",
           "qt_plugin_dir", "require_qt_platform", "x_display_problem", "xcb_problem"]
