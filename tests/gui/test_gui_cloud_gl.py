"""The 3-D point-cloud view with a real OpenGL context.

The rest of the GUI tests run on Qt's offscreen platform, which has no OpenGL; this one runs a
child process on an X server: under ``xvfb-run`` (Debian: xvfb, libxcb-icccm4, libxcb-keysyms1)
or on the session's own $DISPLAY. Without either it skips, saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from depthapp.gui.cloud_view import display_points, frustum_lines, grid_spacing, orbit_angles
from depthapp.geometry import disparity_to_points

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from depthapp.gui.app import application, create_window
    from depthapp.gui.qt_util import qimage_to_rgb

    app = application()
    assert app.platformName() == "xcb", app.platformName()
    window = create_window(sample=True, remember=False, interactive=False)
    window.resize(1300, 850)
    window.show()
    window.compute()
    assert window.wait_until_idle(120), "compute did not finish"
    window.tabs.setCurrentIndex(1)
    for _ in range(30):
        app.processEvents()
    panel = window.cloud
    assert panel.problem is None, panel.problem
    assert panel.gl_view is not None and panel.stack.currentWidget() is panel.gl_view
    frame = qimage_to_rgb(panel.gl_view.grabFramebuffer())
    background = np.array([20, 20, 24])
    drawn = np.abs(frame.astype(int) - background).sum(axis=2) > 30
    print("drawn", drawn.mean())
    assert drawn.mean() > 0.08, drawn.mean()
    colours = frame[drawn]
    # coloured points, not saturated white blobs (additive blending) nor a single colour
    assert (colours.min(axis=1) > 245).mean() < 0.2, (colours.min(axis=1) > 245).mean()
    assert colours.std(axis=0).min() > 20, colours.std(axis=0)
    red = (colours[:, 0] > 120) & (colours[:, 1] < 80) & (colours[:, 2] < 80)
    assert red.mean() > 0.01, red.mean()  # the motorcycle's red tank and fenders are there
    # grid, axes and the camera frustum are drawn with the cloud
    assert panel.grid.visible() and panel.axes.visible() and panel.frustum.visible()
    assert "grid" in panel.info.text()
    view = panel.gl_view
    home = (view.opts["azimuth"], view.opts["elevation"], view.opts["distance"])
    before = frame
    # a 170 px drag turns the cloud by 170/width of half a turn, not 170 degrees
    view.drag(170, 0)
    assert abs(view.opts["azimuth"] - (home[0] - 170 * 180.0 / view.width())) < 1e-6
    view.drag(0, 40)
    assert abs(view.opts["elevation"] - (home[1] + 40 * 90.0 / view.height())) < 1e-6
    for _ in range(10):
        app.processEvents()
    after = qimage_to_rgb(view.grabFramebuffer())
    assert np.abs(after.astype(int) - before.astype(int)).mean() > 3  # the picture moved
    view.pan(0.5, 0.2, 0.0)
    panel.reset.click()  # back home: the same picture as before the drag
    for _ in range(10):
        app.processEvents()
    assert (view.opts["azimuth"], view.opts["elevation"], view.opts["distance"]) == home
    reset = qimage_to_rgb(view.grabFramebuffer())
    assert np.abs(reset.astype(int) - before.astype(int)).mean() < 1.0
    window.close()
    print("ok")
""")


def _x_command() -> list[str]:
    from depthapp.gui.qt_platform import xcb_problem

    problem = xcb_problem()
    if problem:
        pytest.skip(problem)
    if shutil.which("xvfb-run"):
        return ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24"]
    if os.environ.get("DISPLAY"):
        return []
    pytest.skip("no X server for the OpenGL view: install xvfb (xvfb-run) or run with a DISPLAY; "
                "the offscreen Qt platform has no OpenGL")


def test_display_points_thins_and_converts_axes(motorcycle):
    cloud = disparity_to_points(motorcycle.gt_disparity, motorcycle.calibration, motorcycle.left)
    positions, colours = display_points(cloud, 1000)
    assert positions.shape == (1000, 3) and colours.shape == (1000, 4)
    again, _ = display_points(cloud, 1000)
    np.testing.assert_array_equal(positions, again)  # fixed seed: no shimmer between redraws
    full, full_colours = display_points(cloud, len(cloud) + 1)
    # GL frame: x right, y forward (camera Z), z up (camera -Y)
    np.testing.assert_array_equal(full[:, 1], cloud.points[:, 2])
    np.testing.assert_array_equal(full[:, 2], -cloud.points[:, 1])
    np.testing.assert_allclose(full_colours[:, :3] * 255, cloud.colors, atol=1e-3)
    near, _ = display_points(cloud, len(cloud), max_depth=2.5)
    assert 0 < len(near) < len(cloud) and near[:, 1].max() <= 2.5


def test_rotation_follows_the_view_size():
    # the same fraction of the view turns the cloud by the same angle, at any size
    assert orbit_angles(170, 0, 1700, 900) == (-18.0, 0.0)
    assert orbit_angles(85, 0, 850, 450) == (-18.0, 0.0)
    assert orbit_angles(0, 450, 1700, 900) == (0.0, 45.0)
    assert orbit_angles(1700, 0, 1700, 900)[0] == -180.0  # a full-width drag: half a turn


def test_grid_spacing_is_round_and_gives_about_ten_cells():
    assert grid_spacing(3.2) == 0.5 and grid_spacing(12.0) == 2.0 and grid_spacing(0.9) == 0.1
    for extent in (0.05, 0.7, 3.0, 47.0, 180.0):
        assert 4 <= extent / grid_spacing(extent) <= 10


def test_frustum_reaches_the_image_corners(motorcycle):
    from depthapp.geometry import pixel_to_point

    calibration = motorcycle.calibration
    lines = frustum_lines(calibration, 2.0)
    assert lines.shape == (16, 3)
    np.testing.assert_array_equal(lines[0], 0.0)  # from the camera centre
    # the corner (0, 0) at 2 m is where a pixel of depth 2 m at (0, 0) lies (GL frame)
    disparity = calibration.focal * calibration.baseline / 2.0 - calibration.doffs
    x, y, z = pixel_to_point(0, 0, disparity, calibration)
    np.testing.assert_allclose(lines[1], (x, z, -y), rtol=1e-5)


@pytest.mark.slow
def test_point_cloud_renders_with_opengl():
    pytest.importorskip("pyqtgraph", reason="the 3-D view needs pyqtgraph")
    pytest.importorskip("OpenGL", reason="the 3-D view needs PyOpenGL")
    command = _x_command() + [sys.executable, "-c", SCRIPT]
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env["QT_QPA_PLATFORM"] = "xcb"
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0 and "ok" in result.stdout, result.stdout + result.stderr
