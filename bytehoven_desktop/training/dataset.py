"""Corpus → row images: ``bytehoven dataset --corpus ../shared/corpus --out data/rows``.

Every source is cut into rows by the product's own detector (``rowimage.rows_from_page``, and for PDFs
the app's ``pipeline.prepare_page``), so the model trains on exactly the crops it will see at run time:

* symbolic scores (.krn, .mxl) are engraved three ways (``training.engrave``): verovio in several styles
  (fonts, spacing, page width, sometimes transposed; rasterised directly), LilyPond 2.24 and MuseScore 3
  (PDFs, engraved first into ``OUT/engraved/<engraver>/``), titles and names removed in every one;
* engraved PDFs of the corpus (LilyPond from Mutopia and other sources, publishers: engraver "other")
  and real scans are rendered like any user document.

Page-level scan synthesis (``scan_look``): each engraved page, whatever its engraver and composer, is
with probability ``scan_look`` rendered at twice the resolution, printed-and-scanned
(``training.scan_look.scan_look``) and brought back to the app's working resolution before its rows are
cut, so looking scanned says nothing about the composer. Real scans are used as they are.

Splits are by group (``corpus.assign_splits``), computed on the whole corpus also when ``limit`` builds a
subset. Rows are stored larger than the model input (``STORE_SCALE``) so that training can jitter the
crop; each source/engraver/variant becomes one ``parts/*.npz`` file (resumable: finished parts and PDFs
are kept), then ``assemble`` writes ``rows.npy`` (N x H x W uint8), ``rows.csv`` and the counts per
composer × engraver × split (``report.json``, ``report.md``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing as mp
import os
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

import cv2
import numpy as np

from ..document import Document, DocumentError
from ..pipeline import TARGET_INTERLINE, prepare_page
from ..rowimage import rows_from_page
from .corpus import SPLITS, Source, assign_splits, manifest_sha256, read_sources, source_split

if TYPE_CHECKING:
    from .engrave.verovio import RenderStyle

STORE_SCALE = 1.5
MAX_PAGES = {"symbolic": 8, "engraved": 24, "scan": 80}
# Where rows come from: the three engravers of symbolic scores, the corpus's own engraved PDFs, real scans.
ENGRAVER_KINDS = ("verovio", "lilypond", "musescore", "other", "scan")
PDF_ENGRAVERS = ("lilypond", "musescore")  # engraved to PDF first, then read like a user's PDF
DEFAULT_SCAN_LOOK = 0.5
# Scan-look pages are made at this multiple of the working resolution (a 300-dpi-like page where the
# working one is ~150 dpi), so 1-bit thresholds, blur and JPEG act on scanner-sized pixels.
LOOK_OVERSAMPLE = 2.0
ENGRAVE_SEED = 0  # page layouts of the LilyPond/MuseScore engravings (independent of the split seed)


@dataclass(frozen=True)
class Task:
    source: Source
    split: str
    variant: int
    engraver: str = "verovio"  # one of ENGRAVER_KINDS
    scan_look: float = 0.0  # probability that a page gets the synthetic scan look
    pdf: str | None = None  # the engraving to read (lilypond/musescore), once made

    @property
    def key(self) -> str:
        extra = f"|{self.engraver}" if self.engraver in PDF_ENGRAVERS else ""
        if self.scan_look:
            extra += f"|look{self.scan_look:g}"
        # Without engraver or scan look this is the key of version-2 datasets (their parts are reused).
        h = hashlib.sha1(f"{self.source.rel}|{self.variant}{extra}".encode()).hexdigest()[:12]
        return f"{self.source.composer}-{self.source.kind}-{h}-v{self.variant}"


def engraver_kind(source: Source) -> str:
    """The ENGRAVER_KINDS entry of a non-symbolic source."""
    return "scan" if source.kind == "scan" else "other"


def variants_for(composer_files: int, split: str, kind: str, target: int = 120, most: int = 4) -> int:
    """More engraving styles for composers with few scores (train only; dev/test get one)."""
    if split != "train" or kind != "symbolic":
        return 1
    return int(np.clip(round(target / max(composer_files, 1)), 1, most))


def _limited(sources: list[Source], limit: int) -> list[Source]:
    """At most ``limit`` sources per composer and kind, a stable pseudo-random choice."""
    by: dict[tuple[str, str], list[Source]] = defaultdict(list)
    for s in sorted(sources, key=lambda s: hashlib.sha1(s.rel.encode()).hexdigest()):
        by[(s.composer, s.kind)].append(s)
    keep = {id(s) for group in by.values() for s in group[:limit]}
    return [s for s in sources if id(s) in keep]


def plan(corpus: Path, seed: int = 0, engravers: Sequence[str] = ("verovio",), scan_look: float = 0.0,
         limit: int | None = None, engraver_limits: Mapping[str, int] | None = None,
         ) -> tuple[list[Task], dict[str, str]]:
    """The tasks of a build: every symbolic source once per engraver in ``engravers`` (verovio in more
    variants for composers with few scores), every engraved PDF and scan once. The split is made over
    the whole corpus; ``limit`` then keeps at most that many sources per composer and kind, and
    ``engraver_limits`` at most that many scores per composer for one engraver (a slow one: LilyPond
    needs 3-7 s a score) — always a subset of what a larger limit keeps, so a build can grow later."""
    unknown = set(engravers) - {"verovio", *PDF_ENGRAVERS}
    if unknown:
        raise ValueError(f"unknown engravers {sorted(unknown)}; choose from verovio, {', '.join(PDF_ENGRAVERS)}")
    sources = read_sources(corpus)
    split = assign_splits(sources, seed)
    symbolic_count: dict[str, int] = {}
    for s in sources:
        if s.kind == "symbolic":
            symbolic_count[s.composer] = symbolic_count.get(s.composer, 0) + 1
    if limit is not None:
        sources = _limited(sources, limit)
    symbolic = [s for s in sources if s.kind == "symbolic"]
    allowed = {eng: {id(s) for s in _limited(symbolic, n)} for eng, n in (engraver_limits or {}).items()}
    tasks = []
    for s in sources:
        side = source_split(s, split)
        if s.kind != "symbolic":
            tasks.append(Task(s, side, 0, engraver_kind(s), scan_look if s.kind == "engraved" else 0.0))
            continue
        for eng in engravers:
            if eng in allowed and id(s) not in allowed[eng]:
                continue
            n = variants_for(symbolic_count.get(s.composer, 0), side, s.kind) if eng == "verovio" else 1
            tasks.extend(Task(s, side, v, eng, scan_look) for v in range(n))
    return tasks, split


def variant_style(rel: str, variant: int) -> RenderStyle:
    """The engraving style of one variant of a symbolic source: a pure function of its name and
    variant number, so a dataset can tell later which rows were transposed without rendering."""
    from .engrave.verovio import random_style

    seed = int(hashlib.sha1(f"{rel}|{variant}".encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    return random_style(rng, transpose=variant > 0 and rng.random() < 0.5)


def pdf_name(source: Source) -> str:
    """The file name (without .pdf) of a symbolic source's engraving: stable across corpus locations."""
    return f"{source.composer}-{hashlib.sha1(source.rel.encode()).hexdigest()[:12]}"


