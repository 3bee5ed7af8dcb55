"""Starting the viewer: the QApplication, the window, and the non-interactive screenshot run."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Optional, Sequence

from ..errors import DepthAppError, InputError, UsageError

log = logging.getLogger("depthapp.gui")


def has_display() -> bool:
    """Whether Qt can open windows here (an X11/Wayland display, or a non-Linux desktop)."""
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc"):
        return True
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def application(offscreen: bool = False):
    """The QApplication (created once; every window of depthapp goes through here).

    ``offscreen`` renders without a window system (screenshots), unless ``QT_QPA_PLATFORM``
    names a platform. Before Qt loads a platform plugin that cannot load here (the xcb plugin
    without its libraries, which would abort the process), this raises a
    :class:`DepthAppError` naming the packages to install.
    """
    global _application
    from .qt_platform import require_qt_platform

    try:
        from PyQt6.QtWidgets import QApplication
    except ImportError as error:
        raise DepthAppError(f"the viewer needs PyQt6 ({error}); pip install pyqt6") from None
    app = QApplication.instance()
    if app is None:
        if offscreen and not os.environ.get("QT_QPA_PLATFORM"):
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
        require_qt_platform()
        _quiet_platform_warnings()
        # Kept for the life of the process, so later windows (the viewer, tests) reuse it.
        app = _application = QApplication([sys.argv[0] if sys.argv else "depthapp"])
        app.setOrganizationName("depthapp")
        app.setApplicationName("viewer")
        app.setApplicationDisplayName("depthapp viewer")
    return app


_application = None

# Harmless notices of the offscreen platform plugin that would look like errors on the console.
_IGNORED_QT_MESSAGES = ("does not support propagateSizeHints",)


def _quiet_platform_warnings() -> None:
    from PyQt6.QtCore import QtMsgType, qInstallMessageHandler

    def handler(kind, _context, message):
        if any(text in message for text in _IGNORED_QT_MESSAGES):
            return
        if kind in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg):
            sys.stderr.write(f"qt: {message}\n")

    global _message_handler
    _message_handler = handler  # Qt keeps only a raw pointer; keep the function alive
    qInstallMessageHandler(handler)


_message_handler = None


def _install_excepthook(window) -> None:
    """PyQt aborts on an exception escaping a slot unless a hook is set: show it instead."""
    def hook(kind, value, trace):
        text = "".join(traceback.format_exception(kind, value, trace))
        log.error("unhandled exception\n%s", text)
        sys.stderr.write(text)
        try:
            window.report_error("Unexpected error", f"{kind.__name__}: {value}")
        except Exception:  # the window may be half torn down; the log has the details
            pass

    sys.excepthook = hook


def create_window(paths: Sequence[str] = (), calibration: Optional[str] = None,
                  ground_truth: Optional[str] = None, calibration_units: Optional[str] = None,
                  sample: bool = False, backend: Optional[str] = None,
                  params: Optional[dict] = None, compare: Optional[str] = None,
                  device: Optional[str] = None,
                  weights: Optional[str] = None, max_disp: Optional[int] = None,
                  model: Optional[str] = None, remember: bool = True, interactive: bool = True):
    """Build the window and load what the command line asked for (errors raise)."""
    from PyQt6.QtCore import QSettings

    from .main_window import APPLICATION, ORGANISATION, MainWindow
    from .state import ViewerState

    settings = QSettings(ORGANISATION, APPLICATION) if remember else None
    window = MainWindow(ViewerState(), settings=settings, interactive=interactive)
    state = window.state
    # Command-line choices override remembered ones; they go in before the pair so the first
    # automatic compute already uses them.
    auto = state.auto_recompute
    state.set_auto_recompute(False)
    if model:
        state.set_model_file(model, backend or state.backend)
    if backend:
        state.set_backend(backend)
    for name, value in (params or {}).items():
        state.set_parameter(name, value)
    if compare:
        state.set_compare_backend(compare)
    if device:
        state.set_device(device)
    if weights:
        state.set_weights(weights)
    if max_disp:
        state.set_max_disp(max_disp)
    if sample:
        state.open_sample()
    elif paths:
        from .open_plan import plan_open

        plan = plan_open(paths)
        if plan.kind == "folder":
            state.open_folder(plan.images[0])
        elif plan.kind == "video":
            state.open_video(*plan.images)
        elif plan.kind == "bag":
            state.open_bag(plan.images[0])
        elif plan.kind in ("pair", "sbs"):
            state.open_files(*plan.images)
        if plan.ground_truth is not None:
            state.load_ground_truth(plan.ground_truth)
        if plan.calibration is not None and calibration is None:
            calibration = str(plan.calibration)
    if calibration:
        state.open_calibration(calibration, units=calibration_units)
    if ground_truth:
        state.load_ground_truth(ground_truth)
    state.set_auto_recompute(auto)
    window._sync_backend_widgets()
    return window


def run_viewer(**options) -> int:
    """Open the viewer and run until it is closed."""
    if not has_display():
        raise UsageError("no display to open the viewer on (DISPLAY is not set); use "
                         "--screenshot FILE, or set QT_QPA_PLATFORM=offscreen")
    app = application()
    window = create_window(**options)
    _install_excepthook(window)
    window.show()
    if window.state.pair is not None and window.state.wants_auto_compute():
        window.compute()
    return int(app.exec())


def _showcase_pixel(window) -> Optional[tuple[int, int]]:
    """A pixel near the image centre with a valid depth, to show the hover readout."""
    import numpy as np

    outcome = window.state.outputs.get("primary")
    if outcome is None:
        return None
    values = outcome.output.depth if outcome.output.depth is not None else outcome.disparity
    valid = np.isfinite(values)
    if not valid.any():
        return None
    ys, xs = np.nonzero(valid)
    height, width = values.shape
    nearest = np.argmin((xs - width * 0.55) ** 2 + (ys - height * 0.55) ** 2)
    return int(xs[nearest]), int(ys[nearest])


def take_screenshot(path: str, overwrite: bool = False, size=(1500, 940), timeout: float = 900.0,
                    hover: Optional[tuple[int, int]] = None, **options) -> Path:
    """Compute, render the window (offscreen when there is no display) to ``path`` and return.

    Nothing is remembered between screenshot runs and nothing is read from the user's saved
    settings, so the picture depends only on the arguments.
    """
    from ..io.atomic import check_writable

    check_writable(path, overwrite)
    app = application(offscreen=True)
    from PyQt6.QtCore import QSize

    window = create_window(remember=False, interactive=False, **options)
    smallest = window.minimumSizeHint()
    if size[0] < smallest.width() or size[1] < smallest.height():
        window.close()
        raise UsageError(f"--size {size[0]}x{size[1]} is smaller than the window can be "
                         f"({smallest.width()}x{smallest.height()})")
    window.resize(QSize(*size))
    window.show()
    app.processEvents()
    if window.state.pair is None:
        raise UsageError("--screenshot needs something to show: LEFT RIGHT or --sample")
    window.compute()
    if not window.wait_until_idle(timeout):
        window.state.cancel(silent=True)
        raise DepthAppError(f"the computation took longer than {timeout:.0f} s; no screenshot")
    if window.errors:
        title, message = window.errors[0]
        window.close()
        raise InputError(f"{title}: {message}")
    pixel = hover or _showcase_pixel(window)
    if pixel is not None:
        window.show_pixel(*pixel)
    app.processEvents()
    written = window.save_screenshot(path, overwrite=overwrite)
    window.close()
    return written
