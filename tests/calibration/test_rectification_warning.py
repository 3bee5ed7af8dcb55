"""Issue 11: a pair that claims to be rectified but is not gets a warning in run, the viewer
and the camera loop (real Motorcycle images, the right view moved down by 5 rows)."""

import numpy as np
import pytest

from depthapp.backends import create_backend
from depthapp.calibration.rectify import check_rectified
from depthapp.data import StereoPair
from depthapp.io import write_image


def _misaligned(pair: StereoPair, rows: int = 5) -> StereoPair:
    right = np.roll(pair.right, rows, axis=0)
    return StereoPair(pair.left, right, pair.calibration, "misaligned")


def test_check_flags_only_the_misaligned_pair(motorcycle):
    assert check_rectified(motorcycle) is None
    warning = check_rectified(_misaligned(motorcycle))
    assert warning and "does not look rectified" in warning
    offset = float(warning.split("are ")[1].split(" px")[0])
    assert 4.0 <= offset <= 6.0  # the 5 rows it was moved by


def test_run_warns(tmp_path, motorcycle, capsys):
    from depthapp.cli import main

    bad = _misaligned(motorcycle)
    write_image(tmp_path / "l.png", bad.left)
    write_image(tmp_path / "r.png", bad.right)
    (tmp_path / "calib.txt").write_text(
        "cam0=[994.97775 0 311.193; 0 994.97775 254.87675; 0 0 1]\n"
        "cam1=[994.97775 0 342.27875; 0 994.97775 254.87675; 0 0 1]\n"
        "baseline=193.001\nwidth=741\nheight=500\n")
    assert main(["run", str(tmp_path / "l.png"), str(tmp_path / "r.png"), "--calib",
                 str(tmp_path / "calib.txt"), "--backend", "opencv-bm", "--max-disp", "64",
                 "--out", str(tmp_path / "o")]) == 0
    assert "does not look rectified" in capsys.readouterr().err


def test_viewer_state_warns_once_per_pair(motorcycle):
    from depthapp.gui.state import ViewerState

    state = ViewerState()
    messages = []
    state.message.connect(messages.append)
    state.set_pair(_misaligned(motorcycle))
    state.compute()
    assert any("does not look rectified" in m for m in messages)


def test_camera_loop_warns_on_the_first_pair(tmp_path, motorcycle):
    from depthapp.camera.loop import CameraLoop
    from depthapp.sources import ImageFolderSource

    bad = _misaligned(motorcycle)
    for index in range(2):
        write_image(tmp_path / "left" / f"{index:06d}.png", bad.left)
        write_image(tmp_path / "right" / f"{index:06d}.png", bad.right)
    statuses = []
    loop = CameraLoop(ImageFolderSource(tmp_path), create_backend("opencv-bm", max_disp=64),
                      on_status=statuses.append, max_frames=2)
    loop.run()
    warnings = [s for s in statuses if "does not look rectified" in s]
    assert len(warnings) == 1
