"""Drawing the analysed rows over a page: one painter routine for the page view, the
thumbnails and the exported page images, so all three look alike."""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QImage, QPainter, QPen

from ..report import SystemResult
from .colors import composer_color, display_name, text_color_on


def row_rect(bbox: Sequence[float], scale: float, origin: QPointF = QPointF(0, 0)) -> QRectF:
    """A row's box (points) in painter coordinates, ``scale`` painter units per point."""
    return QRectF(origin.x() + bbox[0] * scale, origin.y() + bbox[1] * scale,
                  (bbox[2] - bbox[0]) * scale, (bbox[3] - bbox[1]) * scale)


def row_label(system: SystemResult) -> str:
    return f"{display_name(system.composer)} {system.confidence:.0%}"


def paint_rows(painter: QPainter, systems: Sequence[SystemResult], scale: float,
               origin: QPointF = QPointF(0, 0), selected: int | None = None, hovered: int | None = None,
               label_px: float = 11.0, line_px: float = 2.0, fill_alpha: int = 40) -> None:
    """Tint and outline every row in its composer's colour; label it when ``label_px`` > 0."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    font = QFont(painter.font())
    if label_px > 0:
        font.setPixelSize(max(6, int(round(label_px))))
        font.setBold(True)
    fm = QFontMetricsF(font)
    for i, s in enumerate(systems):
        color = composer_color(s.composer)
        rect = row_rect(s.bbox, scale, origin)
        fill = QColor(color)
        fill.setAlpha(fill_alpha + (25 if i == hovered else 0))
        painter.fillRect(rect, fill)
        pen = QPen(color, line_px * (2.0 if i == selected else 1.0))
        pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        if i == selected:
            pen.setStyle(Qt.PenStyle.SolidLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(rect)
        if label_px > 0:
            text = row_label(s)
            pad = label_px * 0.35
            tw, th = fm.horizontalAdvance(text) + 2 * pad, fm.height() + 0.6 * pad
            chip = QRectF(rect.left(), rect.top(), min(tw, rect.width()), th)
            painter.fillRect(chip, color)
            painter.setFont(font)
            painter.setPen(text_color_on(color))
            painter.drawText(chip.adjusted(pad, 0, -pad, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                             text)
    painter.restore()


def paint_activation(painter: QPainter, heatmap: QImage, bbox: Sequence[float], scale: float,
                     origin: QPointF = QPointF(0, 0), opacity: float = 0.85) -> None:
    """Stretch a row's activation map over its box: the row image is that box resized, and the
    deskew angle is small enough not to matter at this scale."""
    painter.save()
    painter.setOpacity(opacity)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
    painter.drawImage(row_rect(bbox, scale, origin), heatmap)
    painter.restore()


DAMAGE_COLOR = QColor(196, 40, 40)
DAMAGED_TITLE = "⚠ Damaged page"


def paint_damage(painter: QPainter, page: QRectF, message: str | None = None, title_px: float = 14.0) -> None:
    """Mark a page whose content could not be read: hatched in red, with a label (and, given room,
    what was lost), so that it never reads as a blank page without music."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    hatch = QColor(DAMAGE_COLOR)
    hatch.setAlpha(70)
    painter.fillRect(page, QBrush(hatch, Qt.BrushStyle.BDiagPattern))
    painter.setPen(QPen(DAMAGE_COLOR, max(1.0, title_px / 7)))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRect(page)
    font = QFont(painter.font())
    font.setPixelSize(max(6, int(round(title_px))))
    font.setBold(True)
    painter.setFont(font)
    fm = QFontMetricsF(font)
    pad = title_px * 0.6
    width = min(page.width() - 2 * pad, max(fm.horizontalAdvance(DAMAGED_TITLE) + 2 * pad, page.width() * 0.8))
    detail = QFont(font)
    detail.setBold(False)
    detail.setPixelSize(max(6, int(round(title_px * 0.8))))
    flags = int(Qt.AlignmentFlag.AlignHCenter | Qt.TextFlag.TextWordWrap)
    text_h = 0.0
    if message:
        text_h = QFontMetricsF(detail).boundingRect(QRectF(0, 0, width - 2 * pad, 1e6), flags, message).height()
    box = QRectF(page.center().x() - width / 2, page.top() + page.height() * 0.3, width,
                 fm.height() + 2 * pad + (text_h + pad * 0.5 if message else 0))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(255, 255, 255, 235))
    painter.drawRoundedRect(box, pad, pad)
    painter.setPen(DAMAGE_COLOR)
    painter.drawText(QRectF(box.left(), box.top() + pad, box.width(), fm.height()), Qt.AlignmentFlag.AlignCenter,
                     DAMAGED_TITLE)
    if message:
        painter.setFont(detail)
        painter.setPen(QColor(60, 20, 20))
        painter.drawText(QRectF(box.left() + pad, box.top() + pad * 1.5 + fm.height(), box.width() - 2 * pad, text_h),
                         flags, message)
    painter.restore()
