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

from depthapp.gui.cloud_view import display_points
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
    before = frame
    panel.gl_view.orbit(40, 10)  # the camera moves: the picture changes
    for _ in range(10):
        app.processEvents()
    after = qimage_to_rgb(panel.gl_view.grabFramebuffer())
    assert np.abs(after.astype(int) - before.astype(int)).mean() > 3
    window.close()
    print("ok")
""")


def _x_command() -> list[str]:
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


@pytest.mark.slow
def test_point_cloud_renders_with_opengl():
    pytest.importorskip("pyqtgraph", reason="the 3-D view needs pyqtgraph")
    pytest.importorskip("OpenGL", reason="the 3-D view needs PyOpenGL")
    command = _x_command() + [sys.executable, "-c", SCRIPT]
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env["QT_QPA_PLATFORM"] = "xcb"
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0 and "ok" in result.stdout, result.stdout + result.stderr
