"""The viewer's Live mode: the panel behind the "Live" tab (the hook of :mod:`depthapp.gui.live`).

The panel picks a source (two cameras, a side-by-side camera, two video files, a side-by-side
video, an image folder or recording) and starts and stops a :class:`~depthapp.camera.CameraLoop`
on a worker thread. Beside the picker is the live depth view that ``depthapp camera`` shows too
(:class:`depthapp.gui.live_view.LiveView` over a :class:`~depthapp.camera.live_view.LiveViewModel`):
the left image beside disparity or depth with its legend and range, the values under the
cursor, frame rate, latency and drops, record and snapshot.
Every processed pair is also handed to the viewer on the GUI thread with
``state.present(output, backend, seconds)``, so every view of the viewer (disparity, depth,
hover readout, 3-D cloud, saving) follows the live stream. The loop uses the viewer's current
backend, parameters, device, weights, disparity range and calibration, and follows their
changes while it runs.

Only the newest processed pair is delivered to the GUI: when drawing is slower than the loop,
intermediate results are skipped on screen (they are still recorded).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                             QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from ..errors import DepthAppError, InputError
from ..gui.live_view import LiveView
from .live_view import LiveViewModel
from .loop import CameraLoop, LiveFrame, LoopStats
from ..sources import FrameSource, open_source

# (key, label, needs a right source, what "Browse" opens: None | "file" | "folder")
SOURCE_KINDS = (
    ("cameras", "Two cameras", True, None),
    ("sbs-camera", "Side-by-side camera", False, None),
    ("videos", "Two video files", True, "file"),
    ("sbs-video", "Side-by-side video file", False, "file"),
    ("folder", "Image folder or recording", False, "folder"),
    ("bag", "ROS bag (.bag, .mcap, .db3)", False, "file"),
)
_KIND = {key: (label, needs_right, browse) for key, label, needs_right, browse in SOURCE_KINDS}


def create_live_panel(window, state) -> "LivePanel":
    """The factory :mod:`depthapp.gui.live` calls when the Live tab is first shown."""
    return LivePanel(state, window)


class LivePanel(QWidget):
    """Source picker and start/stop beside the live depth view of the stream."""

    frame_ready = pyqtSignal()
    loop_ended = pyqtSignal()
    status_message = pyqtSignal(str)

    def __init__(self, state, window=None, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.state = state
        self.window = window
        self.loop: Optional[CameraLoop] = None
        self.model = LiveViewModel()
        self.last_stats: Optional[LoopStats] = None
        self.error: Optional[str] = None
        self.presented = 0
        self._thread: Optional[threading.Thread] = None
        self._latest: Optional[LiveFrame] = None
        self._pending = False
        self._lock = threading.Lock()
        self._backend_name = ""
        self._auto_recompute: Optional[bool] = None
        self._build()
        self.frame_ready.connect(self._deliver)
        self.loop_ended.connect(self._ended)
        self.status_message.connect(self._show_status)
        for signal in (state.backend_changed, state.parameters_changed, state.device_changed,
                       state.weights_changed, state.model_file_changed, state.max_disp_changed):
            signal.connect(self._backend_settings_changed)
        state.calibration_changed.connect(self._calibration_changed)
        self.ticker = QTimer(self)
        self.ticker.setInterval(500)
        self.ticker.timeout.connect(self._refresh_stats)
        self._kind_changed()
        self.live_view.calibration_file = self._calibration_file()

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        self.kind = QComboBox()
        for key, label, _, _ in SOURCE_KINDS:
            self.kind.addItem(label, key)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.left_edit, self.right_edit = QLineEdit("0"), QLineEdit("1")
        self.left_browse, self.right_browse = QPushButton("Browse..."), QPushButton("Browse...")
        self.left_browse.clicked.connect(lambda: self._browse(self.left_edit))
        self.right_browse.clicked.connect(lambda: self._browse(self.right_edit))
        self.realtime = QCheckBox("Real time")
        self.realtime.setToolTip("pace files by their frame rate and drop the frames processing "
                                 "cannot keep up with, like a camera")
        self.width_spin, self.height_spin = QSpinBox(), QSpinBox()
        for spin in (self.width_spin, self.height_spin):
            spin.setRange(0, 8192)
            spin.setSpecialValueText("default")
            spin.setToolTip("the frame size asked of the camera (0: its default)")
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.live_view = LiveView(self.model)
        self.live_view.choose_folder = lambda title: QFileDialog.getExistingDirectory(
            self, title, self._default_folder()) or None
        self.record_button = self.live_view.record_button
        self.stats_label = self.live_view.stats_label
        self.status_label = QLabel("Not running.")
        self.status_label.setWordWrap(True)
        self.rerun_edit = QLineEdit()
        self.rerun_edit.setPlaceholderText("off (a .rrd file, 'spawn' or a viewer URL)")
        self.rerun_edit.setToolTip("Log every processed pair to Rerun (needs depthapp[rerun])")
        self.rerun = None

        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)  # a narrow column
        form.addRow("Source", self.kind)
        self.left_row = _row(self.left_edit, self.left_browse)
        self.right_row = _row(self.right_edit, self.right_browse)
        form.addRow("Left / source", self.left_row)
        form.addRow("Right", self.right_row)
        self.right_form_label = form.labelForField(self.right_row)
        form.addRow("Width", self.width_spin)
        form.addRow("Height", self.height_spin)
        form.addRow("", self.realtime)
        form.addRow("Rerun", self.rerun_edit)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.stop_button):
            buttons.addWidget(button)
        picker = QWidget()
        picker.setMaximumWidth(250)
        column = QVBoxLayout(picker)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(form)
        column.addLayout(buttons)
        column.addWidget(self.status_label)
        column.addStretch(1)
        layout = QHBoxLayout(self)
        layout.addWidget(picker)
        layout.addWidget(self.live_view, 1)
        self._sync_buttons()

    def _kind_changed(self) -> None:
        label, needs_right, browse = _KIND[self.source_kind]
        self.right_row.setVisible(needs_right)
        if self.right_form_label is not None:
            self.right_form_label.setVisible(needs_right)
        self.left_browse.setVisible(browse is not None)
        self.right_browse.setVisible(browse is not None)
        is_camera = browse is None
        self.width_spin.setEnabled(is_camera)
        self.height_spin.setEnabled(is_camera)
        self.realtime.setEnabled(not is_camera)

    def _browse(self, edit: QLineEdit) -> None:
        _, _, browse = _KIND[self.source_kind]
        if browse == "folder":
            path = QFileDialog.getExistingDirectory(self, "Image folder or recording", edit.text())
        elif self.source_kind == "bag":
            path, _ = QFileDialog.getOpenFileName(self, "ROS bag", edit.text(),
                                                  "ROS bags (*.bag *.mcap *.db3);;All files (*)")
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Video file", edit.text(),
                                                  "Videos (*.avi *.mkv *.mp4 *.mov *.webm);;All files (*)")
        if path:
            edit.setText(path)

    @property
    def source_kind(self) -> str:
        return self.kind.currentData()

    def set_source(self, kind: str, left: str, right: str = "", realtime: bool = False) -> None:
        """Fill the source picker (what a user does with the widgets)."""
        self.kind.setCurrentIndex([key for key, *_ in SOURCE_KINDS].index(kind))
        self.left_edit.setText(str(left))
        self.right_edit.setText(str(right))
        self.realtime.setChecked(realtime)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def _sync_buttons(self) -> None:
        running = self.running
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.kind.setEnabled(not running)

    # ------------------------------------------------------------------ running
    def make_source(self) -> FrameSource:
        kind = self.source_kind
        left, right = self.left_edit.text().strip(), self.right_edit.text().strip()
        options = dict(realtime=self.realtime.isChecked(), on_status=self.status_message.emit,
                       width=self.width_spin.value() or None, height=self.height_spin.value() or None)
        if kind in ("cameras", "videos"):
            return open_source(left=left, right=right, **options)
        if kind in ("sbs-camera", "sbs-video"):
            return open_source(sbs=left, **options)
        if kind == "bag":
            from ..sources.bag import BagSource

            return BagSource(left, on_status=self.status_message.emit)
        return open_source(folder=left, **options)

    def make_backend(self):
        """The viewer's current backend choice, created for the live stream."""
        from ..backends import create_backend
        from ..pipeline import choose_max_disp

        state = self.state
        name, weights = state.backend, state.weights()
        max_disp, _ = choose_max_disp(name, state.max_disp, weights, state.calibration)
        if state.needs_model_file(name):
            raise InputError(f"backend {name} runs a model file: choose one in the Backend panel")
        options = {"device": state.device}
        if weights:
            options["weights"] = weights
        if state.model_file(name):
            options["model"] = state.model_file(name)
        backend = create_backend(name, max_disp=max_disp, **options, **state.parameter_overrides(name))
        self._backend_name = name
        return backend

    def start(self) -> bool:
        """Open the source and start the loop; False (with the reason shown) if impossible."""
        if self.running:
            return True
        self.error = None
        try:
            backend = self.make_backend()
            source = self.make_source()
            source.open()
            try:
                self.rerun = self._make_rerun()
            except DepthAppError:
                source.close()
                raise
        except DepthAppError as error:
            self._fail(str(error))
            return False
        # A bag brings its cameras' camera_info; the viewer's own calibration wins.
        calibration = self.state.calibration or getattr(source, "calibration", None)
        self.loop = CameraLoop(source, backend, calibration, on_frame=self._on_frame,
                               on_status=self.status_message.emit, recorder=self.model.recorder,
                               with_points=calibration is not None)
        self.model.reset()
        self.model.fixed_ranges["disparity"] = (0.0, float(backend.max_disp))
        self.model.snapshot_dir = Path(self._default_folder())
        self.model.attach(self.loop)
        self.presented = 0
        # Live results arrive by present(); the viewer must not recompute each new pair itself.
        self._auto_recompute = self.state.auto_recompute
        self.state.set_auto_recompute(False)
        self._thread = threading.Thread(target=self._work, name="depthapp-live", daemon=True)
        self._thread.start()
        self.ticker.start()
        self.status_label.setText(f"Running: {source.description}")
        self._sync_buttons()
        return True

    def _make_rerun(self):
        target = self.rerun_edit.text().strip()
        if not target:
            return None
        from ..robotics.rerun_log import SPAWN, RerunLogger

        if target.endswith(".rrd"):
            return RerunLogger(save=target, overwrite=True)
        return RerunLogger(viewer=SPAWN if target == SPAWN else target)

    def stop(self) -> None:
        """Ask the loop to stop; the panel updates when it has."""
        if self.loop is not None:
            self.loop.stop()

    def shutdown(self) -> None:
        """Stop and wait (the window calls this before closing)."""
        self.stop()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10.0)
        self._ended()

    def _work(self) -> None:
        try:
            self.last_stats = self.loop.run()
        except DepthAppError as error:
            self.error = str(error)
        except Exception as error:  # a bug: show it rather than die silently in a thread
            self.error = f"{type(error).__name__}: {error}"
        self.loop_ended.emit()

    def _on_frame(self, live: LiveFrame) -> None:
        # Loop thread: log every pair to Rerun, keep only the newest for the GUI and wake it
        # once per delivery.
        if self.rerun is not None:
            self.rerun.log(live)
        with self._lock:
            self._latest = live
            if self._pending:
                return
            self._pending = True
        self.frame_ready.emit()

    def _deliver(self) -> None:
        from ..pipeline import PipelineOutput

        with self._lock:
            live, self._latest = self._latest, None
            self._pending = False
        if live is None:
            return
        output = PipelineOutput(pair=live.pair, result=live.result, depth=live.depth, cloud=live.cloud)
        self.model.show_frame(live)
        self.state.present(output, self._backend_name or live.result.backend, live.result.total_time)
        self.presented += 1

    def _ended(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=10.0)
        self._deliver()
        if self._auto_recompute is not None:
            self.state.set_auto_recompute(self._auto_recompute)
            self._auto_recompute = None
        self.ticker.stop()
        if self.loop is not None:
            self.last_stats = self.loop.stats()
            self.model.set_stats(self.last_stats)
        self.model.attach(None)
        recorded = ""
        if self.model.recorder is not None:
            folder = self.model.recorder.folder
            recorded = f" Recorded {self.stop_recording()} pairs to {folder}."
        if self.rerun is not None:
            rerun, self.rerun = self.rerun, None
            try:
                saved = rerun.close()
                recorded += f" Logged {rerun.frames_logged} pairs to Rerun" + (f" ({saved})." if saved else ".")
            except DepthAppError as error:
                recorded += f" {error}"
        if self.error:
            self._fail(self.error + recorded)
        elif self.last_stats is not None:
            reason = self.last_stats.end_reason or "stopped"
            self.status_label.setText(f"Stopped ({reason}).{recorded}")
        self._sync_buttons()

    # ------------------------------------------------------------------ recording
    def start_recording(self, folder: str, force: bool = False) -> bool:
        """Record every processed pair into ``folder`` from now on (what the Record button
        does once the user picked the folder; ``force`` replaces a recording there)."""
        try:
            self.model.start_recording(folder, overwrite=force,
                                       calibration_file=self._calibration_file())
        except DepthAppError as error:
            self._fail(str(error))
            return False
        self.status_label.setText(f"Recording to {folder}")
        return True

    def stop_recording(self) -> Optional[int]:
        """Stop recording; returns the number of pairs written."""
        folder = self.model.recorder.folder if self.model.recorder is not None else None
        written = self.model.stop_recording()
        if written is not None:
            self.status_label.setText(f"Recorded {written} pairs to {folder}")
        return written

    def _default_folder(self) -> str:
        return str(getattr(self.window, "last_dir", "") or Path.cwd())

    def _calibration_file(self) -> Optional[str]:
        calibration = self.state.calibration
        source = getattr(calibration, "source", None) if calibration is not None else None
        return source if source and Path(source).is_file() else None

    # ------------------------------------------------------------------ following the viewer
    def _backend_settings_changed(self, *_args) -> None:
        if self.loop is None or not self.running:
            return
        try:
            self.loop.set_backend(self.make_backend())
        except DepthAppError as error:
            self.status_label.setText(f"Backend not changed: {error}")

    def _calibration_changed(self, calibration) -> None:
        self.live_view.calibration_file = self._calibration_file()  # copied into recordings
        if self.loop is not None and self.running:
            self.loop.set_calibration(calibration)
            self.loop.with_points = calibration is not None
            self._backend_settings_changed()  # the disparity range may follow the calibration

    # ------------------------------------------------------------------ read-outs
    def _refresh_stats(self) -> None:
        if self.loop is not None:
            self.model.set_stats(self.loop.stats())

    def _show_status(self, message: str) -> None:
        self.status_label.setText(message)
        if self.window is not None and hasattr(self.window, "statusBar"):
            self.window.statusBar().showMessage(f"Live: {message}", 8000)

    def _fail(self, message: str) -> None:
        self.error = message
        self.status_label.setText(f"Error: {message}")


def _row(*widgets) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    return row

