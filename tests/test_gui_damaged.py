"""Damaged pages in the desktop window: a page MuPDF could not wholly read is marked as damaged in
its thumbnail and in the page view (hatched in red, labelled, with what was lost), never shown as
an empty page; the window says how many pages the file lost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QImage

from bytehoven_desktop.gui.page_view import PageView
from bytehoven_desktop.gui.settings import Preferences
from bytehoven_desktop.gui.thumbnails import ThumbnailView, page_caption
from bytehoven_desktop.gui.window import MainWindow
from bytehoven_desktop.report import PageResult, Summary
from fixtures import make_score_pdf
from gui_helpers import isolated_settings, open_and_wait, gui_model, window  # noqa: F401
from test_bad_input import ROWS, page_tree_loop_pdf, truncated_pdf

LOST = "page 2 is damaged: the file no longer holds it (MuPDF: non-page object in page tree)"


def red_pixels(image: QImage) -> int:
    """Pixels of the damage mark's red (the hatch, the frame, the label)."""
    img = image.convertToFormat(QImage.Format.Format_RGB32)
    a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
    bgra = a[:, : img.width() * 4].reshape(img.height(), img.width(), 4).astype(int)
    b, g, r = bgra[..., 0], bgra[..., 1], bgra[..., 2]
    return int(((r > 150) & (r - g > 60) & (r - b > 60)).sum())


def _page(page: int, error: str | None = None) -> PageResult:
    reason = "error" if error else "no music"
    return PageResult(page, [], Summary(None, None, None, {}, {}, 0, reason), 612.0, 792.0, error)


@pytest.fixture(scope="module")
def cut40(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int | None]]:
    """Five score pages cut off at 40 %: the first survives, the rest are lost or cut."""
    base = tmp_path_factory.mktemp("damaged")
    five = make_score_pdf(base / "five.pdf", pages=5, systems_per_page=ROWS)
    path = base / "cut-40.pdf"
    return path, truncated_pdf(path, five, 0.4)


def test_captions_and_tooltips_say_damaged_not_no_music(qtbot) -> None:
    assert page_caption(_page(2, LOST)) == ("damaged page", None)
    assert page_caption(_page(2, "took longer than 60 s and was skipped"))[0] == "error"
    assert page_caption(None, damaged=True)[0] == "damaged page"  # found by the renderer, not analysed
    view = ThumbnailView()
    qtbot.addWidget(view)
    m = view.thumbs
    m.reset([(612.0, 792.0)] * 2, 1.0)
    m.set_result(_page(1))
    m.set_result(_page(2, LOST))
    tip = m.data(m.index(1), Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("Page 2: damaged page") and LOST in tip
    assert m.data(m.index(0), Qt.ItemDataRole.ToolTipRole) == "Page 1: no music, 0 rows"
    assert m.page_damage(1) == LOST and m.page_damage(0) is None
    assert m.data(QModelIndex(), Qt.ItemDataRole.ToolTipRole) is None


def test_damaged_thumbnail_is_marked_and_a_blank_one_is_not(qtbot) -> None:
    view = ThumbnailView()
    qtbot.addWidget(view)
    view.resize(view.sizeHint().width(), 700)
    view.show()
    m = view.thumbs
    m.reset([(612.0, 792.0)] * 2, 1.0)
    white = QImage(116, 150, QImage.Format.Format_Grayscale8)
    white.fill(255)
    for i in range(2):
        m.set_image(i, white)  # both pages look empty: only the mark tells them apart
    m.set_result(_page(1))
    m.set_result(_page(2, LOST))
    qtbot.waitExposed(view)
    shot = view.viewport().grab().toImage()
    rects = [view.visualRect(m.index(i)) for i in range(2)]
    blank, damaged = (red_pixels(shot.copy(r)) for r in rects)
    assert blank == 0
    assert damaged > 500, damaged


def test_page_view_marks_a_damaged_page(qtbot) -> None:
    view = PageView()
    qtbot.addWidget(view)
    view.resize(700, 900)
    view.show()
    view.set_page(1, (612.0, 792.0))
    qtbot.waitExposed(view)
    assert red_pixels(view.canvas.grab().toImage()) == 0  # a blank page, not (known to be) damaged
    view.set_damage(LOST)
    assert view.canvas.damage == LOST
    assert red_pixels(view.canvas.grab().toImage()) > 5000
    view.set_page(0, (612.0, 792.0))  # another page: unmarked until told
    assert view.canvas.damage is None and red_pixels(view.canvas.grab().toImage()) == 0


def test_window_marks_the_pages_a_cut_pdf_lost(qtbot, window, cut40) -> None:
    path, rows = cut40
    lost = [i for i, r in enumerate(rows) if r is None]
    assert lost and len(lost) < len(rows)
    result = open_and_wait(qtbot, window, path)
    assert result.error is None and result.damaged_pages == [i + 1 for i in lost]
    thumbs = window.thumbnails.thumbs
    for i, r in enumerate(rows):
        caption = thumbs.data(thumbs.index(i), Qt.ItemDataRole.ToolTipRole)
        assert ("damaged page" in caption) == (r is None), caption
    # The banner says how many pages the file lost.
    assert window.banner.kind == "warning"
    assert f"{len(lost)} of {len(rows)} pages are damaged" in window.banner.message()
    # The page view marks a lost page, with what was lost, and not an intact one.
    window.go_to_page(lost[-1])
    assert window.page_view.canvas.damage and f"page {lost[-1] + 1} is damaged" in window.page_view.canvas.damage
    qtbot.waitUntil(window.display_settled, timeout=10000)
    assert red_pixels(window.page_view.canvas.grab().toImage()) > 5000
    window.go_to_page(0)  # the page that survived: its rows, no mark
    assert window.page_view.canvas.damage is None and len(window.page_view.canvas.systems) == ROWS


def test_without_a_model_damaged_pages_are_still_marked(qtbot, tmp_path) -> None:
    # No analysis: the renderer's own reading of the pages marks them.
    good = make_score_pdf(tmp_path / "good.pdf", pages=2, systems_per_page=ROWS)
    loop = tmp_path / "loop.pdf"
    rows = page_tree_loop_pdf(loop, good)
    assert rows == [ROWS, ROWS, None]
    w = MainWindow(prefs=Preferences(device="cpu", model_path=str(tmp_path / "missing.onnx")))
    qtbot.addWidget(w)
    w.resize(1200, 900)
    w.show()
    try:
        assert open_and_wait(qtbot, w, loop) is None  # the model is missing
        qtbot.waitUntil(lambda: w.page_count == 3, timeout=10000)
        assert w.thumbnails.thumbs.page_damage(2) and "cycle in page tree" in w.thumbnails.thumbs.page_damage(2)
        assert w.thumbnails.thumbs.page_damage(0) is None
        w.go_to_page(2)
        assert w.page_view.canvas.damage and "page 3 is damaged" in w.page_view.canvas.damage
    finally:
        w.close()
