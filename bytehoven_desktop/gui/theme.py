"""Light or dark, following the system's colour scheme (Qt 6.5+ ``QStyleHints.colorScheme``).

Fusion is used everywhere so the program looks the same on every platform; its palette is
set from the scheme and set again when the system switches, while the program runs."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

MODES = ("system", "light", "dark")
_mode = "system"


def dark_palette() -> QPalette:
    p = QPalette()
    base, window, text = QColor("#1e1f22"), QColor("#2b2d31"), QColor("#e6e6e6")
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: QColor("#26282c"),
        QPalette.ColorRole.ToolTipBase: QColor("#3a3d42"),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: QColor("#9aa0a6"),
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: QColor("#35373c"),
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor("#ff6b6b"),
        QPalette.ColorRole.Light: QColor("#4a4d52"),
        QPalette.ColorRole.Midlight: QColor("#3e4146"),
        QPalette.ColorRole.Mid: QColor("#303236"),
        QPalette.ColorRole.Dark: QColor("#18191b"),
        QPalette.ColorRole.Shadow: QColor("#000000"),
        QPalette.ColorRole.Highlight: QColor("#3d7fd9"),
        QPalette.ColorRole.HighlightedText: QColor("#ffffff"),
        QPalette.ColorRole.Link: QColor("#6cb0ff"),
    }
    for role, color in roles.items():
        p.setColor(role, color)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7c8086"))
    return p


def light_palette(app: QApplication) -> QPalette:
    p = app.style().standardPalette()
    # Fusion's page surround is a flat mid-grey; a lighter one looks calmer around white pages.
    p.setColor(QPalette.ColorRole.Dark, QColor("#c9ccd1"))
    p.setColor(QPalette.ColorRole.Highlight, QColor("#2f6fce"))
    return p


def is_dark(mode: str | None = None) -> bool:
    mode = mode or _mode
    if mode == "dark":
        return True
    if mode == "light":
        return False
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply_theme(app: QApplication, mode: str = "system") -> None:
    """Set the style and palette now and, for "system", whenever the system scheme changes."""
    global _mode
    first = app.property("bytehoven_theme_hooked") is None
    _mode = mode if mode in MODES else "system"
    app.setStyle("Fusion")
    app.setPalette(dark_palette() if is_dark() else light_palette(app))
    if first:
        app.setProperty("bytehoven_theme_hooked", True)
        QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _scheme: _follow_system(app))


def _follow_system(app: QApplication) -> None:
    if _mode == "system":
        app.setPalette(dark_palette() if is_dark() else light_palette(app))
