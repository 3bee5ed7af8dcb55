"""The live depth view widget: the left image beside the disparity or depth map, a colour
legend, range and colour controls, the values under the cursor, frame rate / latency / drops,
and record and snapshot buttons (keys R and S; D switches disparity/depth, A auto range).

It draws a :class:`~depthapp.camera.live_view.LiveViewModel` and forwards clicks to it; the
camera window of ``depthapp camera`` and the viewer's Live tab both use it. Questions to the
user go through two replaceable hooks, :attr:`LiveView.choose_folder` and
:attr:`LiveView.confirm`, so tests answer them without a modal dialog.
"""

from __future__ import annotations

from typing import Callable, Optional

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QKeySequence, QShortcut
from PyQt6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QHBoxLayout, QLabel,
                             QMessageBox, QPushButton, QSizePolicy, QSplitter, QVBoxLayout, QWidget)

from ..camera.live_view import LiveViewModel
from ..errors import DepthAppError, OutputExistsError
from ..visualize import COLORMAPS
from .image_view import ImageView, LegendBar
from .qt_util import rgb_to_pixmap


def _ask_folder(parent: QWidget, title: str) -> Optional[str]:
    return QFileDialog.getExistingDirectory(parent, title) or None


def _ask_yes_no(parent: QWidget, title: str, text: str) -> bool:
    answer = QMessageBox.question(parent, title, text)
    return answer == QMessageBox.StandardButton.Yes


