"""What the window shows before a score is open: what to do, with buttons for it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QFont
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from .icon import app_icon


class WelcomePane(QWidget):
    def __init__(self, actions: list[QAction], parent: QWidget | None = None):
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.addStretch(2)
        logo = QLabel()
        logo.setPixmap(app_icon().pixmap(96, 96))
        logo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(logo)
        title = QLabel("Bytehoven")
        f = QFont(title.font())
        f.setPointSizeF(f.pointSizeF() * 2.0)
        f.setBold(True)
        title.setFont(f)
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(title)
        text = QLabel("Open a piano score (PDF or scanned image) to see, row by row, whose style it is.\n"
                      "You can also drop a file onto this window.")
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text.setWordWrap(True)
        outer.addWidget(text)
        outer.addSpacing(16)
        row = QHBoxLayout()
        row.addStretch(1)
        for act in actions:
            b = QPushButton(act.text().replace("&", "").rstrip("…") + ("…" if act.text().endswith("…") else ""))
            b.setToolTip(act.toolTip())
            b.clicked.connect(act.trigger)
            b.setMinimumWidth(150)
            row.addWidget(b)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(3)
