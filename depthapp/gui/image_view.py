"""Image panes: zoom (wheel), pan (drag), fit (double click), hover readout and a crosshair
shared by every pane, all panes zoomed and panned together."""

from __future__ import annotations

import math
from typing import Optional

from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFontMetrics, QPainter, QPainterPath, QPen, QPixmap
from PyQt6.QtWidgets import (QComboBox, QGraphicsPathItem, QGraphicsPixmapItem, QGraphicsScene,
                             QGraphicsView, QHBoxLayout, QLabel, QSizePolicy, QSplitter,
                             QStackedWidget, QVBoxLayout, QWidget)

from .qt_util import rgb_to_pixmap
from .render import VIEW_KINDS, Legend, RenderedView, render_grid_views

PANE_BACKGROUND = 48
from .state import ViewerState


class ImageView(QGraphicsView):
    """One image in pixel coordinates; ``hovered(x, y)`` gives the pixel under the mouse
    (``-1, -1`` when outside the image rows or when the mouse leaves)."""

    hovered = pyqtSignal(int, int)
    view_changed = pyqtSignal()

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.pixmap_item = QGraphicsPixmapItem()
        self.pixmap_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self.pixmap_item)
        # a white cross over a dark outline: visible on bright and dark pixels alike
        self.crosshair_shadow = QGraphicsPathItem()
        self.crosshair = QGraphicsPathItem()
        for item, colour, width, z in ((self.crosshair_shadow, QColor(0, 0, 0, 200), 3, 10),
                                       (self.crosshair, QColor(255, 255, 255, 240), 1, 11)):
            pen = QPen(colour)
            pen.setCosmetic(True)
            pen.setWidth(width)
            item.setPen(pen)
            item.setZValue(z)
            item.hide()
            self.scene().addItem(item)
        self.image_height = 0
        self.fitted = True
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setBackgroundBrush(QColor(PANE_BACKGROUND, PANE_BACKGROUND, PANE_BACKGROUND))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        self.setMinimumSize(120, 90)
        self.horizontalScrollBar().valueChanged.connect(lambda _: self.view_changed.emit())
        self.verticalScrollBar().valueChanged.connect(lambda _: self.view_changed.emit())

    def set_image(self, pixmap: QPixmap) -> None:
        size_changed = pixmap.size() != self.pixmap_item.pixmap().size()
        self.pixmap_item.setPixmap(pixmap)
        self.image_height = pixmap.height()
        self.scene().setSceneRect(QRectF(pixmap.rect()))
        if self.fitted or size_changed:
            self.fit()

    def fit(self) -> None:
        if not self.pixmap_item.pixmap().isNull():
            self.fitInView(self.pixmap_item, Qt.AspectRatioMode.KeepAspectRatio)
        self.fitted = True
        self._update_smoothing()
        self.view_changed.emit()

    def zoom(self, factor: float) -> None:
        self.scale(factor, factor)
        self.fitted = False
        self._update_smoothing()
        self.view_changed.emit()

    def _update_smoothing(self) -> None:
        # Zoomed in, show pixels as blocks (inspection); zoomed out, smooth (overview).
        smooth = self.transform().m11() < 1.5
        mode = (Qt.TransformationMode.SmoothTransformation if smooth
                else Qt.TransformationMode.FastTransformation)
        self.pixmap_item.setTransformationMode(mode)

    def show_crosshair(self, x: int, y: int) -> None:
        if x < 0 or self.pixmap_item.pixmap().isNull():
            self.crosshair.hide()
            self.crosshair_shadow.hide()
            return
        cx, cy, arm = x + 0.5, y + 0.5, 6.0 / max(self.transform().m11(), 1e-6)
        path = QPainterPath()
        path.moveTo(cx - 2 * arm, cy)
        path.lineTo(cx - arm / 2, cy)
        path.moveTo(cx + arm / 2, cy)
        path.lineTo(cx + 2 * arm, cy)
        path.moveTo(cx, cy - 2 * arm)
        path.lineTo(cx, cy - arm / 2)
        path.moveTo(cx, cy + arm / 2)
        path.lineTo(cx, cy + 2 * arm)
        for item in (self.crosshair_shadow, self.crosshair):
            item.setPath(path)
            item.show()

    def pixel_at(self, position: QPointF) -> tuple[int, int]:
        scene = self.mapToScene(position.toPoint())
        x, y = math.floor(scene.x()), math.floor(scene.y())
        width = self.pixmap_item.pixmap().width()
        if 0 <= x < width and 0 <= y < self.image_height:
            return x, y
        return -1, -1

    def viewport_position(self, x: int, y: int) -> QPointF:
        """Where pixel ``(x, y)``'s centre is on the viewport (tests move the mouse there)."""
        return QPointF(self.mapFromScene(QPointF(x + 0.5, y + 0.5)))

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom(1.25 ** steps)
        event.accept()

    def mouseMoveEvent(self, event) -> None:
        super().mouseMoveEvent(event)
        self.hovered.emit(*self.pixel_at(event.position()))

    def leaveEvent(self, event) -> None:
        super().leaveEvent(event)
        self.hovered.emit(-1, -1)

    def mouseDoubleClickEvent(self, event) -> None:
        self.fit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.fitted:
            self.fit()


