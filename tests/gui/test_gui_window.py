"""The viewer window, offscreen with pytest-qt: real widgets, real worker threads, real backends."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PyQt6.QtCore import QEvent, QMimeData, QPointF, Qt, QUrl
from PyQt6.QtGui import QDropEvent, QMouseEvent
from PyQt6.QtWidgets import QApplication, QFileDialog

from depthapp.cli import main
from depthapp.geometry import pixel_to_point
from depthapp.gui.main_window import COMPARE_KINDS_GT, DEFAULT_KINDS, DEFAULT_KINDS_NO_GT, MainWindow
from depthapp.gui.state import COMPARE, PRIMARY
from depthapp.io import read_disparity, read_image, read_kitti_disparity, read_pfm, read_ply, write_image



def hover(view, x: int, y: int) -> None:
    """Move the mouse over pixel (x, y) of an image view (zoomed in, so the mouse lands
    inside that pixel, not on a neighbour sharing its screen pixel)."""
    if view.transform().m11() < 2:
        view.zoom(4 / view.transform().m11())
    view.centerOn(QPointF(x + 0.5, y + 0.5))
    position = view.viewport_position(x, y)
    event = QMouseEvent(QEvent.Type.MouseMove, position, view.viewport().mapToGlobal(position),
                        Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), event)


def open_sample_and_compute(window, wait_idle):
    window.open_sample()  # opencv-sgbm is fast: opening computes by itself
    wait_idle(window)
    assert PRIMARY in window.state.outputs, window.errors


def test_open_sample_computes_in_a_worker_and_shows_everything(window, wait_idle, qtbot):
    assert window.grid.kinds() == list(DEFAULT_KINDS)
    window.open_sample()
    assert window.state.busy  # the click returned while the worker computes
    wait_idle(window)
    outcome = window.state.outputs[PRIMARY]
    for pane in window.grid.panes:  # left, disparity, depth, error: all have a picture
        assert pane.stack.currentWidget() is pane.view, pane.kind
        pixmap = pane.view.pixmap_item.pixmap()
        assert (pixmap.width(), pixmap.height()) == (741, 500)
    assert window.grid.panes[1].legend.isVisible()
    results = window.results_label.text()
    assert "bad-2 all" in results and f"{outcome.metrics.bad_all:.2f} %" in results
    for stage in outcome.timings:
        assert stage in results
    assert "middlebury2014-motorcycle-quarter" in window.windowTitle()
    assert not window.progress.isVisible() and not window.errors


def test_hover_readout_matches_the_geometry(window, wait_idle):
    open_sample_and_compute(window, wait_idle)
    outcome = window.state.outputs[PRIMARY]
    x, y = 420, 260
    d = float(outcome.disparity[y, x])
    assert np.isfinite(d)
    X, Y, Z = pixel_to_point(x, y, d, outcome.output.pair.calibration)
    for pane in window.grid.panes:  # the readout works over every view
        window.readout_label.setText("")
        hover(pane.view, x, y)
        text = window.readout_label.text()
        assert f"x {x}  y {y}" in text, pane.kind
        assert f"d {d:.2f} px" in text and f"Z {Z:.3f} m" in text
        assert f"XYZ ({X:.3f}, {Y:.3f}, {Z:.3f}) m" in text
    assert f"Z {Z:.3f} m" in window.pixel_label.text()
    assert all(view.crosshair.isVisible() for view in window.grid.views)
    hover(window.grid.panes[0].view, -50, -50)  # off the image: readout cleared
    assert window.readout_label.text() == ""


def test_parameter_edit_recomputes_after_a_debounce(window, wait_idle, qtbot):
    open_sample_and_compute(window, wait_idle)
    before = window.state.outputs[PRIMARY]
    control = window.param_panel.controls["block_size"]
    assert control.slider is not None and "matching block size" in control.toolTip()
    control.spin.setValue(11)
    assert window.debounce.isActive() and window.state.outputs[PRIMARY] is before
    wait_idle(window)
    after = window.state.outputs[PRIMARY]
    assert after is not before and after.params["block_size"] == 11
    changed = np.abs(np.nan_to_num(after.disparity) - np.nan_to_num(before.disparity)) > 1
    assert changed.mean() > 0.02
    control.spin.setValue(8)  # odd-only parameter: the control keeps it odd
    assert control.value() in (7, 9)
    window.param_panel.controls["mode"].setCurrentIndex(2)  # a choice control
    wait_idle(window)
    assert window.state.outputs[PRIMARY].params["mode"] == "hh4"


def test_cancel_a_long_run(slow_backend, window, wait_idle, qtbot):
    window.open_sample()
    wait_idle(window)
    window.state.set_backend("test-slow")
    assert window.backend_combo.currentData() == "test-slow"
    qtbot.mouseClick(window.compute_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "sleep" in window.stage_label.text(), timeout=10_000)
    assert window.cancel_button.isEnabled() and window.progress.isVisible()
    first = window.stage_label.text()
    qtbot.wait(250)
    assert window.stage_label.text() != first  # the elapsed time ticks: the GUI is not blocked
    qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    assert not window.state.busy and not window.progress.isVisible()
    qtbot.waitUntil(lambda: window.executor.active == 0, timeout=3_000)  # it polled its token
    assert slow_backend.started == 1 and slow_backend.finished_steps == []
    # nothing of the cancelled run is shown; the last finished result stays
    assert window.state.outputs[PRIMARY].backend == "opencv-sgbm"
    assert "Cancelled" in window.note_label.text()
    assert window.errors == []


def test_save_every_output_and_read_it_back(window, wait_idle, tmp_path, monkeypatch):
    open_sample_and_compute(window, wait_idle)
    outcome = window.state.outputs[PRIMARY]
    answers = iter([str(tmp_path / "disp.pfm"), str(tmp_path / "disp.png"),
                    str(tmp_path / "depth.pfm"), str(tmp_path / "depth.png"),
                    str(tmp_path / "cloud.ply"), str(tmp_path / "shot")])
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (next(answers), "PNG (*.png)")))
    window.save_disparity_dialog()
    window.save_disparity_dialog()
    window.save_depth_dialog()
    window.save_depth_dialog()
    window.save_cloud_dialog()
    window.save_screenshot_dialog()
    assert window.errors == []
    np.testing.assert_array_equal(read_disparity(tmp_path / "disp.pfm"), outcome.disparity)
    kitti = read_kitti_disparity(tmp_path / "disp.png")
    np.testing.assert_array_equal(kitti, np.maximum(np.round(outcome.disparity * 256), 1) / 256)
    depth = read_pfm(tmp_path / "depth.pfm")
    np.testing.assert_array_equal(np.where(np.isinf(depth), np.nan, depth), outcome.output.depth)
    millimetres = read_image(tmp_path / "depth.png")
    valid = np.isfinite(outcome.output.depth)
    assert millimetres.dtype == np.uint16 and np.array_equal(millimetres > 0, valid)
    assert np.abs(millimetres[valid] / 1000.0 - outcome.output.depth[valid]).max() <= 0.0005 + 1e-7
    points, colours = read_ply(tmp_path / "cloud.ply")
    np.testing.assert_array_equal(points, outcome.output.cloud.points)
    np.testing.assert_array_equal(colours, outcome.output.cloud.colors)
    shot = read_image(tmp_path / "shot.png")  # the filter's extension was added
    assert shot.shape[:2] == (window.height(), window.width())
    assert shot.reshape(-1, 3).std(axis=0).min() > 20  # a real picture, not a blank


def test_bad_file_gives_a_dialog_not_a_crash(window, dialogs, tmp_path, wait_idle):
    bad = tmp_path / "broken_left.png"
    bad.write_bytes(b"\x89PNG but not really")
    good = tmp_path / "broken_right.png"
    write_image(good, np.zeros((20, 30, 3), np.uint8))
    window.open_paths([bad, good])
    assert len(dialogs) == 1
    title, message = dialogs[0]
    assert title == "Open" and "broken_left.png: not a readable image" in message
    # an error raised inside the worker thread reaches a dialog too
    window.open_sample()
    wait_idle(window)
    window.state.set_parameter("p1", 900)
    window.state.set_parameter("p2", 100)
    wait_idle(window)
    assert dialogs[-1][0] == "opencv-sgbm failed" and "must be larger than p1" in dialogs[-1][1]
    window.open_paths([tmp_path / "missing_calib.txt"])
    assert "missing_calib.txt" in dialogs[-1][1]
    assert window.isVisible()


def _write_folder(root, motorcycle):
    (root / "left").mkdir(parents=True)
    (root / "right").mkdir()
    for i in range(3):
        write_image(root / "left" / f"f{i}.png", motorcycle.left[40 * i:40 * i + 160, :256])
        write_image(root / "right" / f"f{i}.png", motorcycle.right[40 * i:40 * i + 160, :256])


def test_folder_dropped_then_arrow_keys(window, wait_idle, qtbot, tmp_path, motorcycle):
    _write_folder(tmp_path / "seq", motorcycle)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "seq"))])
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    assert window.state.sequence is not None and window.state.index == 0
    assert window.grid.kinds() == list(DEFAULT_KINDS_NO_GT)  # no GT: the right view, not an empty error pane
    assert window.next_button.isVisible() and window.sequence_label.text() == "f0 (1/3)"
    window.activateWindow()
    window.grid.setFocus()
    qtbot.keyClick(window.grid, Qt.Key.Key_Right)
    assert window.state.index == 1
    qtbot.keyClick(window.grid, Qt.Key.Key_End)
    assert window.state.index == 2 and not window.next_button.isEnabled()
    qtbot.keyClick(window.grid, Qt.Key.Key_Left)
    assert window.state.index == 1 and "[f1 (2/3)]" in window.windowTitle()
    wait_idle(window)
    np.testing.assert_array_equal(window.state.outputs[PRIMARY].output.pair.left,
                                  motorcycle.left[40:200, :256])


def test_compare_mode_side_by_side(window, wait_idle):
    open_sample_and_compute(window, wait_idle)
    combo = window.compare_combo
    combo.setCurrentIndex(combo.findData("opencv-bm"))
    combo.activated.emit(combo.currentIndex())
    wait_idle(window)
    assert window.grid.kinds() == list(COMPARE_KINDS_GT)
    primary, compare = window.state.outputs[PRIMARY], window.state.outputs[COMPARE]
    assert compare.backend == "opencv-bm"
    text = window.results_label.text()
    assert "Compare" in text and f"{compare.metrics.bad_all:.2f} %" in text
    assert f"{primary.metrics.bad_all:.2f} %" in text
    assert all(pane.stack.currentWidget() is pane.view for pane in window.grid.panes)
    hover(window.grid.panes[1].view, 420, 260)
    assert "B: d " in window.readout_label.text()
    combo.setCurrentIndex(0)
    combo.activated.emit(0)
    assert window.grid.kinds() == list(DEFAULT_KINDS) and COMPARE not in window.state.outputs


def test_sgm_in_the_window(window, wait_idle):
    window.open_sample()
    wait_idle(window)
    window.state.set_backend("sgm")
    labels = {window.param_panel.form.itemAt(i, window.param_panel.form.ItemRole.LabelRole).widget().text()
              for i in range(window.param_panel.form.rowCount())}
    assert {"census window", "p1", "p2", "paths"} <= labels  # generated from its declaration
    window.preset_combo.setCurrentIndex(window.preset_combo.findData("fast"))
    window.preset_combo.activated.emit(window.preset_combo.currentIndex())
    wait_idle(window, timeout=120_000)
    outcome = window.state.outputs[PRIMARY]
    assert outcome.backend == "sgm" and outcome.metrics.bad_all < 30
    assert window.errors == []


def test_settings_are_remembered(window, settings, qtbot):
    window.state.set_backend("opencv-bm")
    window.state.set_parameter("block_size", 21)
    window.state.set_display(colormap="magma")
    window.grid.set_layout("2")
    window.close()
    again = MainWindow(settings=settings)
    qtbot.addWidget(again)
    assert again.state.backend == "opencv-bm" and again.backend_combo.currentData() == "opencv-bm"
    assert again.state.parameters()["block_size"] == 21
    assert again.param_panel.controls["block_size"].value() == 21
    assert again.colormap_combo.currentText() == "magma" and again.grid.layout_name == "2"
    from depthapp.gui.main_window import APPLICATION, ORGANISATION

    assert (ORGANISATION, APPLICATION) == ("depthapp", "viewer")  # what the real app uses


def test_point_cloud_tab_explains_missing_opengl_offscreen(window, wait_idle):
    open_sample_and_compute(window, wait_idle)
    window.tabs.setCurrentIndex(1)
    assert window.cloud.gl_view is None
    assert "offscreen" in window.cloud.problem and window.cloud.placeholder.isVisible()
    assert "PLY" in window.cloud.placeholder.text()
    assert window.cloud.info.text().startswith("310,")  # the cloud exists; only GL is missing
    window.tabs.setCurrentIndex(0)
    hover(window.grid.panes[1].view, 100, 100)
    assert "x 100  y 100" in window.readout_label.text()  # everything else keeps working


def test_live_tab_hook(window, wait_idle):
    open_sample_and_compute(window, wait_idle)
    holder = window._extensions["Live"]
    assert holder.layout().count() == 0  # created on first use only
    window.open_live()
    assert window.tabs.currentWidget() is holder and holder.layout().count() == 1
    panel = holder.layout().itemAt(0).widget()
    if importlib.util.find_spec("depthapp.camera.viewer") is None:
        assert "depthapp.camera" in panel.label.text()
    window.tabs.setCurrentIndex(0)
    window.open_live()
    assert holder.layout().count() == 1 and holder.layout().itemAt(0).widget() is panel  # one panel


def test_every_panel_fits_and_the_calibration_text_is_whole_at_1280x720(window, wait_idle, qtbot):
    from PyQt6.QtCore import QPoint

    window.resize(1280, 720)
    open_sample_and_compute(window, wait_idle)
    qtbot.waitUntil(lambda: window.width() <= 1280 and window.height() <= 720, timeout=2000)
    label, scroll = window.calibration_label, window.input_scroll
    assert "doffs" in label.text()
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()), timeout=2000)
    from PyQt6.QtWidgets import QPushButton

    # the text and the buttons under it are in view, nothing scrolled away
    button = next(b for b in window.input_box.findChildren(QPushButton) if b.text() == "Enter by hand...")
    assert scroll.verticalScrollBar().value() == 0
    for widget in (label, button):
        bottom = widget.mapTo(scroll.viewport(), QPoint(0, widget.height())).y()
        assert 0 < bottom <= scroll.viewport().height(), f"{widget.text()[:20]!r} is cut off"
    for index in range(window.tabs.count()):  # no tab widens the window past the screen
        window.tabs.setCurrentIndex(index)
        qtbot.wait(20)
        assert window.width() <= 1280 and window.height() <= 720, window.tabs.tabText(index)


def test_manual_calibration_dialog(window, wait_idle, monkeypatch):
    from depthapp.gui.dialogs import ManualCalibrationDialog

    open_sample_and_compute(window, wait_idle)

    def fill(dialog):
        dialog.focal.setValue(800.0)
        dialog.baseline.setValue(120.0)
        dialog.units.setCurrentText("mm")
        dialog.doffs.setValue(0.0)
        return ManualCalibrationDialog.DialogCode.Accepted

    monkeypatch.setattr(ManualCalibrationDialog, "exec", fill)
    window.enter_calibration()
    calibration = window.state.pair.calibration
    assert calibration.focal == 800.0 and calibration.baseline == pytest.approx(0.12)
    assert "manual entry" in window.calibration_label.text()
    outcome = window.state.outputs[PRIMARY]
    d = outcome.disparity[260, 420]
    assert outcome.output.depth[260, 420] == pytest.approx(800.0 * 0.12 / d, rel=1e-5)


def test_opencv_calibration_asks_for_the_unit_of_t(window, tmp_path, motorcycle, monkeypatch, dialogs):
    from pathlib import Path

    from PyQt6.QtWidgets import QInputDialog

    import depthapp

    folder = Path(depthapp.__file__).resolve().parent.parent / "calib" / "opencv_stereo_calib"
    write_image(tmp_path / "a_left.png", motorcycle.left[:480, :640])  # the file's 640x480
    write_image(tmp_path / "a_right.png", motorcycle.right[:480, :640])
    window.open_paths([tmp_path / "a_left.png", tmp_path / "a_right.png"])
    asked = []
    monkeypatch.setattr(QInputDialog, "getItem",
                        staticmethod(lambda *args, **kwargs: (asked.append(args[2]) or "mm", True)))
    window.open_paths([folder / "extrinsics.yml"])
    assert len(asked) == 1 and "extrinsics.yml" in asked[0] and not dialogs
    calibration = window.state.pair.calibration
    assert not calibration.rectified and 0.05 < np.linalg.norm(calibration.T) < 0.2  # mm -> m
    assert "raw" in window.calibration_label.text()


def test_weights_picker_for_learned_backends(window):
    names = dict(window.backends)
    learned = [n for n, problem in window.backends if problem is None
               and window.state.backend_class(n).learned]
    if not learned:
        pytest.skip(f"no learned backend can load here ({names})")
    assert not window.weights_combo.isVisibleTo(window)  # opencv-sgbm needs none
    window.state.set_backend(learned[0])
    assert window.weights_combo.isVisibleTo(window)
    items = [window.weights_combo.itemData(i) for i in range(window.weights_combo.count())]
    assert items[0] == "" and items[-1] == "__file__"
    from depthapp.weights import records_for

    assert {r.id for r in records_for(learned[0])} <= set(items)
    # The weights depthapp ships (models/*/weights_record.json) are offered like downloaded ones.
    if "gcnet" in learned:
        window.state.set_backend("gcnet")
        combo = window.weights_combo
        items = [combo.itemData(i) for i in range(combo.count())]
        assert "gcnet-paper-gcnet" in items
        assert combo.itemText(0) == "default (gcnet-paper-gcnet)"


@pytest.mark.network
def test_missing_weights_are_fetched_with_progress(window, monkeypatch, dialogs, mccnn_wheel_index):
    """The real fetch (download, SHA-256 check, extraction) behind the viewer's dialog, from a
    loopback PEP 503 index serving the mccnn wheel (fetched from the package index once)."""
    from PyQt6.QtWidgets import QMessageBox

    from depthapp.weights import verify

    weights_id = "mccnn-fast-middlebury"
    if "mccnn" not in dict(window.backends) or dict(window.backends)["mccnn"] is not None:
        pytest.skip(f"the mccnn backend cannot load here: {dict(window.backends).get('mccnn')}")
    questions = []
    monkeypatch.setattr(QMessageBox, "question", staticmethod(
        lambda parent, title, text, *a, **k: questions.append(text) or QMessageBox.StandardButton.Yes))
    window.state.set_backend("mccnn")
    combo = window.weights_combo
    assert combo.itemText(0) == f"default ({weights_id})"
    assert "missing" in combo.itemText(combo.findData(weights_id))
    assert not verify(weights_id).ok
    assert window._ensure_weights("mccnn")
    assert len(questions) == 1 and weights_id in questions[0]
    assert verify(weights_id).ok and not dialogs
    assert combo.itemText(combo.findData(weights_id)) == weights_id  # no longer "missing"
    assert window._ensure_weights("mccnn") and len(questions) == 1  # present: no question


def test_cli_screenshot(tmp_path, qapp):
    out = tmp_path / "shot.png"
    assert main(["gui", "--sample", "--screenshot", str(out), "--size", "1200x800"]) == 0
    image = read_image(out)
    assert image.shape == (800, 1200, 3)
    assert main(["gui", "--sample", "--screenshot", str(out)]) == 1  # exists, no --force
    assert main(["gui", "--screenshot", str(tmp_path / "x.png")]) == 2  # nothing to show
    assert main(["gui", "--sample", "left.png"]) == 2
    assert main(["gui", "--sample", "--screenshot", str(tmp_path / "y.png"), "--size", "400x300"]) == 2
    assert main(["gui", "--sample", "--block-size", "7", "--screenshot", str(out)]) == 2  # no --backend
    assert main(["gui", "--sample", "--backend", "opencv-bm", "--block-size", "21",
                 "--compare", "opencv-sgbm", "--screenshot", str(out), "--force"]) == 0
    assert read_image(out).shape == (940, 1500, 3)


def test_parameter_panel_is_generated_for_every_backend(qtbot):
    """Each backend's declared parameters become controls that show their defaults exactly
    (no rounding by a spin box's decimals, odd values kept odd) and carry their help."""
    from PyQt6.QtWidgets import QCheckBox, QComboBox

    from depthapp.backends import list_backends
    from depthapp.gui.param_panel import ParameterPanel

    panel = ParameterPanel()
    qtbot.addWidget(panel)
    checked = 0
    for info in list_backends():
        if info.cls is None or not info.cls.parameters:
            continue
        parameters = info.cls.parameters
        defaults = {p.name: p.default for p in parameters}
        panel.build(parameters, defaults)
        assert panel.values() == defaults, info.name
        for parameter in parameters:
            control = panel.controls[parameter.name]
            assert parameter.help in control.toolTip()
            expected = {"bool": QCheckBox, "choice": QComboBox}.get(parameter.kind)
            if expected is not None:
                assert isinstance(control, expected), (info.name, parameter.name)
            else:
                low = control.spin.minimum()
                assert parameter.minimum is None or low == pytest.approx(parameter.minimum)
                assert parameter.maximum is None or control.spin.maximum() == pytest.approx(parameter.maximum)
                assert (control.slider is not None) == (parameter.minimum is not None
                                                        and parameter.maximum is not None)
        checked += 1
    assert checked >= 2  # at least the two OpenCV backends


def test_extension_tabs_fail_alone(window, tmp_path, monkeypatch):
    """A panel module that raises on import, or a factory that raises, costs its tab a
    placeholder showing the error, never the viewer."""
    from PyQt6.QtWidgets import QLabel

    from depthapp.gui.live import ExtensionTab, Placeholder, create_extension

    (tmp_path / "ext_broken.py").write_text("raise RuntimeError('half-written module')\n")
    (tmp_path / "ext_failing.py").write_text(
        "def make(window, state):\n    raise ValueError('no camera')\n")
    (tmp_path / "ext_working.py").write_text(
        "from PyQt6.QtWidgets import QLabel\n"
        "def make(window, state):\n    return QLabel(f'panel for {state.backend}')\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    panel, ok = create_extension(ExtensionTab("Test", "ext_broken", "make"), window, window.state)
    assert not ok and isinstance(panel, Placeholder) and "half-written module" in panel.label.text()
    panel, ok = create_extension(ExtensionTab("Test", "ext_failing", "make"), window, window.state)
    assert not ok and "ValueError: no camera" in panel.label.text()
    panel, ok = create_extension(ExtensionTab("Test", "ext_working", "make"), window, window.state)
    assert ok and isinstance(panel, QLabel) and panel.text() == "panel for opencv-sgbm"
    assert window.isVisible()
