"""The guided stereo calibration wizard (issue 11): pattern, source, capture, calibrate, result.

A :class:`QWizard` over the Qt-free :class:`~depthapp.calibration.wizard.CalibrationWizardModel`;
the pages only render the model and forward what the user does.

1. Pattern: chessboard (inner corners, square size, units) or ChArUco board, with a picture of
   what is counted, and the calibration options (distortion model, rectification alpha,
   outlier views).
2. Source: image files (left/right globs or picked files, or a folder), or a live source
   through :mod:`depthapp.sources` (two cameras, a side-by-side camera, video files); the live
   option is disabled, with the reason, when that module is missing.
3. Capture: corners found in each pair drawn over it, the coverage map of each camera, the
   poses still missing and what to do about them; views are added by hand ("Add view") or
   automatically (files: every good pair; live: once the board has been held still).
4. Calibrate: runs in a worker ``QThread`` with a progress bar and Cancel; the window never
   waits for it.
5. Result: the rectified pair with horizontal guide lines, the epipolar error overall and per
   view, dropped views, the baseline; save as .json / .yaml / .xml; use it in the viewer.

Errors are dialogs (``report_error``), never a crash. :func:`open_calibration_wizard` opens it
as a window; :func:`create_wizard_panel` is the viewer's Calibration tab.
"""

from __future__ import annotations

import html
import logging
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import cv2
import numpy as np
from PyQt6.QtCore import QCoreApplication, QRectF, QSize, Qt, QThread, pyqtSignal
from PyQt6.QtGui import QColor, QPainter, QPixmap
from PyQt6.QtWidgets import (QAbstractItemView, QButtonGroup, QCheckBox, QComboBox, QDialog,
                             QDoubleSpinBox, QFileDialog, QFormLayout, QFrame, QGridLayout, QGroupBox,
                             QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListWidget,
                             QListWidgetItem, QMessageBox, QProgressBar, QPushButton,
                             QRadioButton, QScrollArea, QSizePolicy, QSpinBox, QSplitter,
                             QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget, QWizard,
                             QWizardPage)

from ..calibration.stereo_calibrate import ChessboardPattern, CharucoPattern, Pattern
from ..calibration.wizard import (POSE_LABELS, CalibrationWizardModel, Candidate,
                                  WizardResult, file_pairs, folder_pairs, inspect_files,
                                  render_candidate, render_coverage, render_pattern,
                                  render_rectified)
from ..errors import Cancelled, DepthAppError, InputError
from ..jobs import CancelToken, Progress
from ..sources import FrameTimeout, open_source
from .qt_util import guarded, rgb_to_pixmap, show_error

log = logging.getLogger("depthapp.gui")

PAGE_PATTERN, PAGE_SOURCE, PAGE_CAPTURE, PAGE_CALIBRATE, PAGE_RESULT = range(5)
UNITS = ("mm", "cm", "m")
MODELS = (("k1k2p", "k1 k2 p1 p2 (ordinary lenses)"),
          ("k1k2k3p", "k1 k2 k3 p1 p2 (strong distortion, many views)"),
          ("rational", "rational, 8 coefficients (wide-angle lenses)"))
# (key, label, needs a right source, what Browse opens)
LIVE_KINDS = (("cameras", "Two cameras", True, None),
              ("sbs-camera", "Side-by-side camera", False, None),
              ("videos", "Two video files", True, "file"),
              ("sbs-video", "Side-by-side video file", False, "file"))
SAVE_FILTERS = ("depthapp JSON (*.json);;OpenCV YAML (*.yaml *.yml);;OpenCV XML (*.xml)")
GOOD_HTML, WARN_HTML, BAD_HTML = "#2a9d4a", "#c77700", "#c62828"


# --------------------------------------------------------------------------- widgets and threads

class ImageLabel(QWidget):
    """An image scaled to fit, aspect kept, centred on a dark background."""

    def __init__(self, minimum: QSize = QSize(160, 120), parent: Optional[QWidget] = None,
                 background: Optional[QColor] = QColor(40, 40, 40)):
        super().__init__(parent)
        self._pixmap = QPixmap()
        self.background = background
        self.align_top = False
        self.placeholder = ""
        self.setMinimumSize(minimum)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_rgb(self, rgb: Optional[np.ndarray]) -> None:
        self._pixmap = rgb_to_pixmap(rgb) if rgb is not None else QPixmap()
        self.update()

    def pixmap(self) -> QPixmap:
        return self._pixmap

    def heightForWidth(self, width: int) -> int:
        if self._pixmap.isNull():
            return super().heightForWidth(width)
        return round(width * self._pixmap.height() / self._pixmap.width())

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        if self.background is not None:
            painter.fillRect(self.rect(), self.background)
        if self._pixmap.isNull():
            if self.placeholder:
                painter.setPen(QColor(170, 170, 170))
                painter.drawText(self.rect().adjusted(12, 12, -12, -12),
                                 Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        size = self._pixmap.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - size.width()) / 2
        y = 0 if self.align_top else (self.height() - size.height()) / 2
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.drawPixmap(QRectF(x, y, size.width(), size.height()), self._pixmap,
                           QRectF(self._pixmap.rect()))


class TaskThread(QThread):
    """Runs ``work(report, item, cancel)`` off the GUI thread: ``report(Progress)`` and
    ``item(object)`` become signals, and the outcome arrives as ``done(result, error)``."""

    progressed = pyqtSignal(object)
    produced = pyqtSignal(object)
    done = pyqtSignal(object, object)

    def __init__(self, work: Callable[..., Any], parent=None):
        super().__init__(parent)
        self.work = work
        self.cancel = CancelToken()

    def run(self) -> None:
        try:
            result = self.work(self.progressed.emit, self.produced.emit, self.cancel)
        except BaseException as error:  # handed to the GUI thread, never lost
            if not isinstance(error, DepthAppError):
                log.error("calibration wizard worker failed\n%s", traceback.format_exc())
            self.done.emit(None, error)
            return
        self.done.emit(result, None)

    def stop(self, wait_ms: int = 10000) -> None:
        self.cancel.cancel()
        self.wait(wait_ms)


