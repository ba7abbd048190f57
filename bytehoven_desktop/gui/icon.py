"""The program's icon, drawn at run time (staff lines and a note on a rounded tile), so the
package ships no image files for it and it is sharp at every size."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap


def _draw(size: int) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    s = size / 64.0
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#1f4e8c"))
    p.drawRoundedRect(QRectF(2 * s, 2 * s, 60 * s, 60 * s), 13 * s, 13 * s)
    p.setPen(QPen(QColor(255, 255, 255, 210), max(1.0, 2.2 * s)))
    for k in range(5):
        y = (20 + 6 * k) * s
        p.drawLine(QPointF(10 * s, y), QPointF(54 * s, y))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#f3a712"))
    p.save()
    p.translate(28 * s, 41 * s)
    p.rotate(-22)
    p.drawEllipse(QRectF(-6.5 * s, -4.6 * s, 13 * s, 9.2 * s))
    p.restore()
    p.setPen(QPen(QColor("#f3a712"), max(1.0, 3 * s)))
    p.drawLine(QPointF(33.6 * s, 40 * s), QPointF(33.6 * s, 12 * s))
    p.end()
    return pm


def app_icon() -> QIcon:
    icon = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        icon.addPixmap(_draw(size))
    return icon


# -- toolbar icons: simple strokes in a grey that reads on light and dark themes ---------------
ICON_GREY = QColor("#7a808a")


def _stroke_icon(paint: "object") -> QIcon:
    icon = QIcon()
    for size in (16, 24, 32, 48):
        pm = QPixmap(size, size)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.scale(size / 24.0, size / 24.0)
        pen = QPen(ICON_GREY, 2.0)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        p.setPen(pen)
        paint(p)  # type: ignore[operator]
        p.end()
        icon.addPixmap(pm)
    return icon


def _poly(p: QPainter, *pts: tuple[float, float]) -> None:
    for a, b in zip(pts, pts[1:]):
        p.drawLine(QPointF(*a), QPointF(*b))


def _magnifier(p: QPainter, plus: bool) -> None:
    p.drawEllipse(QRectF(3, 3, 13, 13))
    p.drawLine(QPointF(14.5, 14.5), QPointF(21, 21))
    p.drawLine(QPointF(6.5, 9.5), QPointF(12.5, 9.5))
    if plus:
        p.drawLine(QPointF(9.5, 6.5), QPointF(9.5, 12.5))


TOOL_ICONS = {
    "open": lambda p: _poly(p, (3, 19), (3, 5), (9, 5), (11, 7), (20, 7), (20, 19), (3, 19)),
    "previous_page": lambda p: _poly(p, (15, 5), (8, 12), (15, 19)),
    "next_page": lambda p: _poly(p, (9, 5), (16, 12), (9, 19)),
    "zoom_in": lambda p: _magnifier(p, True),
    "zoom_out": lambda p: _magnifier(p, False),
    "fit_width": lambda p: (p.drawRect(QRectF(5, 3, 14, 18)), _poly(p, (2, 12), (22, 12)),
                            _poly(p, (5, 9), (2, 12), (5, 15)), _poly(p, (19, 9), (22, 12), (19, 15))),
    "fit_page": lambda p: (p.drawRect(QRectF(6, 2.5, 12, 19)), _poly(p, (9, 8), (15, 8)), _poly(p, (9, 12), (15, 12)),
                           _poly(p, (9, 16), (13, 16))),
    "analyse_folder": lambda p: (_poly(p, (3, 19), (3, 5), (9, 5), (11, 7), (20, 7), (20, 19), (3, 19)),
                                 _poly(p, (7, 11), (16, 11)), _poly(p, (7, 15), (13, 15))),
    "cancel": lambda p: (p.drawEllipse(QRectF(3, 3, 18, 18)), _poly(p, (8.5, 8.5), (15.5, 15.5)),
                         _poly(p, (15.5, 8.5), (8.5, 15.5))),
}


def tool_icon(name: str) -> QIcon:
    """The toolbar icon for action ``name`` (an empty icon when there is none)."""
    paint = TOOL_ICONS.get(name)
    return _stroke_icon(paint) if paint else QIcon()
