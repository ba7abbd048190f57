"""The main window: thumbnails | page | side panel, menus, status bar, and the flow of one
open document (render thread for display, analysis worker for results, activation maps on
demand). Nothing here waits for inference or rendering: results arrive as signals.

Every asynchronous result is tagged with the generation of the document (or analysis run) it
belongs to, so results from a document that has since been closed are dropped."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QMimeData, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import (QFileDialog, QLabel, QMainWindow, QMenu, QMessageBox, QProgressBar, QSplitter,
                               QStackedWidget, QToolButton, QVBoxLayout, QWidget)

from ..classifier import Classifier
from ..document import SUPPORTED_SUFFIXES, is_supported
from ..library import Library, Stored
from ..pipeline import Started
from ..report import DocumentResult, PageResult, damaged_pages_notice
from .about import show_about
from .actions import build_menus, create_actions
from .banner import Banner
from .batch_dialog import BatchDialog
from .colors import heatmap_image
from .export import IMAGE_FILTERS, RESULT_FILTERS, save_page, write_results
from .icon import app_icon
from .jobs import FromLibrary, LibraryProblem, ModelFailed, ModelReady, analysis_job, row_activation
from .library_view import LibraryWindow
from .page_view import PageView
from .prefs_dialog import PreferencesDialog
from .recent_files import RecentFiles
from .renderer import THUMB, VIEW, DocumentInfo, PageRenderer
from .resources import demo_score_path
from .settings import AnalysisConfig, Preferences, qsettings
from .side_panel import SidePanel
from .thumbnails import ThumbnailView
from .toolbar import build_toolbar
from .welcome import WelcomePane
from .worker import shutdown_workers, BackgroundOp, GeneratorWorker

APP_TITLE = "Bytehoven"
OPEN_FILTER = ("Scores (" + " ".join(f"*{s}" for s in sorted(SUPPORTED_SUFFIXES)) + ");;PDF (*.pdf);;"
               "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp);;All files (*)")
DEFAULT_SIZE = (1400, 900)


def default_size(widget: QWidget) -> tuple[int, int]:
    """1400 x 900, or less on a screen too small for it."""
    w, h = DEFAULT_SIZE
    screen = widget.screen()
    if screen is not None:
        avail = screen.availableGeometry()
        w, h = min(w, int(avail.width() * 0.95)), min(h, int(avail.height() * 0.95))
    return w, h


def dropped_path(mime: QMimeData) -> str | None:
    """The first local score file or folder in a drag, or None."""
    for url in mime.urls() if mime.hasUrls() else []:
        if url.isLocalFile():
            p = url.toLocalFile()
            if os.path.isdir(p) or is_supported(Path(p)):
                return p
    return None


class MainWindow(QMainWindow):
    documentOpened = Signal(str)  # the document's pages are known and the first is on screen
    pageAnalyzed = Signal(int)  # 1-based page number whose result arrived
    analysisFinished = Signal(object)  # DocumentResult, or None when no analysis could run
    activationFinished = Signal(int, int, bool)  # page index, row index, whether a map is shown
    exportFinished = Signal(str)  # path written

    def __init__(self, prefs: Preferences | None = None, model: str | None = None, device: str | None = None,
                 parent: QWidget | None = None, remember_layout: bool = True):
        super().__init__(parent)
        # False for screenshots: the default layout, and the user's own layout left untouched.
        self.remember_layout = remember_layout
        self.prefs = prefs or Preferences.load()
        self._cli_model, self._cli_device = model, device  # command-line overrides, this session only
        self.recent = RecentFiles(parent=self)
        self.path: str | None = None
        self.info: DocumentInfo | None = None
        self.page = -1
        self.results: dict[int, PageResult] = {}  # 0-based page -> result
        self.document_result: DocumentResult | None = None
        self.total_pages = 0
        self.classifier: Classifier | None = None
        self.model_error: str | None = None
        self.selected_row: int | None = None
        self.renderer: PageRenderer | None = None
        self.job: GeneratorWorker | None = None
        self.batch_dialog: BatchDialog | None = None
        self.library_window: LibraryWindow | None = None
        self._library: Library | None = None
        self._library_path: str | None = None
        self.stored: Stored | None = None  # where the shown result came from, when from the library
        self._doc_gen = 0
        self._job_gen = 0
        self._initial_page = 0
        self._open_failed = False

        self.setWindowTitle(APP_TITLE)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self._library_refresh = QTimer(self, singleShot=True, interval=500)
        self._library_refresh.timeout.connect(
            lambda: self.library_window is not None and self.library_window.refresh())
        self._build_ui()
        self._restore_geometry()

    # == construction ==========================================================================
    def _build_ui(self) -> None:
        self.page_view = PageView()
        self.page_view.rowClicked.connect(self.select_row)
        self.page_view.renderWanted.connect(self._want_render)
        self.page_view.zoomChanged.connect(lambda pct: self.zoom_label.setText(f"{pct:.0f}%" if self.info else ""))
        self.thumbnails = ThumbnailView()
        self.thumbnails.pageActivated.connect(self.go_to_page)
        self.thumbnails.thumbs.imageWanted.connect(self._want_thumb)
        self.side = SidePanel()

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("main_splitter")
        self.splitter.addWidget(self.thumbnails)
        self.splitter.addWidget(self.page_view)
        self.splitter.addWidget(self.side)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setCollapsible(1, False)
        self.splitter.setSizes([170, 860, 370])

        self.acts = create_actions(self)
        self.toolbar, self.page_box = build_toolbar(self, self.acts)
        self.page_box.pageChosen.connect(self.go_to_page)
        self.recent_menu = QMenu("Open &Recent", self)
        self.recent_menu.setObjectName("recent_menu")
        self.recent_menu.aboutToShow.connect(lambda: self.recent.fill_menu(self.recent_menu, self.open_file))
        self.recent.fill_menu(self.recent_menu, self.open_file)
        build_menus(self, self.acts, self.recent_menu)

        self.welcome = WelcomePane([self.acts.open, self.acts.open_demo, self.acts.analyse_folder])
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.splitter)

        self.banner = Banner()
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        banner_box = QWidget()
        bl = QVBoxLayout(banner_box)
        bl.setContentsMargins(8, 6, 8, 0)
        bl.addWidget(self.banner)
        lay.addWidget(banner_box)
        lay.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self._build_status_bar()
        self._update_actions()

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.page_label = QLabel()
        self.zoom_label = QLabel()
        self.zoom_label.setToolTip("Zoom (Ctrl++ / Ctrl+-, Ctrl+0 fit page, Ctrl+1 actual size, Ctrl+2 fit width)")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setFormat("%v / %m pages")
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop the analysis (Esc); the pages done so far stay")
        self.cancel_button.clicked.connect(self.cancel_analysis)
        self.model_label = QLabel("Model: not loaded")
        self.notice_label = QLabel()
        self.notice_label.setStyleSheet("color: #b26a00; font-weight: 600;")
        self.notice_label.hide()
        for w in (self.page_label, self.zoom_label, self.progress, self.cancel_button, self.notice_label,
                  self.model_label):
            sb.addPermanentWidget(w)
        self._show_progress(False)

    def _restore_geometry(self) -> None:
        s = qsettings()
        self.resize(*default_size(self))
        if not self.remember_layout:
            return
        geom = s.value("window/geometry")
        if isinstance(geom, QByteArray) and not geom.isEmpty():
            self.restoreGeometry(geom)
        split = s.value("window/splitter")
        if isinstance(split, QByteArray) and not split.isEmpty():
            self.splitter.restoreState(split)
        thumbs = s.value("window/thumbnails", True)
        self.acts.show_thumbnails.setChecked(str(thumbs).lower() not in ("false", "0"))

    def _save_geometry(self) -> None:
        if not self.remember_layout:
            return
        s = qsettings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/splitter", self.splitter.saveState())
        s.setValue("window/thumbnails", self.acts.show_thumbnails.isChecked())
        s.sync()

    def config(self) -> AnalysisConfig:
        return AnalysisConfig.from_preferences(self.prefs, self._cli_model, self._cli_device)

    def library(self) -> Library:
        """The results library of the preferences, opened on first use. It always opens: a damaged
        file is moved aside, and one that cannot be used is replaced by one in memory (with a notice)."""
        path = self.prefs.library_path or ""
        if self._library is None or path != self._library_path:
            self._library, self._library_path = Library(path or None), path
            if self._library.notice:
                self.banner.show_message("warning", self._library.notice)
            if self.library_window is not None:
                self.library_window.set_library(self._library)
        return self._library

    def _library_changed(self) -> None:
        """A result was stored: the library view, when shown, lists it (at most twice a second)."""
        if self.library_window is not None and self.library_window.isVisible():
            self._library_refresh.start()

    # == opening ===============================================================================
    def choose_file(self) -> None:
        start = os.path.dirname(self.path) if self.path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a score", start, OPEN_FILTER)
        if path:
            self.open_file(path)

    def open_demo(self) -> None:
        demo = demo_score_path()
        if demo is None:
            self.banner.show_message("warning", "The demo score is not installed (resources/demo/demo.pdf was not "
                                     "found beside the program). Open one of your own scores instead.")
            return
        self.open_file(str(demo))

    def open_file(self, path: str | os.PathLike[str], page: int = 0) -> bool:
        """Open a score; analysis starts at once and results stream in page by page."""
        p = Path(path).expanduser()
        if p.is_dir():
            self.show_batch(str(p))
            return False
        if not p.is_file():
            self.banner.show_message("error", f"“{p}” was not found.")
            return False
        if not is_supported(p):
            self.banner.show_message("error", f"“{p.name}” is not a PDF or an image scan "
                                     f"({', '.join(sorted(SUPPORTED_SUFFIXES))}).")
            return False
        self._close_document()
        self._doc_gen += 1
        gen = self._doc_gen
        self.path = str(p.resolve())
        self._initial_page = max(0, page)
        self.setWindowTitle(f"{p.name} — {APP_TITLE}")
        self.setWindowFilePath(self.path)
        self.recent.add(self.path)
        self.banner.dismiss()
        self.side.clear()
        self.stack.setCurrentWidget(self.splitter)
        self.statusBar().showMessage(f"Opening {p.name}…", 3000)
        self.renderer = PageRenderer(self.path, self)
        self.renderer.opened.connect(lambda info: self._on_opened(gen, info))
        self.renderer.failed.connect(lambda msg: self._on_open_failed(gen, msg))
        self.renderer.rendered.connect(lambda pg, dpi, kind, img: self._on_rendered(gen, pg, dpi, kind, img))
        self.renderer.damaged.connect(lambda pg, msg: self._on_page_damaged(gen, pg, msg))
        self.renderer.start()
        self._start_analysis()
        self._update_actions()
        return True

    def _close_document(self) -> None:
        """Stop the old document's threads without waiting; their late results are ignored."""
        self._cancel_job()
        if self.renderer is not None:
            self.renderer.close()
            self.renderer.deleteLater()
            self.renderer = None
        self.path, self.info, self.page = None, None, -1
        self._open_failed = False
        self.results.clear()
        self.document_result = None
        self.total_pages = 0
        self.selected_row = None
        self.page_view.clear()
        self.thumbnails.thumbs.reset([], self.devicePixelRatioF())
        self.page_label.clear()
        self.zoom_label.clear()
        self.page_box.set_pages(0)

    def _on_opened(self, gen: int, info: DocumentInfo) -> None:
        if gen != self._doc_gen:
            return
        self.info = info
        self.thumbnails.thumbs.reset(info.page_sizes, self.devicePixelRatioF())
        for r in self.results.values():  # results that came before the page list
            self.thumbnails.thumbs.set_result(r)
        self.go_to_page(min(self._initial_page, info.page_count - 1))
        self.documentOpened.emit(info.path)

    def _on_open_failed(self, gen: int, message: str) -> None:
        if gen != self._doc_gen:
            return
        self._open_failed = True
        self.banner.show_message("error", message)
        self.side.show_message("The document could not be opened.")
        self.statusBar().showMessage("The document could not be opened", 5000)

    # == rendering =============================================================================
    def _want_render(self, page: int, dpi: float) -> None:
        if self.renderer is not None:
            self.renderer.request(page, dpi, VIEW)

    def _want_thumb(self, page: int, dpi: float) -> None:
        if self.renderer is not None:
            self.renderer.request(page, dpi, THUMB)

    def _on_rendered(self, gen: int, page: int, dpi: float, kind: int, image: QImage) -> None:
        if gen != self._doc_gen:
            return
        if kind == THUMB:
            self.thumbnails.thumbs.set_image(page, image)
            if page == self.page and self.page_view.canvas.pixmap is None:
                self.page_view.set_image(page, dpi, image)  # a blurry preview until the real one comes
        else:
            self.page_view.set_image(page, dpi, image)

    def _on_page_damaged(self, gen: int, page: int, message: str) -> None:
        """The renderer found part of a page unreadable: marked even before (or without) its analysis."""
        if gen != self._doc_gen:
            return
        self.thumbnails.thumbs.set_damage(page, message)
        if page == self.page:
            self.page_view.set_damage(self.thumbnails.thumbs.page_damage(page))

    def display_settled(self) -> bool:
        """True when everything asked to be drawn is drawn: the page at the present zoom and the
        visible thumbnails (or the document failed to open, or none is open)."""
        if self.path is None or self._open_failed:
            return True
        if self.info is None or self.renderer is None:
            return False
        return self.page_view.render_is_current() and self.renderer.idle()

    # == analysis ==============================================================================
    def _start_analysis(self, use_stored: bool = True) -> None:
        if self.path is None:
            return
        self._cancel_job()
        self._job_gen += 1
        gen = self._job_gen
        self.results.clear()
        self.document_result = None
        self.stored = None
        self.side.set_library_line("")
        self.total_pages = 0
        self.model_label.setText("Model: loading…")
        self.job = GeneratorWorker(analysis_job, self.path, self.config(), library=self.library(),
                                   use_stored=use_stored)
        self.job.yielded.connect(lambda ev: self._on_analysis_event(gen, ev))
        self.job.errored.connect(lambda exc: self._on_analysis_error(gen, exc))
        self.job.finished.connect(lambda: self._on_job_finished(gen))
        self._show_progress(True, 0, 0)
        self.side.show_progress(0, 0)
        self.job.start()

    def _cancel_job(self) -> None:
        if self.job is not None:
            self.job.quit()
            self.job = None
        self._show_progress(False)

    def cancel_analysis(self) -> None:
        if self.job is not None:
            self.job.quit()  # the pipeline stops after the current page and still reports
            self.statusBar().showMessage("Cancelling…")
            self.cancel_button.setEnabled(False)

    def reanalyse(self) -> None:
        if self.path is None:
            return
        self.banner.dismiss()
        self._start_analysis(use_stored=False)  # forgets the old results, stored ones too
        self.thumbnails.thumbs.results.clear()
        self.thumbnails.viewport().update()
        self._show_page_results()

    def is_analysing(self) -> bool:
        return self.job is not None

    def _on_analysis_event(self, gen: int, ev: Any) -> None:
        if gen != self._job_gen:
            return
        if isinstance(ev, ModelReady):
            self._on_model_ready(ev.classifier)
        elif isinstance(ev, ModelFailed):
            self._on_model_failed(ev.message)
        elif isinstance(ev, FromLibrary):
            self._on_from_library(ev.stored)
        elif isinstance(ev, LibraryProblem):
            self.banner.show_message("warning", ev.message)
        elif isinstance(ev, Started):
            self.total_pages = ev.pages
            self._show_progress(True, 0, ev.pages)
            self.side.show_progress(0, ev.pages)
        elif isinstance(ev, PageResult):
            self._on_page_result(ev)
        elif isinstance(ev, DocumentResult):
            self._on_document_result(ev)

    def _on_model_ready(self, clf: Classifier) -> None:
        self.classifier, self.model_error = clf, None
        device = "GPU (CUDA)" if clf.device == "cuda" else "CPU"
        self.model_label.setText(f"Model: {clf.info.name} · {device}")
        self.model_label.setToolTip(f"{clf.info.path}\nsha256 {clf.info.sha256}")
        self.side.legend.set_labels(clf.labels)
        if clf.notice:
            self.notice_label.setText("⚠ " + ("CUDA unavailable — using the CPU" if "cuda" in clf.notice.lower()
                                             or "gpu" in clf.notice.lower() else clf.notice))
            self.notice_label.setToolTip(clf.notice)
            self.notice_label.show()
        else:
            self.notice_label.hide()

    def _on_from_library(self, stored: Stored) -> None:
        self.stored = stored
        line = f"Analysed on {stored.date_text} with model {stored.model_name or 'unnamed'}"
        if stored.outdated:
            self.side.set_library_line(f"{line} — outdated: {stored.outdated}.", outdated=True)
            self.banner.show_message(
                "warning", f"This is the library's result from {stored.date_text}, {stored.outdated}: it may "
                           f"differ from what the present model says.", "Analyse Again", self.reanalyse)
        else:
            self.side.set_library_line(line + " (from the library).")

    def _on_model_failed(self, message: str) -> None:
        self.classifier, self.model_error = None, message
        self.model_label.setText("Model: missing")
        self.model_label.setToolTip(message)
        self.banner.show_message(
            "warning",
            f"The pages are shown, but they cannot be analysed: the composer model could not be loaded.<br>"
            f"<small>{message}</small><br>Choose a model file (Edit → Preferences), or set the "
            f"BYTEHOVEN_MODEL environment variable to one.",
            "Choose Model…", self.choose_model)
        self.side.show_message("Not analysed: no composer model.")
        self.statusBar().showMessage("Not analysed: the composer model is missing", 8000)
        self._show_progress(False)
        self.analysisFinished.emit(None)

    def _on_page_result(self, result: PageResult) -> None:
        self.results[result.page - 1] = result
        self.thumbnails.thumbs.set_result(result)
        done = len(self.results)
        self.progress.setValue(done)
        self.side.show_progress(done, self.total_pages)
        if result.page - 1 == self.page:
            self._show_page_results()
        self.pageAnalyzed.emit(result.page)

    def _on_document_result(self, result: DocumentResult) -> None:
        self.document_result = result
        self.side.show_document(result)
        self._show_progress(False)
        s = result.summary
        if result.error:
            # The render thread may already have said the same; one clear message is enough.
            self.banner.show_message("error", result.error)
        elif result.damaged_pages:
            notice = damaged_pages_notice(result.damaged_pages, len(result.page_results))
            self.banner.show_message("warning", f"This PDF is damaged: {notice}. They are marked as damaged; "
                                     "a complete copy of the file would let them be analysed.")
        elif s.reason == "no music" and not result.cancelled:
            self.banner.show_message("info", "No music found: no staff systems were detected in this document. "
                                     "Is it a score? Very faint or tiny scans may need a better scan.")
        if self.stored is not None:
            self.statusBar().showMessage(f"Shown from the library (analysed on {self.stored.date_text}); "
                                         f"Analysis → Analyse Again redoes it", 8000)
        elif result.error:
            self.statusBar().showMessage("The document could not be analysed", 8000)
        elif result.cancelled:
            self.statusBar().showMessage(f"Analysis cancelled after {len(result.page_results)} of "
                                         f"{result.pages} pages", 8000)
        else:
            self.statusBar().showMessage(f"Analysed {result.pages} pages, {s.rows} rows in "
                                         f"{result.seconds:.1f} s", 8000)
        if self.stored is None and not result.cancelled:
            name = result.model_name or "unnamed"
            self.side.set_library_line(f"Analysed on {time.strftime('%Y-%m-%d %H:%M')} with model {name}.")
            self._library_changed()
        self._update_actions()
        self.analysisFinished.emit(result)

    def _on_analysis_error(self, gen: int, exc: BaseException) -> None:
        if gen != self._job_gen:
            return
        self.banner.show_message("error", f"The analysis stopped unexpectedly ({type(exc).__name__}: {exc}).")
        self.analysisFinished.emit(None)

    def _on_job_finished(self, gen: int) -> None:
        if gen == self._job_gen:
            self.job = None
            self._show_progress(False)
            self._update_actions()

    def _show_progress(self, visible: bool, value: int = 0, maximum: int = 0) -> None:
        self.progress.setVisible(visible)
        self.cancel_button.setVisible(visible)
        self.cancel_button.setEnabled(visible)
        if visible:
            self.progress.setRange(0, maximum)
            self.progress.setValue(value)
        self.acts.cancel.setEnabled(visible)

    # == pages and rows ========================================================================
    @property
    def page_count(self) -> int:
        return self.info.page_count if self.info else 0

    def go_to_page(self, index: int) -> None:
        if self.info is None or self.info.page_count == 0:
            return
        index = max(0, min(self.info.page_count - 1, index))
        self.page = index
        self.selected_row = None
        self.page_view.set_page(index, self.info.page_sizes[index])
        self._show_page_results()
        self.thumbnails.set_current_page(index)
        self.page_label.setText(f"Page {index + 1} of {self.info.page_count}")
        self.zoom_label.setText(f"{self.page_view.zoom_percent():.0f}%")
        self.page_box.set_pages(self.info.page_count, index)
        self._update_actions()

    def next_page(self) -> None:
        self.go_to_page(self.page + 1)

    def previous_page(self) -> None:
        self.go_to_page(self.page - 1)

    def first_page(self) -> None:
        self.go_to_page(0)

    def last_page(self) -> None:
        self.go_to_page(self.page_count - 1)

    def _show_page_results(self) -> None:
        if self.page < 0:
            return
        r = self.results.get(self.page)
        self.page_view.set_systems(r.systems if r is not None else [])
        self.page_view.set_damage(self.thumbnails.thumbs.page_damage(self.page))
        self.page_view.set_selected(None)
        self.page_view.set_activation(None, None)
        self.selected_row = None
        self.side.show_page(self.page, self.page_count, r)
        self.side.set_row(None, None)

    def select_row(self, index: int) -> None:
        """Select row ``index`` of the current page (-1: none): top-5 and its activation map."""
        r = self.results.get(self.page)
        if r is None or not 0 <= index < len(r.systems):
            self.selected_row = None
            self.page_view.set_selected(None)
            self.page_view.set_activation(None, None)
            self.side.set_row(None, None)
            return
        self.selected_row = index
        system = r.systems[index]
        self.page_view.set_selected(index)
        self.page_view.set_activation(None, None)
        self.side.set_row(f"page {self.page + 1}, row {index + 1}", system)
        self._request_activation()

    def set_activation_visible(self, visible: bool) -> None:
        if not visible:
            self.page_view.set_activation(None, None)
            self.side.set_cam_status("")
        elif self.selected_row is not None:
            self._request_activation()

    def _request_activation(self) -> None:
        if self.selected_row is None or self.path is None:
            return
        if not self.acts.show_activation.isChecked():
            return
        clf = self.classifier
        if clf is None:
            return
        if not clf.has_cam:
            self.side.set_cam_status("This model does not provide activation maps.")
            return
        system = self.results[self.page].systems[self.selected_row]
        key = (self._job_gen, self.page, self.selected_row)
        path, page, bbox = self.path, self.page, system.bbox
        self.side.set_cam_status("Computing the activation map…")

        def op() -> QImage | None:  # on a worker thread: core calls and an image, no widgets
            cam = row_activation(path, page, bbox, clf)
            return None if cam is None else heatmap_image(cam)

        def done(heat: QImage | None) -> None:
            if key != (self._job_gen, self.page, self.selected_row):
                return  # the user moved on
            if heat is None:
                self.side.set_cam_status("No activation map for this row.")
            else:
                self.page_view.set_activation(heat, bbox)
                self.side.set_cam_status("The map shows which parts of the row drove the prediction: "
                                         "bright yellow most, dark purple little.")
            self.activationFinished.emit(page, key[2], heat is not None)

        def failed(exc: BaseException) -> None:
            if key == (self._job_gen, self.page, self.selected_row):
                self.side.set_cam_status(f"The activation map could not be computed ({exc}).")
                self.activationFinished.emit(page, key[2], False)

        BackgroundOp(self, op, done).failure(failed).run_in_background()

    # == view ==================================================================================
    def set_thumbnails_visible(self, visible: bool) -> None:
        self.thumbnails.setVisible(visible)

    def _update_actions(self) -> None:
        a = self.acts
        has_doc = self.info is not None
        for act in (a.zoom_in, a.zoom_out, a.actual_size, a.fit_width, a.fit_page, a.export_page):
            act.setEnabled(has_doc)
        a.previous_page.setEnabled(has_doc and self.page > 0)
        a.next_page.setEnabled(has_doc and self.page < self.page_count - 1)
        a.first_page.setEnabled(has_doc and self.page > 0)
        a.last_page.setEnabled(has_doc and self.page < self.page_count - 1)
        a.export_results.setEnabled(self.document_result is not None)
        a.reanalyse.setEnabled(self.path is not None)

    # == exporting =============================================================================
    def choose_export_results(self) -> None:
        if self.document_result is None:
            return
        base = Path(self.path or "results").with_suffix(".json")
        path, _ = QFileDialog.getSaveFileName(self, "Export results", str(base), RESULT_FILTERS)
        if path:
            self.export_results(Path(path))

    def export_results(self, path: Path) -> bool:
        """Write this document's results (.json, .jsonl or .csv, as ``bytehoven analyze``)."""
        if self.document_result is None:
            return False
        if not path.suffix:
            path = path.with_suffix(".json")
        labels = self.classifier.labels if self.classifier else ()
        try:
            write_results([self.document_result.to_json()], path, labels)
        except OSError as exc:
            self.banner.show_message("error", f"Could not save {path}: {exc.strerror or exc}")
            return False
        self.statusBar().showMessage(f"Saved results to {path}", 6000)
        self.exportFinished.emit(str(path))
        return True

    def choose_export_page(self) -> None:
        if self.path is None or self.page < 0:
            return
        base = Path(self.path).with_name(f"{Path(self.path).stem}-page{self.page + 1}.png")
        path, _ = QFileDialog.getSaveFileName(self, "Export page image", str(base), IMAGE_FILTERS)
        if path:
            self.export_page(Path(path))

    def export_page(self, path: Path) -> None:
        """Save the current page with its rows drawn on (PNG/JPEG or PDF), in the background."""
        if self.path is None or self.page < 0:
            return
        if not path.suffix:
            path = path.with_suffix(".png")
        doc, page, result = self.path, self.page, self.results.get(self.page)

        def done(out: Path) -> None:
            self.statusBar().showMessage(f"Saved page {page + 1} to {out}", 6000)
            self.exportFinished.emit(str(out))

        def failed(exc: BaseException) -> None:
            self.banner.show_message("error", f"Could not save {path}: {exc}")

        BackgroundOp(self, lambda: save_page(doc, page, result, path), done).failure(failed) \
            .with_progress(f"Saving page {page + 1}…").run_in_background()

    # == dialogs ===============================================================================
    def show_preferences(self) -> None:
        dlg = PreferencesDialog(self.prefs, self)
        if dlg.exec():
            self.apply_preferences(dlg.preferences())

    def apply_preferences(self, prefs: Preferences) -> None:
        """Save new preferences; re-analyse the open score when they change its results."""
        changed = prefs != self.prefs
        library_only = changed and replace(prefs, library_path=self.prefs.library_path) == self.prefs
        self.prefs = prefs
        prefs.save()
        if library_only:
            self.library()  # opens the chosen library; the results shown stay
        elif changed:
            # Choosing in the dialog overrides what the command line said for this session.
            self._cli_model = self._cli_device = None
            if self.path is not None:
                self.reanalyse()

    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model", str(Path.home()),
                                              "ONNX models (*.onnx);;All files (*)")
        if path:
            p = Preferences(**vars(self.prefs))
            p.model_path = path
            self.apply_preferences(p)

    def show_batch(self, folder: str | None = None) -> BatchDialog:
        if self.batch_dialog is None:
            self.batch_dialog = BatchDialog(self.config, self, library=self.library)
            self.batch_dialog.openRequested.connect(self.open_file)
            self.batch_dialog.libraryChanged.connect(self._library_changed)
        if folder:
            self.batch_dialog.set_folder(folder)
        self.batch_dialog.show()
        self.batch_dialog.raise_()
        self.batch_dialog.activateWindow()
        return self.batch_dialog

    def show_library(self) -> LibraryWindow:
        if self.library_window is None:
            self.library_window = LibraryWindow(self.library(), self)
            self.library_window.openRequested.connect(self.open_file)
        else:
            self.library_window.set_library(self.library())  # what was stored since it was last shown
        self.library_window.show()
        self.library_window.raise_()
        self.library_window.activateWindow()
        return self.library_window

    def show_about(self) -> None:
        show_about(self, self.classifier, self.model_error, demo_score_path())

    def show_about_qt(self) -> None:
        QMessageBox.aboutQt(self, "About Qt")

    # == events ================================================================================
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_path(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:
        if dropped_path(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = dropped_path(event.mimeData())
        if path:
            event.acceptProposedAction()
            self.open_file(path)  # a folder opens the batch dialog

    def closeEvent(self, event: QCloseEvent) -> None:
        self._save_geometry()
        self._close_document()
        if self.batch_dialog is not None:
            self.batch_dialog.cancel()
        # Join the render and analysis threads now: a script or test that closes the window
        # and exits at once must not leave a thread inside a C library during interpreter exit.
        shutdown_workers(5000)
        super().closeEvent(event)


def file_url_mime(*paths: str) -> QMimeData:
    """Mime data as a file manager makes it when files are dragged (used by tests)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
    return mime
