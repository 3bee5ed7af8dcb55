"""The calibration wizard driven offscreen (pytest-qt) on OpenCV's real stereo chessboard pairs
(Debian opencv-doc): image files and video files as the source, calibration in a worker thread
with cancel, the result page, saving, the viewer's Calibration tab."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from depthapp.calibration import read_calibration
from depthapp.calibration.chessboard_data import PATTERN_SIZE, SQUARE_MM, chessboard_pairs
from depthapp.calibration.stereo_calibrate import ChessboardPattern, calibrate_stereo, detect_views
from depthapp.errors import OutputExistsError
from depthapp.io.images import read_image

NAMES = [f"{n:02d}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14)]
PATTERN = ChessboardPattern(*PATTERN_SIZE, SQUARE_MM, "mm")


@pytest.fixture(scope="module")
def chessboards(request):
    from depthapp.calibration.chessboard_data import opencv_doc_chessboards
    from depthapp.errors import InputError

    try:
        return opencv_doc_chessboards(request.config.cache.mkdir("depthapp-opencv-doc"))
    except InputError as error:
        if os.environ.get("DEPTHAPP_OFFLINE"):
            pytest.skip(f"DEPTHAPP_OFFLINE set: {error}")
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def reference(chessboards):
    """What ``depthapp calibrate`` computes from the same 13 pairs."""
    pairs = [(name, read_image(left, grey=True), read_image(right, grey=True))
             for name, left, right in chessboard_pairs(chessboards)]
    return calibrate_stereo(detect_views(pairs, PATTERN), PATTERN)


@pytest.fixture
def wizard(qtbot):
    from depthapp.gui.calibration_wizard import CalibrationWizard

    wiz = CalibrationWizard()
    qtbot.addWidget(wiz)
    wiz.show()
    qtbot.waitExposed(wiz)
    yield wiz
    wiz.shutdown()


def fill_pattern(wizard, columns=9, rows=6, square=25.0, units="mm"):
    page = wizard.pattern_page
    page.kind_chessboard.setChecked(True)
    page.columns.setValue(columns)
    page.rows.setValue(rows)
    page.square.setValue(square)
    page.units.setCurrentText(units)


def to_capture_with_files(wizard, qtbot, folder):
    from depthapp.gui.calibration_wizard import PAGE_CAPTURE

    fill_pattern(wizard)
    wizard.next()
    wizard.source_page.set_files(left=str(folder / "left??.jpg"), right=str(folder / "right??.jpg"))
    wizard.next()
    assert wizard.currentId() == PAGE_CAPTURE
    qtbot.waitUntil(lambda: wizard.capture_page.worker is None, timeout=30000)


def test_files_to_saved_calibration(wizard, qtbot, chessboards, reference, tmp_path, monkeypatch, dialogs):
    from PyQt6.QtWidgets import QFileDialog

    from depthapp.gui.calibration_wizard import PAGE_RESULT

    to_capture_with_files(wizard, qtbot, chessboards)
    capture = wizard.capture_page
    assert wizard.model.view_names == [f"left{n}.jpg" for n in NAMES]
    assert [capture.pairs_list.item(i).text() for i in range(3)] == ["✓  left01.jpg", "✓  left02.jpg", "✓  left03.jpg"]
    assert capture.progress.format() == "board in 13 of 13"
    assert "13 views captured" in capture.count.text()
    assert "✗ far" in capture.poses.text() and "✓ right edge back" in capture.poses.text()
    assert "Move the board farther away" in capture.hints.text()
    assert capture.coverage_left_label.text().startswith("Left image: ")
    assert not capture.overlay.pixmap().isNull() and capture.isComplete()
    capture.grab().save(str(tmp_path / "capture.png"))

    wizard.next()  # calibrates in a worker thread, then moves on by itself
    qtbot.waitUntil(lambda: wizard.currentId() == PAGE_RESULT, timeout=30000)
    page = wizard.result_page
    headline = page.headline.text()
    assert f"RMS {reference.rms:.3f} px" in headline
    assert f"epipolar error {reference.epipolar_error:.3f} px" in headline
    assert "baseline 83.1" in headline and "mm" in headline
    assert page.table.rowCount() == 13
    assert page.table.item(0, 0).text() == "left01.jpg" and page.table.item(0, 4).text() == "used"
    assert float(page.table.item(0, 3).text()) == pytest.approx(reference.views[0].epipolar, abs=1e-3)
    assert "corners lie 0.1" in page.preview_info.text()
    assert not page.preview.pixmap().isNull()
    assert "a good calibration" in page.warnings.text()
    page.table.selectRow(5)
    assert page.preview_combo.currentText() == "left06.jpg"

    shot = tmp_path / "result.png"
    assert wizard.grab().save(str(shot))
    picture = read_image(shot)
    assert picture.shape[:2] == (wizard.height(), wizard.width())

    target = tmp_path / "rig.yaml"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *args, **kwargs: (str(target), "OpenCV YAML (*.yaml *.yml)")))
    page.save_button.click()
    assert dialogs == [] and f"Saved {target}" in page.saved.text()
    saved = read_calibration(target)
    np.testing.assert_allclose(saved.K1, reference.calibration.K1, rtol=1e-6)
    assert saved.baseline == pytest.approx(reference.baseline, rel=1e-6)
    written = page.save(tmp_path / "rig.json")
    assert read_calibration(written).baseline == pytest.approx(reference.baseline, rel=1e-6)
    with pytest.raises(OutputExistsError):
        page.save(tmp_path / "rig.json")
    # A name the writers do not know: an error dialog naming the file, not a crash.
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *args, **kwargs: (str(tmp_path / "rig.txt"), "depthapp JSON (*.json)")))
    page.save_button.click()
    assert dialogs[-1][0] == "Save calibration" and "rig.txt: unknown calibration extension" in dialogs[-1][1]
    assert not (tmp_path / "rig.txt").exists()


def test_bad_input_becomes_a_dialog_and_keeps_the_page(wizard, qtbot, chessboards, dialogs):
    from depthapp.gui.calibration_wizard import PAGE_PATTERN, PAGE_SOURCE

    fill_pattern(wizard, columns=7, rows=7)
    wizard.next()
    assert wizard.currentId() == PAGE_PATTERN
    assert dialogs[-1][0] == "Calibration pattern" and "ambiguous" in dialogs[-1][1]
    fill_pattern(wizard)
    wizard.next()
    assert wizard.currentId() == PAGE_SOURCE
    wizard.source_page.set_files(left=str(chessboards / "nothing*.png"), right=str(chessboards / "right??.jpg"))
    wizard.next()
    assert wizard.currentId() == PAGE_SOURCE
    assert dialogs[-1] == ("Images", f"left images {chessboards / 'nothing*.png'}: no files match")
    wizard.source_page.set_files()
    wizard.next()
    assert dialogs[-1] == ("Images", "give a folder, or both the left and the right images")


def test_calibration_cancel_and_run_again(wizard, qtbot, chessboards):
    from depthapp.gui.calibration_wizard import PAGE_CALIBRATE, PAGE_RESULT

    to_capture_with_files(wizard, qtbot, chessboards)
    wizard.next()
    page = wizard.calibrate_page
    assert wizard.currentId() == PAGE_CALIBRATE and page.running
    page.cancel()  # right away: the worker stops after its current step
    qtbot.waitUntil(lambda: not page.running, timeout=30000)
    assert page.headline.text() == "Stopped." and not page.isComplete()
    assert page.retry_button.isVisible() and wizard.model.result is None
    page.retry_button.click()
    qtbot.waitUntil(lambda: wizard.currentId() == PAGE_RESULT, timeout=30000)
    assert wizard.model.result is not None


def test_removing_views_until_too_few(wizard, qtbot, chessboards):
    to_capture_with_files(wizard, qtbot, chessboards)
    capture = wizard.capture_page
    capture.views_list.selectAll()
    capture.remove_selected()
    assert wizard.model.views == [] and not capture.isComplete()
    assert "Capture 10 more views" in capture.hints.text()
    assert capture.pairs_list.item(0).text() == "○  left01.jpg"  # good, no longer captured
    capture.pairs_list.setCurrentRow(2)
    capture.add_button.click()
    assert wizard.model.view_names == ["left03.jpg"]
    assert capture.pairs_list.item(2).text() == "✓  left03.jpg"


def write_video(path, frames):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10.0,
                             (frames[0].shape[1], frames[0].shape[0]))
    assert writer.isOpened(), "this OpenCV build cannot write FFV1"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def test_live_source_from_video_files(wizard, qtbot, chessboards, tmp_path):
    """Two lossless videos of six board poses, each held still for four frames: the live
    path (depthapp.sources' open_source, fast detection, still-board auto-capture) takes one
    view per pose, never a duplicate, and calibrates."""
    from depthapp.gui.calibration_wizard import PAGE_CAPTURE, PAGE_RESULT

    poses = ["01", "03", "05", "09", "11", "13"]
    lefts, rights = [], []
    for number in poses:
        left = read_image(chessboards / f"left{number}.jpg", grey=True)
        right = read_image(chessboards / f"right{number}.jpg", grey=True)
        lefts += [left] * 4
        rights += [right] * 4
    left_video = write_video(tmp_path / "left.avi", lefts)
    right_video = write_video(tmp_path / "right.avi", rights)

    fill_pattern(wizard)
    wizard.next()
    assert wizard.source_page.use_live.isEnabled()
    wizard.source_page.set_live("videos", str(left_video), str(right_video))
    wizard.next()
    assert wizard.currentId() == PAGE_CAPTURE
    qtbot.waitUntil(lambda: wizard.capture_page.live is None, timeout=30000)
    assert "The source has ended" in wizard.capture_page.status.text()
    assert wizard.model.view_names == [f"left {4 * k + 2:06d}" for k in range(len(poses))]
    wizard.next()
    qtbot.waitUntil(lambda: wizard.currentId() == PAGE_RESULT, timeout=30000)
    result = wizard.model.result
    assert result.rms < 0.3 and result.baseline_in_units == pytest.approx(83.2, abs=1.5)
    warnings = wizard.result_page.warnings.text()
    assert "only 6 views used" in warnings and "a good calibration" not in warnings


def test_closing_the_parent_stops_a_running_live_source(qtbot, chessboards, tmp_path):
    """Qt aborts the process when a running QThread is deleted: the wizard must stop its
    reader when its parent window goes, mid-stream."""
    from PyQt6.QtWidgets import QWidget

    from depthapp.gui.calibration_wizard import open_calibration_wizard

    left = write_video(tmp_path / "left.avi", [read_image(chessboards / "left01.jpg", grey=True)] * 40)
    right = write_video(tmp_path / "right.avi", [read_image(chessboards / "right01.jpg", grey=True)] * 40)
    parent = QWidget()
    wizard = open_calibration_wizard(parent)
    wizard.interactive = False
    fill_pattern(wizard)
    wizard.next()
    wizard.source_page.set_live("videos", str(left), str(right))
    wizard.next()
    live = wizard.capture_page.live
    qtbot.waitUntil(lambda: bool(wizard.model.views), timeout=30000)  # reading, mid-stream
    assert live.isRunning()  # ~37 frames to go
    stopped = []
    live.finished.connect(lambda: stopped.append(True))
    parent.deleteLater()
    qtbot.waitUntil(lambda: bool(stopped), timeout=30000)


def test_open_calibration_wizard_window(qtbot):
    from PyQt6.QtWidgets import QDialog

    from depthapp.gui.calibration_wizard import open_calibration_wizard

    dialog = open_calibration_wizard()
    qtbot.addWidget(dialog)
    assert isinstance(dialog, QDialog) and dialog.isVisible() and not dialog.isModal()
    assert dialog.windowTitle() == "Stereo calibration"
    assert not dialog.result_page.use_button.isVisibleTo(dialog)  # no viewer to hand it to


def test_viewer_calibration_tab_uses_the_result(window, qtbot, chessboards, wait_idle):
    """The viewer's Calibration tab hosts the wizard; its result goes to the viewer."""
    from depthapp.gui.calibration_wizard import PAGE_PATTERN, PAGE_RESULT, CalibrationWizard

    holder = window._extensions["Calibration"]
    window.tabs.setCurrentIndex(window.tabs.indexOf(holder))
    panel = holder.findChild(CalibrationWizard)
    assert panel is not None and panel.state is window.state and panel.embedded
    qtbot.waitUntil(lambda: panel.isVisible() and panel.currentId() == PAGE_PATTERN)
    to_capture_with_files(panel, qtbot, chessboards)
    panel.next()
    qtbot.waitUntil(lambda: panel.currentId() == PAGE_RESULT, timeout=30000)
    assert panel.result_page.use_button.isVisibleTo(panel)
    panel.result_page.use_button.click()
    calibration = window.state.calibration
    assert calibration is panel.model.result.calibration and not calibration.rectified
    assert "now uses this calibration" in panel.result_page.saved.text()