class LegendBar(QWidget):
    """A colour bar with tick values and a label, drawn by Qt so it stays sharp at any size."""

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.legend: Optional[Legend] = None
        self._bar: Optional[QPixmap] = None
        metrics = QFontMetrics(self.font())
        self.setFixedHeight(12 + 2 * metrics.height() + 6)

    def set_legend(self, legend: Optional[Legend]) -> None:
        self.legend = legend
        self._bar = rgb_to_pixmap(legend.colours[None, :, :]) if legend is not None else None
        self.setVisible(legend is not None)
        self.update()

    def paintEvent(self, event) -> None:
        if self.legend is None or self._bar is None:
            return
        painter = QPainter(self)
        metrics = painter.fontMetrics()
        margin = 8
        width = max(10, self.width() - 2 * margin)
        painter.fillRect(self.rect(), QColor(PANE_BACKGROUND, PANE_BACKGROUND, PANE_BACKGROUND))
        painter.drawPixmap(QRectF(margin, 2, width, 12).toRect(), self._bar)
        painter.setPen(QColor(225, 225, 225))
        ticks = 5 if width > 260 else 3
        low, high = self.legend.vmin, self.legend.vmax
        for i in range(ticks):
            fraction = i / (ticks - 1)
            x = margin + fraction * width
            text = f"{low + fraction * (high - low):.3g}"
            text_width = metrics.horizontalAdvance(text)
            painter.drawLine(int(x), 14, int(x), 17)
            left = min(max(0, x - text_width / 2), self.width() - text_width)
            painter.drawText(int(left), 17 + metrics.ascent(), text)
        label_width = metrics.horizontalAdvance(self.legend.label)
        painter.drawText(int((self.width() - label_width) / 2),
                         17 + metrics.height() + metrics.ascent(), self.legend.label)
        painter.end()


_EMPTY_REASONS = {
    "disparity": "No disparity yet: press Compute (F5).",
    "depth": "No depth: compute first, and open a calibration\n(Calibration > Open, or Enter by hand).",
    "error": "No error map: needs a result and ground truth\n(File > Open ground truth).",
    "invalid": "No result yet: press Compute (F5).",
    "gt": "This pair has no ground truth\n(File > Open ground truth).",
    "disparity:compare": "Compare mode is off: choose a backend\nunder Backend > Compare with.",
    "depth:compare": "Compare mode is off, or no calibration.",
    "error:compare": "Compare mode is off, or no ground truth.",
    "left": "Open a stereo pair (Ctrl+O), a folder, a video,\nor the sample (Ctrl+Shift+M), "
            "or drop files here.",
    "right": "Open a stereo pair first.",
}


