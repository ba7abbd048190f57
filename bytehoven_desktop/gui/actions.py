"""Every command of the main window as a QAction with its standard shortcut, and the menus.

Standard QKeySequence values are used where Qt has one, so each platform gets its own
conventions (Ctrl++ / Cmd++ for zoom, PgUp/PgDn for pages); page-fitting follows the PDF
readers' Ctrl+0 / Ctrl+1 / Ctrl+2."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

Keys = QKeySequence.StandardKey


@dataclass
class Actions:
    open: QAction
    open_demo: QAction
    analyse_folder: QAction
    library: QAction
    export_results: QAction
    export_page: QAction
    preferences: QAction
    quit: QAction
    zoom_in: QAction
    zoom_out: QAction
    actual_size: QAction
    fit_width: QAction
    fit_page: QAction
    previous_page: QAction
    next_page: QAction
    first_page: QAction
    last_page: QAction
    show_thumbnails: QAction
    show_rows: QAction
    show_activation: QAction
    reanalyse: QAction
    cancel: QAction
    about: QAction
    about_qt: QAction

    def all(self) -> list[QAction]:
        return [getattr(self, f.name) for f in fields(self)]


def _shortcuts(*keys: "Keys | str") -> list[QKeySequence]:
    out: list[QKeySequence] = []
    for k in keys:
        seqs = QKeySequence.keyBindings(k) if isinstance(k, Keys) else [QKeySequence(k)]
        out += [s for s in seqs if not s.isEmpty() and s not in out]
    return out


def make_action(window: QMainWindow, name: str, text: str, slot: Callable[[], object] | None,
                *keys: "Keys | str", tip: str = "", checkable: bool = False, checked: bool = False) -> QAction:
    act = QAction(text, window)
    act.setObjectName(name)
    shortcuts = _shortcuts(*keys)
    act.setShortcuts(shortcuts)
    label = tip or text.replace("&", "").rstrip("…")
    if tip:
        act.setStatusTip(tip)
    # Toolbar tooltips name the shortcut, so people learn it.
    hint = shortcuts[0].toString(QKeySequence.SequenceFormat.NativeText) if shortcuts else ""
    act.setToolTip(f"{label} ({hint})" if hint else label)
    if checkable:
        act.setCheckable(True)
        act.setChecked(checked)
        if slot is not None:
            act.toggled.connect(slot)
    elif slot is not None:
        act.triggered.connect(lambda _checked=False: slot())
    window.addAction(act)  # shortcuts work even while the menu bar is hidden
    return act


def create_actions(w: "object") -> Actions:
    """Actions wired to the window's methods (``w`` is the MainWindow)."""
    m = w  # the MainWindow; typed loosely to avoid an import cycle
    a = make_action
    return Actions(
        open=a(m, "open", "&Open…", m.choose_file, Keys.Open, tip="Open a score (PDF or image scan)"),
        open_demo=a(m, "open_demo", "Open &Demo Score", m.open_demo, tip="Open the demo score shipped with Bytehoven"),
        analyse_folder=a(m, "analyse_folder", "Analyse &Folder…", m.show_batch, "Ctrl+Shift+O",
                         tip="Analyse every score in a folder and export a table"),
        library=a(m, "library", "&Library…", m.show_library, "Ctrl+L",
                  tip="Every score analysed so far: filter, sort, open again, export"),
        export_results=a(m, "export_results", "&Export Results…", m.choose_export_results, "Ctrl+E",
                         tip="Save this document's results as JSON or CSV"),
        export_page=a(m, "export_page", "Export &Page Image…", m.choose_export_page, "Ctrl+Shift+E",
                      tip="Save the current page with its rows drawn on, as PNG or PDF"),
        preferences=a(m, "preferences", "&Preferences…", m.show_preferences, Keys.Preferences, "Ctrl+,",
                      tip="Device, batch size, confidence threshold, model"),
        quit=a(m, "quit", "&Quit", m.close, Keys.Quit, "Ctrl+Q"),
        zoom_in=a(m, "zoom_in", "Zoom &In", m.page_view.zoom_in, Keys.ZoomIn, "Ctrl+="),
        zoom_out=a(m, "zoom_out", "Zoom &Out", m.page_view.zoom_out, Keys.ZoomOut),
        actual_size=a(m, "actual_size", "&Actual Size", m.page_view.actual_size, "Ctrl+1"),
        fit_width=a(m, "fit_width", "Fit &Width", m.page_view.fit_width, "Ctrl+2"),
        fit_page=a(m, "fit_page", "Fit &Page", m.page_view.fit_page, "Ctrl+0"),
        previous_page=a(m, "previous_page", "P&revious Page", m.previous_page, Keys.MoveToPreviousPage),
        next_page=a(m, "next_page", "&Next Page", m.next_page, Keys.MoveToNextPage),
        first_page=a(m, "first_page", "&First Page", m.first_page, "Home", Keys.MoveToStartOfDocument),
        last_page=a(m, "last_page", "&Last Page", m.last_page, "End", Keys.MoveToEndOfDocument),
        show_thumbnails=a(m, "show_thumbnails", "Show &Thumbnails", m.set_thumbnails_visible, "F9",
                          checkable=True, checked=True),
        show_rows=a(m, "show_rows", "Show &Rows", m.page_view.set_overlays_visible, "F8",
                    tip="Outline and tint every row in its composer's colour", checkable=True, checked=True),
        show_activation=a(m, "show_activation", "Show &Activation Map", m.set_activation_visible, "F7",
                          tip="Show which parts of the selected row drove the prediction",
                          checkable=True, checked=True),
        reanalyse=a(m, "reanalyse", "&Analyse Again", m.reanalyse, Keys.Refresh, "F5"),
        cancel=a(m, "cancel", "&Cancel Analysis", m.cancel_analysis, "Esc"),
        about=a(m, "about", "&About Bytehoven", m.show_about),
        about_qt=a(m, "about_qt", "About &Qt", m.show_about_qt),
    )


def build_menus(window: QMainWindow, acts: Actions, recent_menu: QMenu) -> None:
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    file_menu.addAction(acts.open)
    file_menu.addMenu(recent_menu)
    file_menu.addAction(acts.analyse_folder)
    file_menu.addAction(acts.library)
    file_menu.addSeparator()
    file_menu.addAction(acts.export_results)
    file_menu.addAction(acts.export_page)
    file_menu.addSeparator()
    file_menu.addAction(acts.quit)

    edit_menu = bar.addMenu("&Edit")
    edit_menu.addAction(acts.preferences)

    view_menu = bar.addMenu("&View")
    for act in (acts.zoom_in, acts.zoom_out, acts.actual_size, acts.fit_width, acts.fit_page):
        view_menu.addAction(act)
    view_menu.addSeparator()
    for act in (acts.previous_page, acts.next_page, acts.first_page, acts.last_page):
        view_menu.addAction(act)
    view_menu.addSeparator()
    for act in (acts.show_thumbnails, acts.show_rows, acts.show_activation):
        view_menu.addAction(act)

    analysis_menu = bar.addMenu("&Analysis")
    analysis_menu.addAction(acts.reanalyse)
    analysis_menu.addAction(acts.cancel)
    analysis_menu.addSeparator()
    analysis_menu.addAction(acts.analyse_folder)

    help_menu = bar.addMenu("&Help")
    help_menu.addAction(acts.open_demo)
    help_menu.addSeparator()
    help_menu.addAction(acts.about)
    help_menu.addAction(acts.about_qt)
