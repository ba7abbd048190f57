"""File → Analyse Folder: a table of a folder's scores that fills in as each one is finished.

Every finished document is stored in the results library and appended to a results file (JSON
Lines, the schema of ``bytehoven analyze``; by default one per folder in the program's data
folder), so an interrupted batch resumes without analysing finished documents again."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QCloseEvent, QColor
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QDialog, QFileDialog, QGridLayout, QHBoxLayout,
                               QHeaderView, QLabel, QLineEdit, QProgressBar, QPushButton, QTableView, QVBoxLayout,
                               QWidget)

from .colors import composer_color, display_name
from .table_model import ColumnsTableModel
from .export import write_results
from ..library import Library
from .jobs import (BatchDocFinished, BatchDocProgress, BatchDocStarted, BatchDone, BatchPlanned, LibraryProblem,
                   ModelFailed, ModelReady, batch_job)
from .settings import AnalysisConfig, app_data_dir
from .worker import GeneratorWorker

COLUMNS = ("File", "Pages", "Composer", "Confidence", "Status")
Index = QModelIndex | QPersistentModelIndex


def default_results_path(folder: str | os.PathLike[str]) -> Path:
    """One results file per folder, named so people can tell which folder it belongs to."""
    folder = os.path.abspath(folder)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(folder.rstrip(os.sep)) or "root")[:40]
    digest = hashlib.sha1(folder.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return app_data_dir() / "batches" / f"{slug}-{digest}.jsonl"


def status_text(doc: dict[str, Any], skipped: bool = False) -> str:
    if doc.get("error"):
        # The core's messages start with the path, which the row shows already.
        message = str(doc["error"])
        path = str(doc.get("path") or "")
        if path and message.startswith(path + ": "):
            message = message[len(path) + 2:]
        return "error: " + message
    reason = doc.get("reason")
    base = "done earlier" if skipped else "done"
    return f"{base} ({reason})" if reason else base


@dataclass
class BatchRow:
    path: str
    status: str = "waiting"
    doc: dict[str, Any] | None = None


class BatchTableModel(ColumnsTableModel):
    columns = COLUMNS

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.rows: list[BatchRow] = []
        self.base = ""  # shown paths are relative to the batch folder

    def reset(self, files: list[str], base: str) -> None:
        self.beginResetModel()
        self.rows = [BatchRow(f) for f in files]
        self.base = base
        self.endResetModel()

    def append(self, row: BatchRow) -> int:
        n = len(self.rows)
        self.beginInsertRows(QModelIndex(), n, n)
        self.rows.append(row)
        self.endInsertRows()
        return n

    def set_status(self, i: int, status: str, doc: dict[str, Any] | None = None) -> None:
        if not 0 <= i < len(self.rows):
            return
        self.rows[i].status = status
        if doc is not None:
            self.rows[i].doc = doc
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = self.rows[index.row()], index.column()
        doc = row.doc or {}
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                try:
                    return os.path.relpath(row.path, self.base) if self.base else row.path
                except ValueError:  # another drive on Windows
                    return row.path
            if col == 1:
                return "" if not doc.get("pages") else str(doc["pages"])
            if col == 2:
                if doc.get("composer"):
                    return display_name(doc["composer"])
                if doc.get("best_guess") and doc.get("reason") == "uncertain":
                    return f"uncertain ({display_name(doc['best_guess'])}?)"
                return doc.get("reason") or ""
            if col == 3:
                return "" if doc.get("confidence") is None else f"{doc['confidence']:.0%}"
            return row.status
        if role == Qt.ItemDataRole.DecorationRole and col == 2 and doc.get("composer"):
            return composer_color(doc["composer"])
        if role == Qt.ItemDataRole.ToolTipRole:
            return doc.get("error") or row.path
        if role == Qt.ItemDataRole.ForegroundRole and col == 4 and row.status.startswith("error"):
            return QColor("#c62828")
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (1, 3):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def finished_docs(self) -> list[dict[str, Any]]:
        return [r.doc for r in self.rows if r.doc is not None]


class BatchDialog(QDialog):
    openRequested = Signal(str)
    batchFinished = Signal(object)  # BatchDone, or None when the model could not be loaded
    libraryChanged = Signal()  # a document's result was stored in the library

    def __init__(self, config: Callable[[], AnalysisConfig], parent: QWidget | None = None,
                 library: Callable[[], Library | None] | None = None):
        super().__init__(parent)
        self.setWindowTitle("Analyse a Folder")
        self.resize(900, 560)
        self._config = config
        self._library = library or (lambda: None)
        self.library_problem: str | None = None
        self.worker: GeneratorWorker | None = None
        self.labels: tuple[str, ...] = ()
        self._results_chosen = False

        grid = QGridLayout()
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("Folder with PDF files or scans")
        self.folder.textChanged.connect(self._folder_changed)
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_folder)
        grid.addWidget(QLabel("Folder:"), 0, 0)
        grid.addWidget(self.folder, 0, 1)
        grid.addWidget(browse, 0, 2)
        self.recursive = QCheckBox("Include sub-folders")
        self.recursive.setChecked(True)
        grid.addWidget(self.recursive, 1, 1)
        self.results = QLineEdit()
        self.results.setToolTip("Each finished document is saved here at once (JSON Lines or CSV).")
        self.results.textEdited.connect(lambda _t: setattr(self, "_results_chosen", True))
        choose_results = QPushButton("Choose…")
        choose_results.clicked.connect(self._choose_results)
        grid.addWidget(QLabel("Results file:"), 2, 0)
        grid.addWidget(self.results, 2, 1)
        grid.addWidget(choose_results, 2, 2)
        self.resume = QCheckBox("Resume: skip documents already in the results file or the library")
        self.resume.setChecked(True)
        grid.addWidget(self.resume, 3, 1)

        self.table_model = BatchTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in (1, 2, 3):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(4, 220)
        self.table.doubleClicked.connect(self._open_row)
        self.table.setToolTip("Double-click a document to open it")

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.status = QLabel("Choose a folder and press Start.")
        self.status.setWordWrap(True)

        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(lambda: self.start())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_csv = QPushButton("Export CSV…")
        self.export_csv.clicked.connect(lambda: self._export("CSV (*.csv)", ".csv"))
        self.export_json = QPushButton("Export JSON…")
        self.export_json.clicked.connect(lambda: self._export("JSON Lines (*.jsonl);;JSON (*.json)", ".jsonl"))
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        for b in (self.start_button, self.cancel_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        for b in (self.export_csv, self.export_json, close):
            buttons.addWidget(b)
        self._set_running(False)

        lay = QVBoxLayout(self)
        lay.addLayout(grid)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addLayout(buttons)

    # -- choosing ---------------------------------------------------------------------------
    def set_folder(self, folder: str) -> None:
        self.folder.setText(folder)

    def _folder_changed(self, text: str) -> None:
        if not self._results_chosen and text.strip():
            self.results.setText(str(default_results_path(text.strip())))

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of scores", self.folder.text() or str(Path.home()))
        if folder:
            self.folder.setText(folder)

    def _choose_results(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Results file", self.results.text(),
                                              "JSON Lines (*.jsonl);;CSV (*.csv)",
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self._results_chosen = True
            self.results.setText(path)

    # -- running ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        has_rows = bool(self.table_model.finished_docs())
        self.export_csv.setEnabled(not running and has_rows)
        self.export_json.setEnabled(not running and has_rows)
        for w in (self.folder, self.recursive, self.results, self.resume):
            w.setEnabled(not running)

    def start(self, folder: str | None = None) -> bool:
        """Start analysing ``folder`` (or the one entered); False if there is nothing to start."""
        if self.running:
            return False
        if folder:
            self.folder.setText(folder)
        folder = self.folder.text().strip()
        if not folder or not os.path.isdir(folder):
            self.status.setText(f"“{folder}” is not a folder." if folder else "Choose a folder first.")
            return False
        results = self.results.text().strip() or str(default_results_path(folder))
        if Path(results).suffix.lower() not in (".jsonl", ".json", ".csv"):
            results += ".jsonl"
        self.results.setText(results)
        self.table_model.reset([], folder)
        self.progress.setRange(0, 0)  # busy until the files are known
        self.status.setText("Loading the model and listing the folder…")
        self.library_problem = None
        self.worker = GeneratorWorker(batch_job, folder, self.recursive.isChecked(), results,
                                      self.resume.isChecked(), self._config(), library=self._library())
        self.worker.yielded.connect(self._on_event)
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(self._on_finished)
        self._set_running(True)
        self.worker.start()
        return True

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.quit()
            self.status.setText("Cancelling after the current page… finished documents are kept.")

    def _on_event(self, ev: Any) -> None:
        m = self.table_model
        if isinstance(ev, ModelReady):
            self.labels = ev.classifier.labels
        elif isinstance(ev, ModelFailed):
            self.status.setText(f"The model could not be loaded: {ev.message}")
            self.batchFinished.emit(None)
        elif isinstance(ev, LibraryProblem):
            self.library_problem = ev.message
            self.status.setText(ev.message)
        elif isinstance(ev, BatchPlanned):
            m.reset(ev.files, self.folder.text().strip())
            self.progress.setRange(0, max(1, len(ev.files)))
            self.progress.setValue(0)
            earlier = (f"; the results file and the library already hold {ev.results_known}, which are not "
                       f"analysed again" if ev.results_known else "")
            self.status.setText(f"{len(ev.files)} documents{earlier}.")
            if not ev.files and not ev.problems:
                self.status.setText("No PDF or image files in this folder.")
        elif isinstance(ev, BatchDocStarted):
            m.set_status(ev.index, "analysing…")
            self.table.scrollTo(m.index(ev.index, 0))
        elif isinstance(ev, BatchDocProgress):
            m.set_status(ev.index, f"analysing… page {ev.page}" + (f" of {ev.pages}" if ev.pages else ""))
        elif isinstance(ev, BatchDocFinished):
            status = status_text(ev.doc, ev.skipped)
            if ev.index < 0:
                m.append(BatchRow(str(ev.doc.get("path")), status, ev.doc))
            else:
                m.set_status(ev.index, status, ev.doc)
                self.progress.setValue(self.progress.value() + 1)
            if not ev.skipped:
                self.libraryChanged.emit()
        elif isinstance(ev, BatchDone):
            for i, row in enumerate(m.rows):
                if row.doc is None:
                    m.set_status(i, "cancelled" if ev.cancelled else row.status)
            what = "Cancelled" if ev.cancelled else "Finished"
            problem = f" {self.library_problem}" if self.library_problem else ""
            self.status.setText(f"{what}: {ev.analysed} analysed ({ev.failed} with errors), {ev.skipped} done "
                                f"earlier. Results: {ev.results_path}{problem}")
            self.batchFinished.emit(ev)

    def _on_error(self, exc: BaseException) -> None:
        self.status.setText(f"The batch stopped: {type(exc).__name__}: {exc}")
        self.batchFinished.emit(None)

    def _on_finished(self) -> None:
        self.worker = None
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self._set_running(False)

    # -- results ----------------------------------------------------------------------------
    def export(self, path: Path) -> Path:
        return write_results(self.table_model.finished_docs(), Path(path), self.labels)

    def _export(self, filters: str, suffix: str) -> None:
        start = str(Path(self.folder.text() or Path.home()) / f"bytehoven-results{suffix}")
        path, _ = QFileDialog.getSaveFileName(self, "Export results", start, filters)
        if not path:
            return
        if not Path(path).suffix:
            path += suffix
        try:
            self.export(Path(path))
            self.status.setText(f"Exported {len(self.table_model.finished_docs())} documents to {path}")
        except OSError as exc:
            self.status.setText(f"Could not export: {exc}")

    def _open_row(self, index: QModelIndex) -> None:
        row = self.table_model.rows[index.row()]
        self.openRequested.emit(row.path)

    def closeEvent(self, event: QCloseEvent) -> None:
        # Closing stops the batch; what finished is in the results file and resumes next time.
        self.cancel()
        super().closeEvent(event)

    def done(self, result: int) -> None:  # Esc lands here, not in closeEvent
        self.cancel()
        super().done(result)
