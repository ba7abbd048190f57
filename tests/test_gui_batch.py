"""Batch folder analysis: the table fills in, a corrupt file is an error row, cancel, resume
without redoing finished files, export in the CLI's schema, double-click opens."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bytehoven_desktop.batch import ResultsFile
from bytehoven_desktop.gui.batch_dialog import BatchDialog, default_results_path
from bytehoven_desktop.gui.settings import AnalysisConfig
from fixtures import make_corrupt_pdf, make_score_pdf, make_text_pdf
from gui_helpers import isolated_settings, gui_model, window  # noqa: F401


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "scores"
    (d / "sub").mkdir(parents=True)
    make_score_pdf(d / "a.pdf", pages=2, systems_per_page=4, seed=1)
    make_score_pdf(d / "sub" / "b.pdf", pages=1, systems_per_page=3, seed=2)
    make_corrupt_pdf(d / "broken.pdf")
    make_text_pdf(d / "words.pdf")
    (d / "readme.txt").write_text("not a score")
    return d


@pytest.fixture
def dialog(qtbot, gui_model: Path):  # type: ignore[no-untyped-def]
    cfg = AnalysisConfig(model=str(gui_model), device="cpu", threads=1, batch_size=8, threshold=0.2)
    dlg = BatchDialog(lambda: cfg)
    qtbot.addWidget(dlg)
    dlg.show()
    yield dlg
    dlg.cancel()
    if dlg.worker is not None:
        dlg.worker.wait(20000)


def run(qtbot, dlg: BatchDialog, folder: Path):  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(dlg.batchFinished, timeout=60000) as done:
        assert dlg.start(str(folder))
    qtbot.waitUntil(lambda: not dlg.running, timeout=10000)
    return done.args[0]


def statuses(dlg: BatchDialog) -> dict[str, str]:
    return {Path(r.path).name: r.status for r in dlg.table_model.rows}


def test_batch_fills_the_table_with_an_error_row_for_a_corrupt_file(qtbot, dialog, folder) -> None:
    done = run(qtbot, dialog, folder)
    assert not done.cancelled and done.analysed == 4 and done.failed == 1
    st = statuses(dialog)
    assert set(st) == {"a.pdf", "b.pdf", "broken.pdf", "words.pdf"}  # recursive; .txt ignored
    assert st["a.pdf"] == "done" and st["b.pdf"] == "done"
    assert st["broken.pdf"].startswith("error:") and "damaged PDF" in st["broken.pdf"]
    assert st["words.pdf"] == "done (no music)"
    model = dialog.table_model
    row = next(i for i, r in enumerate(model.rows) if r.path.endswith("a.pdf"))
    assert model.data(model.index(row, 1)) == "2"  # pages
    assert model.data(model.index(row, 2))  # composer shown
    assert model.data(model.index(row, 3)).endswith("%")
    # Each finished document went to the results file in the program's data folder at once.
    results = default_results_path(folder)
    assert Path(done.results_path) == results
    assert len(results.read_text().splitlines()) == 4


def test_not_recursive_skips_sub_folders(qtbot, dialog, folder) -> None:
    dialog.recursive.setChecked(False)
    run(qtbot, dialog, folder)
    assert "b.pdf" not in statuses(dialog)


def test_resume_does_not_redo_finished_files(qtbot, dialog, folder, monkeypatch) -> None:
    run(qtbot, dialog, folder)
    analysed: list[str] = []
    import bytehoven_desktop.gui.jobs as jobs

    real = jobs.analyze_document

    def spy(path, *a, **k):  # type: ignore[no-untyped-def]
        analysed.append(Path(path).name)
        return real(path, *a, **k)

    monkeypatch.setattr(jobs, "analyze_document", spy)
    make_score_pdf(folder / "c.pdf", pages=1, systems_per_page=2, seed=9)
    done = run(qtbot, dialog, folder)
    # a, b, words and the damaged file (its error is kept by content hash): only the new one runs.
    assert done.skipped == 4
    assert sorted(analysed) == ["c.pdf"]
    st = statuses(dialog)
    assert st["a.pdf"] == "done earlier" and st["c.pdf"] == "done"
    # Without resume, everything is analysed again and the file starts afresh.
    dialog.resume.setChecked(False)
    analysed.clear()
    run(qtbot, dialog, folder)
    assert len(analysed) == 5


def test_cancel_keeps_finished_documents_for_resume(qtbot, dialog, tmp_path) -> None:
    d = tmp_path / "many"
    d.mkdir()
    for i in range(6):
        make_score_pdf(d / f"s{i}.pdf", pages=12, systems_per_page=6, seed=i)
    with qtbot.waitSignal(dialog.batchFinished, timeout=60000) as done:
        dialog.start(str(d))
        qtbot.waitUntil(lambda: any(r.status == "done" for r in dialog.table_model.rows), timeout=30000)
        dialog.cancel_button.click()
    assert done.args[0].cancelled
    qtbot.waitUntil(lambda: not dialog.running, timeout=20000)
    st = list(statuses(dialog).values())
    assert "cancelled" in st and "done" in st
    finished = st.count("done")
    with ResultsFile(Path(done.args[0].results_path), [], resume=True) as rf:
        assert len(rf.done) == finished
    done2 = run(qtbot, dialog, d)
    assert done2.skipped == finished and done2.analysed == 6 - finished


def test_export_uses_the_cli_schema(qtbot, dialog, folder, tmp_path) -> None:
    run(qtbot, dialog, folder)
    assert dialog.export_csv.isEnabled() and dialog.export_json.isEnabled()
    dialog.export(tmp_path / "out.csv")
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert len(rows) == 4
    with ResultsFile(tmp_path / "ref.csv", dialog.labels, resume=False):
        pass  # the header `bytehoven analyze --out x.csv` writes
    assert (tmp_path / "out.csv").read_text().splitlines()[0] == (tmp_path / "ref.csv").read_text().splitlines()[0]
    dialog.export(tmp_path / "out.jsonl")
    docs = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert {Path(d["path"]).name for d in docs} == {"a.pdf", "b.pdf", "broken.pdf", "words.pdf"}
    assert all("page_results" in d and "model" in d for d in docs)


def test_double_click_opens_the_document(qtbot, window, folder) -> None:
    dlg = window.show_batch(str(folder))
    with qtbot.waitSignal(dlg.batchFinished, timeout=60000):
        dlg.start()
    row = next(i for i, r in enumerate(dlg.table_model.rows) if r.path.endswith("a.pdf"))
    with qtbot.waitSignal(window.analysisFinished, timeout=30000):
        dlg.table.doubleClicked.emit(dlg.table_model.index(row, 0))
    assert Path(window.path).name == "a.pdf"
    qtbot.waitUntil(lambda: not dlg.running, timeout=10000)


def test_missing_model_is_reported(qtbot, tmp_path, folder) -> None:
    cfg = AnalysisConfig(model=str(tmp_path / "none.onnx"), device="cpu", threads=1, batch_size=8, threshold=None)
    dlg = BatchDialog(lambda: cfg)
    qtbot.addWidget(dlg)
    with qtbot.waitSignal(dlg.batchFinished, timeout=30000) as done:
        dlg.start(str(folder))
    assert done.args[0] is None
    assert "model could not be loaded" in dlg.status.text()
    qtbot.waitUntil(lambda: not dlg.running, timeout=10000)
    assert not dlg.start(str(tmp_path / "no-such-folder"))
    assert "not a folder" in dlg.status.text()