class LiveThread(QThread):
    """Reads a live source and looks for the board in each frame (fast detector pass).

    One frame at a time is in flight: the thread waits until the GUI has taken the previous
    one, so a lossless source (video files) is read at the pace of the GUI and a live one
    drops what the GUI cannot keep up with (counted by the source).
    """

    frame = pyqtSignal(object)     # Candidate
    status = pyqtSignal(str)
    ended = pyqtSignal(object)     # None at the end of the stream, or the error

    def __init__(self, model: CalibrationWizardModel, open_source: Callable[[], Any], parent=None):
        super().__init__(parent)
        self.model = model
        self.open_source = open_source
        self._stop = threading.Event()
        self._taken = threading.Event()
        self._taken.set()
        self._source = None
        self._lock = threading.Lock()

    def taken(self) -> None:
        self._taken.set()

    def run(self) -> None:
        error = None
        try:
            source = self.open_source()
            with self._lock:
                self._source = source
            if self._stop.is_set():
                return
            source.open()
            self.status.emit(f"reading {source.description}")
            while not self._stop.is_set():
                try:
                    pair = source.read(timeout=0.5)
                except FrameTimeout:
                    self.status.emit(f"waiting for frames from {source.description}")
                    continue
                if pair is None:
                    break
                name = pair.name or f"frame {pair.index:06d}"
                candidate = self.model.inspect(name, pair.left, pair.right, thorough=False,
                                               source=f"{source.description}, frame {pair.index}")
                while not self._taken.wait(0.1):
                    if self._stop.is_set():
                        return
                self._taken.clear()
                self.frame.emit(candidate)
        except BaseException as exc:  # reported by the GUI as a dialog
            if not isinstance(exc, DepthAppError):
                log.error("live calibration source failed\n%s", traceback.format_exc())
            error = exc
        finally:
            with self._lock:
                source, self._source = self._source, None
            if source is not None:
                source.close()
            if not self._stop.is_set():
                self.ended.emit(error)

    def stop(self, wait_ms: int = 10000) -> None:
        self._stop.set()
        with self._lock:
            source = self._source
        if source is not None and getattr(source, "live", False):
            source.close()  # wakes a read() that waits for a camera (files end on their own)
        self.wait(wait_ms)


@dataclass
class FileSource:
    pairs: list
    notes: list
    description: str


@dataclass
class LiveSpec:
    open: Callable[[], Any]
    description: str


def _spin(low, high, value, decimals=None, suffix=""):
    spin = QSpinBox() if decimals is None else QDoubleSpinBox()
    if decimals is not None:
        spin.setDecimals(decimals)
    spin.setRange(low, high)
    spin.setValue(value)
    if suffix:
        spin.setSuffix(suffix)
    return spin


class _Page(QWizardPage):
    def report_error(self, title: str, message: str) -> None:
        self.wizard().report_error(title, message)

    @property
    def model(self) -> CalibrationWizardModel:
        return self.wizard().model


# --------------------------------------------------------------------------- 1. pattern

class PatternPage(_Page):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Calibration pattern")
        self.setSubTitle("Describe the board you print or show. Measure a printed square with a "
                         "ruler: the baseline (and so every depth) comes out in its units.")
        self.kind_chessboard = QRadioButton("Chessboard")
        self.kind_charuco = QRadioButton("ChArUco board")
        self.kind_charuco.setToolTip("a chessboard with ArUco markers in its white squares: "
                                     "corners are found even when part of it is hidden")
        self.kind_chessboard.setChecked(True)
        kinds = QButtonGroup(self)
        kinds.addButton(self.kind_chessboard)
        kinds.addButton(self.kind_charuco)

        self.columns = _spin(2, 60, 9)
        self.rows = _spin(2, 60, 6)
        self.columns.setToolTip("inner corners across: squares across minus one")
        self.rows.setToolTip("inner corners down: squares down minus one")
        chess = QWidget()
        chess_form = QFormLayout(chess)
        chess_form.addRow("inner corners across", self.columns)
        chess_form.addRow("inner corners down", self.rows)

        self.dictionary = QComboBox()
        names = sorted((n for n in dir(cv2.aruco) if n.startswith("DICT_") and not n.startswith("DICT_APRILTAG")),
                       key=lambda n: (n.split("_")[1], int(n.rsplit("_", 1)[-1]) if n.rsplit("_", 1)[-1].isdigit() else 0))
        names += sorted(n for n in dir(cv2.aruco) if n.startswith("DICT_APRILTAG"))
        self.dictionary.addItems(names)
        self.dictionary.setCurrentText("DICT_5X5_100")
        self.squares_across = _spin(3, 60, 7)
        self.squares_down = _spin(3, 60, 5)
        self.marker = _spin(0.001, 10000.0, 30.0, 3)
        self.legacy = QCheckBox("legacy layout (OpenCV < 4.6)")
        self.legacy.setToolTip("boards generated with OpenCV before 4.6 with an even number of "
                               "rows start with a marker in the other colour")
        charuco = QWidget()
        charuco_form = QFormLayout(charuco)
        charuco_form.addRow("ArUco dictionary", self.dictionary)
        charuco_form.addRow("squares across", self.squares_across)
        charuco_form.addRow("squares down", self.squares_down)
        charuco_form.addRow("marker size", self.marker)
        charuco_form.addRow("", self.legacy)

        self.chess_fields, self.charuco_fields = chess, charuco
        for form in (chess_form, charuco_form):
            form.setContentsMargins(0, 0, 0, 0)
        self.square = _spin(0.001, 10000.0, 25.0, 3)
        self.units = QComboBox()
        self.units.addItems(UNITS)
        size_row = QHBoxLayout()
        size_row.addWidget(self.square, 1)
        size_row.addWidget(self.units)
        common = QFormLayout()
        common.addRow("square size", size_row)

        self.model_combo = QComboBox()
        for key, label in MODELS:
            self.model_combo.addItem(label, key)
        for combo in (self.model_combo, self.dictionary):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(14)
        self.alpha = _spin(0.0, 1.0, 0.0, 2)
        self.alpha.setSingleStep(0.1)
        self.alpha.setToolTip("0: rectified images hold valid pixels only; 1: every source pixel "
                              "(black borders)")
        self.keep_outliers = QCheckBox("keep outlier views")
        self.keep_outliers.setToolTip("use every view, even those whose error stands out (they "
                                      "are dropped by default, and named in the result)")
        advanced = QGroupBox("Calibration options")
        advanced_form = QFormLayout(advanced)
        advanced_form.addRow("distortion model", self.model_combo)
        advanced_form.addRow("rectification alpha", self.alpha)
        advanced_form.addRow("", self.keep_outliers)

        self.picture = ImageLabel(QSize(160, 110), background=None)
        self.picture.align_top = True
        self.caption = QLabel()
        self.caption.setWordWrap(True)

        left = QVBoxLayout()
        left.addWidget(self.kind_chessboard)
        left.addWidget(self.kind_charuco)
        left.addWidget(self.chess_fields)
        left.addWidget(self.charuco_fields)
        left.addLayout(common)
        left.addWidget(advanced)
        left.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(self.caption)
        right.addWidget(self.picture, 1)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 3)
        layout.addLayout(right, 2)

        self.kind_charuco.toggled.connect(self._kind_changed)
        for signal in (self.kind_chessboard.toggled, self.columns.valueChanged, self.rows.valueChanged,
                       self.squares_across.valueChanged, self.squares_down.valueChanged,
                       self.dictionary.currentIndexChanged, self.legacy.toggled,
                       self.square.valueChanged, self.marker.valueChanged,
                       self.units.currentIndexChanged):
            signal.connect(self._update_picture)
        self._update_picture()

    def _kind_changed(self, charuco: bool) -> None:
        if charuco and self.marker.value() >= self.square.value():
            # Printed ChArUco boards usually have markers about 3/4 of the square.
            self.marker.setValue(round(self.square.value() * 0.75, 3))

    def set_pattern(self, pattern: Pattern) -> None:
        """Fill the fields from ``pattern``."""
        if isinstance(pattern, ChessboardPattern):
            self.kind_chessboard.setChecked(True)
            self.columns.setValue(pattern.columns)
            self.rows.setValue(pattern.rows)
        else:
            self.kind_charuco.setChecked(True)
            self.dictionary.setCurrentText(pattern.dictionary)
            self.squares_across.setValue(pattern.columns)
            self.squares_down.setValue(pattern.rows)
            self.marker.setValue(pattern.marker)
            self.legacy.setChecked(pattern.legacy)
        self.square.setValue(pattern.square)
        self.units.setCurrentText(pattern.units)

    def pattern(self) -> Pattern:
        """The pattern the fields describe (UsageError when they describe an impossible one)."""
        units = self.units.currentText()
        if self.kind_chessboard.isChecked():
            return ChessboardPattern(self.columns.value(), self.rows.value(), self.square.value(), units)
        return CharucoPattern(self.dictionary.currentText(), self.squares_across.value(),
                              self.squares_down.value(), self.square.value(), self.marker.value(),
                              units, self.legacy.isChecked())

    def _update_picture(self) -> None:
        charuco = self.kind_charuco.isChecked()
        self.chess_fields.setVisible(not charuco)
        self.charuco_fields.setVisible(charuco)
        try:
            pattern = self.pattern()
        except DepthAppError as error:
            self.picture.set_rgb(None)
            self.caption.setText(f"<span style='color:{BAD_HTML}'>{html.escape(str(error))}</span>")
            return
        self.picture.set_rgb(render_pattern(pattern, 420))
        if charuco:
            self.caption.setText(f"{pattern.columns} x {pattern.rows} squares, {pattern.square:g} "
                                 f"{pattern.units} squares with {pattern.marker:g} {pattern.units} "
                                 f"markers from {pattern.dictionary}.")
        else:
            self.caption.setText(f"{pattern.columns} x {pattern.rows} inner corners (the coloured "
                                 f"rings) = {pattern.columns + 1} x {pattern.rows + 1} squares of "
                                 f"{pattern.square:g} {pattern.units}.")

    @guarded("Calibration pattern")
    def _validate(self) -> bool:
        pattern = self.pattern()
        model = self.model
        if model.pattern is not None and pattern != model.pattern and model.views:
            if not self.wizard().confirm(
                    "Change the pattern?",
                    f"{len(model.views)} captured view(s) were found with the previous pattern "
                    f"({model.pattern.describe()}) and will be discarded."):
                return False
        model.set_pattern(pattern)
        options = model.options
        options.model = self.model_combo.currentData()
        options.alpha = self.alpha.value()
        options.keep_outliers = self.keep_outliers.isChecked()
        return True

    def validatePage(self) -> bool:
        return bool(self._validate())


