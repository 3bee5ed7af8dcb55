"""``depthapp camera`` end to end on real video files: exit codes, counts, statistics, windows."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from depthapp.cli import main
from depthapp.io import read_rgb
from depthapp.sources import find_pairs

from video_fixtures import write_video


def camera(*args) -> int:
    return main(["camera", *map(str, args)])


def test_a_file_source_runs_to_its_end_and_exits_0(stereo_videos, capsys):
    code = camera("--left", stereo_videos.left, "--right", stereo_videos.right, "--no-window",
                  "--backend", "opencv-bm", "--max-disp", "64", "--stats-every", "0.01")
    out = capsys.readouterr().out
    assert code == 0
    assert "stopped: end of source" in out
    assert re.search(r"summary: 12 pairs in [\d.]+ s \| processing [\d.]+ fps", out)
    assert re.search(r"capture [\d.]+ fps \| skew 0\.0 ms \(mean 0\.0, max 0\.0\)", out)
    assert re.search(r"^frame \d+: \d+ pairs", out, re.M), "statistics are printed periodically"


def test_frames_limit_record_and_refusal_to_overwrite(tmp_path, stereo_videos, capsys):
    folder = tmp_path / "rec"
    code = camera("--sbs", stereo_videos.sbs, "--no-window", "--backend", "opencv-bm",
                  "--max-disp", "64", "--frames", "3", "--record", folder)
    out = capsys.readouterr().out
    assert code == 0 and "stopped: frame limit" in out and "recorded 3 pairs" in out
    pairs = find_pairs(folder)
    assert len(pairs) == 3
    np.testing.assert_array_equal(read_rgb(pairs[2].right), stereo_videos.frames[2][1])

    code = camera("--sbs", stereo_videos.sbs, "--no-window", "--record", folder)
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().splitlines() == [f"depthapp: error: {folder}: is not empty; record into a new "
                                        "folder (or pass --force to replace the recording in it)"]
    assert camera("--sbs", stereo_videos.sbs, "--no-window", "--backend", "opencv-bm",
                  "--max-disp", "64", "--frames", "2", "--record", folder, "--force") == 0
    assert len(find_pairs(folder)) == 2


def test_a_failed_recording_leaves_nothing_that_blocks_the_rerun(tmp_path, stereo_videos, capsys):
    """The calibration is for another image size: the first pair fails after the recording was
    opened (folders made, calibration copied). The rerun with the right calibration needs no
    --force."""
    root = Path(__file__).resolve().parents[2]
    folder = tmp_path / "runs" / "rec1"
    wrong = root / "calib" / "kitti_2011_09_26_calib_cam_to_cam.txt"
    assert camera("--sbs", stereo_videos.sbs, "--no-window", "--calib", wrong, "--record", folder) == 1
    assert "calibration is for 1242x375 images" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    # A folder the user made is kept (empty), and a recording into it still works.
    folder.mkdir(parents=True)
    assert camera("--sbs", stereo_videos.sbs, "--no-window", "--calib", wrong, "--record", folder) == 1
    assert folder.is_dir() and not any(folder.iterdir())
    assert camera("--sbs", stereo_videos.sbs, "--no-window", "--backend", "opencv-bm",
                  "--max-disp", "64", "--frames", "2", "--record", folder) == 0
    assert len(find_pairs(folder)) == 2


def test_user_mistakes_are_one_line_errors(tmp_path, stereo_videos, capsys):
    assert camera("--left", stereo_videos.left, "--no-window") == 2
    assert camera("--left", tmp_path / "missing.avi", "--right", stereo_videos.right, "--no-window") == 1
    assert camera("--sbs", stereo_videos.sbs, "--frames", "0") == 2
    assert camera("--left", "97", "--right", "98", "--no-window") == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "depthapp: error: --left and --right go together (use --sbs for a side-by-side source)",
        f"depthapp: error: {tmp_path / 'missing.avi'}: no such file or camera",
        "depthapp: error: --frames must be at least 1, got 0",
        "depthapp: error: camera 97: cannot open the camera (is it plugged in, and not used by "
        "another program?)"]


def test_default_backend_keeps_up_on_a_cpu():
    from depthapp.cli.cmd_camera import choose_backend

    assert choose_backend("auto", None, "cpu")[:2] == ("opencv-sgbm", "fast")
    assert choose_backend("auto", "", "cpu")[:2] == ("opencv-sgbm", "fast")
    assert choose_backend("opencv-bm", None, "cpu")[:2] == ("opencv-bm", None)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_default_backend_on_a_gpu_is_sgm():
    from depthapp.cli.cmd_camera import choose_backend

    assert choose_backend("auto", None, "auto")[:2] == ("sgm", None)


def test_the_window_shows_the_stream_offscreen(stereo_videos, capsys, monkeypatch):
    pytest.importorskip("PyQt6.QtWidgets", reason="PyQt6 is needed for the camera window")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    code = camera("--left", stereo_videos.left, "--right", stereo_videos.right,
                  "--backend", "opencv-bm", "--max-disp", "64", "--frames", "4")
    captured = capsys.readouterr()
    assert code == 0
    assert "running without a window" not in captured.err
    assert "summary: 4 pairs" in captured.out


def test_the_window_is_saved_as_a_screenshot_at_the_end(stereo_videos, capsys, monkeypatch, tmp_path):
    pytest.importorskip("PyQt6.QtWidgets", reason="PyQt6 is needed for the camera window")
    from depthapp.io import read_rgb

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    shot = tmp_path / "window.png"
    args = ("--sbs", stereo_videos.sbs, "--backend", "opencv-bm", "--max-disp", "64",
            "--frames", "3", "--screenshot", shot)
    assert camera(*args) == 0
    image = read_rgb(shot)
    assert image.shape[0] >= 400 and image.shape[1] >= 800
    # the turbo-coloured disparity and its legend are in the picture, not only grey widgets
    saturation = image.max(axis=2).astype(int) - image.min(axis=2)
    assert (saturation > 120).mean() > 0.05
    capsys.readouterr()
    assert camera(*args) == 1  # an existing screenshot is never replaced without --force
    assert "already exists" in capsys.readouterr().err
    assert camera(*args, "--no-window") == 2
    if sys.platform.startswith("linux"):  # no display: the screenshot renders offscreen
        for name in ("DISPLAY", "WAYLAND_DISPLAY"):
            monkeypatch.delenv(name, raising=False)
        assert camera(*args, "--force") == 0
        assert "running without a window" not in capsys.readouterr().err


def test_no_display_falls_back_to_headless_with_a_note(stereo_videos, capsys, monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("display detection by environment is Linux-specific")
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    code = camera("--sbs", stereo_videos.sbs, "--backend", "opencv-bm", "--max-disp", "64",
                  "--frames", "2")
    captured = capsys.readouterr()
    assert code == 0 and "summary: 2 pairs" in captured.out
    assert captured.err.strip() == ("note: no display (DISPLAY and WAYLAND_DISPLAY are unset); "
                                    "running without a window")


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_with_a_complete_recording(tmp_path, stereo_videos):
    # A 10 s realtime stream, interrupted once the first statistics line is out.
    long_left = write_video(tmp_path / "l.avi", [f[0] for f in stereo_videos.frames] * 17, 20.0)
    long_right = write_video(tmp_path / "r.avi", [f[1] for f in stereo_videos.frames] * 17, 20.0)
    folder = tmp_path / "rec"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "depthapp", "camera", "--left", str(long_left), "--right",
         str(long_right), "--realtime", "--no-window", "--backend", "opencv-bm", "--max-disp", "64",
         "--record", str(folder), "--stats-every", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        for line in process.stdout:
            if line.startswith("frame ") or time.monotonic() > deadline:
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "stopped: Ctrl-C" in out
    written = int(re.search(r"recorded (\d+) pairs", out).group(1))
    assert 0 < written < 17 * 12
    assert len(find_pairs(folder)) == written
    assert len((folder / "timestamps.csv").read_text().splitlines()) == written + 1


def test_closing_the_window_stops_the_loop_and_leaves_qt_usable(stereo_videos, qtbot, tmp_path):
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from depthapp.backends import create_backend
    from depthapp.camera import CameraLoop
    from depthapp.sources import open_source
    from depthapp.camera.preview import run_with_window
    from depthapp.gui.live_view import LiveView

    frames = stereo_videos.frames * 5  # 3 s at 20 fps
    video = write_video(tmp_path / "sbs.avi", [np.hstack(f) for f in frames], 20.0)
    loop = CameraLoop(open_source(sbs=str(video), realtime=True), create_backend("opencv-bm", max_disp=64))
    poll = QTimer()

    def close_once_a_disparity_is_shown():
        windows = [w for w in QApplication.topLevelWidgets()
                   if w.isVisible() and w.windowTitle() == "preview"]
        shown = any(not view.map_view.pixmap_item.pixmap().isNull()
                    for w in windows for view in w.findChildren(LiveView))
        if shown:
            poll.stop()
            for window in windows:
                window.close()  # what the user does

    poll.timeout.connect(close_once_a_disparity_is_shown)
    stats = run_with_window(loop, "preview", 64.0, on_started=lambda: poll.start(50))
    assert not poll.isActive(), "a disparity image was shown"
    assert stats.end_reason == "stopped" and 0 < stats.processed < len(frames)
    # Qt's event loops still run afterwards (the window did not quit the application).
    fired = []
    QTimer.singleShot(10, lambda: fired.append(True))
    qtbot.waitUntil(lambda: bool(fired), timeout=2000)
