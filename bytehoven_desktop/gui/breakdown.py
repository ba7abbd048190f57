"""A horizontal bar chart of composers (QPainter, no plotting library): a page's or a document's
breakdown, or one row's top-5. Bars are in the composers' colours; "no music" and "uncertain"
are stated in words above the bars, never hidden."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..report import Summary, SystemResult
from .colors import NEUTRAL, composer_color, display_name

ROW_H = 24
NAME_W = 112


@dataclass(frozen=True)
class Bar:
    composer: str | None  # None: "other composers"
    value: float  # 0..1
    count: int | None = None  # rows won, when it applies


def summary_bars(summary: Summary, k: int = 6) -> list[Bar]:
    """The ``k`` composers with the highest pooled probability (plus the rest as one bar)."""
    ranked = sorted(summary.composers.items(), key=lambda kv: -kv[1])
    bars = [Bar(c, float(v), summary.wins.get(c, 0)) for c, v in ranked[:k]]
    rest = sum(v for _, v in ranked[k:])
    if rest > 0.005:
        bars.append(Bar(None, float(rest), sum(summary.wins.get(c, 0) for c, _ in ranked[k:])))
    return bars


def row_bars(system: SystemResult, k: int = 5) -> list[Bar]:
    return [Bar(c, p) for c, p in system.ranked(k)]


def summary_message(summary: Summary, what: str = "page") -> str | None:
    """The words that go with a summary: why there is no composer, or the confidence."""
    if summary.reason == "no music":
        return f"No music found on this {what}."
    if summary.reason == "error":
        return f"This {what} could not be analysed."
    if summary.reason == "uncertain":
        guess = f" Best guess: {display_name(summary.best_guess)} ({summary.confidence:.0%})." \
            if summary.best_guess and summary.confidence is not None else ""
        return f"Uncertain: no composer is likely enough.{guess}"
    return None


class BreakdownChart(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.bars: list[Bar] = []
        self.message: str | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(220)

    def set_data(self, bars: Sequence[Bar], message: str | None = None) -> None:
        """Show ``bars`` (and ``message`` above them); a count column appears when bars have counts."""
        self.bars, self.message = list(bars), message
        self.updateGeometry()
        self.update()

    def clear(self, message: str | None = None) -> None:
        self.set_data([], message)

    def _message_height(self, width: int) -> int:
        if not self.message:
            return 0
        fm = QFontMetrics(self.font())
        r = fm.boundingRect(0, 0, max(50, width), 1000, Qt.TextFlag.TextWordWrap, self.message)
        return r.height() + 6

    def sizeHint(self) -> QSize:
        return QSize(280, self._message_height(max(self.width(), 260)) + len(self.bars) * ROW_H + 4)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._message_height(width) + len(self.bars) * ROW_H + 4

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.WindowText)
        muted = pal.color(QPalette.ColorRole.PlaceholderText)
        y = 0
        if self.message:
            h = self._message_height(self.width())
            p.setPen(text)
            p.drawText(QRectF(0, 0, self.width(), h), Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignTop,
                       self.message)
            y = h
        fm = p.fontMetrics()
        counts = any(b.count is not None for b in self.bars)
        value_w = fm.horizontalAdvance("100%") + 10
        # Rows won, in a muted column of its own: "12 rows" reads without a legend.
        count_w = fm.horizontalAdvance("999 rows") + 8 if counts else 0
        bar_x = NAME_W
        bar_w = max(20, self.width() - bar_x - value_w - count_w)
        track = QColor(text)
        track.setAlpha(28)
        for b in self.bars:
            mid = y + ROW_H / 2
            name = display_name(b.composer) if b.composer else "others"
            p.setPen(text if b.composer else muted)
            p.drawText(QRectF(0, y, NAME_W - 8, ROW_H), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                       fm.elidedText(name, Qt.TextElideMode.ElideRight, NAME_W - 8))
            bh = min(14, ROW_H - 8)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(track)
            p.drawRoundedRect(QRectF(bar_x, mid - bh / 2, bar_w, bh), 3, 3)
            p.setBrush(composer_color(b.composer) if b.composer else QColor(NEUTRAL))
            p.drawRoundedRect(QRectF(bar_x, mid - bh / 2, max(2.0, bar_w * max(0.0, min(1.0, b.value))), bh), 3, 3)
            right = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight
            p.setPen(text)
            p.drawText(QRectF(bar_x + bar_w, y, value_w, ROW_H), right, f"{b.value:.0%}")
            if b.count:  # rows won; composers that won none are left blank, not "0 rows"
                p.setPen(muted)
                p.drawText(QRectF(bar_x + bar_w + value_w, y, count_w, ROW_H), right,
                           f"{b.count} row" + ("" if b.count == 1 else "s"))
            y += ROW_H
        p.end()