# --------------------------------------------------------------------------- 2. source

class SourcePage(_Page):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Images")
        self.setSubTitle("Calibrate from image files, or capture views from live cameras.")
        self.use_files = QRadioButton("Image files")
        self.use_live = QRadioButton("Live source")
        self.use_files.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.use_files)
        group.addButton(self.use_live)

        self.folder = QLineEdit()
        self.folder.setPlaceholderText("a folder of left*/right* images, or left/ + right/ folders")
        self.left = QLineEdit()
        self.left.setPlaceholderText("glob like calib/left*.jpg, or files separated by ;")
        self.right = QLineEdit()
        self.right.setPlaceholderText("glob like calib/right*.jpg, or files separated by ;")
        files_box = QGroupBox()
        files_form = QFormLayout(files_box)
        files_form.addRow("folder", self._browse_row(self.folder, self._browse_folder))
        files_form.addRow(QLabel("or"))
        files_form.addRow("left images", self._browse_row(self.left, lambda: self._browse_files(self.left, "left")))
        files_form.addRow("right images", self._browse_row(self.right, lambda: self._browse_files(self.right, "right")))
        note = QLabel("Left and right images are paired by name (left01.jpg with right01.jpg).")
        note.setStyleSheet("color: palette(mid);")
        files_form.addRow(note)
        self.files_box = files_box

        self.live_kind = QComboBox()
        for key, label, _right, _browse in LIVE_KINDS:
            self.live_kind.addItem(label, key)
        self.live_left = QLineEdit("0")
        self.live_right = QLineEdit("1")
        self.live_left_label = QLabel("left camera")
        self.live_right_label = QLabel("right camera")
        self.live_browse_left = QPushButton("Browse...")
        self.live_browse_right = QPushButton("Browse...")
        self.live_browse_left.clicked.connect(lambda: self._browse_video(self.live_left))
        self.live_browse_right.clicked.connect(lambda: self._browse_video(self.live_right))
        live_box = QGroupBox()
        live_grid = QGridLayout(live_box)
        live_grid.addWidget(QLabel("source"), 0, 0)
        live_grid.addWidget(self.live_kind, 0, 1, 1, 2)
        live_grid.addWidget(self.live_left_label, 1, 0)
        live_grid.addWidget(self.live_left, 1, 1)
        live_grid.addWidget(self.live_browse_left, 1, 2)
        live_grid.addWidget(self.live_right_label, 2, 0)
        live_grid.addWidget(self.live_right, 2, 1)
        live_grid.addWidget(self.live_browse_right, 2, 2)
        self.live_note = QLabel("Cameras are given by index (0, 1) or device path (/dev/video2). "
                                "Hold the board still for a moment in each pose: views are "
                                "taken from still frames, so both cameras see the same moment.")
        self.live_note.setWordWrap(True)
        self.live_note.setStyleSheet("color: palette(mid);")
        live_grid.addWidget(self.live_note, 3, 0, 1, 3)
        self.live_box = live_box
        self.live_kind.currentIndexChanged.connect(self._sync)


        layout = QVBoxLayout(self)
        layout.addWidget(self.use_files)
        layout.addWidget(files_box)
        layout.addWidget(self.use_live)
        layout.addWidget(live_box)
        layout.addStretch(1)
        self.use_files.toggled.connect(self._sync)
        self._sync()

    @staticmethod
    def _browse_row(edit: QLineEdit, slot) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        button = QPushButton("Browse...")
        button.clicked.connect(slot)
        row.addWidget(button)
        return row

    def _sync(self) -> None:
        files = self.use_files.isChecked()
        self.files_box.setEnabled(files)
        self.live_box.setEnabled(not files)
        key = self.live_kind.currentData()
        _key, _label, needs_right, browse = next(k for k in LIVE_KINDS if k[0] == key)
        for widget in (self.live_right, self.live_right_label, self.live_browse_right):
            widget.setVisible(needs_right)
        self.live_browse_left.setVisible(browse is not None)
        self.live_browse_right.setVisible(browse is not None and needs_right)
        cameras = browse is None
        self.live_left_label.setText(("left camera" if needs_right else "camera") if cameras
                                     else ("left video" if needs_right else "video"))
        self.live_right_label.setText("right camera" if cameras else "right video")

    def _start_dir(self) -> str:
        return self.wizard().last_dir if self.wizard() else str(Path.cwd())

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of calibration images", self._start_dir())
        if folder:
            self.folder.setText(folder)
            self.wizard().last_dir = folder

    def _browse_files(self, edit: QLineEdit, side: str) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, f"{side.capitalize()} images", self._start_dir(),
                                                "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.ppm *.pgm *.webp);;All files (*)")
        if files:
            edit.setText("; ".join(files))
            self.folder.clear()
            self.wizard().last_dir = str(Path(files[0]).parent)

    def _browse_video(self, edit: QLineEdit) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Video file", self._start_dir(),
                                              "Videos (*.avi *.mkv *.mp4 *.mov *.webm);;All files (*)")
        if path:
            edit.setText(path)
            self.wizard().last_dir = str(Path(path).parent)

    def set_files(self, left: str = "", right: str = "", folder: str = "") -> None:
        self.use_files.setChecked(True)
        self.folder.setText(folder)
        self.left.setText(left)
        self.right.setText(right)

    def set_live(self, kind: str, left: str, right: str = "") -> None:
        self.use_live.setChecked(True)
        self.live_kind.setCurrentIndex(self.live_kind.findData(kind))
        self.live_left.setText(left)
        self.live_right.setText(right)

    def source(self):
        """The chosen source: a :class:`FileSource` (pairs resolved now) or a :class:`LiveSpec`."""
        if self.use_files.isChecked():
            folder = self.folder.text().strip()
            if folder:
                pairs, notes = folder_pairs(folder)
                return FileSource(pairs, notes, f"folder {folder}")
            split = lambda text: [p for p in (s.strip() for s in text.split(";")) if p]  # noqa: E731
            if not self.left.text().strip() or not self.right.text().strip():
                raise InputError("give a folder, or both the left and the right images")
            pairs, notes = file_pairs(split(self.left.text()), split(self.right.text()))
            return FileSource(pairs, notes, f"{len(pairs)} image pairs")
        key = self.live_kind.currentData()
        left, right = self.live_left.text().strip(), self.live_right.text().strip()
        if key in ("cameras", "videos"):
            if not left or not right:
                raise InputError("give both the left and the right source")
            open_source(left=left, right=right)  # checks the names now, opens later
            return LiveSpec(lambda: open_source(left=left, right=right), f"{left} + {right}")
        if not left:
            raise InputError("give the side-by-side source")
        open_source(sbs=left)
        return LiveSpec(lambda: open_source(sbs=left), left)

    @guarded("Images")
    def _validate(self) -> bool:
        self.wizard().source = self.source()
        return True

    def validatePage(self) -> bool:
        return bool(self._validate())


