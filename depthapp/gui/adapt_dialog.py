""""Adapt to my camera": fine-tune the viewer's learned backend on the user's own pairs with the
photometric loss (no ground truth), in a worker thread with progress and cancel, then report the
photometric error before and after and offer the adapted weights to the viewer.

The work is :func:`depthapp.training.adapt.adapt_to_camera`, the same as `depthapp adapt`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PyQt6.QtCore import QThread, pyqtSignal
from PyQt6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                             QLabel, QLineEdit, QProgressBar, QPushButton, QSpinBox, QVBoxLayout,
                             QWidget)

from ..errors import Cancelled, DepthAppError, UsageError
from ..jobs import CancelToken, format_seconds
from .dialogs import default_weights_id


class _AdaptThread(QThread):
    progressed = pyqtSignal(object)
    finished_with = pyqtSignal(object, object)  # result, error

    def __init__(self, options: dict, cancel: CancelToken):
        super().__init__()
        self.options = options
        self.cancel = cancel

    def run(self) -> None:
        from ..training.adapt import adapt_to_camera

        try:
            result = adapt_to_camera(**self.options, progress=self.progressed.emit, cancel=self.cancel)
        except (DepthAppError, Cancelled) as error:
            self.finished_with.emit(None, error)
        except Exception as error:  # a bug: reported, never a crash of the viewer
            self.finished_with.emit(None, error)
        else:
            self.finished_with.emit(result, None)


class AdaptDialog(QDialog):
    """Choose the folder of recorded pairs and the iterations; run; see before/after."""

    def __init__(self, state, parent: Optional[QWidget] = None, **adapt_options):
        """``adapt_options`` go to ``adapt_to_camera`` as they are (e.g. ``crop``, ``max_disp``)."""
        super().__init__(parent)
        self.adapt_options = adapt_options
        from ..backends import get_backend_class

        self.state = state
        self.setWindowTitle("Adapt to my camera")
        backend = state.backend
        if get_backend_class(backend).training_adapter() is None:
            from ..training.models import trainable_backends

            raise UsageError(f"adapting needs a learned backend ({', '.join(trainable_backends())}); "
                             f"the viewer's backend is {backend}")
        self.backend = backend
        self.weights = state.weights() or default_weights_id(get_backend_class(backend))
        if not self.weights:
            raise UsageError(f"backend {backend} has no pretrained weights to adapt: "
                             "choose weights first (or train it: depthapp train)")
        self.cancel_token: Optional[CancelToken] = None
        self.thread: Optional[_AdaptThread] = None
        self.result = None

        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("folder of your pairs (left/ + right/, a recording, ...)")
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit)
        folder_row.addWidget(browse)
        self.out_edit = QLineEdit(str(Path.home() / "depthapp-adapted" / backend))
        self.iters_spin = QSpinBox()
        self.iters_spin.setRange(1, 100000)
        self.iters_spin.setValue(300)
        form = QFormLayout()
        form.addRow("backend", QLabel(f"{backend} from {self.weights}"))
        form.addRow("your pairs", folder_row)
        form.addRow("output folder", self.out_edit)
        form.addRow("iterations", self.iters_spin)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.status = QLabel("Fine-tunes with the photometric loss: no ground truth needed. "
                             "Every fifth pair is held out to measure the change.")
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox()
        self.start_button = self.buttons.addButton("Adapt", QDialogButtonBox.ButtonRole.ActionRole)
        self.stop_button = self.buttons.addButton("Stop", QDialogButtonBox.ButtonRole.ActionRole)
        self.use_button = self.buttons.addButton("Use adapted weights", QDialogButtonBox.ButtonRole.AcceptRole)
        close = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.use_button.clicked.connect(self.use_weights)
        close.clicked.connect(self.reject)
        self.stop_button.setEnabled(False)
        self.use_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of your stereo pairs")
        if folder:
            self.folder_edit.setText(folder)

    def start(self) -> None:
        folder = self.folder_edit.text().strip()
        if not folder or not Path(folder).is_dir():
            self.status.setText(f"error: {folder or 'no folder'}: not a folder of stereo pairs")
            return
        self.cancel_token = CancelToken()
        options = dict(backend=self.backend, weights=self.weights, data=f"folder:{folder}",
                       out=self.out_edit.text().strip(), iters=self.iters_spin.value(),
                       device=self.state.device, force=True, **self.adapt_options)
        self.thread = _AdaptThread(options, self.cancel_token)
        self.thread.progressed.connect(self._progressed)
        self.thread.finished_with.connect(self._finished)
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.use_button.setEnabled(False)
        self.status.setText("measuring the photometric error before adapting ...")
        self.thread.start()

    def stop(self) -> None:
        if self.cancel_token is not None:
            self.cancel_token.cancel()
            self.status.setText("stopping after the current iteration ...")

    def _progressed(self, progress) -> None:
        # Each phase (measuring before, training, measuring after) has its own count and ETA.
        if progress.fraction is not None:
            self.progress.setValue(int(progress.fraction * 100))
        else:
            self.progress.setValue(0)
        counts = f" {progress.done:g}/{progress.total:g}," if progress.total else ""
        self.status.setText(f"{progress.stage or 'training'}:{counts} elapsed "
                            f"{format_seconds(progress.elapsed)}, ETA {format_seconds(progress.eta)}"
                            + (f"  {progress.message}" if progress.message else ""))

    def _finished(self, result, error) -> None:
        # The signal comes from the end of run(): let the thread finish before it can be freed.
        if self.thread is not None:
            self.thread.wait()
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        if error is not None:
            if isinstance(error, Cancelled):
                self.status.setText("stopped; a checkpoint was kept (Adapt again continues with "
                                    "`depthapp adapt --resume`)")
            else:
                self.status.setText(f"error: {error}")
            return
        self.result = result
        self.progress.setValue(100)
        text = (f"photometric error {result.before:.4f} -> {result.after:.4f} "
                f"({100 * (result.after - result.before) / result.before:+.1f} %) over {result.pairs} pairs")
        if result.heldout and result.before_heldout is not None:
            text += (f"; held-out {result.heldout}: {result.before_heldout:.4f} -> "
                     f"{result.after_heldout:.4f}")
        self.status.setText(text + f". Weights: {result.weights}")
        self.use_button.setEnabled(True)

    def use_weights(self) -> None:
        if self.result is not None:
            self.state.set_weights(str(self.result.weights), self.backend)
        self.accept()

    def closeEvent(self, event) -> None:
        self.stop()
        if self.thread is not None:
            self.thread.wait()
        super().closeEvent(event)

    def reject(self) -> None:
        self.stop()
        if self.thread is not None:
            self.thread.wait()
        super().reject()
