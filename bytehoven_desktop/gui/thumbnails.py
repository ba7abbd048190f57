"""The thumbnails sidebar: every page small, its rows tinted, its composer underneath.

Thumbnails are asked for only when painted (``imageWanted``), so a 1000-page document costs
nothing until its pages are scrolled into view."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from ..report import PageResult
from .colors import composer_color, display_name
from .overlays import DAMAGE_COLOR, paint_damage, paint_rows

THUMB_W = 116  # logical pixels
CELL_PAD = 8
CAPTION_H = 20

Index = QModelIndex | QPersistentModelIndex


def page_caption(result: PageResult | None, damaged: bool = False) -> tuple[str, str | None]:
    """Text under a thumbnail and the composer whose colour it gets."""
    if damaged or (result is not None and result.damaged):
        return "damaged page", None
    if result is None:
        return "…", None
    if result.error:
        return "error", None
    s = result.summary
    if s.composer:
        return display_name(s.composer), s.composer
    if s.reason == "uncertain" and s.best_guess:
        return f"uncertain ({display_name(s.best_guess)}?)", None
    return s.reason or "—", None


class ThumbnailModel(QAbstractListModel):
    imageWanted = Signal(int, float)  # page, dpi

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.sizes: list[tuple[float, float]] = []
        self.images: dict[int, QImage] = {}
        self.results: dict[int, PageResult] = {}
        self.damage: dict[int, str] = {}  # pages the renderer found damaged, analysed or not
        self._asked: set[int] = set()
        self.dpr = 1.0

    def reset(self, sizes: list[tuple[float, float]], dpr: float) -> None:
        self.beginResetModel()
        self.sizes, self.dpr = list(sizes), dpr
        self.images.clear()
        self.results.clear()
        self.damage.clear()
        self._asked.clear()
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.sizes)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        page = index.row()
        if role == Qt.ItemDataRole.DisplayRole:
            return f"Page {page + 1}"
        if role == Qt.ItemDataRole.ToolTipRole:
            r = self.results.get(page)
            damage = self.page_damage(page)
            text, _ = page_caption(r, damage is not None)
            rows = f", {len(r.systems)} rows" if r is not None and not r.error else ""
            err = f"\n{r.error}" if r is not None and r.error else (f"\n{damage}" if damage else "")
            return f"Page {page + 1}: {text}{rows}{err}"
        return None

    def page_damage(self, page: int) -> str | None:
        """What could not be read of page ``page`` (0-based), from its analysis or its rendering; None
        for a page not known to be damaged."""
        r = self.results.get(page)
        if r is not None and r.damaged:
            return r.error
        return self.damage.get(page)

    def set_damage(self, page: int, message: str) -> None:
        if 0 <= page < len(self.sizes):
            self.damage[page] = message
            idx = self.index(page)
            self.dataChanged.emit(idx, idx)

    def thumb_dpi(self, page: int) -> float:
        w = self.sizes[page][0] if page < len(self.sizes) else 612.0
        return 72.0 * THUMB_W * self.dpr / max(1.0, w)

    def image(self, page: int) -> QImage | None:
        img = self.images.get(page)
        if img is None and page not in self._asked:
            self._asked.add(page)
            self.imageWanted.emit(page, self.thumb_dpi(page))
        return img

    def set_image(self, page: int, image: QImage) -> None:
        if 0 <= page < len(self.sizes):
            self.images[page] = image
            idx = self.index(page)
            self.dataChanged.emit(idx, idx)

    def set_result(self, result: PageResult) -> None:
        page = result.page - 1
        if 0 <= page < len(self.sizes):
            self.results[page] = result
            idx = self.index(page)
            self.dataChanged.emit(idx, idx)


class ThumbnailDelegate(QStyledItemDelegate):
    def __init__(self, model: ThumbnailModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        # Uniform cells (Letter proportions) keep the list fast: Qt never measures every page.
        return QSize(THUMB_W + 2 * CELL_PAD, int(THUMB_W * 1.3) + CAPTION_H + 2 * CELL_PAD)

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        page = index.row()
        m = self.model
        pal: QPalette = option.palette  # type: ignore[attr-defined]
        cell = QRectF(option.rect)  # type: ignore[attr-defined]
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)  # type: ignore[attr-defined]
        if selected:
            hl = QColor(pal.color(QPalette.ColorRole.Highlight))
            hl.setAlpha(70)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(hl)
            p.drawRoundedRect(cell.adjusted(3, 2, -3, -2), 6, 6)
        w_pt, h_pt = m.sizes[page]
        box_h = cell.height() - CAPTION_H - 2 * CELL_PAD
        scale = min(THUMB_W / w_pt, box_h / h_pt)
        pw, ph = w_pt * scale, h_pt * scale
        page_rect = QRectF(cell.center().x() - pw / 2, cell.top() + CELL_PAD + (box_h - ph) / 2, pw, ph)
        p.fillRect(page_rect.adjusted(1, 2, 1, 2), QColor(0, 0, 0, 40))
        p.fillRect(page_rect, QColor("white"))
        img = m.image(page)
        if img is not None:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(page_rect, img)
        result = m.results.get(page)
        if result is not None and result.systems:
            paint_rows(p, result.systems, scale, page_rect.topLeft(), label_px=0, line_px=1.0, fill_alpha=70)
        damaged = m.page_damage(page) is not None
        if damaged:
            paint_damage(p, page_rect, None, title_px=max(7.0, pw / 11))
        p.setPen(QColor(pal.color(QPalette.ColorRole.Highlight)) if selected else QColor(0, 0, 0, 60))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(page_rect)
        # Caption: page number, then a colour dot and the page's composer.
        caption, composer = page_caption(result, damaged)
        cap = QRectF(cell.left() + CELL_PAD, page_rect.bottom() + 3, cell.width() - 2 * CELL_PAD, CAPTION_H - 3)
        font = QFont(option.font)  # type: ignore[attr-defined]
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        p.setFont(font)
        p.setPen(pal.color(QPalette.ColorRole.Text))
        num = f"{page + 1}"
        nw = p.fontMetrics().horizontalAdvance(num) + 6
        p.drawText(QRectF(cap.left(), cap.top(), nw, cap.height()), Qt.AlignmentFlag.AlignVCenter, num)
        dot = QRectF(cap.left() + nw, cap.center().y() - 4, 8, 8)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(DAMAGE_COLOR if damaged else composer_color(composer))
        if result is not None or damaged:
            p.drawEllipse(dot)
        p.setPen(DAMAGE_COLOR if damaged else
                 pal.color(QPalette.ColorRole.Text) if composer else pal.color(QPalette.ColorRole.PlaceholderText))
        text_rect = QRectF(dot.right() + 4, cap.top(), cap.right() - dot.right() - 4, cap.height())
        p.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter,
                   p.fontMetrics().elidedText(caption, Qt.TextElideMode.ElideRight, int(text_rect.width())))
        p.restore()


class ThumbnailView(QListView):
    pageActivated = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.thumbs = ThumbnailModel(self)
        self.setModel(self.thumbs)
        self.setItemDelegate(ThumbnailDelegate(self.thumbs, self))
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(THUMB_W + 2 * CELL_PAD + 20)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # PgUp/PgDn etc. stay with the window's actions
        self.clicked.connect(lambda idx: self.pageActivated.emit(idx.row()))

    def set_current_page(self, page: int) -> None:
        idx = self.thumbs.index(page)
        if idx.isValid():
            self.setCurrentIndex(idx)
            self.scrollTo(idx, QAbstractItemView.ScrollHint.EnsureVisible)

    def sizeHint(self) -> QSize:
        return QSize(THUMB_W + 2 * CELL_PAD + 24, 400)