# --------------------------------------------------------------------------- 3. capture

class CapturePage(_Page):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Capture views")
        self.setSubTitle("Show the board in many poses: tilted each way, near and far, and over "
                         "every part of both images. Good views are added automatically.")
        self.candidates: list[Optional[Candidate]] = []
        self.current: Optional[Candidate] = None
        self.worker: Optional[TaskThread] = None
        self.live: Optional[LiveThread] = None
        self._inspected_source = None
        self._last_frame_view: Optional[str] = None

        self.overlay = ImageLabel(QSize(320, 140))
        self.overlay.placeholder = "The corners found in each pair appear here."
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)

        self.coverage_left = ImageLabel(QSize(120, 90))
        self.coverage_right = ImageLabel(QSize(120, 90))
        self.coverage_left_label = QLabel()
        self.coverage_right_label = QLabel()
        coverage = QGridLayout()
        coverage.addWidget(self.coverage_left, 0, 0)
        coverage.addWidget(self.coverage_right, 0, 1)
        coverage.addWidget(self.coverage_left_label, 1, 0)
        coverage.addWidget(self.coverage_right_label, 1, 1)
        self.poses = QLabel()
        self.poses.setTextFormat(Qt.TextFormat.RichText)
        self.poses.setWordWrap(True)
        self.hints = QLabel()
        self.hints.setTextFormat(Qt.TextFormat.RichText)
        self.hints.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.hints.setWordWrap(True)
        self.count = QLabel()
        self.count.setWordWrap(True)

        self.pairs_label = QLabel("Image pairs")
        self.pairs_list = QListWidget()
        self.pairs_list.currentRowChanged.connect(self._pair_selected)
        # Follow the inspection until the user picks a pair.
        self._following = True
        self.pairs_list.itemClicked.connect(lambda _item: setattr(self, "_following", False))
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.views_list = QListWidget()
        self.views_list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.views_list.currentRowChanged.connect(self._view_selected)
        self.auto = QCheckBox("Auto-capture good views")
        self.auto.setChecked(True)
        self.auto.setToolTip("files: every pair that passes the checks; live: a view once the "
                             "board has been held still for a moment")
        self.add_button = QPushButton("Add view")
        self.add_button.clicked.connect(lambda: self.add_current())
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(lambda: self.remove_selected())
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(lambda on: self.pause_button.setText("Resume" if on else "Pause"))
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addWidget(self.pause_button)

        side = QVBoxLayout()
        side.addWidget(self.pairs_label)
        side.addWidget(self.pairs_list, 2)
        side.addWidget(self.progress)
        side.addWidget(QLabel("Captured views"))
        side.addWidget(self.views_list, 2)
        side.addWidget(self.auto)
        side.addLayout(buttons)
        side_widget = QWidget()
        side_widget.setLayout(side)

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.overlay, 3)
        top_layout.addWidget(self.status)
        bottom = QWidget()
        bottom_layout = QHBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addLayout(coverage, 3)
        info_widget = QWidget()
        info = QVBoxLayout(info_widget)
        info.setContentsMargins(0, 0, 4, 0)
        info.addWidget(self.count)
        info.addWidget(self.poses)
        info.addWidget(self.hints)
        info.addStretch(1)
        info_scroll = QScrollArea()
        info_scroll.setWidget(info_widget)
        info_scroll.setWidgetResizable(True)
        info_scroll.setFrameShape(QFrame.Shape.NoFrame)
        info_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        bottom_layout.addWidget(info_scroll, 2)
        main = QSplitter(Qt.Orientation.Vertical)
        main.addWidget(top)
        main.addWidget(bottom)
        main.setStretchFactor(0, 1)
        main.setStretchFactor(1, 1)
        layout = QHBoxLayout(self)
        layout.addWidget(main, 4)
        layout.addWidget(side_widget, 1)

    # ---------------------------------------------------------------- lifecycle
    def initializePage(self) -> None:
        wizard = self.wizard()
        self.model.views_changed.connect(self._views_changed)
        self.model.pattern_changed.connect(self._pattern_changed)
        source = wizard.source
        live = isinstance(source, LiveSpec)
        for widget in (self.pairs_label, self.pairs_list, self.progress):
            widget.setVisible(not live)
        self.pause_button.setVisible(live)
        self.pause_button.setChecked(False)
        self._views_changed(self.model.views)

    def activate(self) -> None:
        """The page became current (forward, or back from a later page): read the source."""
        source = self.wizard().source
        if isinstance(source, LiveSpec):
            if self.live is None:
                self.start_live(source)
        elif source is not None and source is not self._inspected_source:
            self.start_inspection(source)

    def cleanupPage(self) -> None:
        self.stop()

    def validatePage(self) -> bool:
        self.stop()
        return True

    def isComplete(self) -> bool:
        return self.model.ready

    def stop(self) -> None:
        if self.worker is not None:
            worker, self.worker = self.worker, None
            if worker.isRunning():
                self._inspected_source = None  # unfinished: inspect again on return
                self.progress.setFormat("stopped")
            worker.stop()
        if self.live is not None:
            live, self.live = self.live, None
            live.stop()

    def _pattern_changed(self, _pattern) -> None:
        self._inspected_source = None

    # ---------------------------------------------------------------- files
    def start_inspection(self, source: FileSource) -> None:
        self.stop()
        self._inspected_source = source
        self.candidates = [None] * len(source.pairs)
        self._following = True
        self.pairs_list.clear()
        for name, _left, _right in source.pairs:
            self.pairs_list.addItem(QListWidgetItem(f"…  {name}"))
        self.progress.setRange(0, len(source.pairs))
        self.progress.setValue(0)
        self.progress.setFormat("looking for the board: %v / %m")
        model, pairs = self.model, source.pairs

        def work(_report, produce, cancel):
            inspect_files(model, pairs, on_candidate=lambda i, c: produce((i, c)), cancel=cancel)

        worker = TaskThread(work, self)
        worker.produced.connect(self._inspected)
        worker.done.connect(lambda _r, error, w=worker: self._inspection_done(w, error))
        self.worker = worker
        worker.start()
        if source.notes:
            self.status.setText("<br>".join(html.escape(n) for n in source.notes[:5]))

    def _inspected(self, item) -> None:
        index, candidate = item
        if index >= len(self.candidates):
            return
        self.candidates[index] = candidate
        if self.auto.isChecked() and candidate.acceptable:
            try:
                self.model.add(candidate)
            except InputError:
                pass  # became a near-duplicate of a view added meanwhile; its status says so
        self._refresh_pair_item(index)
        self.progress.setValue(index + 1)
        if self._following:
            self.pairs_list.setCurrentRow(index)
        elif self.pairs_list.currentRow() == index:
            self._show(candidate)

    def _inspection_done(self, worker: TaskThread, error) -> None:
        if worker is self.worker:
            self.worker = None
        if error is not None and not isinstance(error, Cancelled):
            self.report_error("Looking for the board", str(error))
        found = sum(1 for c in self.candidates if c is not None and c.view is not None)
        self.progress.setFormat(f"board in {found} of {len(self.candidates)}")
        self.progress.setToolTip(f"the board was found in both images of {found} of the "
                                 f"{len(self.candidates)} pairs")

    def _captured_name(self, candidate: Candidate) -> Optional[str]:
        for view in self.model.views:
            if (view.left is candidate.left and view.right is candidate.right) or (
                    candidate.source and view.source == candidate.source):
                return view.name
        return None

    def _refresh_pair_item(self, index: int) -> None:
        candidate = self.candidates[index]
        item = self.pairs_list.item(index)
        if candidate is None or item is None:
            return
        if self._captured_name(candidate):
            mark, colour, tip = "✓", GOOD_HTML, "captured"
        elif candidate.acceptable:
            mark, colour, tip = "○", GOOD_HTML, "good, not captured"
        elif candidate.can_force:
            mark, colour, tip = "!", WARN_HTML, candidate.describe()
        else:
            mark, colour, tip = "✗", BAD_HTML, candidate.describe()
        item.setText(f"{mark}  {candidate.name}")
        item.setForeground(QColor(colour))
        item.setToolTip(tip)

    def _pair_selected(self, row: int) -> None:
        if 0 <= row < len(self.candidates) and self.candidates[row] is not None:
            self._show(self.candidates[row])

    def _view_selected(self, row: int) -> None:
        views = self.model.views
        if self.live is None and 0 <= row < len(views):
            view = views[row]
            for index, candidate in enumerate(self.candidates):
                if candidate is not None and (candidate.left is view.left or candidate.source == view.source):
                    self.pairs_list.setCurrentRow(index)
                    return

    # ---------------------------------------------------------------- live
    def start_live(self, spec: LiveSpec) -> None:
        self.stop()
        self._inspected_source = None
        self.model._reset_tracking()
        live = LiveThread(self.model, spec.open, self)
        live.frame.connect(lambda candidate, t=live: self._frame(t, candidate))
        live.status.connect(lambda text: self.status.setText(html.escape(text)))
        live.ended.connect(lambda error, t=live: self._live_ended(t, error))
        self.live = live
        self.status.setText(f"opening {html.escape(spec.description)}...")
        live.start()

    def _frame(self, thread: LiveThread, candidate: Candidate) -> None:
        try:
            if thread is not self.live or self.pause_button.isChecked():
                return
            added = self.model.auto_capture(candidate) if self.auto.isChecked() else None
            self._show(candidate, just_added=added.name if added else None)
        finally:
            thread.taken()

    def _live_ended(self, thread: LiveThread, error) -> None:
        if thread is self.live:
            self.live = None
        if error is not None:
            self.report_error("Live source", str(error))
            self.status.setText(f"<span style='color:{BAD_HTML}'>{html.escape(str(error))}</span>")
        else:
            self.status.setText("The source has ended. " + self.status.text())

    # ---------------------------------------------------------------- views
    def _show(self, candidate: Candidate, just_added: Optional[str] = None) -> None:
        self.current = candidate
        self.overlay.set_rgb(render_candidate(candidate, self.model.pattern, 1280))
        captured = just_added or self._captured_name(candidate)
        if captured:
            text = f"<b style='color:{GOOD_HTML}'>Captured as {html.escape(captured)}.</b> "
            if candidate.pose is not None:
                text += html.escape(candidate.pose.describe())
        elif candidate.acceptable:
            text = f"<b style='color:{GOOD_HTML}'>Good view.</b> {html.escape(candidate.describe())}"
            if candidate.motion is not None:
                text += f" (moved {candidate.motion:.1f} px since the last frame: hold still to capture)"
        elif candidate.can_force:
            text = f"<b style='color:{WARN_HTML}'>Check:</b> {html.escape(candidate.describe())}"
        else:
            text = f"<b style='color:{BAD_HTML}'>Not usable:</b> {html.escape(candidate.describe())}"
        self.status.setText(text)
        self.add_button.setEnabled(candidate.view is not None and captured is None)

    @guarded("Add view")
    def add_current(self) -> None:
        candidate = self.current
        if candidate is None:
            raise InputError("no view to add yet")
        force = False
        if not candidate.acceptable and candidate.can_force:
            if not self.wizard().confirm("Add this view?", f"{candidate.describe()}\n\nAdd it anyway?"):
                return
            force = True
        self.model.add(candidate, force=force)
        self._show(candidate)

    def remove_selected(self) -> None:
        names = [item.data(Qt.ItemDataRole.UserRole) for item in self.views_list.selectedItems()]
        if not names and self.views_list.currentItem() is not None:
            names = [self.views_list.currentItem().data(Qt.ItemDataRole.UserRole)]
        for name in names:
            self.model.remove(name)
        if self.current is not None:
            self._show(self.current)

    def _views_changed(self, views) -> None:
        self.views_list.clear()
        for view in views:
            item = QListWidgetItem(view.name)
            item.setData(Qt.ItemDataRole.UserRole, view.name)
            item.setToolTip(f"{view.pose.describe()}; edges {view.edge_widths[0]:.1f}/"
                            f"{view.edge_widths[1]:.1f} px wide")
            self.views_list.addItem(item)
        for index in range(len(self.candidates)):
            self._refresh_pair_item(index)
        self.refresh_guidance()
        self.completeChanged.emit()

    def refresh_guidance(self) -> None:
        model = self.model
        coverage = model.coverage()
        for camera, (image, label) in enumerate(((self.coverage_left, self.coverage_left_label),
                                                 (self.coverage_right, self.coverage_right_label))):
            background = None
            if not model.views and self.current is not None:
                background = self.current.left if camera == 0 else self.current.right
            image.set_rgb(render_coverage(model, camera, 360, background))
            label.setText(f"{('Left', 'Right')[camera]} image: {coverage.fraction(camera):.0%} covered")
        seen = model.poses_seen()
        marks = []
        for name, views in seen.items():
            colour, mark = (GOOD_HTML, "✓") if views else (BAD_HTML, "✗")
            marks.append(f"<span style='color:{colour}'>{mark} {POSE_LABELS[name]}</span>")
        self.poses.setText("Poses: " + " &nbsp; ".join(marks))
        hints = model.hints()
        if hints:
            self.hints.setText("<b>Next:</b><ul style='margin-left:-20px'>"
                               + "".join(f"<li>{html.escape(h)}</li>" for h in hints[:5])
                               + (f"<li>... {len(hints) - 5} more</li>" if len(hints) > 5 else "")
                               + "</ul>")
        else:
            self.hints.setText(f"<b style='color:{GOOD_HTML}'>The views cover every pose and "
                               "region: ready to calibrate.</b>")
        count = len(model.views)
        colour = GOOD_HTML if count >= model.recommended_views else (WARN_HTML if model.ready else BAD_HTML)
        self.count.setText(f"<b style='color:{colour}'>{count} view{'s' if count != 1 else ''} captured</b> "
                           f"(at least {model.min_views} needed, {model.recommended_views}-20 recommended)")


