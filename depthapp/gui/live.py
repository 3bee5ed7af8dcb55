"""Extensions of the viewer: the Live camera mode (issue 10) and the calibration wizard (issue
11) plug in here.

Each is a tab of the central area, created the first time it is shown. The Live tab shows the
live depth view (left image beside disparity or depth, legend, range, cursor read-out, rates,
record and snapshot); the Images and 3-D tabs follow the same stream.

The hook contract, for ``depthapp.camera`` to implement:

* a module ``depthapp.camera.viewer`` defining
  ``create_live_panel(window, state) -> QWidget``; ``window`` is the
  :class:`~depthapp.gui.main_window.MainWindow`, ``state`` its
  :class:`~depthapp.gui.state.ViewerState`.
* The panel owns the source picker (devices, side-by-side device, video files, folders), start /
  stop, FPS and skew read-outs and the record button, and runs its ``CameraLoop`` off the GUI
  thread.
* For each processed frame it calls, on the GUI thread,
  ``state.present(output, backend_name, elapsed)`` with the
  :class:`~depthapp.pipeline.PipelineOutput` of that frame: every view of the viewer (disparity,
  depth, error, hover readout, 3-D cloud, saving) then shows the live stream with no further
  code. ``state.backend``, ``state.parameters()``, ``state.device``, ``state.weights()`` and
  ``state.calibration`` are the user's current choices for the loop to use, and
  ``state.parameters_changed`` / ``backend_changed`` / ``calibration_changed`` tell it when they
  change.
* If the panel has a ``shutdown()`` method the window calls it before closing.

The calibration wizard (issue 11) plugs in the same way: ``create_wizard_panel(window, state)``
in ``depthapp.gui.calibration_wizard``. Both modules ship with depthapp; a panel that fails to
import or to build shows its error in its own tab.
"""

from __future__ import annotations

import importlib
import logging
import traceback
from dataclasses import dataclass
from typing import Optional

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

log = logging.getLogger("depthapp.gui")


@dataclass(frozen=True)
class ExtensionTab:
    """A tab whose panel comes from ``factory(window, state)`` in ``module``, imported the
    first time the tab is shown."""

    title: str
    module: str
    factory: str


LIVE_TAB = ExtensionTab("Live", "depthapp.camera.viewer", "create_live_panel")
CALIBRATION_TAB = ExtensionTab("Calibration", "depthapp.gui.calibration_wizard",
                               "create_wizard_panel")
EXTENSION_TABS = (LIVE_TAB, CALIBRATION_TAB)


class Placeholder(QWidget):
    """What an extension tab shows when its panel failed to import or to build."""

    def __init__(self, text: str, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setStyleSheet("color: palette(mid); padding: 40px; font-size: 11pt;")
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)


def create_extension(tab: ExtensionTab, window, state) -> tuple[QWidget, bool]:
    """The extension's panel (True) or a placeholder showing why it failed (False). An extension
    that fails in any way costs its own tab, never the viewer."""
    try:
        factory = getattr(importlib.import_module(tab.module), tab.factory)
        return factory(window, state), True
    except Exception as error:
        log.error("%s: %s.%s failed\n%s", tab.title, tab.module, tab.factory,
                  traceback.format_exc())
        return Placeholder(f"{tab.title} could not start: {type(error).__name__}: {error}"), False