class LiveView(QWidget):
    """Renders ``model``; see the module docstring."""

    def __init__(self, model: LiveViewModel, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.model = model
        self.calibration_file: Optional[str] = None
        # Hooks (tests replace them): a folder to record into, and "replace existing files?".
        self.choose_folder: Callable[[str], Optional[str]] = lambda title: _ask_folder(self, title)
        self.confirm: Callable[[str, str], bool] = lambda title, text: _ask_yes_no(self, title, text)
        self.last_error: Optional[str] = None
        self._hover = (-1, -1)
        self._build()
        model.changed.connect(self.refresh)
        model.recording_changed.connect(self._sync_record_button)
        model.message.connect(self.show_message)
        self.refresh()

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        self.quantity_combo = QComboBox()
        self.quantity_combo.addItem("Disparity (px)", "disparity")
        self.quantity_combo.addItem("Depth (m)", "depth")
        self.quantity_combo.setToolTip("what is shown beside the left image (key D)")
        self.quantity_combo.activated.connect(lambda _: self._act(
            self.model.set_quantity, self.quantity_combo.currentData()))
        self.range_combo = QComboBox()
        self.range_combo.addItem("auto range", "auto")
        self.range_combo.addItem("fixed range", "fixed")
        self.range_combo.setToolTip("auto: 1-99 % of each new map (key A); fixed: min .. max")
        self.range_combo.activated.connect(lambda _: self._range_edited())
        self.min_spin, self.max_spin = QDoubleSpinBox(), QDoubleSpinBox()
        for spin, tip in ((self.min_spin, "range minimum"), (self.max_spin, "range maximum")):
            spin.setRange(0.0, 10000.0)
            spin.setDecimals(2)
            spin.setKeyboardTracking(False)
            spin.setToolTip(tip + " (editing it fixes the range)")
            spin.valueChanged.connect(lambda _value: self._range_edited(fixed=True))
        self.colormap_combo = QComboBox()
        self.colormap_combo.addItems(list(COLORMAPS))
        self.colormap_combo.activated.connect(lambda _: self._act(
            self.model.set_colormap, self.colormap_combo.currentText()))
        self.record_button = QPushButton("Record (R)")
        self.record_button.setCheckable(True)
        self.record_button.setToolTip("record every processed pair into an empty folder")
        self.record_button.clicked.connect(lambda _checked: self.toggle_recording())
        self.snapshot_button = QPushButton("Snapshot (S)")
        self.snapshot_button.setToolTip("save the left and right images, disparity, depth and the "
                                        "coloured view of the newest pair")
        self.snapshot_button.clicked.connect(lambda: self.take_snapshot())
        # Two short rows rather than one long one: the view fits beside the viewer's docks
        # at 1280x720.
        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        for widget in (self.quantity_combo, self.colormap_combo):
            controls.addWidget(widget)
        controls.addStretch(1)
        controls.addWidget(self.record_button)
        controls.addWidget(self.snapshot_button)
        range_row = QHBoxLayout()
        range_row.setContentsMargins(0, 0, 0, 0)
        for widget in (self.range_combo, QLabel("min"), self.min_spin, QLabel("max"), self.max_spin):
            range_row.addWidget(widget)
        range_row.addStretch(1)

        self.left_view, self.map_view = ImageView(), ImageView()
        self.legend = LegendBar()
        self.legend.hide()
        self.left_caption, self.map_caption = QLabel("Left"), QLabel("")
        for caption in (self.left_caption, self.map_caption):
            caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        splitter = self.splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        for caption, view, legend in ((self.left_caption, self.left_view, None),
                                      (self.map_caption, self.map_view, self.legend)):
            holder = QWidget()
            column = QVBoxLayout(holder)
            column.setContentsMargins(1, 1, 1, 1)
            column.setSpacing(1)
            column.addWidget(caption)
            column.addWidget(view, 1)
            if legend is not None:
                column.addWidget(legend)
            else:  # side by side, both images keep the same height
                self.legend_spacer = QWidget()
                self.legend_spacer.setFixedHeight(self.legend.height())
                column.addWidget(self.legend_spacer)
            splitter.addWidget(holder)
        for view in (self.left_view, self.map_view):
            view.hovered.connect(self._hovered)
        self.readout_label = QLabel("Hover over an image for the disparity and depth.")
        self.readout_label.setStyleSheet("font-family: monospace;")
        self.readout_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.stats_label = QLabel("")
        self.stats_label.setWordWrap(True)
        self.message_label = QLabel("")
        self.message_label.setWordWrap(True)
        self.message_label.setStyleSheet("color: palette(dark);")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(controls)
        layout.addLayout(range_row)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.readout_label)
        layout.addWidget(self.stats_label)
        layout.addWidget(self.message_label)
        for key, slot in (("R", self.toggle_recording), ("S", self.take_snapshot),
                          ("D", self.toggle_quantity), ("A", self.auto_range)):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        # Side by side when there is width to spare, one above the other when narrow (the
        # viewer's Live tab between its docks): the images stay as large as they can be.
        wide = self.width() >= 1.5 * self.splitter.height()
        orientation = Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical
        if orientation != self.splitter.orientation():
            self.splitter.setOrientation(orientation)
            self.splitter.setSizes([10_000, 10_000])  # halves
        self.legend_spacer.setVisible(wide)

    # ------------------------------------------------------------------ rendering
    def refresh(self) -> None:
        model = self.model
        for widget in (self.quantity_combo, self.range_combo, self.min_spin, self.max_spin,
                       self.colormap_combo):
            widget.blockSignals(True)
        self.quantity_combo.setCurrentIndex(self.quantity_combo.findData(model.quantity))
        depth_item = self.quantity_combo.model().item(1)
        if depth_item is not None:
            depth_item.setEnabled(model.frame is None or model.has_depth)
            depth_item.setToolTip("" if model.frame is None or model.has_depth
                                  else "needs a calibration")
        self.range_combo.setCurrentIndex(self.range_combo.findData(model.range_mode))
        vmin, vmax = model.value_range()
        unit = " px" if model.quantity == "disparity" else " m"
        for spin, value in ((self.min_spin, vmin), (self.max_spin, vmax)):
            spin.setSuffix(unit)
            spin.setValue(value)
        self.colormap_combo.setCurrentText(model.colormap)
        for widget in (self.quantity_combo, self.range_combo, self.min_spin, self.max_spin,
                       self.colormap_combo):
            widget.blockSignals(False)
        images = model.render()
        if images is not None:
            self.left_view.set_image(rgb_to_pixmap(images.left))
            if images.coloured is not None:
                self.map_view.set_image(rgb_to_pixmap(images.coloured))
            self.map_caption.setText(images.caption)
            self.left_caption.setText(f"Left (pair {model.frame.number})")
        self.legend.set_legend(images.legend if images is not None else None)
        self._show_readout()
        self.stats_label.setText(model.status_text())
        self._sync_record_button(model.recording)

    def _sync_record_button(self, recording: bool) -> None:
        self.record_button.blockSignals(True)
        self.record_button.setChecked(recording)
        self.record_button.setText("Stop recording (R)" if recording else "Record (R)")
        self.record_button.blockSignals(False)

    def _hovered(self, x: int, y: int) -> None:
        self._hover = (x, y)
        for view in (self.left_view, self.map_view):
            view.show_crosshair(x, y)
        self._show_readout()

    def point_at(self, x: int, y: int) -> None:
        """Show the readout and crosshair of pixel ``(x, y)`` as if the mouse were there."""
        self._hovered(x, y)

    def _show_readout(self) -> None:
        readout = self.model.readout(*self._hover) if self._hover[0] >= 0 else None
        self.readout_label.setText(readout.text() if readout is not None
                                   else "Hover over an image for the disparity and depth.")

    def show_message(self, text: str) -> None:
        self.message_label.setText(text)
        window = self.window()
        if window is not self and hasattr(window, "notify"):
            window.notify(text, 8000)

    def _fail(self, error: DepthAppError) -> None:
        self.last_error = str(error)
        self.show_message(f"Error: {error}")

    def _act(self, action, *args) -> bool:
        try:
            action(*args)
            return True
        except DepthAppError as error:
            self._fail(error)
            self.refresh()  # the widgets show the model again, not the refused edit
            return False

    # ------------------------------------------------------------------ actions
    def _range_edited(self, fixed: bool = False) -> None:
        mode = "fixed" if fixed else self.range_combo.currentData()
        if mode == "fixed":
            self._act(self.model.set_range, "fixed", self.min_spin.value(), self.max_spin.value())
        else:
            self._act(self.model.set_range, "auto")

    def toggle_quantity(self) -> None:
        self._act(self.model.set_quantity,
                  "depth" if self.model.quantity == "disparity" else "disparity")

    def auto_range(self) -> None:
        self._act(self.model.set_range, "auto")

    def toggle_recording(self) -> bool:
        """Stop recording, or ask for a folder and start; True while recording."""
        if self.model.recording:
            self._act(self.model.stop_recording)
            return False
        folder = self.choose_folder("Record into a folder")
        if folder:
            self.start_recording(folder)
        self._sync_record_button(self.model.recording)
        return self.model.recording

    def start_recording(self, folder: str) -> bool:
        """Record into ``folder``; a folder holding files is replaced only if the user agrees."""
        try:
            self.model.start_recording(folder, calibration_file=self.calibration_file)
        except OutputExistsError as error:
            if not self.confirm("Replace the recording?",
                                f"{error}\n\nReplace the recording in {folder}?"):
                self._fail(error)
                return False
            return self._act(self.model.start_recording, folder, True, self.calibration_file)
        except DepthAppError as error:
            self._fail(error)
            return False
        self.show_message(f"recording to {folder}")
        return True

    def take_snapshot(self) -> list:
        """Save the newest pair; existing files are replaced only if the user agrees."""
        try:
            return self.model.snapshot()
        except OutputExistsError as error:
            if self.confirm("Replace the snapshot?", f"{error}\n\nReplace the existing files?"):
                try:
                    return self.model.snapshot(overwrite=True)
                except DepthAppError as again:
                    self._fail(again)
            else:
                self._fail(error)
        except DepthAppError as error:
            self._fail(error)
        return []