# --------------------------------------------------------------------------- 4. calibrate

class CalibratePage(_Page):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Calibrating")
        self.setSubTitle("Both cameras, then their relative pose; views whose error stands out "
                         "are dropped and the fit is repeated.")
        self.worker: Optional[TaskThread] = None
        self.headline = QLabel()
        self.headline.setWordWrap(True)
        self.bar = QProgressBar()
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.cancel_button = QPushButton("Stop")
        self.cancel_button.clicked.connect(lambda: self.cancel())
        self.retry_button = QPushButton("Run again")
        self.retry_button.clicked.connect(lambda: self.start())
        buttons = QHBoxLayout()
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.retry_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.headline)
        layout.addWidget(self.bar)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        layout.addStretch(1)

    @property
    def running(self) -> bool:
        return self.worker is not None

    def initializePage(self) -> None:
        self.start()

    def cleanupPage(self) -> None:
        self.cancel()

    def isComplete(self) -> bool:
        return self.model.result is not None and not self.running

    def start(self) -> None:
        if self.running:
            return
        model = self.model
        model.result = None
        self.completeChanged.emit()
        self.headline.setText(f"Calibrating from {len(model.views)} views of the "
                              f"{html.escape(model.pattern.describe())}...")
        self.bar.setRange(0, 0)
        self.message.setText("")
        self.cancel_button.setEnabled(True)
        self.retry_button.setVisible(False)
        worker = TaskThread(lambda report, _produce, cancel: model.compute_calibration(report, cancel), self)
        worker.progressed.connect(self._progressed)
        worker.done.connect(lambda result, error, w=worker: self._done(w, result, error))
        self.worker = worker
        worker.start()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel.cancel()
            self.message.setText("Stopping after the current step...")
            self.cancel_button.setEnabled(False)

    def _progressed(self, progress: Progress) -> None:
        if progress.total:
            self.bar.setRange(0, int(progress.total))
            self.bar.setValue(int(min(progress.done, progress.total)))
        if progress.message:
            self.message.setText(html.escape(progress.message))

    def _done(self, worker: TaskThread, result: Optional[WizardResult], error) -> None:
        worker.wait()
        worker.deleteLater()
        if worker is not self.worker:
            return
        self.worker = None
        self.cancel_button.setEnabled(False)
        if error is None:
            self.model.set_result(result)
            self.bar.setRange(0, 1)
            self.bar.setValue(1)
            self.headline.setText(f"Done: RMS {result.rms:.3f} px, epipolar error "
                                  f"{result.epipolar_error:.3f} px.")
            self.completeChanged.emit()
            if self.wizard() is not None and self.wizard().currentPage() is self:
                self.wizard().next()
            return
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.retry_button.setVisible(True)
        if isinstance(error, Cancelled):
            self.headline.setText("Stopped.")
            self.message.setText("Go back to capture more views, or run it again.")
        elif isinstance(error, DepthAppError):
            self.headline.setText(f"<span style='color:{BAD_HTML}'>Calibration failed.</span>")
            self.message.setText(html.escape(str(error)))
            self.report_error("Calibration failed", str(error))
        else:
            self.headline.setText(f"<span style='color:{BAD_HTML}'>Calibration failed.</span>")
            text = (f"Unexpected error ({type(error).__name__}): {error}\n\nThis is a bug in "
                    "depthapp; the details are in the log.")
            self.message.setText(html.escape(text))
            self.report_error("Calibration failed", text)
        self.completeChanged.emit()


