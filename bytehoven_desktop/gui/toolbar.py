"""The main toolbar: open, page navigation with a page box, zoom and fitting, folder analysis."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QMainWindow, QSpinBox, QToolBar, QWidget

from .actions import Actions
from .icon import tool_icon


class PageBox(QSpinBox):
    """'3 / 12': type a page number and press Enter to go there."""

    pageChosen = Signal(int)  # 0-based

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setKeyboardTracking(False)  # act on Enter, not on every digit typed
        self.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.setButtonSymbols(QSpinBox.ButtonSymbols.NoButtons)
        self.setToolTip("Page number: type one and press Enter")
        self.set_pages(0)
        self.valueChanged.connect(lambda v: self.pageChosen.emit(v - 1))

    def set_pages(self, count: int, current: int = 0) -> None:
        self.blockSignals(True)
        self.setEnabled(count > 0)
        self.setRange(1 if count else 0, max(count, 0))
        self.setSuffix(f" / {count}" if count else "")
        self.setSpecialValueText("" if count else "–")  # no document: a dash, not "0"
        self.setValue(current + 1 if count else 0)
        self.setFixedWidth(self.fontMetrics().horizontalAdvance(f"{count} / {count}") + 28)
        self.blockSignals(False)


def build_toolbar(window: QMainWindow, acts: Actions) -> tuple[QToolBar, PageBox]:
    bar = QToolBar("Main toolbar", window)
    bar.setObjectName("main_toolbar")
    bar.setMovable(False)
    bar.setIconSize(QSize(20, 20))
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for name in ("open", "previous_page", "next_page", "zoom_in", "zoom_out", "fit_width", "fit_page",
                 "analyse_folder", "cancel"):
        getattr(acts, name).setIcon(tool_icon(name))
    bar.addAction(acts.open)
    bar.addSeparator()
    bar.addAction(acts.previous_page)
    box = PageBox()
    bar.addWidget(box)
    bar.addAction(acts.next_page)
    bar.addSeparator()
    for act in (acts.zoom_out, acts.zoom_in, acts.fit_width, acts.fit_page):
        bar.addAction(act)
    bar.addSeparator()
    bar.addAction(acts.analyse_folder)
    bar.addAction(acts.library)
    # Icon-only buttons where the icon says it all; words where it would not.
    for act in (acts.previous_page, acts.next_page, acts.zoom_in, acts.zoom_out):
        button = bar.widgetForAction(act)
        if button is not None:
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
    return bar, box
