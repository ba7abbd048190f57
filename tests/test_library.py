"""The results library: store and look up, outdated results, the view's queries, a kill during a
batch, two writers at once, a damaged file moved aside, an old schema migrated."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bytehoven_desktop import library as library_module
from bytehoven_desktop.classifier import get_classifier
from bytehoven_desktop.cli import main
from bytehoven_desktop.library import SCHEMA_VERSION, Library, Query, data_dir
from bytehoven_desktop.pipeline import analyze
from bytehoven_desktop.report import document_from_json
from bytehoven_desktop.systems import DETECTOR_VERSION
from fixtures import make_corrupt_pdf, make_score_pdf, make_text_pdf

ROOT = Path(__file__).resolve().parents[1]


def fake_doc(i: int, composer: str = "chopin", confidence: float = 0.8, folder: str = "/scores",
             model: str = "m1", pages: int = 2) -> dict:
    return {"path": f"{folder}/piece {i}.pdf", "sha256": f"{i:064x}", "pages": pages, "composer": composer,
            "confidence": confidence, "composers": {composer: confidence}, "best_guess": composer, "reason": None,
            "rows": 4, "rows_won": {composer: 4}, "device": "cpu", "model": {"name": model, "sha256": model},
            "error": None, "notices": [], "cancelled": False, "seconds": 0.1, "page_results": []}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> dict:
    score = make_score_pdf(tmp_path_factory.mktemp("lib") / "score.pdf", pages=2, systems_per_page=3)
    return analyze(score, get_classifier(tiny_model, "cpu", 1, 8)).to_json()


def test_default_location_follows_the_platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "bytehoven"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert data_dir() == Path.home() / ".local" / "share" / "bytehoven"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert data_dir() == tmp_path / "local" / "Bytehoven"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert data_dir() == Path.home() / "Library" / "Application Support" / "Bytehoven"


def test_store_and_look_up_a_real_analysis(tmp_path: Path, analysed: dict) -> None:
    with Library(tmp_path / "lib.sqlite3") as lib:
        assert lib.notice is None and lib.schema_version == SCHEMA_VERSION
        assert lib.store(analysed)
        model_sha = analysed["model"]["sha256"]
        stored = lib.lookup(analysed["sha256"], model_sha)
        assert stored is not None and stored.outdated is None
        assert stored.doc == analysed and stored.detector == DETECTOR_VERSION
        assert abs(stored.analysed_at - time.time()) < 60 and stored.model_name == "tiny-test-model"
        # Back to the objects the GUI shows, and to the same JSON again.
        assert document_from_json(stored.doc).to_json() == analysed
        # Another model or another detector: the result is kept, but said to be outdated.
        other = lib.lookup(analysed["sha256"], "f" * 64)
        assert other is not None and other.outdated and "another model" in other.outdated
        older = lib.lookup(analysed["sha256"], model_sha, detector="0")
        assert older is not None and older.outdated and "detector" in older.outdated
        assert lib.lookup("0" * 64, model_sha) is None
        # Storing again replaces; the WAL is in use.
        assert lib.store(dict(analysed, path="/elsewhere/renamed.pdf"))
        assert lib.count() == 1 and lib.entries(lib.query_ids())[lib.query_ids()[0]].name == "renamed.pdf"
    db = sqlite3.connect(tmp_path / "lib.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_what_is_not_stored(tmp_path: Path) -> None:
    with Library(tmp_path / "lib.sqlite3") as lib:
        assert not lib.store(dict(fake_doc(1), sha256=None))  # unreadable file: nothing to key it by
        assert not lib.store(dict(fake_doc(2), cancelled=True))  # half an analysis is no result
        assert lib.count() == 0


def test_the_newest_analysis_of_a_document_is_the_one_listed(tmp_path: Path) -> None:
    with Library(tmp_path / "lib.sqlite3") as lib:
        lib.store(fake_doc(1, "chopin", model="m1"), analysed_at=100.0)
        lib.store(fake_doc(1, "bach", model="m2"), analysed_at=200.0)
        ids = lib.query_ids()
        assert len(ids) == 1 and lib.entries(ids)[ids[0]].top == "bach"
        assert lib.lookup(f"{1:064x}", "m1").outdated is None  # the older model's result is still there
        assert lib.current_hashes("m2") == {f"{1:064x}"} and lib.current_hashes("m1") == {f"{1:064x}"}


def test_view_queries_filter_search_and_sort(tmp_path: Path) -> None:
    with Library(tmp_path / "lib.sqlite3") as lib:
        lib.store_many([fake_doc(1, "chopin", 0.9, "/a"), fake_doc(2, "chopin", 0.5, "/a/sub"),
                        fake_doc(3, "bach", 0.7, "/ab"), fake_doc(4, "mozart", 0.3, "/b", pages=9),
                        dict(fake_doc(5, "bach", 0.6, "/b"), path="/b/Étude 100%_x.pdf")], analysed_at=10.0)

        def names(**kw: object) -> list[str]:
            q = Query(**kw)  # type: ignore[arg-type]
            ids = lib.query_ids(q)
            e = lib.entries(ids)
            return [e[i].name for i in ids]

        assert len(names()) == 5
        assert names(composer="chopin", sort="confidence") == ["piece 1.pdf", "piece 2.pdf"]
        assert names(min_confidence=0.65, sort="confidence", descending=False) == ["piece 3.pdf", "piece 1.pdf"]
        # A folder and what is under it, not a folder whose name merely starts the same.
        assert sorted(names(folder="/a")) == ["piece 1.pdf", "piece 2.pdf"]
        assert names(search="Étude 100%") == ["Étude 100%_x.pdf"]
        assert names(search="%") == ["Étude 100%_x.pdf"]  # % and _ are letters here, not patterns
        assert names(search="PIECE 4") == ["piece 4.pdf"]
        assert names(sort="pages")[0] == "piece 4.pdf"
        assert lib.composers() == ["bach", "chopin", "mozart"]
        assert lib.folders() == ["/a", "/a/sub", "/ab", "/b"]
        lib.store(fake_doc(6, folder="/c"), analysed_at=5.0)
        lib.store(dict(fake_doc(6, folder="/c"), path="/c/Piece 0.pdf"), analysed_at=5.0)
        ids = lib.query_ids(Query(sort="name", descending=False))
        assert [d["path"] for d in lib.results(ids[:3])] == ["/c/Piece 0.pdf", "/a/piece 1.pdf", "/a/sub/piece 2.pdf"]
        # The view reads blocks by offset: together they are the whole list, in order.
        for q in (Query(), Query(sort="confidence", descending=False), Query(min_confidence=0.4, sort="name")):
            assert [e.id for e in lib.page(q, 0, 2) + lib.page(q, 2, 2) + lib.page(q, 4, 10)] == lib.query_ids(q)
            assert lib.count(q) == len(lib.query_ids(q))
        with pytest.raises(ValueError):
            lib.query_ids(Query(sort="result; DROP TABLE analyses"))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty tables"])
def test_a_damaged_file_is_moved_aside_and_a_new_library_started(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "lib.sqlite3"
    if damage == "garbage":
        path.write_bytes(b"this is not a database\n" * 500)
    elif damage == "truncated":
        with Library(path) as lib:
            lib.store_many([fake_doc(i) for i in range(300)])
        db = sqlite3.connect(path)  # fold the log into the file, then cut the file short
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:  # an SQLite file that is not a library
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE t (x)")
        db.commit()
        db.close()
    before = path.read_bytes()
    with Library(path) as lib:
        assert lib.notice and "moved aside" in lib.notice and not lib.in_memory
        aside = [p for p in tmp_path.iterdir() if ".damaged-" in p.name and not p.name.endswith(("-wal", "-shm"))]
        assert len(aside) == 1 and aside[0].read_bytes() == before and str(aside[0]) in lib.notice
        assert lib.count() == 0 and lib.store(fake_doc(1)) and lib.count() == 1
    with Library(path) as again:  # the fresh one is fine next time
        assert again.notice is None and again.count() == 1


def test_an_unusable_place_still_gives_a_library_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with Library(blocker / "sub" / "lib.sqlite3") as lib:  # its folder cannot be created
        assert lib.in_memory and "kept in memory" in lib.notice
        assert lib.store(fake_doc(1)) and lib.count() == 1


def test_a_library_locked_too_long_is_not_taken_for_damaged(tmp_path: Path) -> None:
    path = tmp_path / "lib.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)  # another program, starting a library
    holder.execute("CREATE TABLE x (y)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with Library(path, busy_timeout_ms=200) as lib:
            assert lib.in_memory and "locked" in lib.notice and "moved aside" not in lib.notice
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [p.name for p in tmp_path.iterdir() if "damaged" in p.name] == []


def test_a_newer_schema_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "lib.sqlite3"
    with Library(path) as lib:
        lib.store(fake_doc(1))
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with Library(path) as lib:
        assert lib.in_memory and "newer Bytehoven" in lib.notice
    assert sqlite3.connect(path).execute("SELECT count(*) FROM analyses").fetchone()[0] == 1


def test_an_old_schema_is_migrated(tmp_path: Path, analysed: dict) -> None:
    path = tmp_path / "lib.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    library_module.MIGRATIONS[0](db)  # the first schema, as a version-1 program left it
    db.execute("PRAGMA user_version = 1")
    rows = [(analysed["sha256"], analysed["model"]["sha256"], DETECTOR_VERSION, analysed["path"], 50.0,
             json.dumps(analysed)),
            (f"{7:064x}", "m1", "1", "/old/x.pdf", 10.0, json.dumps(fake_doc(7, "bach", model="m1"))),
            (f"{7:064x}", "m2", "1", "/old/x.pdf", 20.0, json.dumps(fake_doc(7, "mozart", model="m2")))]
    db.executemany("INSERT INTO analyses (doc_sha256, model_sha256, detector, path, analysed_at, result) "
                   "VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.close()
    with Library(path) as lib:
        assert lib.notice is None and lib.schema_version == SCHEMA_VERSION
        stored = lib.lookup(analysed["sha256"], analysed["model"]["sha256"])
        assert stored is not None and stored.doc == analysed and stored.outdated is None
        ids = lib.query_ids(Query(sort="analysed_at", descending=False))
        entries = lib.entries(ids)
        # One row per document, its newest analysis.
        assert [entries[i].top for i in ids] == ["mozart", analysed["best_guess"]]
        assert lib.query_ids(Query(composer="mozart", folder="/old")) == [ids[0]]
        assert lib.store(fake_doc(8)) and lib.count() == 3


WRITER = """
import os, sys, time
from bytehoven_desktop.library import Library
sys.path.insert(0, {tests!r})
from test_library import fake_doc
lib = Library(sys.argv[1])
start = int(sys.argv[2])
print("ready", flush=True)
while not os.path.exists(sys.argv[3]):  # both start writing at the same moment
    time.sleep(0.005)