# --------------------------------------------------------------------------- 5. result

class ResultPage(_Page):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Result")
        self.setSubTitle("Rectified, every point lies on the same row in both images: the guide "
                         "lines cross the same features on the left and on the right.")
        self.headline = QLabel()
        self.headline.setTextFormat(Qt.TextFormat.RichText)
        font = self.headline.font()
        font.setPointSizeF(font.pointSizeF() * 1.35)
        self.headline.setFont(font)
        self.preview = ImageLabel(QSize(320, 140))
        self.preview_combo = QComboBox()
        self.preview_combo.currentIndexChanged.connect(self._show_preview)
        self.preview_info = QLabel()
        preview_row = QHBoxLayout()
        preview_row.addWidget(QLabel("Rectified view"))
        preview_row.addWidget(self.preview_combo)
        preview_row.addWidget(self.preview_info, 1)

        self.summary = QLabel()
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setWordWrap(True)
        self.warnings = QLabel()
        self.warnings.setWordWrap(True)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["View", "RMS left (px)", "RMS right (px)",
                                              "Epipolar (px)", "Status"])
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._table_selected)

        self.save_button = QPushButton("Save calibration...")
        self.save_button.clicked.connect(lambda: self.save_dialog())
        self.use_button = QPushButton("Use in the viewer")
        self.use_button.clicked.connect(lambda: self.use_in_viewer())
        self.saved = QLabel()
        self.saved.setWordWrap(True)
        self.saved.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.saved, 1)

        details = QVBoxLayout()
        details.addWidget(self.summary)
        details.addWidget(self.warnings)
        details.addStretch(1)
        lower = QHBoxLayout()
        lower.addLayout(details, 2)
        lower.addWidget(self.table, 3)
        lower_widget = QWidget()
        lower_widget.setLayout(lower)
        lower.setContentsMargins(0, 0, 0, 0)
        upper = QWidget()
        upper_layout = QVBoxLayout(upper)
        upper_layout.setContentsMargins(0, 0, 0, 0)
        upper_layout.addWidget(self.preview, 1)
        upper_layout.addLayout(preview_row)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(upper)
        split.addWidget(lower_widget)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.headline)
        layout.addWidget(split, 1)
        layout.addLayout(buttons)

    @property
    def result(self) -> Optional[WizardResult]:
        return self.model.result

    def initializePage(self) -> None:
        result = self.result
        if result is None:
            return
        self.saved.setText("")
        self.use_button.setVisible(self.wizard().state is not None)
        cal = result.calibration
        pattern = result.pattern
        used = result.used_views
        rows = [("RMS reprojection error", f"{result.rms:.3f} px"),
                ("Epipolar error", f"{result.epipolar_error:.3f} px (mean over {len(used)} views)"),
                ("Rectified rows", f"aligned to {result.report.rectified_row_error:.3f} px mean, "
                                   f"{result.report.rectified_row_error_max:.3f} px max"),
                ("Baseline", f"{result.baseline_in_units:.4g} {pattern.units}  "
                             f"(T = {', '.join(f'{v / (pattern.square_metres / pattern.square):.4g}' for v in cal.T)})"),
                ("Focal length", f"left {cal.K1[0, 0]:.1f} px, right {cal.K2[0, 0]:.1f} px, "
                                 f"rectified {cal.focal:.1f} px"),
                ("Images", f"{cal.image_size[0]} x {cal.image_size[1]}, {len(used)} views used"
                           + (f", {len(result.dropped)} dropped" if result.dropped else ""))]
        colour = WARN_HTML if result.warnings and (result.rms > 1 or result.epipolar_error > 1) else GOOD_HTML
        self.headline.setText(
            f"<span style='color:{colour}'><b>RMS {result.rms:.3f} px</b> &nbsp;&middot;&nbsp; "
            f"<b>epipolar error {result.epipolar_error:.3f} px</b></span> &nbsp;&middot;&nbsp; "
            f"baseline {result.baseline_in_units:.4g} {html.escape(pattern.units)}")
        self.summary.setText("<table cellspacing='4'>" + "".join(
            f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in rows)
            + "</table>")
        if result.warnings:
            self.warnings.setText("".join(f"<p style='color:{WARN_HTML}'>{html.escape(w)}</p>"
                                          for w in result.warnings))
        else:
            self.warnings.setText(f"<p style='color:{GOOD_HTML}'>Errors well under a pixel: a "
                                  "good calibration.</p>")
        self.table.setRowCount(len(result.per_view))
        for row, view in enumerate(result.per_view):
            values = [view.name, f"{view.rms_left:.3f}", f"{view.rms_right:.3f}",
                      f"{view.epipolar:.3f}", "used" if view.used else "dropped (outlier)"]
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                if column in (1, 2, 3):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if not view.used:
                    item.setForeground(QColor(WARN_HTML))
                self.table.setItem(row, column, item)
        self.preview_combo.blockSignals(True)
        self.preview_combo.clear()
        self.preview_combo.addItems([v.name for v in result.views])
        self.preview_combo.setCurrentText(used[0])
        self.preview_combo.blockSignals(False)
        self._show_preview()

    def _table_selected(self) -> None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        if len(rows) == 1 and self.result is not None:
            self.preview_combo.setCurrentText(self.result.per_view[rows.pop()].name)

    @guarded("Rectified preview")
    def _show_preview(self, *_args) -> None:
        result = self.result
        name = self.preview_combo.currentText()
        if result is None or not name:
            return
        preview = result.preview(name)
        self.preview.set_rgb(render_rectified(preview, 1400))
        self.preview_info.setText(f"its corners lie {preview.row_error:.3f} px apart vertically "
                                  f"on average ({preview.row_error_max:.3f} px at most)")

    def save(self, path, overwrite: bool = False) -> Path:
        """Write the calibration to ``path`` (the extension picks the format)."""
        written = self.result.save(path, overwrite=overwrite)
        self.saved.setText(f"Saved {html.escape(str(written))}")
        self.wizard().saved_path = written
        return written

    @guarded("Save calibration")
    def save_dialog(self) -> None:
        if self.result is None:
            raise InputError("nothing to save: the calibration has not run")
        wizard = self.wizard()
        start = str(Path(wizard.last_dir) / "calibration.yaml")
        path, chosen = QFileDialog.getSaveFileName(self, "Save calibration", start, SAVE_FILTERS)
        if not path:
            return
        if not Path(path).suffix:
            path += ".json" if "json" in chosen else (".xml" if "XML" in chosen else ".yaml")
        wizard.last_dir = str(Path(path).parent)
        # The file dialog has asked before replacing a file.
        self.save(path, overwrite=True)

    @guarded("Use calibration")
    def use_in_viewer(self) -> None:
        state = self.wizard().state
        if state is None or self.result is None:
            return
        state.set_calibration(self.result.calibration)
        self.saved.setText("The viewer now uses this calibration (pairs are rectified with it).")


