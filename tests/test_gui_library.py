"""The results library in the GUI: a score opened again is shown from the library at once, an
outdated result is said to be so, the Library window (filter, search, sort, open, export), the
batch window writing into the library and resuming from it, and the library preference."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from bytehoven_desktop.batch import ResultsFile
from bytehoven_desktop.classifier import file_sha256
from bytehoven_desktop.gui import jobs
from bytehoven_desktop.gui.batch_dialog import BatchDialog
from bytehoven_desktop.gui.prefs_dialog import PreferencesDialog
from bytehoven_desktop.gui.settings import AnalysisConfig, Preferences
from bytehoven_desktop.library import Library, default_library_path
from fixtures import make_score_pdf
from gui_helpers import isolated_settings, open_and_wait, score3, gui_model, window  # noqa: F401


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the documents the pipeline really analyses."""
    analysed: list[str] = []
    real = jobs.analyze_document

    def counting(path, *a, **k):  # type: ignore[no-untyped-def]
        analysed.append(Path(path).name)
        return real(path, *a, **k)

    monkeypatch.setattr(jobs, "analyze_document", counting)
    return analysed


def test_a_score_opened_again_is_shown_from_the_library(qtbot, window, score3, tmp_path, spy) -> None:
    first = open_and_wait(qtbot, window, score3)
    assert spy == ["score3.pdf"] and window.stored is None
    assert "Analysed on" in window.side.library_line.text()
    # Stored in the platform's data folder (the test's own), keyed by content, model and detector.
    assert window.library().path == default_library_path() and window.library().count() == 1
    other = make_score_pdf(tmp_path / "other.pdf", pages=1, systems_per_page=2, seed=4)
    open_and_wait(qtbot, window, other)
    again = open_and_wait(qtbot, window, score3)
    assert spy == ["score3.pdf", "other.pdf"]  # not analysed a second time
    assert window.stored is not None and window.stored.outdated is None
    line = window.side.library_line.text()
    assert line.startswith("Analysed on ") and "tiny-test-model" in line and "from the library" in line
    assert again.to_json()["page_results"] == first.to_json()["page_results"]
    qtbot.waitUntil(lambda: window.page_count == 3, timeout=10000)
    for i in range(3):  # rows and breakdowns as after the analysis
        window.go_to_page(i)
        assert window.page_view.canvas.outlined_rows() == 5
    assert "won" in window.side.doc_headline.text()
    # Analyse Again really analyses, and the new result replaces the stored one.
    with qtbot.waitSignal(window.analysisFinished, timeout=30000):
        window.acts.reanalyse.trigger()
    assert spy[-1] == "score3.pdf" and len(spy) == 3 and window.stored is None
    assert window.library().count() == 2


def test_a_result_of_another_model_is_shown_as_outdated(qtbot, window, score3, spy) -> None:
    first = open_and_wait(qtbot, window, score3)
    doc = first.to_json()
    lib = window.library()
    sha = file_sha256(Path(score3))
    # Make the stored result another model's: the present one has never seen this score.
    db = lib._db  # noqa: SLF001 - the test rewrites the key as another model would have written it
    db.execute("UPDATE analyses SET model_sha256 = ?, model_name = 'older-model' WHERE doc_sha256 = ?",
               ("e" * 64, sha))
    assert lib.lookup(sha, doc["model"]["sha256"]).outdated
    spy.clear()
    open_and_wait(qtbot, window, score3)
    assert spy == []  # shown, not silently replaced
    assert window.stored is not None and window.stored.outdated
    assert "outdated" in window.side.library_line.text() and "older-model" in window.side.library_line.text()
    assert "outdated" in window.banner.message() or "older-model" in window.banner.message()
    assert window.banner.button.isVisible() and window.banner.button.text() == "Analyse Again"
    with qtbot.waitSignal(window.analysisFinished, timeout=30000):
        window.banner.button.click()
    assert spy == ["score3.pdf"] and lib.lookup(sha, doc["model"]["sha256"]).outdated is None