def engrave_tasks(tasks: list[Task], engraved: Path, jobs: int = 2, log=None,
                  retry_failed: bool = False) -> tuple[list[Task], list[dict]]:
    """Engrave the sources of LilyPond/MuseScore tasks into ``engraved/<engraver>/`` (resumable; scores
    that failed before are tried again only with ``retry_failed``).

    Returns the tasks with ``pdf`` set (those whose engraving failed are left out) and one record per
    failure ({engraver, source, error})."""
    from .engrave import engraver

    out: list[Task] = []
    failures: list[dict] = []
    by_engraver: dict[str, list[Task]] = defaultdict(list)
    for t in tasks:
        (by_engraver[t.engraver] if t.engraver in PDF_ENGRAVERS else out).append(t)
    for name, mine in by_engraver.items():
        unique = list({t.source.rel: t.source for t in mine}.values())
        t0 = time.perf_counter()
        print(f"[dataset] engraving {len(unique)} scores with {name}", flush=True)
        results = engraver(name).engrave([s.path for s in unique], engraved / name, seed=ENGRAVE_SEED, jobs=jobs,
                                         names=[pdf_name(s) for s in unique], cache=engraved / "humdrum-musicxml",
                                         retry_failed=retry_failed)
        pdfs = {s.rel: r for s, r in zip(unique, results)}
        made = sum(r.pdf is not None for r in results)
        print(f"[dataset] {name}: {made}/{len(unique)} engraved, {time.perf_counter() - t0:.0f} s", flush=True)
        for s, r in zip(unique, results):
            if r.pdf is None:
                failures.append({"engraver": name, "source": s.rel, "error": r.error})
                if log is not None:
                    log.write(json.dumps({"engrave": name, "source": s.rel, "error": r.error}) + "\n")
        out.extend(replace(t, pdf=str(pdfs[t.source.rel].pdf)) for t in mine if pdfs[t.source.rel].pdf is not None)
    return out, failures


