"""The side panel: document summary, the current page's breakdown, the selected row's top-5
and the colour legend. It only displays results; the window tells it what to show."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from ..report import DocumentResult, PageResult, Summary, SystemResult
from .breakdown import BreakdownChart, row_bars, summary_bars, summary_message
from .colors import composer_color, display_name
from .legend import LegendWidget


def _section_title(text: str) -> QLabel:
    label = QLabel(text.upper())
    f = QFont(label.font())
    f.setBold(True)
    f.setPointSizeF(max(7.0, f.pointSizeF() * 0.82))
    f.setLetterSpacing(QFont.SpacingType.PercentageSpacing, 108)
    label.setFont(f)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


def _wrap_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def headline_html(title: str | None, detail: str, composer: str | None = None) -> str:
    """A colour swatch (for a composer), the title large, and a detail line."""
    head = ""
    if title:
        swatch = ""
        if composer:
            swatch = f'<span style="color:{composer_color(composer).name()}; font-size:20pt;">&#9632;</span>&nbsp;'
        head = f'<div style="font-size:17pt; font-weight:600;">{swatch}{html.escape(title)}</div>'
    return f"{head}<div>{html.escape(detail)}</div>"


def document_headline(summary: Summary) -> tuple[str, str, str | None]:
    """Title, detail and colour of a document's verdict; "uncertain" and "no music" are verdicts
    too and are stated as plainly as a composer."""
    if summary.composer:
        won = summary.wins.get(summary.composer, 0)
        return (display_name(summary.composer),
                f"confidence {summary.confidence:.0%} · won {won} of {summary.rows} rows", summary.composer)
    if summary.reason == "no music":
        return "No music", "No staff systems were found in this document.", None
    if summary.reason == "uncertain":
        guess = (f"Best guess {display_name(summary.best_guess)} ({summary.confidence:.0%}), too unsure to name."
                 if summary.best_guess and summary.confidence is not None else "No composer is likely enough.")
        return "Uncertain", guess, None
    return None, summary_message(summary, "document") or "", None


class SidePanel(QScrollArea):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.setContentsMargins(14, 12, 14, 12)
        lay.setSpacing(6)

        lay.addWidget(_section_title("Document"))
        self.doc_headline = _wrap_label()
        self.doc_headline.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.doc_headline)
        # Where the result comes from: "analysed on DATE with model X" (outdated ones in warning colour).
        self.library_line = _wrap_label()
        self.library_line.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.library_line.hide()
        lay.addWidget(self.library_line)
        self.doc_chart = BreakdownChart()
        self.doc_chart.setToolTip("Probability pooled over all rows · rows each composer won")
        lay.addWidget(self.doc_chart)
        lay.addSpacing(10)

        self.page_title = _section_title("Page")
        lay.addWidget(self.page_title)
        self.page_chart = BreakdownChart()
        self.page_chart.setToolTip("Probability pooled over this page's rows · rows each composer won")
        lay.addWidget(self.page_chart)
        self.page_notes = _wrap_label()
        self.page_notes.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        lay.addWidget(self.page_notes)
        lay.addSpacing(10)

        self.row_title = _section_title("Selected row")
        lay.addWidget(self.row_title)
        self.row_hint = _wrap_label("Click a row on the page to see its five most likely composers and what "
                                    "drove the prediction.")
        self.row_hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        lay.addWidget(self.row_hint)
        self.row_chart = BreakdownChart()
        lay.addWidget(self.row_chart)
        self.cam_status = _wrap_label()
        self.cam_status.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        lay.addWidget(self.cam_status)
        lay.addSpacing(10)

        lay.addWidget(_section_title("Colours"))
        self.legend = LegendWidget()
        lay.addWidget(self.legend)
        lay.addStretch(1)
        body.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.setWidget(body)
        self.setMinimumWidth(300)
        self.clear()

    def clear(self) -> None:
        self.doc_headline.setText(headline_html(None, "No document open."))
        self.set_library_line("")
        self.doc_chart.clear()
        self.page_title.setText("PAGE")
        self.page_chart.clear()
        self.page_notes.clear()
        self.set_row(None, None)

    # -- document ---------------------------------------------------------------------------
    def show_progress(self, done: int, total: int, partial: Summary | None = None) -> None:
        text = f"Analysing… {done} of {total} pages" if total else "Analysing…"
        self.doc_headline.setText(headline_html(None, text))
        if partial is not None and partial.rows:
            self.doc_chart.set_data(summary_bars(partial), None)

    def show_document(self, result: DocumentResult) -> None:
        s = result.summary
        if result.error:
            self.doc_headline.setText(headline_html(None, "Analysis failed: " + result.error))
            self.doc_chart.clear()
            return
        suffix = f" (cancelled after {len(result.page_results)} of {result.pages} pages)" if result.cancelled else ""
        title, detail, composer = document_headline(s)
        self.doc_headline.setText(headline_html(title, detail + suffix, composer))
        self.doc_chart.set_data(summary_bars(s) if s.rows else [])

    def set_library_line(self, text: str, outdated: bool = False) -> None:
        self.library_line.setText(text)
        self.library_line.setStyleSheet("color: #b26a00; font-weight: 600;" if outdated else "")
        self.library_line.setVisible(bool(text))

    def show_message(self, text: str) -> None:
        self.doc_headline.setText(headline_html(None, text))
        self.doc_chart.clear()

    # -- page -------------------------------------------------------------------------------
    def show_page(self, page: int, pages: int, result: PageResult | None) -> None:
        self.page_title.setText(f"PAGE {page + 1} OF {pages}")
        if result is None:
            self.page_chart.clear("Not analysed yet.")
            self.page_notes.clear()
            return
        if result.error:
            self.page_chart.clear(f"This page could not be analysed: {result.error}")
        else:
            s = result.summary
            msg = summary_message(s)
            if msg is None and s.composer:
                msg = f"{display_name(s.composer)} · confidence {s.confidence:.0%} · {s.rows} rows"
            self.page_chart.set_data(summary_bars(s) if s.rows else [], msg)
        self.page_notes.setText("; ".join(result.notes))
        self.page_notes.setVisible(bool(result.notes))

    # -- selected row -----------------------------------------------------------------------
    def set_row(self, label: str | None, system: SystemResult | None) -> None:
        if system is None:
            self.row_title.setText("SELECTED ROW")
            self.row_hint.show()
            self.row_chart.clear()
            self.row_chart.hide()
            self.cam_status.clear()
            self.cam_status.hide()
            return
        self.row_title.setText(f"SELECTED ROW · {label}" if label else "SELECTED ROW")
        self.row_hint.hide()
        self.row_chart.set_data(row_bars(system, 5))
        self.row_chart.show()

    def set_cam_status(self, text: str) -> None:
        self.cam_status.setText(text)
        self.cam_status.setVisible(bool(text))
