"""The window of ``depthapp camera``: a live depth view (the same widget and model as the
viewer's Live tab) over a :class:`~depthapp.camera.CameraLoop` running in a worker thread.

PyQt6 is imported inside the functions, so importing this module costs nothing and the rest of
depthapp.camera stays Qt-free.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable, Optional

import numpy as np

from .loop import CameraLoop, LiveFrame, LoopStats

_application = None
_HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb", "vkkhrdisplay")


def display_problem(offscreen: bool = False) -> Optional[str]:
    """Why no window can be shown here, or None when one can (``offscreen``: the window is
    only rendered to a screenshot, which needs no display)."""
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0]
    if sys.platform.startswith("linux") and not offscreen and not platform.startswith(_HEADLESS_PLATFORMS) \
            and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY and WAYLAND_DISPLAY are unset)"
    try:
        import PyQt6.QtWidgets  # noqa: F401
    except ImportError as error:
        return f"PyQt6 cannot be loaded ({error})"
    return None


def run_with_window(loop: CameraLoop, title: str, vmax: float,
                    on_started: Optional[Callable[[], None]] = None,
                    snapshot_dir: str = ".", calibration_file: Optional[str] = None,
                    screenshot: Optional[str] = None, overwrite: bool = False,
                    size: tuple[int, int] = (1100, 640),
                    on_message: Optional[Callable[[str], None]] = None) -> LoopStats:
    """Run ``loop`` in a worker thread while a live depth view shows its newest pair.

    The window is :class:`depthapp.gui.live_view.LiveView` over a
    :class:`~depthapp.camera.live_view.LiveViewModel` (``vmax``: the fixed disparity range's
    top). Closing the window stops the loop; the end of the loop closes the window, after
    saving it to ``screenshot`` (a PNG) when asked. Errors of the loop are re-raised here.
    Returns the loop's final stats.
    """
    from PyQt6 import QtCore, QtWidgets

    from ..gui.app import application
    from ..gui.live_view import LiveView
    from ..gui.qt_util import qimage_to_rgb
    from .live_view import LiveViewModel

    global _application
    # Kept for the life of the process, so later windows (the viewer, tests) reuse it. Without
    # a display a screenshot run renders offscreen.
    app = _application = application(offscreen=screenshot is not None)
    latest: dict[str, Optional[LiveFrame]] = {"frame": None}
    lock = threading.Lock()
    outcome: dict[str, object] = {}
    forward = loop.on_frame

    def on_frame(frame: LiveFrame) -> None:
        with lock:
            latest["frame"] = frame
        if forward is not None:
            forward(frame)

    loop.on_frame = on_frame

    def work() -> None:
        try:
            outcome["stats"] = loop.run()
        except BaseException as error:  # re-raised in the GUI thread below
            outcome["error"] = error

    class Window(QtWidgets.QWidget):
        def closeEvent(self, event):  # noqa: N802 (Qt's name)
            loop.stop()
            event.accept()

    model = LiveViewModel(max_disp=vmax, snapshot_dir=snapshot_dir)
    if on_message is not None:
        model.message.connect(on_message)
    given_recorder = loop.recorder  # --record: the caller closes and reports it
    model.attach(loop)
    window = Window()
    window.setWindowTitle(title)
    view = LiveView(model)
    view.calibration_file = calibration_file
    QtWidgets.QVBoxLayout(window).addWidget(view)
    window.resize(*size)
    window.show()

    event_loop = QtCore.QEventLoop()
    last_update = [0.0]

    def refresh() -> None:
        with lock:
            frame, latest["frame"] = latest["frame"], None
        now = time.monotonic()
        if frame is not None:
            model.show_frame(frame)
            last_update[0] = now
        elif model.frame is not None and now - last_update[0] > 0.5:
            model.set_stats(loop.stats())  # a stalled camera shows as a falling rate
            last_update[0] = now
        if not worker.is_alive():
            event_loop.quit()

    worker = threading.Thread(target=work, name="depthapp-camera-loop", daemon=True)
    # The timer also lets Python run signal handlers (Ctrl-C) while Qt's loop runs in C++.
    timer = QtCore.QTimer()
    timer.setInterval(30)
    timer.timeout.connect(refresh)
    # A local event loop, not app.exec()/quit(): quitting the application would leave Qt's
    # "quit now" flag set for any later event loop in this process (the viewer, tests).
    quit_on_close = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)
    try:
        worker.start()
        timer.start()
        if on_started is not None:
            on_started()
        if worker.is_alive():
            event_loop.exec()
    finally:
        timer.stop()
        timer.timeout.disconnect(refresh)
        loop.stop()  # when the event loop ended for another reason
        worker.join()
        if model.recorder is not None and model.recorder is not given_recorder:
            model.stop_recording()  # a recording started from the window: says how many pairs
        if screenshot and "error" not in outcome:
            refresh()
            model.set_stats(loop.stats())
            _show_a_valid_pixel(view)
            app.processEvents()
            from ..io import write_image

            write_image(screenshot, qimage_to_rgb(window.grab().toImage()), overwrite=overwrite)
        window.close()
        window.deleteLater()
        app.setQuitOnLastWindowClosed(quit_on_close)
    loop.on_frame = forward
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("stats") or loop.stats()  # type: ignore[return-value]


def _show_a_valid_pixel(view) -> None:
    """Point the readout at a pixel near the centre with a value (screenshots show it)."""
    values = view.model.frame.depth if view.model.has_depth else (
        view.model.frame.disparity if view.model.frame is not None else None)
    if values is None or not np.isfinite(values).any():
        return
    ys, xs = np.nonzero(np.isfinite(values))
    height, width = values.shape
    nearest = int(np.argmin((xs - width * 0.55) ** 2 + (ys - height * 0.55) ** 2))
    view.point_at(int(xs[nearest]), int(ys[nearest]))
