"""A small PyQt6 window for ``depthapp camera``: the colourised disparity and the loop's FPS.

The full viewer (depthapp.gui) has the complete Live mode; this window is only the CLI's
preview. PyQt6 is imported inside the functions, so importing this module costs nothing and
the rest of depthapp.camera stays Qt-free.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Callable, Optional

import numpy as np

from .loop import CameraLoop, LiveFrame, LoopStats

_application = None
_HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb", "vkkhrdisplay")


def display_problem() -> Optional[str]:
    """Why no window can be shown here, or None when one can."""
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0]
    if sys.platform.startswith("linux") and not platform.startswith(_HEADLESS_PLATFORMS) \
            and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY and WAYLAND_DISPLAY are unset)"
    try:
        import PyQt6.QtWidgets  # noqa: F401
    except ImportError as error:
        return f"PyQt6 cannot be loaded ({error})"
    return None


def run_with_window(loop: CameraLoop, title: str, vmax: float, max_width: int = 960,
                    on_started: Optional[Callable[[], None]] = None) -> LoopStats:
    """Run ``loop`` in a worker thread while a window shows its newest disparity.

    Closing the window stops the loop; the end of the loop closes the window. Errors of the
    loop are re-raised here. Returns the loop's final stats.
    """
    from PyQt6 import QtCore, QtGui, QtWidgets

    from ..visualize import colorize

    global _application
    app = QtWidgets.QApplication.instance()
    if app is None:
        # Kept for the life of the process, so later windows (the viewer, tests) reuse it.
        app = _application = QtWidgets.QApplication([sys.argv[0] if sys.argv else "depthapp"])
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

    window = Window()
    window.setWindowTitle(title)
    image_label = QtWidgets.QLabel("waiting for the first pair...")
    image_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
    image_label.setMinimumSize(320, 240)
    text_label = QtWidgets.QLabel("")
    text_label.setWordWrap(True)
    layout = QtWidgets.QVBoxLayout(window)
    layout.addWidget(image_label, stretch=1)
    layout.addWidget(text_label)
    window.resize(720, 600)
    window.show()

    event_loop = QtCore.QEventLoop()

    def refresh() -> None:
        with lock:
            frame, latest["frame"] = latest["frame"], None
        if frame is not None:
            rgb = np.ascontiguousarray(colorize(frame.disparity, 0.0, vmax))
            height, width = rgb.shape[:2]
            image = QtGui.QImage(rgb.data, width, height, 3 * width,
                                 QtGui.QImage.Format.Format_RGB888).copy()
            pixmap = QtGui.QPixmap.fromImage(image)
            if width > max_width:
                pixmap = pixmap.scaledToWidth(max_width, QtCore.Qt.TransformationMode.SmoothTransformation)
            image_label.setPixmap(pixmap)
            text_label.setText(frame.stats.summary().replace(" | ", "\n", 2))
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
        window.close()
        window.deleteLater()
        app.setQuitOnLastWindowClosed(quit_on_close)
    loop.on_frame = forward
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("stats") or loop.stats()  # type: ignore[return-value]
