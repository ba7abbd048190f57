"""The main window with a real (tiny) model on generated scores: opening, streaming results,
cancelling, rows and activation maps, navigation, zoom, errors, drag-and-drop, exports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pymupdf
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QApplication

from bytehoven_desktop.document import Document
from bytehoven_desktop.gui import window as window_module
from bytehoven_desktop.gui.page_view import MARGIN
from bytehoven_desktop.gui.settings import Preferences
from bytehoven_desktop.gui.window import MainWindow, default_size, file_url_mime
from bytehoven_desktop.report import DocumentResult
from bytehoven_desktop.systems import detect_systems
from fixtures import make_corrupt_pdf, make_encrypted_pdf, make_score_png, make_text_pdf
from gui_helpers import isolated_settings, open_and_wait, score3, score_long, gui_model, window  # noqa: F401


def test_open_outlines_every_row_the_core_detects(qtbot, window, score3) -> None:
    result = open_and_wait(qtbot, window, score3)
    assert isinstance(result, DocumentResult) and result.error is None
    assert window.page_count == 3
    with Document(score3) as doc:
        expected = [len(detect_systems(doc.render(i, 150).gray).systems) for i in range(doc.page_count)]
    assert expected == [5, 5, 5]
    for i in range(3):
        window.go_to_page(i)
        assert window.page_view.canvas.outlined_rows() == expected[i]
    # Every page's result reached the thumbnails; the status bar names the model and device.
    assert sorted(window.thumbnails.thumbs.results) == [0, 1, 2]
    assert "tiny-test-model" in window.model_label.text() and "CPU" in window.model_label.text()
    assert "won" in window.side.doc_headline.text()
    # The page on screen gets rendered at the view's device pixel ratio.
    qtbot.waitUntil(window.page_view.render_is_current, timeout=10000)
    canvas = window.page_view.canvas
    assert canvas.pixmap.width() == pytest.approx(canvas.page_size[0] * canvas.zoom * window.devicePixelRatioF(),
                                                  abs=3)


def test_results_stream_in_before_the_document_is_finished(qtbot, window, score_long) -> None:
    with qtbot.waitSignal(window.pageAnalyzed, timeout=30000) as first:
        window.open_file(str(score_long))
    assert first.args == [1]
    assert window.document_result is None and window.is_analysing()
    assert window.page_view.canvas.outlined_rows() == 6  # page 1 shows while the rest runs
    window.cancel_analysis()  # the fixture waits for the thread to stop


def test_cancel_mid_run_keeps_the_pages_done(qtbot, window, score_long) -> None:
    with qtbot.waitSignal(window.pageAnalyzed, timeout=30000):
        window.open_file(str(score_long))
    with qtbot.waitSignal(window.analysisFinished, timeout=30000) as done:
        window.acts.cancel.trigger()
    result = done.args[0]
    assert result.cancelled
    assert 1 <= len(result.page_results) < 60
    assert not window.progress.isVisible() or not window.is_analysing()
    assert "cancelled" in window.side.doc_headline.text()


def test_opening_another_file_cancels_the_old_job(qtbot, window, score_long, score3) -> None:
    with qtbot.waitSignal(window.pageAnalyzed, timeout=30000):
        window.open_file(str(score_long))
    old_job = window.job
    result = open_and_wait(qtbot, window, score3)
    assert old_job is not None and old_job.cancelled
    assert old_job.wait(20000)
    assert Path(result.path) == Path(score3)
    assert sorted(window.results) == [0, 1, 2]  # nothing from the old document leaked in
    qtbot.waitUntil(lambda: window.page_count == 3, timeout=10000)


def _row_center(window, index: int) -> QPoint:
    s = window.page_view.canvas.systems[index]
    z = window.page_view.canvas.zoom
    return QPointF(MARGIN + (s.bbox[0] + s.bbox[2]) / 2 * z, MARGIN + (s.bbox[1] + s.bbox[3]) / 2 * z).toPoint()


def test_clicking_a_row_shows_its_top5_and_activation_map(qtbot, window, score3) -> None:
    open_and_wait(qtbot, window, score3)
    with qtbot.waitSignal(window.activationFinished, timeout=30000) as cam:
        qtbot.mouseClick(window.page_view.canvas, Qt.MouseButton.LeftButton, pos=_row_center(window, 1))
    assert cam.args == [0, 1, True]
    assert window.selected_row == 1
    bars = window.side.row_chart.bars
    assert len(bars) == 5  # the model knows six composers: the top five are listed
    assert [b.value for b in bars] == sorted((b.value for b in bars), reverse=True)
    assert window.page_view.canvas.heatmap is not None
    assert window.page_view.canvas.heatmap_bbox == window.results[0].systems[1].bbox
    # Clicking outside any row clears the selection and the map.
    qtbot.mouseClick(window.page_view.canvas, Qt.MouseButton.LeftButton, pos=QPoint(3, 3))
    assert window.selected_row is None and window.page_view.canvas.heatmap is None
    # The map can be switched off.
    window.acts.show_activation.setChecked(False)
    window.select_row(0)
    assert window.page_view.canvas.heatmap is None


def test_page_keys_and_zoom(qtbot, window, score3) -> None:
    open_and_wait(qtbot, window, score3)
    assert QKeySequence(Qt.Key.Key_PageDown) in window.acts.next_page.shortcuts()
    assert QKeySequence(QKeySequence.StandardKey.ZoomIn) in window.acts.zoom_in.shortcuts() or \
        QKeySequence("Ctrl+=") in window.acts.zoom_in.shortcuts()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    assert window.page == 1
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert window.page == 2
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    assert window.page == 1
    qtbot.keyClick(window, Qt.Key.Key_Home)
    assert window.page == 0
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    assert window.page == 0

    view = window.page_view
    window.acts.fit_width.trigger()
    assert view.canvas.width() <= view.viewport().width() + 1
    assert view.canvas.width() >= view.viewport().width() - 2 * MARGIN - 40
    window.acts.fit_page.trigger()
    assert view.canvas.height() <= view.viewport().height() + 1
    z = view.canvas.zoom
    qtbot.keyClick(window, Qt.Key.Key_Plus, Qt.KeyboardModifier.ControlModifier)
    assert view.canvas.zoom == pytest.approx(z * 1.2)
    window.acts.zoom_out.trigger()
    assert view.canvas.zoom == pytest.approx(z)
    window.acts.actual_size.trigger()
    assert view.zoom_percent() == pytest.approx(100.0)
    qtbot.waitUntil(view.render_is_current, timeout=10000)  # re-rendered for the new zoom


def test_thumbnails_follow_pages_and_render_lazily(qtbot, window, score3) -> None:
    open_and_wait(qtbot, window, score3)
    thumbs = window.thumbnails
    qtbot.waitUntil(lambda: len(thumbs.thumbs.images) >= 1, timeout=10000)
    thumbs.pageActivated.emit(2)
    assert window.page == 2
    assert thumbs.currentIndex().row() == 2
    window.acts.show_thumbnails.setChecked(False)
    assert not thumbs.isVisible()
    window.acts.show_rows.setChecked(False)
    assert window.page_view.canvas.outlined_rows() == 0


def test_image_scans_open_too(qtbot, window, tmp_path) -> None:
    result = open_and_wait(qtbot, window, make_score_png(tmp_path / "scan.png", systems=4))
    assert result.error is None
    assert window.page_view.canvas.outlined_rows() == 4


@pytest.mark.parametrize("maker, words, kind", [
    (make_corrupt_pdf, "damaged PDF", "error"),
    (make_encrypted_pdf, "encrypted", "error"),
    (make_text_pdf, "No music", "info"),
])
def test_bad_documents_give_a_banner_not_a_crash(qtbot, window, tmp_path, maker, words, kind) -> None:
    result = open_and_wait(qtbot, window, maker(tmp_path / "doc.pdf"))
    assert isinstance(result, DocumentResult)
    assert window.banner.isVisible() and window.banner.kind == kind
    assert words in window.banner.message()
    if kind == "info":
        assert result.summary.reason == "no music"
        assert "No music" in window.side.doc_headline.text()


def test_unsupported_and_missing_files_are_refused_politely(qtbot, window, tmp_path) -> None:
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    assert not window.open_file(str(txt))
    assert "not a PDF" in window.banner.message()
    assert not window.open_file(str(tmp_path / "nowhere.pdf"))
    assert "not found" in window.banner.message()


def test_missing_model_still_shows_the_pages(qtbot, tmp_path, score3) -> None:
    w = MainWindow(prefs=Preferences(device="cpu", model_path=str(tmp_path / "missing.onnx")))
    qtbot.addWidget(w)
    w.show()
    try:
        result = open_and_wait(qtbot, w, score3)
        assert result is None
        assert w.banner.kind == "warning" and "model" in w.banner.message()
        assert "BYTEHOVEN_MODEL" in w.banner.message()
        assert w.banner.button.isVisible()  # "Choose Model…"
        assert w.model_label.text() == "Model: missing"
        qtbot.waitUntil(lambda: w.page_count == 3 and w.page_view.canvas.pixmap is not None, timeout=10000)
    finally:
        w.close()


def test_cuda_request_reports_the_device_really_used(qtbot, gui_model, score3) -> None:
    w = MainWindow(prefs=Preferences(device="cpu", model_path=str(gui_model)), device="cuda")
    qtbot.addWidget(w)
    w.show()
    try:
        open_and_wait(qtbot, w, score3)
        assert w.classifier is not None
        if w.classifier.device == "cuda":
            assert "GPU" in w.model_label.text()
        else:
            assert "CPU" in w.model_label.text()
            assert not w.notice_label.isHidden() and "CUDA" in w.notice_label.text()
    finally:
        w.close()


def _drop(window, mime) -> bool:
    pos = QPointF(200, 200)
    # QDragEnterEvent takes an integer QPoint, QDropEvent a QPointF (PySide6 6.11 is strict).
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    return True


def test_drag_and_drop_opens_scores_and_folders(qtbot, window, score3, tmp_path) -> None:
    txt = tmp_path / "notes.txt"
    txt.write_text("x")
    assert not _drop(window, file_url_mime(str(txt)))
    with qtbot.waitSignal(window.analysisFinished, timeout=30000):
        assert _drop(window, file_url_mime(str(score3)))
    assert window.path == str(Path(score3).resolve())
    assert _drop(window, file_url_mime(str(tmp_path)))
    assert window.batch_dialog is not None and window.batch_dialog.isVisible()
    assert window.batch_dialog.folder.text() == str(tmp_path)


def test_exports(qtbot, window, score3, tmp_path) -> None:
    result = open_and_wait(qtbot, window, score3)
    doc = result.to_json()
    assert window.export_results(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["page_results"] == json.loads(json.dumps(doc))["page_results"]
    assert window.export_results(tmp_path / "r.jsonl")
    assert json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0])["path"] == doc["path"]
    assert window.export_results(tmp_path / "r.csv")
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == 1 and rows[0]["composer"] == (doc["composer"] or "") and "p_chopin" in rows[0]

    window.go_to_page(1)
    with qtbot.waitSignal(window.exportFinished, timeout=20000):
        window.export_page(tmp_path / "page.png")
    from PySide6.QtGui import QImage

    img = QImage(str(tmp_path / "page.png"))
    assert img.width() == pytest.approx(612 * 150 / 72, abs=2)
    with qtbot.waitSignal(window.exportFinished, timeout=20000):
        window.export_page(tmp_path / "page.pdf")
    with pymupdf.open(tmp_path / "page.pdf") as pdf:
        assert pdf.page_count == 1
        assert tuple(round(v) for v in pdf[0].rect[2:]) == (612, 792)
        assert len(pdf[0].get_drawings()) >= 5  # the row outlines are vector shapes


def test_preferences_change_reanalyses(qtbot, window, score3) -> None:
    open_and_wait(qtbot, window, score3)
    prefs = Preferences(**vars(window.prefs))
    prefs.threshold = 0.99
    with qtbot.waitSignal(window.analysisFinished, timeout=30000) as done:
        window.apply_preferences(prefs)
    assert done.args[0].summary.reason == "uncertain"
    assert "Uncertain" in window.side.doc_headline.text()
    assert Preferences.load().threshold == pytest.approx(0.99)


def test_demo_score(qtbot, window, score3, monkeypatch) -> None:
    monkeypatch.setattr(window_module, "demo_score_path", lambda: None)
    window.acts.open_demo.trigger()
    assert "demo score is not installed" in window.banner.message()
    monkeypatch.setattr(window_module, "demo_score_path", lambda: Path(score3))
    with qtbot.waitSignal(window.analysisFinished, timeout=30000):
        window.acts.open_demo.trigger()
    assert window.path == str(Path(score3).resolve())


def test_every_feature_is_in_the_menus(window) -> None:
    def walk(menu):
        for act in menu.actions():
            if act.menu() is not None:
                yield act.menu().objectName() or act.text()
                yield from walk(act.menu())
            else:
                yield act.objectName()

    names = set()
    for top in window.menuBar().actions():
        names |= set(walk(top.menu()))
    expected = {"open", "recent_menu", "analyse_folder", "export_results", "export_page", "preferences", "quit",
                "zoom_in", "zoom_out", "actual_size", "fit_width", "fit_page", "previous_page", "next_page",
                "first_page", "last_page", "show_thumbnails", "show_rows", "show_activation", "reanalyse",
                "cancel", "open_demo", "about", "about_qt"}
    assert expected <= names


def test_geometry_is_restored(qtbot, gui_model) -> None:
    w = MainWindow(prefs=Preferences(model_path=str(gui_model)))
    qtbot.addWidget(w)
    assert (w.width(), w.height()) == default_size(w)  # first start: 1400 x 900 unless the screen is smaller
    w.resize(700, 500)  # the offscreen test screen is 800 x 800
    w.acts.show_thumbnails.setChecked(False)
    w.close()
    w2 = MainWindow(prefs=Preferences(model_path=str(gui_model)))
    qtbot.addWidget(w2)
    assert (w2.width(), w2.height()) == (700, 500)
    assert not w2.acts.show_thumbnails.isChecked()
    w2.close()