class ViewPane(QWidget):
    """A view kind picker and caption above an :class:`ImageView` (or a hint when empty)."""

    kind_changed = pyqtSignal(str)

    def __init__(self, kind: str, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.kind = kind
        self.picker = QComboBox()
        for key, label in VIEW_KINDS.items():
            self.picker.addItem(label, key)
        self.picker.setCurrentIndex(list(VIEW_KINDS).index(kind))
        self.picker.currentIndexChanged.connect(self._picked)
        self.caption = QLabel()
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.caption.setStyleSheet("color: palette(mid);")
        header = QHBoxLayout()
        header.setContentsMargins(2, 0, 2, 0)
        header.addWidget(self.picker)
        header.addWidget(self.caption, 1)
        self.view = ImageView()
        self.hint = QLabel()
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("background: #303030; color: #d0d0d0; padding: 12px;")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.hint)
        self.legend = LegendBar()
        self.legend.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.setSpacing(0)
        layout.addLayout(header)
        layout.addSpacing(2)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.legend)

    def _picked(self, index: int) -> None:
        self.kind = self.picker.itemData(index)
        self.kind_changed.emit(self.kind)

    def set_kind(self, kind: str) -> None:
        self.picker.setCurrentIndex(list(VIEW_KINDS).index(kind))

    def show_rendered(self, rendered: Optional[RenderedView]) -> None:
        if rendered is None:
            self.caption.setText("")
            self.hint.setText(_EMPTY_REASONS.get(self.kind, "Nothing to show."))
            self.stack.setCurrentWidget(self.hint)
            self.legend.set_legend(None)
            return
        self.caption.setText(rendered.caption)
        self.caption.setToolTip(rendered.caption)
        self.legend.set_legend(rendered.legend)
        self.view.set_image(rgb_to_pixmap(rendered.rgb))
        self.stack.setCurrentWidget(self.view)


LAYOUTS = {"1": 1, "2": 2, "4": 4}


class ViewGrid(QWidget):
    """Up to four panes in a 2x2 splitter grid; zoom, pan and crosshair stay in step."""

    hovered = pyqtSignal(int, int)

    def __init__(self, state: ViewerState, kinds=("left", "disparity", "depth", "error"),
                 parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.state = state
        self.panes = [ViewPane(kind) for kind in kinds]
        self.rows = [QSplitter(Qt.Orientation.Horizontal), QSplitter(Qt.Orientation.Horizontal)]
        self.rows[0].addWidget(self.panes[0])
        self.rows[0].addWidget(self.panes[1])
        self.rows[1].addWidget(self.panes[2])
        self.rows[1].addWidget(self.panes[3])
        self.columns = QSplitter(Qt.Orientation.Vertical)
        for row in self.rows:
            row.setChildrenCollapsible(False)
            self.columns.addWidget(row)
        self.columns.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.columns)
        self._syncing = False
        self.layout_name = "4"
        for pane in self.panes:
            pane.kind_changed.connect(lambda _kind: self.refresh())
            pane.view.hovered.connect(self._hovered)
            pane.view.view_changed.connect(lambda pane=pane: self._sync_from(pane.view))

    @property
    def views(self) -> list[ImageView]:
        return [pane.view for pane in self.panes]

    def visible_panes(self) -> list[ViewPane]:
        return self.panes[:LAYOUTS[self.layout_name]]

    def set_layout(self, name: str) -> None:
        count = LAYOUTS[name]
        self.layout_name = name
        for index, pane in enumerate(self.panes):
            pane.setVisible(index < count)
        self.rows[1].setVisible(count > 2)
        self.refresh()

    def set_kinds(self, kinds) -> None:
        for pane, kind in zip(self.panes, kinds):
            pane.blockSignals(True)
            pane.set_kind(kind)
            pane.kind = kind
            pane.blockSignals(False)
        self.refresh()

    def kinds(self) -> list[str]:
        return [pane.kind for pane in self.panes]

    def refresh(self) -> None:
        panes = self.visible_panes()
        for pane, rendered in zip(panes, render_grid_views(self.state, [p.kind for p in panes])):
            pane.show_rendered(rendered)

    def fit_all(self) -> None:
        for view in self.views:
            view.fit()

    def point_at(self, x: int, y: int) -> None:
        self._hovered(x, y)

    def _hovered(self, x: int, y: int) -> None:
        for view in self.views:
            view.show_crosshair(x, y)
        self.hovered.emit(x, y)

    def _sync_from(self, source: ImageView) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            for view in self.views:
                if view is source or view.pixmap_item.pixmap().isNull():
                    continue
                if source.fitted:
                    view.fit()
                    continue
                view.setTransform(source.transform())
                view.fitted = False
                view._update_smoothing()
                view.horizontalScrollBar().setValue(source.horizontalScrollBar().value())
                view.verticalScrollBar().setValue(source.verticalScrollBar().value())
        finally:
            self._syncing = False
