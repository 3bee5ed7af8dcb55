"""The 3-D coloured point cloud (pyqtgraph's GLViewWidget: orbit with the left button, pan with
the middle button, zoom with the wheel), with a floor grid, the camera's axes and frustum, and a
reset. A drag across the whole view turns the cloud half way round, whatever the window size
(pyqtgraph's own rate is one degree per pixel).

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
# A drag across the whole width turns half way round; across the whole height, a quarter tilt
# (from looking level to looking straight down).
AZIMUTH_PER_WIDTH = 180.0
ELEVATION_PER_HEIGHT = 90.0
# The home view: from just behind and above the left camera.
HOME_ELEVATION, HOME_AZIMUTH = 15.0, -80.0


def orbit_angles(dx: float, dy: float, width: int, height: int) -> tuple[float, float]:
    """Degrees ``(azimuth, elevation)`` for a mouse drag of ``(dx, dy)`` pixels on a view of
    ``width x height``, in the signs of ``GLViewWidget.orbit``."""
    return (-dx * AZIMUTH_PER_WIDTH / max(width, 1), dy * ELEVATION_PER_HEIGHT / max(height, 1))


def grid_spacing(extent: float) -> float:
    """A round grid step (1, 2 or 5 x 10^k metres) giving about ten cells over ``extent``."""
    raw = max(float(extent), 1e-3) / 10.0
    power = 10.0 ** np.floor(np.log10(raw))
    return float(next(step * power for step in (1.0, 2.0, 5.0, 10.0) if step * power >= raw))


def frustum_lines(calibration, depth: float) -> np.ndarray:
    """Line segments ``(16, 3)`` (pairs of GL-frame points) of the left camera's viewing
    pyramid from its centre to the image corners at ``depth`` metres."""
    width, height = calibration.image_size
    corners = []
    for u, v in ((0, 0), (width, 0), (width, height), (0, height)):
        x = (u - calibration.cx_left) * depth / calibration.focal
        y = (v - calibration.cy) * depth / calibration.focal_y
        corners.append((x, depth, -y))  # GL frame: x right, y forward, z up
    segments = []
    for index, corner in enumerate(corners):
        segments += [(0.0, 0.0, 0.0), corner, corner, corners[(index + 1) % 4]]
    return np.asarray(segments, dtype=np.float32)


def _orbit_view_class():
    """``GLViewWidget`` whose left-drag rotation follows the view size (pyqtgraph is imported
    only when a view is made)."""
    import pyqtgraph.opengl as gl

    class OrbitView(gl.GLViewWidget):
        def mouseMoveEvent(self, event):  # noqa: N802 (Qt's name)
            control = event.modifiers() & Qt.KeyboardModifier.ControlModifier
            if event.buttons() != Qt.MouseButton.LeftButton or control:
                super().mouseMoveEvent(event)
                return
            position = event.position()
            previous = getattr(self, "mousePos", position)
            self.mousePos = position
            self.drag(position.x() - previous.x(), position.y() - previous.y())

        def drag(self, dx: float, dy: float) -> None:
            """Orbit as a left-button drag of ``(dx, dy)`` pixels does."""
            self.orbit(*orbit_angles(dx, dy, self.width(), self.height()))

    return OrbitView


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
        self.scatter = self.grid = self.axes = self.frustum = None
        self._positions: Optional[np.ndarray] = None
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
        self.reset.setToolTip("back to the view from behind the camera (orbit: left drag, pan: "
                              "middle drag or Ctrl + left, zoom: wheel)")
        self.reset.clicked.connect(self.frame)
        self.guides = QCheckBox("guides")
        self.guides.setChecked(True)
        self.guides.setToolTip("a floor grid (spacing in the caption), the left camera's axes "
                               "(red x right, green z forward, blue up) and its viewing frustum")
        self.guides.toggled.connect(lambda _: self.update_cloud())
        self.info = QLabel()
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        controls = QHBoxLayout()
        for text, widget in (("points", self.max_points), ("max depth", self.max_depth),
                             ("size", self.point_size)):
            controls.addWidget(QLabel(text))
            controls.addWidget(widget)
        controls.addWidget(self.guides)
        controls.addWidget(self.follow)
        controls.addWidget(self.reset)
        controls.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.info)
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

                    self.gl_view = _orbit_view_class()()
                    self.gl_view.setBackgroundColor((20, 20, 24))
                    self.grid = gl.GLGridItem(color=(255, 255, 255, 50))
                    self.axes = gl.GLLinePlotItem(mode="lines", width=3, antialias=True)
                    self.frustum = gl.GLLinePlotItem(mode="lines", width=1.5, antialias=True,
                                                     color=(1.0, 1.0, 1.0, 0.8))
                    self.scatter = gl.GLScatterPlotItem(pxMode=True)
                    # the default additive blending turns dense, overlapping points white
                    self.scatter.setGLOptions("opaque")
                    for item in (self.grid, self.axes, self.frustum, self.scatter):
                        self.gl_view.addItem(item)
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
            self._positions = None
            self._update_guides(None)
            return
        positions, colours = display_points(cloud, self.max_points.value(),
                                            self.max_depth.value() or None)
        self.scatter.setData(pos=positions, color=colours, size=float(self.point_size.value()))
        self._positions = positions
        spacing = self._update_guides(outcome.output.pair.calibration)
        grid = f", grid {spacing:g} m" if spacing else ""
        self.info.setText(f"{len(cloud):,} points, {len(positions):,} drawn{grid}")
        if not self._framed or self.follow.isChecked():
            self.frame()

    def _update_guides(self, calibration) -> Optional[float]:
        """Floor grid under the points, camera axes and frustum sized to the scene; returns
        the grid spacing (m), None when hidden."""
        positions = self._positions
        shown = self.guides.isChecked() and positions is not None and len(positions) > 0
        for item in (self.grid, self.axes, self.frustum):
            item.setVisible(shown)
        if not shown:
            return None
        low, high = np.percentile(positions, 2, axis=0), np.percentile(positions, 98, axis=0)
        extent = float(max(high[0] - min(low[0], 0.0), high[1], 1e-3))
        spacing = grid_spacing(extent)
        cells = int(np.ceil(extent / spacing)) + 2
        self.grid.resetTransform()
        self.grid.setSpacing(spacing, spacing, spacing)
        self.grid.setSize(cells * spacing, cells * spacing, 1)
        centre_x = (min(low[0], 0.0) + high[0]) / 2.0
        self.grid.translate(centre_x, cells * spacing / 2.0 - spacing, float(low[2]))
        axis = 0.6 * spacing
        self.axes.setData(pos=np.array([[0, 0, 0], [axis, 0, 0], [0, 0, 0], [0, axis, 0],
                                        [0, 0, 0], [0, 0, axis]], np.float32),
                          color=np.array([[1, .2, .2, 1]] * 2 + [[.2, 1, .2, 1]] * 2
                                         + [[.3, .5, 1, 1]] * 2, np.float32))
        if calibration is not None:
            self.frustum.setData(pos=frustum_lines(calibration, float(np.median(positions[:, 1])) / 4))
        else:
            self.frustum.setVisible(False)
        return spacing

    def frame(self) -> None:
        """Reset the view: from behind and above the left camera, at a distance that shows
        the scene and the camera (its frustum) together."""
        if self.gl_view is None or self._positions is None or not len(self._positions):
            return
        from pyqtgraph import Vector

        low = np.minimum(np.percentile(self._positions, 5, axis=0), 0.0)
        high = np.maximum(np.percentile(self._positions, 95, axis=0), 0.0)
        centre = (low + high) / 2.0
        self.gl_view.setCameraPosition(pos=Vector(*centre.tolist()),
                                       distance=float(max((high - low).max(), 1e-3) * 0.9),
                                       elevation=HOME_ELEVATION, azimuth=HOME_AZIMUTH)
        self._framed = True
