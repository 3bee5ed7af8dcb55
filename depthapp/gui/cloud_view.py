"""The 3-D coloured point cloud (pyqtgraph's GLViewWidget: orbit with the left button, pan with
the middle button, zoom with the wheel).

The GL widget is created lazily, the first time the panel is shown, and only after probing that
an OpenGL context can be made: on the offscreen platform (tests, ``--screenshot``), over plain
SSH, or without pyqtgraph/PyOpenGL the panel says why and everything else keeps working.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QGuiApplication
from PyQt6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSpinBox,
                             QStackedWidget, QVBoxLayout, QWidget)

from ..geometry import PointCloud
from .state import PRIMARY, ViewerState

DEFAULT_MAX_POINTS = 250_000


def opengl_problem() -> Optional[str]:
    """Why an OpenGL view cannot be made here, or None when it can."""
    try:
        import OpenGL  # noqa: F401
        import pyqtgraph  # noqa: F401
    except ImportError as error:
        return (f"the 3-D view needs pyqtgraph and PyOpenGL ({error.name} is missing): "
                "pip install pyqtgraph PyOpenGL")
    platform = QGuiApplication.platformName()
    if platform in ("offscreen", "minimal", "vnc"):
        return f"the '{platform}' Qt platform has no OpenGL"
    from PyQt6.QtGui import QOffscreenSurface, QOpenGLContext

    context = QOpenGLContext()
    if not context.create():
        return "no OpenGL context could be created on this display"
    surface = QOffscreenSurface()
    surface.create()
    if not context.makeCurrent(surface):
        return "an OpenGL context was created but cannot be made current"
    context.doneCurrent()
    return None


def display_points(cloud: PointCloud, max_points: int, max_depth: Optional[float] = None,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(N, 3)`` in the GL frame (x right, y forward, z up) and RGBA colours
    ``(N, 4)`` float32 in [0, 1], randomly thinned to ``max_points`` (a fixed seed, so the
    picture does not shimmer between recomputes)."""
    points = cloud.points
    keep = np.isfinite(points).all(axis=1)
    if max_depth:
        keep &= points[:, 2] <= max_depth
    index = np.flatnonzero(keep)
    if index.size > max_points:
        index = np.sort(np.random.default_rng(seed).choice(index, max_points, replace=False))
    chosen = points[index]
    positions = np.stack([chosen[:, 0], chosen[:, 2], -chosen[:, 1]], axis=1).astype(np.float32)
    colours = np.ones((index.size, 4), dtype=np.float32)
    if cloud.colors is not None:
        colours[:, :3] = cloud.colors[index].astype(np.float32) / 255.0
    else:
        colours[:, :3] = 0.8
    return positions, colours


class CloudPanel(QWidget):
    """Placeholder until shown; then a GL view of the primary result's points, or the reason
    there is none."""

    def __init__(self, state: ViewerState, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.state = state
        self.gl_view = None
        self.scatter = None
        self.problem: Optional[str] = None
        self._created = False
        self._framed = False
        self.placeholder = QLabel("The 3-D view is created when you first open this tab.")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet("background: #202020; color: #d0d0d0; padding: 20px;")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.max_points = QSpinBox()
        self.max_points.setRange(10_000, 5_000_000)
        self.max_points.setSingleStep(50_000)
        self.max_points.setValue(DEFAULT_MAX_POINTS)
        self.max_points.setToolTip("points drawn at most (randomly thinned); saving keeps all")
        self.max_points.valueChanged.connect(lambda _: self.update_cloud())
        self.max_depth = QSpinBox()
        self.max_depth.setRange(0, 10_000)
        self.max_depth.setSuffix(" m")
        self.max_depth.setSpecialValueText("no limit")
        self.max_depth.setToolTip("hide points farther than this (0 = no limit)")
        self.max_depth.valueChanged.connect(lambda _: self.update_cloud())
        self.point_size = QSpinBox()
        self.point_size.setRange(1, 10)
        self.point_size.setValue(2)
        self.point_size.setSuffix(" px")
        self.point_size.valueChanged.connect(lambda _: self.update_cloud())
        self.follow = QCheckBox("follow")
        self.follow.setToolTip("re-frame the view on every new result")
        self.reset = QPushButton("Reset view")
        self.reset.setToolTip("orbit: left drag, pan: middle drag (or Ctrl + left), zoom: wheel")
        self.reset.clicked.connect(self.frame)
        self.info = QLabel()
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        controls = QHBoxLayout()
        for text, widget in (("points", self.max_points), ("max depth", self.max_depth),
                             ("size", self.point_size)):
            controls.addWidget(QLabel(text))
            controls.addWidget(widget)
        controls.addWidget(self.follow)
        controls.addWidget(self.reset)
        controls.addWidget(self.info, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.stack, 1)
        state.result_changed.connect(lambda slot: self.update_cloud() if slot == PRIMARY else None)
        state.results_cleared.connect(self.update_cloud)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.ensure_view()

    def ensure_view(self) -> bool:
        """Create the GL view once; True if it exists."""
        if not self._created:
            self._created = True
            self.problem = opengl_problem()
            if self.problem is None:
                try:
                    import pyqtgraph.opengl as gl

                    self.gl_view = gl.GLViewWidget()
                    self.gl_view.setBackgroundColor((20, 20, 24))
                    self.scatter = gl.GLScatterPlotItem(pxMode=True)
                    # the default additive blending turns dense, overlapping points white
                    self.scatter.setGLOptions("opaque")
                    self.gl_view.addItem(self.scatter)
                    self.stack.addWidget(self.gl_view)
                    self.stack.setCurrentWidget(self.gl_view)
                except Exception as error:  # GL stacks fail in many driver-specific ways
                    self.problem = f"the OpenGL view failed to start ({type(error).__name__}: {error})"
                    self.gl_view = None
            if self.problem is not None:
                self.placeholder.setText(
                    f"3-D point cloud view unavailable: {self.problem}.\n\n"
                    "Every other view works; save the cloud with File > Save point cloud (PLY) "
                    "and open it in MeshLab or CloudCompare.")
        self.update_cloud()
        return self.gl_view is not None

    def update_cloud(self) -> None:
        outcome = self.state.outputs.get(PRIMARY)
        cloud = outcome.output.cloud if outcome is not None else None
        if cloud is None:
            self.info.setText("no point cloud: compute with a calibration" if outcome is not None
                              else "no result yet")
        if self.gl_view is None or self.scatter is None:
            if cloud is not None:
                self.info.setText(f"{len(cloud):,} points")
            return
        if cloud is None or len(cloud) == 0:
            self.scatter.setData(pos=np.zeros((0, 3), np.float32))
            return
        positions, colours = display_points(cloud, self.max_points.value(),
                                            self.max_depth.value() or None)
        self.scatter.setData(pos=positions, color=colours, size=float(self.point_size.value()))
        self.info.setText(f"{len(cloud):,} points, {len(positions):,} drawn")
        self._positions = positions
        if not self._framed or self.follow.isChecked():
            self.frame()

    def frame(self) -> None:
        """Look from just behind and above the left camera towards the scene's middle."""
        if self.gl_view is None or getattr(self, "_positions", None) is None or not len(self._positions):
            return
        from pyqtgraph import Vector

        centre = np.median(self._positions, axis=0)
        spread = np.percentile(self._positions, 95, axis=0) - np.percentile(self._positions, 5, axis=0)
        self.gl_view.setCameraPosition(pos=Vector(*centre.tolist()),
                                       distance=float(max(spread.max(), 1e-3) * 1.25),
                                       elevation=15, azimuth=-80)
        self._framed = True
