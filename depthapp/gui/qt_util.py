"""Small Qt helpers: arrays to images and back, error dialogs, slots that never crash."""

from __future__ import annotations

import functools
import logging
import traceback
from typing import Any, Callable, Optional

import numpy as np
from PyQt6.QtGui import QImage, QPixmap
from PyQt6.QtWidgets import QMessageBox, QWidget

from ..errors import DepthAppError

log = logging.getLogger("depthapp.gui")


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """``(H, W, 3)`` uint8 RGB to a QImage that owns its pixels."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return image.copy()  # detach from the numpy buffer


def rgb_to_pixmap(rgb: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(rgb_to_qimage(rgb))


def qimage_to_rgb(image: QImage) -> np.ndarray:
    """A QImage (any format) as ``(H, W, 3)`` uint8 RGB."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height, stride = image.width(), image.height(), image.bytesPerLine()
    buffer = image.constBits()
    buffer.setsize(image.sizeInBytes())
    rows = np.frombuffer(buffer, dtype=np.uint8).reshape(height, stride)
    return rows[:, :width * 3].reshape(height, width, 3).copy()


ErrorSink = Callable[[str, str], None]


def show_error(parent: Optional[QWidget], title: str, message: str) -> None:
    """The one place the viewer reports a problem to the user: a warning dialog."""
    QMessageBox.warning(parent, title, message)


def guarded(title: str) -> Callable:
    """Decorate a window method used as a slot: a DepthAppError becomes a dialog with its
    message; anything else a dialog naming the unexpected error (logged with its traceback).
    PyQt aborts the process on an exception escaping a slot; this keeps the viewer alive."""

    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def wrapper(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except DepthAppError as error:
                self.report_error(title, str(error))
            except Exception as error:  # a bug, but the user's session must survive it
                log.error("%s: unexpected error\n%s", title, traceback.format_exc())
                self.report_error(title, f"Unexpected error ({type(error).__name__}): {error}\n\n"
                                         "This is a bug in depthapp; the details are in the log.")
            return None

        return wrapper

    return decorate
