"""The live view widget (camera window and viewer Live tab) driven offscreen: it draws the
model, the cursor shows metres, and record / snapshot ask before replacing anything (their
questions answered through the widget's hooks, never a modal dialog)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets", reason="the live view needs PyQt6")
pytest.importorskip("pytestqt", reason="the live view tests need pytest-qt")

from depthapp.camera.live_view import LiveViewModel  # noqa: E402

from test_live_view import live_frames, calibration  # noqa: E402,F401  (module fixtures)


@pytest.fixture
def view(qtbot, live_frames, tmp_path):  # noqa: F811
    from depthapp.gui.live_view import LiveView

    model = LiveViewModel(max_disp=64, snapshot_dir=tmp_path / "snaps")
    widget = LiveView(model)
    qtbot.addWidget(widget)
    widget.resize(1000, 560)
    widget.show()
    qtbot.waitExposed(widget)
    model.show_frame(live_frames[2])
    return widget


def test_the_view_draws_the_model_and_reads_metres_under_the_cursor(view, qtbot, live_frames):  # noqa: F811
    from PyQt6.QtCore import Qt

    model, frame = view.model, live_frames[2]
    assert not view.left_view.pixmap_item.pixmap().isNull()
    assert view.map_view.pixmap_item.pixmap().width() == frame.disparity.shape[1]
    assert view.legend.isVisible() and view.legend.legend.label == "disparity [px]"
    assert (view.min_spin.value(), view.max_spin.value()) == pytest.approx(model.value_range(), abs=0.01)
    ys, xs = np.nonzero(np.isfinite(frame.depth))
    x, y = int(xs[len(xs) // 2]), int(ys[len(ys) // 2])
    qtbot.mouseMove(view.map_view.viewport(), view.map_view.viewport_position(x, y).toPoint())
    assert f"x {x}  y {y}" in view.readout_label.text()
    assert f"depth {frame.depth[y, x]:.3f} m" in view.readout_label.text()
    assert "fps" in view.stats_label.text() and "not drawn" in view.stats_label.text()

    view.max_spin.setValue(30.0)  # editing a bound fixes the range
    assert model.range_mode == "fixed" and model.value_range()[1] == 30.0
    assert view.range_combo.currentData() == "fixed" and view.legend.legend.vmax == 30.0
    view.quantity_combo.setCurrentIndex(view.quantity_combo.findData("depth"))
    view.quantity_combo.activated.emit(view.quantity_combo.currentIndex())
    assert model.quantity == "depth" and view.legend.legend.label.startswith("depth [m]")
    assert view.min_spin.suffix() == " m"
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_D)  # D switches back to disparity
    assert model.quantity == "disparity"
    qtbot.keyClick(view, Qt.Key.Key_A)  # A: auto range
    assert model.range_mode == "auto"


def test_record_asks_before_replacing_a_recording(view, tmp_path):
    folder = tmp_path / "rec"
    (folder / "left").mkdir(parents=True)
    (folder / "left" / "000000.png").write_bytes(b"an older recording")
    asked, answers = [], [False, True]
    view.choose_folder = lambda title: str(folder)
    view.confirm = lambda title, text: asked.append(title) or answers.pop(0)
    assert view.toggle_recording() is False  # the user said no
    assert asked == ["Replace the recording?"] and not view.model.recording
    assert "is not empty" in view.last_error and not view.record_button.isChecked()
    assert (folder / "left" / "000000.png").read_bytes() == b"an older recording"
    view.record_button.click()  # yes: replaced
    assert view.model.recording and view.record_button.isChecked()
    assert "Stop recording" in view.record_button.text() and "REC" in view.stats_label.text()
    assert not (folder / "left" / "000000.png").exists()
    view.record_button.click()
    assert not view.model.recording and list((folder / "left").iterdir()) == []  # no pair came

    view.choose_folder = lambda title: None  # cancelling the folder dialog starts nothing
    assert view.toggle_recording() is False and len(asked) == 2


def test_snapshot_asks_before_replacing_files(view, tmp_path, live_frames):  # noqa: F811
    asked, answers = [], [False, True]
    view.confirm = lambda title, text: asked.append(title) or answers.pop(0)
    view.snapshot_button.click()
    stem = f"snapshot-{live_frames[2].frame.index:06d}"
    left = tmp_path / "snaps" / f"{stem}-left.png"
    assert left.exists() and asked == [] and stem in view.message_label.text()
    left.write_bytes(b"keep me")
    assert view.take_snapshot() == [] and asked == ["Replace the snapshot?"]
    assert left.read_bytes() == b"keep me"
    assert len(view.take_snapshot()) == 5 and left.read_bytes() != b"keep me"
