"""Dialogs: hand-entered calibration, and fetching missing weights with progress."""

from __future__ import annotations

from typing import Optional

from PyQt6.QtCore import QThread, Qt, pyqtSignal
from PyQt6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                             QHBoxLayout, QLabel, QProgressDialog, QWidget)

from .. import weights as weights_registry
from ..calibration.model import StereoCalibration
from ..errors import Cancelled
from ..jobs import Progress


class ManualCalibrationDialog(QDialog):
    """Focal length, baseline and doffs (and optionally the principal point) of a rectified rig."""

    _UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}

    def __init__(self, width: int, height: int, current: Optional[StereoCalibration] = None,
                 parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.setWindowTitle("Enter calibration")
        self.focal = self._spin(1e-3, 1e6, 1000.0, 3, " px")
        self.baseline = self._spin(1e-6, 1e6, 0.12, 4, "")
        self.units = QComboBox()
        self.units.addItems(list(self._UNITS))
        self.doffs = self._spin(-1e5, 1e5, 0.0, 3, " px")
        self.cx = self._spin(-1e5, 1e5, (width - 1) / 2.0, 2, " px")
        self.cy = self._spin(-1e5, 1e5, (height - 1) / 2.0, 2, " px")
        if current is not None and current.P1 is not None:
            self.focal.setValue(current.focal)
            self.baseline.setValue(current.baseline)
            self.doffs.setValue(current.doffs)
            self.cx.setValue(current.cx_left)
            self.cy.setValue(current.cy)
        self.focal.setToolTip("rectified focal length in pixels of these images")
        self.baseline.setToolTip("distance between the two optical centres")
        self.doffs.setToolTip("cx_right - cx_left in pixels (Middlebury's doffs); 0 for most rigs")
        baseline_row = QHBoxLayout()
        baseline_row.addWidget(self.baseline, 1)
        baseline_row.addWidget(self.units)
        form = QFormLayout(self)
        form.addRow(QLabel(f"A rectified calibration for the {width}x{height} images. "
                           "Depth Z = focal x baseline / (disparity + doffs)."))
        form.addRow("focal length", self.focal)
        form.addRow("baseline", baseline_row)
        form.addRow("doffs", self.doffs)
        form.addRow("principal point x (left)", self.cx)
        form.addRow("principal point y", self.cy)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    @staticmethod
    def _spin(low: float, high: float, value: float, decimals: int, suffix: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(low, high)
        spin.setDecimals(decimals)
        spin.setValue(value)
        spin.setSuffix(suffix)
        return spin

    def values(self) -> dict[str, float]:
        """Keyword arguments of :meth:`ViewerState.set_manual_calibration` (baseline in metres)."""
        return {"focal": self.focal.value(),
                "baseline": self.baseline.value() * self._UNITS[self.units.currentText()],
                "doffs": self.doffs.value(), "cx": self.cx.value(), "cy": self.cy.value()}


# --------------------------------------------------------------------------- weights

def default_weights_id(backend_cls) -> Optional[str]:
    """The registry id a learned backend loads when no weights are chosen (its declared
    ``default_weights``, else its only registry record)."""
    if backend_cls.default_weights:
        return backend_cls.default_weights
    records = weights_registry.records_for(backend_cls.name)
    return records[0].id if len(records) == 1 else None


class _FetchThread(QThread):
    progressed = pyqtSignal(object)
    finished_with = pyqtSignal(object, object)  # path, error

    def __init__(self, weights_id: str, parent=None):
        super().__init__(parent)
        self.weights_id = weights_id
        self.cancelled = False

    def run(self) -> None:
        def report(progress: Progress) -> None:
            if self.cancelled:
                raise Cancelled(f"download of {self.weights_id} cancelled")
            self.progressed.emit(progress)

        try:
            path = weights_registry.fetch(self.weights_id, progress=report)
        except BaseException as error:
            self.finished_with.emit(None, error)
            return
        self.finished_with.emit(path, None)


def fetch_weights_with_progress(weights_id: str, parent: Optional[QWidget] = None):
    """Download (and verify) registry weights in a thread behind a cancellable progress dialog.

    Returns ``(path, error)``; ``error`` is the exception (Cancelled when the user cancelled).
    """
    dialog = QProgressDialog(f"Fetching weights {weights_id} from the package index...", "Cancel",
                             0, 0, parent)
    dialog.setWindowTitle("Fetching weights")
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.setMinimumDuration(0)
    thread = _FetchThread(weights_id, dialog)
    result: dict = {}

    def progressed(progress: Progress) -> None:
        if progress.total:
            dialog.setMaximum(int(progress.total))
            dialog.setValue(int(min(progress.done, progress.total)))
        dialog.setLabelText(f"Fetching weights {weights_id}: {progress.done / 1024:.1f} MiB"
                            + (f" of {progress.total / 1024:.1f} MiB" if progress.total else ""))

    def finished(path, error) -> None:
        result["path"], result["error"] = path, error
        dialog.reset()
        dialog.done(0)

    def cancel() -> None:
        thread.cancelled = True
        dialog.setLabelText("Cancelling...")

    thread.progressed.connect(progressed)
    thread.finished_with.connect(finished)
    dialog.canceled.connect(cancel)
    thread.start()
    dialog.exec()
    thread.wait()
    return result.get("path"), result.get("error")