def _task_rng(task: Task) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha1(f"look|{task.key}".encode()).hexdigest()[:12], 16))


def _looked_rows(gray_hi: np.ndarray, dpi_hi: float, rng: np.random.Generator, facing: np.ndarray | None,
                 height: int, width: int) -> np.ndarray:
    """Rows of a page printed and scanned: the scan look at high resolution, then back to the working
    resolution (as the app renders a scan) and cut by the app's detector."""
    from .scan_look import scan_look

    img, _ = scan_look(gray_hi, rng, dpi_hi, facing=facing)
    h, w = img.shape
    small = cv2.resize(img, (max(1, round(w / LOOK_OVERSAMPLE)), max(1, round(h / LOOK_OVERSAMPLE))),
                       interpolation=cv2.INTER_AREA)
    return rows_from_page(small, height, width)[1]


def _task_rows(task: Task, height: int, width: int) -> Iterator[tuple[int, np.ndarray, int, bool]]:
    """(page, rows, systems in the ground truth or -1, scan look) for each page of a task's source."""
    src = task.source
    limit = MAX_PAGES[src.kind]
    rng = _task_rng(task)
    if task.engraver == "verovio":
        from .engrave.verovio import load_toolkit, page_count, render_pages

        style = variant_style(src.rel, task.variant)
        tk = load_toolkit(src.path, style)
        n = min(limit, page_count(tk))
        looks = [bool(task.scan_look and rng.random() < task.scan_look) for _ in range(n)]
        facing = None
        for p in range(1, n + 1):
            if looks[p - 1]:
                # verovio pages: staff space 1.8 mm; 2x the working 10 px per staff space is ~280 dpi.
                px = TARGET_INTERLINE * LOOK_OVERSAMPLE
                (page,) = render_pages(tk, px_per_staff_space=px, pages=[p])
                rows = _looked_rows(page.gray, px / 1.8 * 25.4, rng, facing, height, width)
                facing = page.gray
            else:
                (page,) = render_pages(tk, px_per_staff_space=TARGET_INTERLINE, pages=[p])
                rows = rows_from_page(page.gray, height, width)[1]
            yield p, rows, len(page.systems), looks[p - 1]
        return
    path = Path(task.pdf) if task.pdf else src.path
    with Document(path) as doc:
        dpi = 150.0
        facing = None
        for i in range(min(doc.page_count, limit)):
            look = bool(task.scan_look and rng.random() < task.scan_look)
            if look and i > 0:
                dpi_hi = dpi * LOOK_OVERSAMPLE  # dpi: what put the previous page's lines at TARGET_INTERLINE
                gray_hi = doc.render(i, dpi_hi).gray
                yield i + 1, _looked_rows(gray_hi, dpi_hi, rng, facing, height, width), -1, True
                facing = gray_hi
                continue
            prepared, dpi = prepare_page(doc, i, height, width, dpi)
            if look:  # the first page: its clean rendering found the resolution; now the scanned one
                gray_hi = doc.render(i, dpi * LOOK_OVERSAMPLE).gray
                yield i + 1, _looked_rows(gray_hi, dpi * LOOK_OVERSAMPLE, rng, None, height, width), -1, True
                facing = gray_hi
            elif prepared.rows is not None:
                yield i + 1, prepared.rows, -1, False


