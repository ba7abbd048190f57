"""The page view: one page at a time with its rows outlined, zoomable, click a row to select it.

Like Frescobaldi's qpageview, the view only asks for images (``renderWanted``) and shows what
it has meanwhile, scaled: it never renders itself. The image asked for has the view's device
pixel ratio, so pages stay sharp on HiDPI screens.
"""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPalette, QPixmap, QResizeEvent,
                           QWheelEvent)
from PySide6.QtWidgets import QScrollArea, QToolTip, QWidget

from ..report import SystemResult
from .overlays import paint_activation, paint_damage, paint_rows, row_label

MARGIN = 16  # around the page, logical pixels
MIN_ZOOM, MAX_ZOOM = 0.1, 8.0  # logical pixels per point
ZOOM_STEP = 1.2
MAX_RENDER_DPI = 900.0


class PageCanvas(QWidget):
    """Paints the page image, the row overlays and a row's activation map."""

    rowClicked = Signal(int)  # row index on this page, -1 for none

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.page_size = (612.0, 792.0)  # points
        self.zoom = 1.0
        self.pixmap: QPixmap | None = None
        self.pixmap_dpi = 0.0
        self.systems: list[SystemResult] = []
        self.selected: int | None = None
        self.hovered: int | None = None
        self.show_overlays = True
        self.heatmap: QImage | None = None
        self.heatmap_bbox: tuple[float, float, float, float] | None = None
        self.damage: str | None = None  # what could not be read of this page; marked over it
        self.setMouseTracking(True)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, False)

    def sizeHint(self) -> QSize:
        w, h = self.page_size
        return QSize(int(w * self.zoom) + 2 * MARGIN, int(h * self.zoom) + 2 * MARGIN)

    def page_rect(self) -> QRectF:
        w, h = self.page_size
        return QRectF(MARGIN, MARGIN, w * self.zoom, h * self.zoom)

    def outlined_rows(self) -> int:
        """How many rows are drawn (for tests and the status bar)."""
        return len(self.systems) if self.show_overlays else 0

    def row_at(self, pos: QPointF) -> int | None:
        if not self.show_overlays:
            return None
        x = (pos.x() - MARGIN) / self.zoom
        y = (pos.y() - MARGIN) / self.zoom
        for i, s in enumerate(self.systems):
            x0, y0, x1, y1 = s.bbox
            if x0 <= x <= x1 and y0 <= y <= y1:
                return i
        return None

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        page = self.page_rect()
        # A soft shadow, then white paper: the page reads as a sheet on any theme.
        for k, alpha in ((4, 18), (2, 36)):
            p.fillRect(page.adjusted(-k + 2, -k + 3, k + 2, k + 3), QColor(0, 0, 0, alpha))
        p.fillRect(page, QColor("white"))
        if self.pixmap is not None:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawPixmap(page, self.pixmap, QRectF(self.pixmap.rect()))
        origin = page.topLeft()
        if self.heatmap is not None and self.heatmap_bbox is not None:
            paint_activation(p, self.heatmap, self.heatmap_bbox, self.zoom, origin)
        if self.show_overlays and self.systems:
            label = max(9.0, min(13.0, 7.5 * self.zoom))
            paint_rows(p, self.systems, self.zoom, origin, self.selected, self.hovered, label_px=label,
                       fill_alpha=0 if self.heatmap is not None else 40)
        if self.damage:
            paint_damage(p, page, self.damage, title_px=max(11.0, min(22.0, 14.0 * self.zoom)))
        p.end()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        i = self.row_at(event.position())
        if i != self.hovered:
            self.hovered = i
            self.setCursor(Qt.CursorShape.PointingHandCursor if i is not None else Qt.CursorShape.ArrowCursor)
            if i is not None:
                QToolTip.showText(event.globalPosition().toPoint(),
                                  f"{row_label(self.systems[i])} — click for details", self)
            else:
                QToolTip.hideText()
            self.update()
        super().mouseMoveEvent(event)

    def leaveEvent(self, event: object) -> None:
        if self.hovered is not None:
            self.hovered = None
            self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            i = self.row_at(event.position())
            self.rowClicked.emit(-1 if i is None else i)
        super().mousePressEvent(event)


