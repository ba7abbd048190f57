"""``bytehoven dataset`` (v3) on a corpus made here: symbolic scores in three engravers, an engraved PDF
and a scan, rows cut by the app's detector, scan look on engraved pages only, split by group, counts per
composer × engraver × split that match the rows, and a rerun that makes nothing again."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("verovio")
pytest.importorskip("cairosvg")

from fixtures import make_score_pdf  # noqa: E402
from test_engrave import TINY  # noqa: E402

from bytehoven_desktop.training.dataset import build, plan  # noqa: E402
from bytehoven_desktop.training.engrave import engraver  # noqa: E402

FIELDS = ["path", "composer", "work_id", "group", "title", "source_repo", "license", "format", "note"]


def _corpus(root: Path) -> Path:
    rows = []
    for composer, groups in (("bach", 3), ("chopin", 1)):
        for g in range(groups):
            rel = f"scores/{composer}/src/g{g}.musicxml"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            # A different first note per score, so the engravings differ.
            (root / rel).write_text(TINY.replace("<step>C</step><octave>5</octave>",
                                                 f"<step>{'DEFGA'[g]}</step><octave>5</octave>", 1), encoding="utf-8")
            rows.append({"path": rel, "composer": composer, "work_id": f"{composer}:op{g}", "group": f"{composer}:op{g}",
                         "format": "musicxml"})
    (root / "engraved/chopin/x").mkdir(parents=True)
    make_score_pdf(root / "engraved/chopin/x/op0b.pdf", pages=2, systems_per_page=4, seed=1, title=None)
    rows.append({"path": "engraved/chopin/x/op0b.pdf", "composer": "chopin", "work_id": "chopin:op0",
                 "group": "chopin:op0", "format": "pdf"})
    with (root / "manifest.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, restval="")
        w.writeheader()
        w.writerows(rows)
    (root / "scans/bach").mkdir(parents=True)
    make_score_pdf(root / "scans/bach/scan.pdf", pages=2, systems_per_page=5, seed=2, title=None)
    with (root / "scans.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "composer", "groups_covered", "pages", "source_repo", "license"])
        w.writerow(["scans/bach/scan.pdf", "bach", "bach:op1", 2, "", ""])
    return root


def test_plan_engraves_every_symbolic_score_three_ways(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    tasks, split = plan(corpus, engravers=("verovio", "lilypond", "musescore"), scan_look=0.5)
    kinds = Counter(t.engraver for t in tasks)
    assert kinds["lilypond"] == kinds["musescore"] == 4 and kinds["other"] == 1 and kinds["scan"] == 1
    assert kinds["verovio"] > 4  # more variants for train scores of composers with few scores
    assert all(t.scan_look == 0 for t in tasks if t.engraver == "scan")  # real scans stay as they are
    assert len({t.key for t in tasks}) == len(tasks)
    limited, split2 = plan(corpus, engravers=("verovio",), limit=1)
    assert split2 == split  # the split is the full corpus's, also for a small build
    assert Counter((t.source.composer, t.source.kind) for t in limited if t.variant == 0).most_common(1)[0][1] == 1
    with pytest.raises(ValueError):
        plan(corpus, engravers=("finale",))


def test_a_slow_engraver_can_take_fewer_scores_and_grow_later(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    three = ("verovio", "lilypond", "musescore")

    def scores(limit: int) -> set[str]:
        tasks, _ = plan(corpus, engravers=three, engraver_limits={"lilypond": limit})
        assert Counter(t.engraver for t in tasks)["musescore"] == 4  # the others keep every score
        return {t.source.rel for t in tasks if t.engraver == "lilypond"}

    one, two = scores(1), scores(2)
    per_composer = Counter(rel.split("/")[1] for rel in one)
    assert per_composer and max(per_composer.values()) == 1
    assert one < two  # a larger limit keeps what a smaller one engraved (the build resumes)


def test_build_counts_rows_per_composer_engraver_and_split(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    wanted = ["verovio"] + [e for e in ("lilypond", "musescore") if engraver(e).available()]
    out = tmp_path / "rows"
    build(corpus, out, 32, 160, jobs=1, engravers=wanted, scan_look=0.5)
    with (out / "rows.csv").open(newline="") as fh:
        meta = list(csv.DictReader(fh))
    assert meta and {m["engraver"] for m in meta} == {*wanted, "other", "scan"}
    report = json.loads((out / "report.json").read_text())
    counted = Counter((m["composer"], m["engraver"], m["split"]) for m in meta)
    assert {(c, e, s): n for c, es in report["rows"].items() for e, ss in es.items() for s, n in ss.items()} == counted
    assert report["total_rows"] == len(meta) == json.loads((out / "dataset.json").read_text())["rows"]
    # The scan look goes to engraved pages of any engraver, never to real scans.
    looked = Counter(m["engraver"] for m in meta if m["scan_look"] == "1")
    assert looked and "scan" not in looked and sum(looked.values()) < len(meta)
    splits = json.loads((out / "splits.json").read_text())
    assert all(m["split"] == splits[m["group"]] for m in meta if ";" not in m["group"])
    assert {m["split"] for m in meta if m["composer"] == "bach"} >= {"train", "test"}
    md = (out / "report.md").read_text()
    assert "| composer |" in md and "| bach |" in md
    # A rerun engraves and cuts nothing again.
    log_lines = len((out / "build.log").read_text().splitlines())
    build(corpus, out, 32, 160, jobs=1, engravers=wanted, scan_look=0.5)
    again = [json.loads(x) for x in (out / "build.log").read_text().splitlines()[log_lines:]]
    assert again and all(x.get("cached") for x in again if "key" in x)
    with (out / "rows.csv").open(newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(meta)