def run_task(args: tuple[Task, Path, int, int]) -> dict:
    task, parts, height, width = args
    out = parts / f"{task.key}.npz"
    meta = {"key": task.key, "rows": 0, "pages": 0, "error": None, "seconds": 0.0}
    if out.exists():
        with np.load(out) as z:
            meta["rows"] = int(len(z["rows"]))
        meta["cached"] = True
        return meta
    t0 = time.perf_counter()
    rows_all, pages_all, gt_all, found_all, look_all = [], [], [], [], []
    try:
        for page, rows, gt, look in _task_rows(task, height, width):
            meta["pages"] += 1
            rows_all.append(rows)
            pages_all.extend([page] * len(rows))
            look_all.extend([look] * len(rows))
            gt_all.append(gt)
            found_all.append(len(rows))
    except (DocumentError, Exception) as exc:  # keep going: one bad source must not stop the build
        meta["error"] = f"{type(exc).__name__}: {exc}"
        if not rows_all:
            meta["trace"] = traceback.format_exc(limit=3)
    rows_arr = np.concatenate(rows_all) if rows_all else np.zeros((0, height, width), np.uint8)
    tmp = out.with_suffix(".tmp.npz")
    np.savez(tmp, rows=rows_arr, pages=np.asarray(pages_all, np.int16), gt=np.asarray(gt_all, np.int16),
             found=np.asarray(found_all, np.int16), look=np.asarray(look_all, bool))
    os.replace(tmp, out)
    meta.update(rows=int(len(rows_arr)), seconds=round(time.perf_counter() - t0, 2))
    return meta


def build(corpus: Path, out: Path, height: int, width: int, jobs: int = 2, seed: int = 0,
          only: str | None = None, engravers: Sequence[str] = ("verovio", *PDF_ENGRAVERS),
          scan_look: float = DEFAULT_SCAN_LOOK, limit: int | None = None, retry_failed: bool = False,
          engraver_limits: Mapping[str, int] | None = None) -> Path:
    """Cut the corpus into rows under ``out`` (resumable) and assemble them."""
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    parts = out / "parts"
    parts.mkdir(exist_ok=True)
    sh, sw = round(height * STORE_SCALE), round(width * STORE_SCALE)
    tasks, split = plan(corpus, seed, engravers, scan_look, limit, engraver_limits)
    if only:
        tasks = [t for t in tasks if t.source.kind == only]
    (out / "splits.json").write_text(json.dumps(split, indent=1, sort_keys=True))
    with (out / "build.log").open("a") as log:
        tasks, failures = engrave_tasks(tasks, out / "engraved", jobs, log, retry_failed)
        t0 = time.perf_counter()
        args = [(t, parts, sh, sw) for t in tasks]
        with mp.get_context("spawn").Pool(jobs, maxtasksperchild=50) as pool:
            for i, meta in enumerate(pool.imap_unordered(run_task, args, chunksize=1), 1):
                log.write(json.dumps(meta) + "\n")
                log.flush()
                if i % 25 == 0 or i == len(tasks):
                    print(f"[dataset] {i}/{len(tasks)} sources, {time.perf_counter() - t0:.0f} s", flush=True)
    assemble(corpus, out, tasks, height, width, failures,
             {"engravers": list(engravers), "scan_look": scan_look, "limit": limit,
              "engraver_limits": dict(engraver_limits or {}), "split_seed": seed,
              "only": only, "jobs": jobs, "build_seconds_this_run": round(time.perf_counter() - t_start, 1)})
    return out


def counts_report(meta: list[dict[str, str]]) -> dict:
    """Rows and sources per composer × engraver × split (and the rows with the synthetic scan look)."""
    rows: dict = defaultdict(lambda: defaultdict(Counter))
    looked: dict = defaultdict(lambda: defaultdict(Counter))
    sources: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(set)))
    for m in meta:
        rows[m["composer"]][m["engraver"]][m["split"]] += 1
        looked[m["composer"]][m["engraver"]][m["split"]] += int(m.get("scan_look", "0") == "1")
        sources[m["composer"]][m["engraver"]][m["split"]].add(m["source"])

    def plain(d: dict, f=lambda v: v) -> dict:
        return {c: {e: {s: f(v) for s, v in sorted(per.items())} for e, per in sorted(es.items())}
                for c, es in sorted(d.items())}

    return {"rows": plain(rows), "scan_look_rows": plain(looked), "sources": plain(sources, len),
            "total_rows": len(meta)}


