"""File → Library: every document analysed so far, from the results library.

The table is a QAbstractTableModel over the library's queries: a filter or a sort asks the
library how many documents it lists (an indexed count), and rows are read a block at a time,
in the query's order, only as the view shows them; so the size of the library hardly matters to
the GUI (bench/bench_library.py measures it with 100,000 documents)."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDoubleSpinBox, QFileDialog, QHBoxLayout, QHeaderView,
                               QLabel, QLineEdit, QPushButton, QTableView, QVBoxLayout, QWidget)

from ..library import Entry, Library, LibraryError, Query
from .colors import composer_color, display_name
from .table_model import ColumnsTableModel
from .export import write_results
from .worker import BackgroundOp

COLUMNS = ("File", "Pages", "Composer", "Confidence", "Status", "Folder", "Analysed")
SORT_KEYS = ("name", "pages", "top", "confidence", "status", "folder", "analysed_at")
Index = QModelIndex | QPersistentModelIndex
ID_ROLE = Qt.ItemDataRole.UserRole + 1


class LibraryTableModel(ColumnsTableModel):
    columns = COLUMNS
    BLOCK = 256  # rows read from the library at a time
    CACHE_BLOCKS = 32  # blocks kept; beyond this the cache starts again

    def __init__(self, library: Library, parent: QWidget | None = None):
        super().__init__(parent)
        self.library = library
        self.query = Query()
        self.rows = 0
        self.error: str | None = None
        self._blocks: dict[int, list[Entry]] = {}

    def set_library(self, library: Library) -> None:
        self.library = library
        self.refresh()

    def set_query(self, query: Query) -> None:
        self.beginResetModel()
        self.query = query
        self._blocks.clear()
        try:
            self.rows = self.library.count(query)
            self.error = None
        except LibraryError as exc:
            self.rows, self.error = 0, str(exc)
        self.endResetModel()

    def refresh(self) -> None:
        self.set_query(self.query)

    def entry(self, row: int) -> Entry | None:
        if not 0 <= row < self.rows:
            return None
        block = row // self.BLOCK
        entries = self._blocks.get(block)
        if entries is None:
            if len(self._blocks) >= self.CACHE_BLOCKS:
                self._blocks.clear()
            try:
                entries = self.library.page(self.query, block * self.BLOCK, self.BLOCK)
            except LibraryError as exc:
                self.error, entries = str(exc), []
            self._blocks[block] = entries
        i = row - block * self.BLOCK
        return entries[i] if i < len(entries) else None  # fewer: the library changed since the count

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else self.rows

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        e = self.entry(index.row())
        if e is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return e.name
            if col == 1:
                return "" if e.pages is None or (e.pages == 0 and e.status == "error") else str(e.pages)
            if col == 2:
                if not e.top:
                    return ""
                # The top composer; with a "?" when the result withholds it (too uncertain).
                return display_name(e.top) + ("" if e.composer else "?")
            if col == 3:
                return "" if e.confidence is None else f"{e.confidence:.0%}"
            if col == 4:
                return e.status
            if col == 5:
                return _short_folder(e.folder)
            return time.strftime("%Y-%m-%d %H:%M", time.localtime(e.analysed_at))
        if role == Qt.ItemDataRole.DecorationRole and col == 2 and e.top:
            return composer_color(e.top)
        if role == Qt.ItemDataRole.ToolTipRole:
            model = f"\nmodel: {e.model_name}" if e.model_name else ""
            return f"{e.path}{model}"
        if role == Qt.ItemDataRole.ForegroundRole and col == 4 and e.status == "error":
            return QColor("#c62828")
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (1, 3):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == ID_ROLE:
            return e.id
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if 0 <= column < len(SORT_KEYS):
            self.set_query(replace(self.query, sort=SORT_KEYS[column],
                                   descending=order == Qt.SortOrder.DescendingOrder))


def _short_folder(folder: str) -> str:
    """A folder as people read it: the home folder as ~."""
    home = os.path.expanduser("~")
    if home and home != os.sep and (folder == home or folder.startswith(home + os.sep)):
        return "~" + folder[len(home):]
    return folder


def _labels(docs: Sequence[dict[str, Any]]) -> list[str]:
    """Composer columns for a CSV: the models' label order, as they appear."""
    out: dict[str, None] = {}
    for d in docs:
        out.update(dict.fromkeys(d.get("composers") or {}))
    return list(out)


