"""The colour legend: one swatch per composer the model knows, wrapped to the panel's width."""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from .colors import composer_color, display_name

SWATCH = 11
GAP_X, ROW_H = 14, 20


class LegendWidget(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.labels: list[str] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def set_labels(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.setToolTip("Row colours: " + ", ".join(display_name(c) for c in self.labels) if self.labels else "")
        self.updateGeometry()
        self.update()

    def _layout(self, width: int) -> list[tuple[str, QRectF]]:
        fm = self.fontMetrics()
        x = y = 0.0
        out = []
        for c in self.labels:
            w = SWATCH + 5 + fm.horizontalAdvance(display_name(c))
            if x > 0 and x + w > width:
                x, y = 0.0, y + ROW_H
            out.append((c, QRectF(x, y, w, ROW_H)))
            x += w + GAP_X
        return out

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        items = self._layout(width)
        return int(items[-1][1].bottom()) if items else 0

    def sizeHint(self) -> QSize:
        return QSize(260, self.heightForWidth(max(self.width(), 260)))

    def minimumSizeHint(self) -> QSize:
        return QSize(120, self.heightForWidth(max(self.width(), 120)))

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        text = self.palette().color(QPalette.ColorRole.WindowText)
        for c, r in self._layout(self.width()):
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(composer_color(c))
            p.drawRoundedRect(QRectF(r.left(), r.center().y() - SWATCH / 2, SWATCH, SWATCH), 2, 2)
            p.setPen(text)
            p.drawText(QRectF(r.left() + SWATCH + 5, r.top(), r.width() - SWATCH - 5, r.height()),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, display_name(c))
        p.end()
