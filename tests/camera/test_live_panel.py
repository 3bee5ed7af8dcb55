"""The viewer's Live mode driven offscreen: a video stream through every view, recording."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets", reason="the Live mode needs PyQt6")
pytest.importorskip("pytestqt", reason="the Live mode tests need pytest-qt")

from depthapp.backends import create_backend  # noqa: E402
from depthapp.data import StereoPair  # noqa: E402
from depthapp.io import read_rgb  # noqa: E402
from depthapp.sources import find_pairs  # noqa: E402

from video_fixtures import HEIGHT, WIDTH, frame_number  # noqa: E402


@pytest.fixture
def window(qtbot, tmp_path):
    from PyQt6.QtCore import QSettings

    from depthapp.gui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "viewer.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, interactive=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def live_panel(window):
    from depthapp.camera.viewer import LivePanel

    window.open_live()
    panel = window.findChild(LivePanel)
    assert panel is not None, "the Live tab holds the camera panel"
    return panel


def test_live_mode_shows_a_video_stream_in_every_view(window, qtbot, stereo_videos, motorcycle_session):
    from test_camera_loop import crop_calibration

    state = window.state
    state.set_backend("opencv-bm")
    state.set_parameter("block_size", 11)
    state.set_max_disp(64)
    calibration = crop_calibration(motorcycle_session.calibration, 150, 120, (WIDTH, HEIGHT))
    state.set_calibration(calibration)
    panel = live_panel(window)
    panel.set_source("videos", stereo_videos.left, stereo_videos.right)
    assert panel.start(), panel.error
    qtbot.waitUntil(lambda: not panel.running, timeout=60_000)
    assert panel.error is None
    assert panel.last_stats.processed == len(stereo_videos.frames)
    assert panel.last_stats.end_reason == "end of source"
    assert 1 <= panel.presented <= len(stereo_videos.frames)
    assert "12 pairs" in panel.stats_label.text()
    # The last pair of the stream is what every view shows now.
    output = state.outputs["primary"].output
    assert frame_number(output.pair.left, stereo_videos.frames, 0) == len(stereo_videos.frames) - 1
    left, right = stereo_videos.frames[-1]
    expected = create_backend("opencv-bm", max_disp=64, block_size=11).compute(StereoPair(left, right))
    np.testing.assert_array_equal(output.result.disparity, expected.disparity)
    assert output.depth is not None and output.cloud is not None and len(output.cloud) > 1000
    x, y = 200, 120  # the hover readout reads the live result
    readout = state.readout(x, y)
    assert readout.disparity == pytest.approx(float(expected.disparity[y, x]), nan_ok=True)
    if np.isfinite(readout.disparity):
        assert readout.depth == pytest.approx(float(output.depth[y, x]))
    assert state.auto_recompute, "the viewer's own recompute is restored after the stream"
    # The Live tab's own view (the camera window's widget) shows the same last pair.
    view = panel.live_view
    assert panel.model.frame.number == len(stereo_videos.frames)
    np.testing.assert_array_equal(panel.model.frame.disparity, expected.disparity)
    assert not view.map_view.pixmap_item.pixmap().isNull() and view.legend.isVisible()
    ys, xs = np.nonzero(np.isfinite(output.depth))
    x, y = int(xs[len(xs) // 2]), int(ys[len(ys) // 2])
    view.point_at(x, y)
    assert f"depth {output.depth[y, x]:.3f} m" in view.readout_label.text()


def test_live_mode_records_while_running_and_reports_errors(window, qtbot, stereo_videos, tmp_path):
    state = window.state
    state.set_backend("opencv-bm")
    state.set_max_disp(64)
    panel = live_panel(window)
    panel.set_source("sbs-video", stereo_videos.sbs, realtime=True)
    folder = tmp_path / "clip"
    assert panel.start_recording(str(folder))
    assert panel.start(), panel.error
    qtbot.waitUntil(lambda: not panel.running, timeout=60_000)
    assert panel.record_button.isChecked() is False
    pairs = find_pairs(folder)
    assert 0 < len(pairs) == panel.last_stats.processed
    k = frame_number(read_rgb(pairs[-1].left), stereo_videos.frames, 0)
    np.testing.assert_array_equal(read_rgb(pairs[-1].right), stereo_videos.frames[k][1])
    assert f"Recorded {len(pairs)} pairs" in panel.status_label.text()

    assert not panel.start_recording(str(folder))  # not empty any more
    assert "is not empty" in panel.status_label.text()
    panel.set_source("cameras", "97", "98")
    assert not panel.start()
    assert "camera 97: cannot open the camera" in panel.status_label.text()
    assert not panel.running