class PageView(QScrollArea):
    """Scrollable page with fit-width / fit-page / zoom; asks for renders at the right dpi."""

    rowClicked = Signal(int)
    renderWanted = Signal(int, float)  # page index, dpi
    zoomChanged = Signal(float)  # percent of actual size

    FIT_WIDTH, FIT_PAGE, FIXED = "fit-width", "fit-page", "fixed"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.canvas = PageCanvas()
        self.canvas.rowClicked.connect(self.rowClicked)
        self.setWidget(self.canvas)
        self.canvas.hide()
        self.setWidgetResizable(False)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setBackgroundRole(QPalette.ColorRole.Dark)  # a neutral surround, as PDF readers have
        self.page = -1
        self.mode = self.FIT_WIDTH
        # Renders are asked for once zooming or resizing has paused: no render per resize step.
        self._render_timer = QTimer(self, singleShot=True, interval=90)
        self._render_timer.timeout.connect(self._want_render)

    # -- content --------------------------------------------------------------------------
    def set_page(self, index: int, size: tuple[float, float]) -> None:
        """Show page ``index`` (0-based) of ``size`` points; its image is asked for."""
        c = self.canvas
        self.page = index
        c.show()
        c.page_size = (max(1.0, size[0]), max(1.0, size[1]))
        c.pixmap, c.pixmap_dpi = None, 0.0
        c.systems, c.selected, c.hovered = [], None, None
        c.heatmap = c.heatmap_bbox = None
        c.damage = None
        self._apply_zoom(self._zoom_for_mode())
        self.verticalScrollBar().setValue(0)
        self._want_render()

    def set_image(self, page: int, dpi: float, image: QImage) -> None:
        if page != self.page:
            return
        self.canvas.pixmap = QPixmap.fromImage(image)
        self.canvas.pixmap_dpi = dpi
        self.canvas.update()

    def set_systems(self, systems: Sequence[SystemResult]) -> None:
        self.canvas.systems = list(systems)
        self.canvas.update()

    def set_damage(self, message: str | None) -> None:
        """Mark the page as damaged (its content could not be wholly read), saying what was lost; None: unmarked."""
        self.canvas.damage = message
        self.canvas.update()

    def set_selected(self, index: int | None) -> None:
        self.canvas.selected = index
        self.canvas.update()

    def set_activation(self, heatmap: QImage | None, bbox: tuple[float, float, float, float] | None) -> None:
        self.canvas.heatmap, self.canvas.heatmap_bbox = heatmap, bbox
        self.canvas.update()

    def set_overlays_visible(self, visible: bool) -> None:
        self.canvas.show_overlays = visible
        self.canvas.update()

    def visible_rows(self) -> list[int]:
        """Rows of the page that are wholly inside the viewport."""
        top = self.verticalScrollBar().value()
        bottom = top + self.viewport().height()
        z = self.canvas.zoom
        return [i for i, s in enumerate(self.canvas.systems)
                if MARGIN + s.bbox[1] * z >= top and MARGIN + s.bbox[3] * z <= bottom]

    def clear(self) -> None:
        self.page = -1
        self.canvas.hide()  # no page: no blank sheet either
        self.canvas.pixmap = None
        self.canvas.systems = []
        self.canvas.heatmap = None
        self.canvas.damage = None
        self.canvas.update()

    # -- zoom -----------------------------------------------------------------------------
    def needed_dpi(self) -> float:
        return min(MAX_RENDER_DPI, 72.0 * self.canvas.zoom * self.devicePixelRatioF())

    def render_is_current(self) -> bool:
        """True when the image shown was rendered for the present zoom and screen."""
        need = self.needed_dpi()
        return self.canvas.pixmap is not None and abs(self.canvas.pixmap_dpi - need) <= max(1.0, 0.03 * need)

    def zoom_percent(self) -> float:
        """Zoom as print-preview programs state it: 100 % shows an inch as a logical inch."""
        return 100.0 * self.canvas.zoom * 72.0 / max(1.0, self.logicalDpiX())

    def _zoom_for_mode(self) -> float:
        vw = max(50, self.viewport().width() - 2 * MARGIN)
        vh = max(50, self.viewport().height() - 2 * MARGIN)
        w, h = self.canvas.page_size
        if self.mode == self.FIT_WIDTH:
            # Leave room for the vertical scroll bar, which fit-width usually brings.
            sb = 0 if self.verticalScrollBar().isVisible() else self.verticalScrollBar().sizeHint().width()
            return (vw - sb) / w
        if self.mode == self.FIT_PAGE:
            return min(vw / w, vh / h)
        return self.canvas.zoom

    def _apply_zoom(self, zoom: float, anchor: QPoint | None = None) -> None:
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
        c = self.canvas
        if abs(zoom - c.zoom) < 1e-4 and c.size() == c.sizeHint():
            return
        hbar, vbar = self.horizontalScrollBar(), self.verticalScrollBar()
        anchor = anchor or QPoint(self.viewport().width() // 2, self.viewport().height() // 2)
        # Keep the point under ``anchor`` in place while zooming.
        fx = (hbar.value() + anchor.x()) / max(1, c.width())
        fy = (vbar.value() + anchor.y()) / max(1, c.height())
        c.zoom = zoom
        c.resize(c.sizeHint())
        hbar.setValue(int(fx * c.width() - anchor.x()))
        vbar.setValue(int(fy * c.height() - anchor.y()))
        c.update()
        self.zoomChanged.emit(self.zoom_percent())
        self._render_timer.start()

    def fit_width(self) -> None:
        self.mode = self.FIT_WIDTH
        self._apply_zoom(self._zoom_for_mode())

    def fit_page(self) -> None:
        self.mode = self.FIT_PAGE
        self._apply_zoom(self._zoom_for_mode())

    def actual_size(self) -> None:
        self.mode = self.FIXED
        self._apply_zoom(self.logicalDpiX() / 72.0)

    def zoom_in(self, anchor: QPoint | None = None) -> None:
        self.mode = self.FIXED
        self._apply_zoom(self.canvas.zoom * ZOOM_STEP, anchor)

    def zoom_out(self, anchor: QPoint | None = None) -> None:
        self.mode = self.FIXED
        self._apply_zoom(self.canvas.zoom / ZOOM_STEP, anchor)

    def _want_render(self) -> None:
        if self.page >= 0 and not self.render_is_current():
            self.renderWanted.emit(self.page, self.needed_dpi())

    # -- events ---------------------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.mode != self.FIXED:
            self._apply_zoom(self._zoom_for_mode())

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            anchor = event.position().toPoint()
            if event.angleDelta().y() > 0:
                self.zoom_in(anchor)
            elif event.angleDelta().y() < 0:
                self.zoom_out(anchor)
            event.accept()
            return
        super().wheelEvent(event)