def fake(i: int, composer: str, confidence: float, folder: str) -> dict:
    return {"path": f"{folder}/piece{i:03d}.pdf", "sha256": f"{i:064x}", "pages": 1 + i % 5, "composer": composer,
            "confidence": confidence, "composers": {"bach": 0.1, composer: confidence}, "best_guess": composer,
            "reason": None, "rows": 3, "rows_won": {composer: 3}, "device": "cpu",
            "model": {"name": "m", "sha256": "m"}, "error": None, "notices": [], "cancelled": False,
            "seconds": 0.1, "page_results": []}


def test_library_window_filters_sorts_opens_and_exports(qtbot, window, score3, tmp_path) -> None:
    lib = window.library()
    lib.store_many([fake(i, ("chopin", "mozart", "liszt")[i % 3], 0.3 + 0.01 * i, f"/lib/set{i % 2}")
                    for i in range(40)], analysed_at=1000.0)
    view = window.show_library()
    qtbot.waitExposed(view)
    m = view.model
    assert m.rowCount() == 40 and "40 documents" in view.count_label.text()
    # Filter by composer.
    view.composer.setCurrentIndex(view.composer.findData("mozart"))
    assert m.rowCount() == 13 and all(m.entry(r).top == "mozart" for r in range(m.rowCount()))
    assert "13 of 40" in view.count_label.text()
    # And by confidence, and by folder.
    view.min_confidence.setValue(50)
    assert all(m.entry(r).confidence >= 0.5 for r in range(m.rowCount())) and m.rowCount() == 6
    view.folder.setCurrentIndex(view.folder.findData("/lib/set1"))
    assert {m.entry(r).folder for r in range(m.rowCount())} == {"/lib/set1"}
    view.composer.setCurrentIndex(0)
    view.min_confidence.setValue(0)
    view.folder.setCurrentIndex(0)
    # Search by name (after the typing pause).
    view.search.setText("PIECE03")
    qtbot.waitUntil(lambda: m.rowCount() == 10, timeout=3000)
    view.search.clear()
    qtbot.waitUntil(lambda: m.rowCount() == 40, timeout=3000)
    # Sort by clicking a header: confidence, ascending then descending.
    view.table.sortByColumn(3, Qt.SortOrder.AscendingOrder)
    confs = [m.entry(r).confidence for r in range(m.rowCount())]
    assert confs == sorted(confs)
    view.table.sortByColumn(3, Qt.SortOrder.DescendingOrder)
    assert m.entry(0).name == "piece039.pdf" and m.data(m.index(0, 3)) == "69%"
    assert m.data(m.index(0, 2)) and m.data(m.index(0, 6)).startswith("1970-01-01")

    # Export the selection as CSV and as JSON Lines, in the analyze schema.
    view.table.selectRow(0)
    view.table.selectionModel().select(m.index(1, 0), view.table.selectionModel().SelectionFlag.Select |
                                       view.table.selectionModel().SelectionFlag.Rows)
    assert "2 selected" in view.count_label.text()
    with qtbot.waitSignal(view.exportFinished, timeout=10000) as done:
        view.export(tmp_path / "sel.jsonl")
    assert done.args[1] == 2
    docs = [json.loads(line) for line in (tmp_path / "sel.jsonl").read_text().splitlines()]
    assert [Path(d["path"]).name for d in docs] == ["piece039.pdf", "piece038.pdf"]
    assert docs[0] == fake(39, "chopin", 0.3 + 0.39, "/lib/set1")
    with qtbot.waitSignal(view.exportFinished, timeout=10000):
        view.export(tmp_path / "sel.csv")
    rows = list(csv.DictReader((tmp_path / "sel.csv").open()))
    assert [Path(r["path"]).name for r in rows] == ["piece039.pdf", "piece038.pdf"]
    with ResultsFile(tmp_path / "ref.csv", ["bach", "chopin", "liszt"], resume=False):
        pass  # the header bytehoven analyze --out x.csv writes for these composers
    assert (tmp_path / "sel.csv").read_text().splitlines()[0] == (tmp_path / "ref.csv").read_text().splitlines()[0]
    # Nothing selected: everything listed is exported.
    view.table.clearSelection()
    with qtbot.waitSignal(view.exportFinished, timeout=10000) as done:
        view.export(tmp_path / "all.jsonl")
    assert done.args[1] == 40

    # A score analysed in the window appears in the view; double-click opens it (from the library).
    open_and_wait(qtbot, window, score3)
    qtbot.waitUntil(lambda: m.rowCount() == 41, timeout=5000)
    row = next(r for r in range(m.rowCount()) if m.entry(r).name == "score3.pdf")
    with qtbot.waitSignal(window.analysisFinished, timeout=30000):
        view.table.doubleClicked.emit(m.index(row, 0))
    assert Path(window.path) == Path(score3).resolve() and window.stored is not None
    view.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "scores"
    d.mkdir()
    make_score_pdf(d / "a.pdf", pages=2, systems_per_page=4, seed=1)
    make_score_pdf(d / "b.pdf", pages=1, systems_per_page=3, seed=2)
    return d