# --------------------------------------------------------------------------- the wizard

class CalibrationWizard(QWizard):
    """The five pages over one :class:`CalibrationWizardModel`.

    Args:
        state: the viewer's :class:`~depthapp.gui.state.ViewerState`, to offer "Use in the
            viewer" on the result page.
        embedded: a panel inside the viewer (no window frame, no Cancel; Finish starts over).
        interactive: False records errors in ``errors`` without showing dialogs (scripts).
    """

    def __init__(self, parent: Optional[QWidget] = None, model: Optional[CalibrationWizardModel] = None,
                 state=None, embedded: bool = False, interactive: bool = True):
        super().__init__(parent)
        self.model = model or CalibrationWizardModel()
        self.state = state
        self.embedded = embedded
        self.interactive = interactive
        self.source = None
        self.saved_path: Optional[Path] = None
        self.last_dir = str(Path.cwd())
        self.errors: list[tuple[str, str]] = []
        self.setWindowTitle("Stereo calibration")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setOption(QWizard.WizardOption.HaveHelpButton, False)
        self.pattern_page = PatternPage()
        self.source_page = SourcePage()
        self.capture_page = CapturePage()
        self.calibrate_page = CalibratePage()
        self.result_page = ResultPage()
        for page_id, page in ((PAGE_PATTERN, self.pattern_page), (PAGE_SOURCE, self.source_page),
                              (PAGE_CAPTURE, self.capture_page), (PAGE_CALIBRATE, self.calibrate_page),
                              (PAGE_RESULT, self.result_page)):
            self.setPage(page_id, page)
        if self.model.pattern is not None:
            self.pattern_page.set_pattern(self.model.pattern)
        self.currentIdChanged.connect(self._page_shown)
        # Worker threads must end before Qt deletes them with this window or its parent.
        application = QCoreApplication.instance()
        if application is not None:
            application.aboutToQuit.connect(self.shutdown)
        if parent is not None:
            parent.destroyed.connect(self.shutdown)
        if embedded:
            self.setWindowFlags(Qt.WindowType.Widget)
            self.setOption(QWizard.WizardOption.NoCancelButton, True)
            self.setButtonText(QWizard.WizardButton.FinishButton, "Start over")
            self.finished.connect(self._start_over)
        self.resize(1150, 820)

    def _page_shown(self, page_id: int) -> None:
        if page_id == PAGE_CAPTURE:
            self.capture_page.activate()

    def _start_over(self, _code: int) -> None:
        self.restart()
        self.show()

    def report_error(self, title: str, message: str) -> None:
        self.errors.append((title, message))
        log.info("%s: %s", title, message)
        if self.interactive:
            show_error(self, title, message)

    def confirm(self, title: str, text: str) -> bool:
        if not self.interactive:
            return True
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def shutdown(self, *_args) -> None:
        """Stop every worker (the viewer calls this before closing)."""
        try:
            self.capture_page.stop()
            worker = self.calibrate_page.worker
            if worker is not None:
                worker.cancel.cancel()
                worker.wait(10000)
        except RuntimeError:  # the pages are already gone: so are their threads
            pass

    def done(self, code: int) -> None:
        self.shutdown()
        super().done(code)

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)


def open_calibration_wizard(parent: Optional[QWidget] = None, state=None) -> QDialog:
    """Open the wizard in its own window (not modal) and return it.

    ``state`` (default: ``parent.state`` when the parent is the viewer's main window) enables
    "Use in the viewer" on the result page.
    """
    if state is None:
        state = getattr(parent, "state", None)
    wizard = CalibrationWizard(parent, state=state)
    wizard.setWindowModality(Qt.WindowModality.NonModal)
    wizard.show()
    return wizard


def create_wizard_panel(window, state) -> CalibrationWizard:
    """The viewer's Calibration tab (the hook of :data:`depthapp.gui.live.CALIBRATION_TAB`)."""
    return CalibrationWizard(window, state=state, embedded=True,
                             interactive=getattr(window, "interactive", True))
