"""An inline message bar above the page (like a browser's info bar): errors and notices that
need no answer never block the program with a modal dialog."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QStyle, QToolButton, QWidget

STYLES = {
    # background, border, text: readable on light and dark themes alike.
    "info": ("#e7f1fb", "#9cc3ea", "#10324f"),
    "warning": ("#fff4d6", "#e8c35a", "#4a3500"),
    "error": ("#fde7e7", "#e59a9a", "#5c1010"),
}


class Banner(QFrame):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.kind = "info"
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 8, 8, 8)
        lay.setSpacing(10)
        self.icon = QLabel()
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.button = QPushButton()
        self.button.hide()
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setToolTip("Dismiss")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.dismiss)
        lay.addWidget(self.icon)
        lay.addWidget(self.text, 1)
        lay.addWidget(self.button)
        lay.addWidget(self.close_button)
        self._action: Callable[[], None] | None = None
        self.button.clicked.connect(self._run_action)
        self.hide()

    def show_message(self, kind: str, text: str, action_text: str | None = None,
                     action: Callable[[], None] | None = None) -> None:
        """Show ``text`` ("info", "warning" or "error"), replacing any earlier message."""
        self.kind = kind if kind in STYLES else "info"
        bg, border, fg = STYLES[self.kind]
        self.setStyleSheet(f"QFrame#banner {{ background: {bg}; border: 1px solid {border}; border-radius: 6px; }}"
                           f"QFrame#banner QLabel, QFrame#banner QToolButton {{ color: {fg}; }}")
        icon = {"info": QStyle.StandardPixmap.SP_MessageBoxInformation,
                "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
                "error": QStyle.StandardPixmap.SP_MessageBoxCritical}[self.kind]
        self.icon.setPixmap(self.style().standardIcon(icon).pixmap(20, 20))
        self.text.setText(text)
        self._action = action
        self.button.setText(action_text or "")
        self.button.setVisible(bool(action_text and action))
        self.show()

    def message(self) -> str:
        return self.text.text() if self.isVisible() else ""

    def dismiss(self) -> None:
        self._action = None
        self.hide()

    def _run_action(self) -> None:
        if self._action is not None:
            self._action()