for i in range(start, start + 300):
    lib.store(fake_doc(i, folder="/w" + sys.argv[2]))
print("ok")
"""


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    path = tmp_path / "lib.sqlite3"
    Library(path).close()
    code = WRITER.format(tests=str(ROOT / "tests"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(start), str(go)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for start in (0, 1000)]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready", p.stderr.read() if p.stderr else ""
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs  # no "database is locked"
    with Library(path) as lib:
        assert lib.count() == 600
        assert len(lib.query_ids(Query(folder="/w0"))) == 300 and len(lib.query_ids(Query(folder="/w1000"))) == 300


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "scores"
    d.mkdir()
    make_score_pdf(d / "a.pdf", pages=2, systems_per_page=3)
    make_score_pdf(d / "b.pdf", pages=1, systems_per_page=4, seed=3)
    make_text_pdf(d / "words.pdf")
    make_corrupt_pdf(d / "broken.pdf")
    return d


def test_analyze_keeps_every_result_and_resumes_from_the_library(folder: Path, tiny_model: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    lib_path = tmp_path / "lib.sqlite3"
    assert main(["analyze", str(folder), "--model", str(tiny_model), "--library", str(lib_path), "-q"]) == 0
    first = {Path(d["path"]).name: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    with Library(lib_path) as lib:
        assert lib.count() == 4  # the damaged file too: its error is a result, keyed by its content
        stored = lib.lookup(first["a.pdf"]["sha256"], first["a.pdf"]["model"]["sha256"])
        assert stored.doc == first["a.pdf"]
    # A renamed file is found by content; only the new one is analysed. Output stays complete.
    (folder / "a.pdf").rename(folder / "renamed.pdf")
    make_score_pdf(folder / "c.pdf", pages=1, systems_per_page=2, seed=5)
    out = tmp_path / "out.jsonl"
    assert main(["analyze", str(folder), "--model", str(tiny_model), "--library", str(lib_path), "--resume",
                 "--out", str(out), "-q"]) == 0
    err = capsys.readouterr().err
    assert "4 document(s) taken from the library" in err
    docs = {Path(d["path"]).name: d for d in map(json.loads, out.read_text().splitlines())}
    assert set(docs) == {"renamed.pdf", "b.pdf", "words.pdf", "broken.pdf", "c.pdf"}
    assert docs["renamed.pdf"]["composers"] == first["a.pdf"]["composers"]
    with Library(lib_path) as lib:
        assert lib.count() == 5
        assert "renamed.pdf" in {e.name for e in lib.entries(lib.query_ids()).values()}


def test_library_option_errors(folder: Path, tiny_model: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["analyze", str(folder), "--model", str(tiny_model), "--library", str(folder), "-q"]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["analyze", str(folder), "--model", str(tiny_model), "--resume", "-q"]) == 2
    assert "--library" in capsys.readouterr().err


def test_default_library_is_in_the_data_folder(folder: Path, tiny_model: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert main(["analyze", str(folder / "b.pdf"), "--model", str(tiny_model), "--library", "-q"]) == 0
    with Library(tmp_path / "data" / "bytehoven" / "library.sqlite3") as lib:
        assert lib.count() == 1


def test_a_kill_during_a_batch_loses_at_most_the_document_in_flight(tmp_path: Path, tiny_model: Path) -> None:
    scores = tmp_path / "many"
    scores.mkdir()
    for i in range(10):
        make_score_pdf(scores / f"s{i:02d}.pdf", pages=3, systems_per_page=6, seed=i)
    lib_path = tmp_path / "lib.sqlite3"
    cmd = [sys.executable, "-m", "bytehoven_desktop", "analyze", str(scores), "--model", str(tiny_model),
           "--library", str(lib_path), "-q", "--threads", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    printed = [proc.stdout.readline() for _ in range(3)]  # three documents reported finished
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    printed += proc.stdout.read().splitlines()  # any written before the kill landed
    reported = len([line for line in printed if line.strip()])
    assert 3 <= reported < 10, "the batch ended before the kill: make it longer"
    with Library(lib_path) as lib:
        assert lib.notice is None  # intact, not moved aside
        kept = lib.count()
    # Each result is stored before it is written out; at most the one in flight is missing.
    assert kept in (reported, reported + 1)
    done = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{kept} document(s) taken from the library" in done.stderr
    docs = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(Path(d["path"]).name for d in docs) == [f"s{i:02d}.pdf" for i in range(10)]
    with Library(lib_path) as lib:
        assert lib.count() == 10