def report_markdown(report: dict) -> str:
    """The counts as a table: a row per composer, a column per engraver, cells train / dev / test rows."""
    rows = report["rows"]
    kinds = [k for k in ENGRAVER_KINDS if any(k in per for per in rows.values())]
    lines = ["Rows per composer and engraver, as train / dev / test (scan-look rows in brackets, "
             "sources in the JSON).", "",
             "| composer | " + " | ".join(kinds) + " | total |", "|---" * (len(kinds) + 2) + "|"]
    totals = {k: Counter() for k in kinds}
    for composer, per in rows.items():
        cells = []
        for k in kinds:
            c = per.get(k, {})
            totals[k].update(c)
            look = sum(report["scan_look_rows"][composer].get(k, {}).values())
            cells.append(" / ".join(str(c.get(s, 0)) for s in SPLITS) + (f" ({look})" if look else "") if c else "–")
        lines.append(f"| {composer} | " + " | ".join(cells) + f" | {sum(sum(c.values()) for c in per.values())} |")
    lines.append("| **total** | " + " | ".join(" / ".join(str(totals[k].get(s, 0)) for s in SPLITS) for k in kinds)
                 + f" | {report['total_rows']} |")
    fails = report.get("engrave_failures", {})
    if fails:
        lines += ["", "Scores an engraver could not engrave (left out):", ""]
        for name, reasons in fails.items():
            lines.append(f"* {name}: {sum(reasons.values())} — " + "; ".join(f"{n}× {r}" for r, n in
                                                                          sorted(reasons.items(), key=lambda x: -x[1])[:8]))
    return "\n".join(lines) + "\n"


def assemble(corpus: Path, out: Path, tasks: list[Task], height: int, width: int,
             failures: list[dict] | None = None, settings: dict | None = None) -> None:
    """Concatenate the parts into rows.npy + rows.csv (one line of metadata per row), and the report."""
    parts = out / "parts"
    sh, sw = round(height * STORE_SCALE), round(width * STORE_SCALE)
    counts = []
    for t in tasks:
        p = parts / f"{t.key}.npz"
        if p.exists():
            with np.load(p) as z:
                counts.append((t, int(len(z["rows"]))))
    total = sum(n for _, n in counts)
    rows = np.lib.format.open_memmap(out / "rows.tmp.npy", mode="w+", dtype=np.uint8, shape=(total, sh, sw))
    meta: list[dict[str, str]] = []
    fields = ["index", "composer", "split", "kind", "variant", "group", "work_id", "source", "page", "engraver",
              "scan_look"]
    with (out / "rows.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(fields)
        i = 0
        for t, n in counts:
            if not n:
                continue
            with np.load(parts / f"{t.key}.npz") as z:
                rows[i: i + n] = z["rows"]
                pages = z["pages"]
                look = z["look"] if "look" in z.files else np.zeros(n, bool)  # parts of older builds
            for j in range(n):
                line = [i + j, t.source.composer, t.split, t.source.kind, t.variant, ";".join(t.source.groups),
                        t.source.work_id, t.source.rel, int(pages[j]), t.engraver, int(look[j])]
                w.writerow(line)
                meta.append({k: str(v) for k, v in zip(fields, line)})
            i += n
    rows.flush()
    del rows
    os.replace(out / "rows.tmp.npy", out / "rows.npy")
    info = {"height": height, "width": width, "store_height": sh, "store_width": sw, "rows": total,
            "corpus_manifest_sha256": manifest_sha256(corpus), "sources": len(counts), **(settings or {})}
    from .engrave import engraver

    info["engraver_versions"] = {name: engraver(name).version() for name in ("verovio", *PDF_ENGRAVERS)
                                 if name in info.get("engravers", ("verovio",))}
    (out / "dataset.json").write_text(json.dumps(info, indent=1))
    report = counts_report(meta)
    grouped: dict[str, Counter] = defaultdict(Counter)
    for f in failures or []:
        grouped[f["engraver"]][(f["error"] or "")[:100]] += 1
    report["engrave_failures"] = {k: dict(v) for k, v in grouped.items()}
    report["settings"] = info
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(report_markdown(report))
    print(f"[dataset] {total} rows from {len(counts)} sources → {out} (counts: {out / 'report.md'})", flush=True)