def test_batch_writes_into_the_library_and_resumes_from_it(qtbot, gui_model, folder, tmp_path, spy) -> None:
    lib = Library(tmp_path / "lib.sqlite3")
    cfg = AnalysisConfig(model=str(gui_model), device="cpu", threads=1, batch_size=8, threshold=0.2)
    dlg = BatchDialog(lambda: cfg, library=lambda: lib)
    qtbot.addWidget(dlg)
    stored: list[int] = []
    dlg.libraryChanged.connect(lambda: stored.append(lib.count()))
    with qtbot.waitSignal(dlg.batchFinished, timeout=60000) as done:
        dlg.start(str(folder))
    qtbot.waitUntil(lambda: not dlg.running, timeout=10000)
    assert done.args[0].analysed == 2
    assert stored == [1, 2]  # each document was in the library as soon as it finished
    # Without its results file, the batch resumes from the library alone.
    Path(done.args[0].results_path).unlink()
    spy.clear()
    with qtbot.waitSignal(dlg.batchFinished, timeout=60000) as done:
        dlg.start(str(folder))
    qtbot.waitUntil(lambda: not dlg.running, timeout=10000)
    assert done.args[0].skipped == 2 and done.args[0].analysed == 0 and spy == []
    assert {r.status for r in dlg.table_model.rows} == {"done earlier"}
    # The results file is complete again.
    assert len(Path(done.args[0].results_path).read_text().splitlines()) == 2
    lib.close()


def test_the_library_preference(qtbot, window, tmp_path) -> None:
    dlg = PreferencesDialog(Preferences(device="cpu"))
    qtbot.addWidget(dlg)
    assert dlg.library.placeholderText() == str(default_library_path())
    dlg.library.setText(str(tmp_path / "mine.sqlite3"))
    prefs = dlg.preferences()
    assert prefs.library_path == str(tmp_path / "mine.sqlite3")
    prefs.save()
    assert Preferences.load().library_path == str(tmp_path / "mine.sqlite3")
    window.apply_preferences(Preferences(**{**vars(window.prefs), "library_path": prefs.library_path}))
    assert window.library().path == tmp_path / "mine.sqlite3" and (tmp_path / "mine.sqlite3").exists()


def test_a_damaged_library_is_moved_aside_with_a_notice(qtbot, window, score3) -> None:
    path = default_library_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00garbage" * 1000)
    open_and_wait(qtbot, window, score3)  # the program opens, and analyses, all the same
    assert "moved aside" in window.banner.message()
    assert window.library().count() == 1
