"""Fixtures for the viewer tests: offscreen Qt, isolated settings, a slow cancellable backend."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from depthapp.backends import register_backend  # noqa: E402
from depthapp.backends.base import Backend  # noqa: E402
from depthapp.params import Parameter  # noqa: E402

SLOW_STEP_SECONDS = 0.02
SLOW_STEPS = 1500  # 30 s if never cancelled: a test that waits for it fails visibly


class SlowTestBackend(Backend):
    """Test-only: sleeps in small steps, polling its CancelToken like a real long backend."""

    name = "test-slow"
    description = "test-only backend that takes 30 s unless cancelled"
    parameters = (Parameter("steps", "int", SLOW_STEPS, "sleep steps of 20 ms", 1, 100000),)
    default_max_disp = 16

    started = 0
    finished_steps: list[int] = []

    def _compute(self, pair, timer, cancel):
        type(self).started += 1
        done = 0
        with timer("sleep"):
            for done in range(self.params["steps"]):
                cancel.raise_if_cancelled()
                time.sleep(SLOW_STEP_SECONDS)
        type(self).finished_steps.append(done + 1)
        return np.zeros((pair.height, pair.width), np.float32)


@pytest.fixture
def slow_backend(monkeypatch):
    """``test-slow`` in the registry for one test only (other tests never see it). Request it
    before ``window`` so the window lists it."""
    from depthapp import backends

    monkeypatch.setattr(backends, "_REGISTERED", dict(backends._REGISTERED))
    register_backend(SlowTestBackend)
    SlowTestBackend.started, SlowTestBackend.finished_steps = 0, []
    return SlowTestBackend


@pytest.fixture
def settings(tmp_path):
    """QSettings in a temporary INI file, never the user's own."""
    from PyQt6.QtCore import QSettings

    return QSettings(str(tmp_path / "viewer-settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    from depthapp.gui.main_window import MainWindow

    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.state.cancel(silent=True)
    win.executor.shutdown()


@pytest.fixture
def dialogs(monkeypatch):
    """Record QMessageBox.warning calls instead of blocking on a modal dialog."""
    from PyQt6.QtWidgets import QMessageBox

    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(QMessageBox, "warning",
                        staticmethod(lambda parent, title, text, *a, **k: shown.append((title, text))))
    return shown


@pytest.fixture
def wait_idle(qtbot):
    """Wait until the window computes nothing and no debounced recompute is pending."""
    def wait(win, timeout=60_000):
        qtbot.waitUntil(lambda: not (win.state.busy or win.debounce.isActive()
                                     or win.refresh_timer.isActive()), timeout=timeout)

    return wait
