"""`bytehoven analyze`: JSON Lines/CSV output, per-file errors, exit codes, resume, kill safety."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bytehoven_desktop.cli import main
from fixtures import make_corrupt_pdf, make_score_pdf, make_text_pdf


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "scores"
    (d / "sub").mkdir(parents=True)
    make_score_pdf(d / "a score.pdf", pages=2, systems_per_page=3)
    make_score_pdf(d / "sub" / "Dvořák – b.pdf", pages=1, systems_per_page=4, seed=3)
    make_text_pdf(d / "preface.pdf")
    make_corrupt_pdf(d / "broken.pdf")
    (d / "notes.txt").write_text("not a score")
    return d


def test_jsonl_on_stdout_with_errors_per_file(folder: Path, tiny_model: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["analyze", str(folder), "--recursive", "--model", str(tiny_model), "-q"])
    out, err = capsys.readouterr()
    docs = [json.loads(line) for line in out.splitlines()]
    assert rc == 0
    by_name = {Path(d["path"]).name: d for d in docs}
    assert set(by_name) == {"a score.pdf", "Dvořák – b.pdf", "preface.pdf", "broken.pdf"}
    assert by_name["broken.pdf"]["error"] and "broken.pdf" in err
    assert sum(len(p["systems"]) for p in by_name["a score.pdf"]["page_results"]) == 6
    assert by_name["preface.pdf"]["composer"] is None and by_name["preface.pdf"]["reason"] == "no music"
    assert "Traceback" not in err


def test_not_recursive_skips_subfolders(folder: Path, tiny_model: Path, capsys: pytest.CaptureFixture) -> None:
    main(["analyze", str(folder), "--model", str(tiny_model), "-q"])
    names = {Path(json.loads(x)["path"]).name for x in capsys.readouterr().out.splitlines()}
    assert "Dvořák – b.pdf" not in names and "a score.pdf" in names


def test_exit_code_nonzero_only_when_nothing_analysed(tmp_path: Path, tiny_model: Path) -> None:
    bad = make_corrupt_pdf(tmp_path / "bad.pdf")
    assert main(["analyze", str(bad), "--model", str(tiny_model), "-q"]) == 1
    assert main(["analyze", str(tmp_path / "nope.pdf"), "--model", str(tiny_model), "-q"]) == 1
    assert main(["analyze", str(bad), "--model", str(tmp_path / "missing.onnx"), "-q"]) == 2


def test_csv_output_and_resume_by_content(folder: Path, tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "res.csv"
    assert main(["analyze", str(folder), "-r", "--model", str(tiny_model), "--out", str(out), "-q"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4 and "p_bach" in rows[0]
    # A renamed file is not analysed again; a changed file is.
    (folder / "a score.pdf").rename(folder / "renamed.pdf")
    make_score_pdf(folder / "sub" / "Dvořák – b.pdf", pages=1, systems_per_page=2, seed=9)
    assert main(["analyze", str(folder), "-r", "--model", str(tiny_model), "--out", str(out), "--resume", "-q"]) == 0
    rows = list(csv.DictReader(out.open()))
    names = [Path(r["path"]).name for r in rows]
    assert names.count("renamed.pdf") == 0 and names.count("Dvořák – b.pdf") == 2


def test_parallel_jobs_give_same_results(folder: Path, tiny_model: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    main(["analyze", str(folder), "-r", "--model", str(tiny_model), "--out", str(one), "-q"])
    main(["analyze", str(folder), "-r", "--model", str(tiny_model), "--out", str(two), "-q", "--jobs", "2"])
    a = {d["path"]: d["composers"] for d in map(json.loads, one.read_text().splitlines())}
    b = {d["path"]: d["composers"] for d in map(json.loads, two.read_text().splitlines())}
    assert a == b


def test_sigkill_then_resume_loses_nothing(tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(12):
        make_score_pdf(folder / f"s{i:02d}.pdf", pages=3, systems_per_page=6, seed=i)
    out = tmp_path / "batch.jsonl"
    cmd = [sys.executable, "-m", "bytehoven_desktop", "analyze", str(folder), "--model", str(tiny_model),
           "--out", str(out), "--resume", "-q", "--threads", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for delay in (1.5, 2.5):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    paths = sorted(Path(d["path"]).name for d in docs)
    assert paths == sorted(f"s{i:02d}.pdf" for i in range(12))  # exactly one result per document
    assert all(d["error"] is None and d["pages"] == 3 for d in docs)


def test_csv_names_damaged_pages_and_resume_keeps_an_older_header(folder: Path, tiny_model: Path,
                                                                   tmp_path: Path) -> None:
    from bytehoven_desktop.report import csv_row

    assert csv_row({"path": "x.pdf", "damaged_pages": [3, 5]})["damaged_pages"] == "3 5"
    assert csv_row({"path": "x.pdf", "damaged_pages": []})["damaged_pages"] == ""
    # A results file written before the damaged_pages column: a resumed run appends rows under its
    # own header, so no value moves to another column.
    out = tmp_path / "old.csv"
    assert main(["analyze", str(folder), "-r", "--model", str(tiny_model), "--out", str(out), "-q"]) == 0
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(r["damaged_pages"] == "" for r in rows)
    old_fields = [f for f in rows[0] if f != "damaged_pages"]
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=old_fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows[:1])
    assert main(["analyze", str(folder), "-r", "--model", str(tiny_model), "--out", str(out), "--resume", "-q"]) == 0
    with out.open(newline="") as fh:
        lines = list(csv.reader(fh))
    assert lines[0] == old_fields and all(len(line) == len(old_fields) for line in lines)
    resumed = [dict(zip(old_fields, line)) for line in lines[1:]]
    assert sorted(r["path"] for r in resumed) == sorted(r["path"] for r in rows)
    assert all(r["rows"] == o["rows"] for r in resumed for o in rows if o["path"] == r["path"])
