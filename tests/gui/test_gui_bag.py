"""The viewer opens a ROS bag and steps through its stereo pairs (a real bag of Motorcycle)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="needs rosbags (pip install 'depthapp[ros]')")

from depthapp.calibration.ros import camera_infos_from_stereo  # noqa: E402
from depthapp.gui.open_plan import plan_open  # noqa: E402
from depthapp.gui.state import ViewerState  # noqa: E402
from depthapp.robotics import messages  # noqa: E402
from depthapp.robotics.bags import BagWriter  # noqa: E402

START = 1_700_000_000_000_000_000


def write_bag(path, motorcycle, frames=3):
    """Frame i holds the Motorcycle pair cropped i*10 rows down, so each frame is different."""
    infos = camera_infos_from_stereo(motorcycle.calibration.scaled(1.0), ("left", "right"))
    with BagWriter(path, storage="sqlite3") as writer:
        store = writer.store
        for index in range(frames):
            t = START + index * 100_000_000
            for side, image, info in (("left", motorcycle.left, infos[0]), ("right", motorcycle.right, infos[1])):
                rows = np.roll(image, -10 * index, axis=0)
                writer.write(f"/cam/{side}/image_rect_color", messages.IMAGE, t,
                             messages.image_message(store, t, side, rows))
                writer.write(f"/cam/{side}/camera_info", messages.CAMERA_INFO, t,
                             messages.camera_info_message(store, t, info))
    return path


def test_state_steps_through_a_bag_with_its_camera_info(tmp_path, motorcycle):
    bag = write_bag(tmp_path / "drive", motorcycle)
    assert plan_open([bag]).kind == "bag" and plan_open([bag / "drive.db3"]).kind == "bag"
    state = ViewerState()
    state.open_bag(bag)
    assert len(state.sequence) == 3 and state.index == 0
    np.testing.assert_array_equal(state.pair.left, motorcycle.left)
    assert state.calibration is not None and state.calibration.focal == motorcycle.calibration.focal
    state.next_pair()
    state.next_pair()
    assert state.index == 2 and state.sequence_label().endswith("(3/3)")
    assert state.sequence_label().startswith("1700000000.200000000 s")
    np.testing.assert_array_equal(state.pair.right, np.roll(motorcycle.right, -20, axis=0))
    state.open_sample()
    assert state.sequence is None


def test_window_opens_a_dropped_bag(window, dialogs, tmp_path, motorcycle):
    bag = write_bag(tmp_path / "drop", motorcycle, frames=2)
    window.open_paths([bag / "drop.db3"])
    assert dialogs == []
    assert len(window.state.sequence) == 2
    window.state.next_pair()
    np.testing.assert_array_equal(window.state.pair.left, np.roll(motorcycle.left, -10, axis=0))


def test_live_tab_plays_a_bag_and_logs_it_to_rerun(window, qtbot, tmp_path, motorcycle):
    """The Live tab takes a bag as its source (with the bag's camera_info) and logs every
    processed pair to an .rrd file."""
    pytest.importorskip("rerun", reason="needs rerun-sdk (pip install 'depthapp[rerun]')")
    from rerun.chunk import RrdReader

    from depthapp.camera.viewer import LivePanel

    bag = write_bag(tmp_path / "live", motorcycle, frames=2)
    window.state.set_backend("opencv-bm")
    window.state.set_max_disp(64)
    window.open_live()
    panel = window.findChild(LivePanel)
    panel.set_source("bag", bag)
    panel.rerun_edit.setText(str(tmp_path / "live.rrd"))
    assert panel.start(), panel.error
    qtbot.waitUntil(lambda: not panel.running, timeout=60_000)
    assert panel.error is None and panel.last_stats.processed == 2
    assert "Logged 2 pairs to Rerun" in panel.status_label.text()
    output = window.state.outputs["primary"].output
    assert output.depth is not None and output.pair.calibration.focal == motorcycle.calibration.focal
    entities = {chunk.entity_path for chunk in RrdReader(tmp_path / "live.rrd").stream()}
    assert {"/world/camera", "/world/camera/image", "/world/camera/depth", "/disparity",
            "/world/points"} <= entities