class LibraryWindow(QWidget):
    openRequested = Signal(str)
    exportFinished = Signal(str, int)  # path written, documents in it

    def __init__(self, library: Library, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Library — Bytehoven")
        self.resize(1100, 640)
        self.library = library

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search by file name")
        self.search.setClearButtonEnabled(True)
        self.composer = QComboBox()
        self.composer.setToolTip("Only documents whose top composer is this one")
        self.min_confidence = QDoubleSpinBox()
        self.min_confidence.setRange(0.0, 100.0)
        self.min_confidence.setSingleStep(5.0)
        self.min_confidence.setDecimals(0)
        self.min_confidence.setSuffix(" %")
        self.min_confidence.setSpecialValueText("any confidence")
        self.min_confidence.setToolTip("Only documents with at least this pooled confidence")
        self.folder = QComboBox()
        self.folder.setToolTip("Only documents in this folder or in folders under it")
        self.folder.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.folder.setMinimumContentsLength(24)
        filters = QHBoxLayout()
        filters.addWidget(self.search, 2)
        filters.addWidget(QLabel("Composer:"))
        filters.addWidget(self.composer)
        filters.addWidget(QLabel("At least:"))
        filters.addWidget(self.min_confidence)
        filters.addWidget(QLabel("Folder:"))
        filters.addWidget(self.folder, 1)

        self.model = LibraryTableModel(library, self)
        self.table = QTableView()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        # Fixed row heights: the view never asks 100,000 rows for their size.
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setModel(self.model)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for col, width in enumerate((300, 60, 150, 90, 90, 260, 130)):
            header.resizeSection(col, width)
        header.setStretchLastSection(True)
        # Newest first until a header is clicked (the sort indicator set before sorting is enabled).
        header.setSortIndicator(len(COLUMNS) - 1, Qt.SortOrder.DescendingOrder)
        self.table.setSortingEnabled(True)
        self.table.doubleClicked.connect(self._open_index)
        self.table.setToolTip("Double-click a document to open it")

        self.count_label = QLabel()
        self.open_button = QPushButton("Open")
        self.open_button.clicked.connect(self.open_selected)
        self.export_csv = QPushButton("Export CSV…")
        self.export_csv.clicked.connect(lambda: self._choose_export("CSV (*.csv)", ".csv"))
        self.export_jsonl = QPushButton("Export JSON Lines…")
        self.export_jsonl.clicked.connect(lambda: self._choose_export("JSON Lines (*.jsonl)", ".jsonl"))
        for b in (self.export_csv, self.export_jsonl):
            b.setToolTip("The selected documents (all those listed when none is selected), "
                         "as bytehoven analyze writes them")
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.count_label, 1)
        for b in (refresh, self.open_button, self.export_csv, self.export_jsonl, close):
            buttons.addWidget(b)

        lay = QVBoxLayout(self)
        lay.addLayout(filters)
        lay.addWidget(self.table, 1)
        lay.addLayout(buttons)

        # Typing searches once the keys pause, not on every key.
        self._search_timer = QTimer(self, singleShot=True, interval=200)
        self._search_timer.timeout.connect(self.apply_filters)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self._fill_choices()
        self.composer.currentIndexChanged.connect(lambda _i: self.apply_filters())
        self.folder.currentIndexChanged.connect(lambda _i: self.apply_filters())
        self.min_confidence.valueChanged.connect(lambda _v: self.apply_filters())
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        self.model.modelReset.connect(self._update_buttons)
        self.apply_filters()

    # -- filters ----------------------------------------------------------------------------
    def _fill_choices(self) -> None:
        """The composer and folder lists, from what the library holds now (the choice is kept)."""
        for combo, everything, values, show in (
                (self.composer, "All composers", self._safe(self.library.composers), display_name),
                (self.folder, "All folders", self._safe(self.library.folders), _short_folder)):
            current = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(everything, None)
            for v in values:
                combo.addItem(show(v), v)
            combo.setCurrentIndex(max(0, combo.findData(current)) if current is not None else 0)
            combo.blockSignals(False)

    def _safe(self, fn: Any) -> list[str]:
        try:
            return list(fn())
        except LibraryError:
            return []

    def current_query(self) -> Query:
        m = self.min_confidence.value()
        return replace(self.model.query, composer=self.composer.currentData(), folder=self.folder.currentData(),
                       min_confidence=m / 100.0 if m > 0 else None, search=self.search.text())

    def apply_filters(self) -> None:
        self.model.set_query(self.current_query())

    def refresh(self) -> None:
        """Read the library again (new documents, a batch running elsewhere)."""
        self._fill_choices()
        self.apply_filters()

    def set_library(self, library: Library) -> None:
        self.library = library
        self.model.library = library
        self.refresh()

    def _update_buttons(self) -> None:
        n = self.model.rowCount()
        selected = len(self.table.selectionModel().selectedRows())
        total = self._safe_count()
        text = f"{n} of {total} documents" if n != total else f"{n} documents"
        if selected:
            text += f" · {selected} selected"
        if self.model.error:
            text = self.model.error
        self.count_label.setText(text)
        self.open_button.setEnabled(selected > 0)
        self.export_csv.setEnabled(n > 0)
        self.export_jsonl.setEnabled(n > 0)

    def _safe_count(self) -> int:
        try:
            return self.library.count()
        except LibraryError:
            return 0

    # -- opening and exporting --------------------------------------------------------------
    def selected_ids(self) -> list[int]:
        rows = sorted(i.row() for i in self.table.selectionModel().selectedRows())
        return [e.id for e in map(self.model.entry, rows) if e is not None]

    def _open_index(self, index: QModelIndex) -> None:
        e = self.model.entry(index.row())
        if e is not None:
            self.openRequested.emit(e.path)

    def open_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self._open_index(rows[0])

    def _choose_export(self, filters: str, suffix: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export from the library",
                                              str(Path.home() / f"bytehoven-library{suffix}"), filters)
        if path:
            self.export(Path(path if Path(path).suffix else path + suffix))

    def export(self, path: Path) -> None:
        """Write the selected documents (or all those listed) in the background, as ``analyze`` does."""
        ids = self.selected_ids()
        library, query = self.library, self.model.query

        def op() -> int:  # on a worker thread: reads and writes files, touches no widget
            docs = library.results(ids or library.query_ids(query))
            write_results(docs, path, _labels(docs))
            return len(docs)

        def done(n: int) -> None:
            self.count_label.setText(f"Exported {n} documents to {path}")
            self.exportFinished.emit(str(path), n)

        def failed(exc: BaseException) -> None:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            self.count_label.setText(f"Could not export to {path}: {why}")

        self.count_label.setText(f"Exporting {len(ids) or self.model.rows} documents…")
        BackgroundOp(self, op, done).failure(failed).run_in_background()
