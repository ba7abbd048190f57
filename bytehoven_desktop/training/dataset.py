"""Corpus → row images: ``bytehoven dataset --corpus ../shared/corpus --out data/rows``.

Every source is cut into rows by the product's own detector (``rowimage.rows_from_page``),
so the model trains on exactly the crops it will see at run time:

* symbolic scores (.krn, .mxl) are engraved by verovio in several styles (fonts, scale,
  spacing, page width, sometimes transposed), titles and names hidden;
* engraved PDFs (LilyPond, publishers) and real scans are rendered like any user document.

Rows are stored larger than the model input (``STORE_SCALE``) so that training can jitter
the crop; each source/variant becomes one ``parts/*.npz`` file (resumable: finished parts
are kept), then ``assemble`` writes ``rows.npy`` (N x H x W uint8) and ``rows.csv``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing as mp
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from ..document import Document, DocumentError
from ..pipeline import TARGET_INTERLINE, prepare_page
from ..rowimage import rows_from_page
from .corpus import Source, assign_splits, manifest_sha256, read_sources, source_split

if TYPE_CHECKING:
    from .engrave.verovio import RenderStyle

STORE_SCALE = 1.5
MAX_PAGES = {"symbolic": 8, "engraved": 24, "scan": 80}


@dataclass(frozen=True)
class Task:
    source: Source
    split: str
    variant: int

    @property
    def key(self) -> str:
        h = hashlib.sha1(f"{self.source.rel}|{self.variant}".encode()).hexdigest()[:12]
        return f"{self.source.composer}-{self.source.kind}-{h}-v{self.variant}"


def variants_for(composer_files: int, split: str, kind: str, target: int = 120, most: int = 4) -> int:
    """More engraving styles for composers with few scores (train only; dev/test get one)."""
    if split != "train" or kind != "symbolic":
        return 1
    return int(np.clip(round(target / max(composer_files, 1)), 1, most))


def plan(corpus: Path, seed: int = 0) -> tuple[list[Task], dict[str, str]]:
    sources = read_sources(corpus)
    split = assign_splits(sources, seed)
    symbolic_count: dict[str, int] = {}
    for s in sources:
        if s.kind == "symbolic":
            symbolic_count[s.composer] = symbolic_count.get(s.composer, 0) + 1
    tasks = []
    for s in sources:
        side = source_split(s, split)
        for v in range(variants_for(symbolic_count.get(s.composer, 0), side, s.kind)):
            tasks.append(Task(s, side, v))
    return tasks, split


def variant_style(rel: str, variant: int) -> RenderStyle:
    """The engraving style of one variant of a symbolic source: a pure function of its name and
    variant number, so a dataset can tell later which rows were transposed without rendering."""
    from .engrave.verovio import random_style

    seed = int(hashlib.sha1(f"{rel}|{variant}".encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    return random_style(rng, transpose=variant > 0 and rng.random() < 0.5)


def _task_rows(task: Task, height: int, width: int) -> Iterator[tuple[int, np.ndarray, int]]:
    """(page, rows, systems found) for each page of a task's source."""
    src = task.source
    limit = MAX_PAGES[src.kind]
    if src.kind == "symbolic":
        from .engrave.verovio import render_pages

        style = variant_style(src.rel, task.variant)
        for page in render_pages(src.path, style, px_per_staff_space=TARGET_INTERLINE, pages=range(1, limit + 1)):
            found, rows = rows_from_page(page.gray, height, width)
            yield page.page, rows, len(page.systems)
    else:
        with Document(src.path) as doc:
            dpi = 150.0
            for i in range(min(doc.page_count, limit)):
                prepared, dpi = prepare_page(doc, i, height, width, dpi)
                if prepared.rows is not None:
                    yield i + 1, prepared.rows, -1


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
    rows_all, pages_all, gt_all, found_all = [], [], [], []
    try:
        for page, rows, gt in _task_rows(task, height, width):
            meta["pages"] += 1
            rows_all.append(rows)
            pages_all.extend([page] * len(rows))
            gt_all.append(gt)
            found_all.append(len(rows))
    except (DocumentError, Exception) as exc:  # keep going: one bad source must not stop the build
        meta["error"] = f"{type(exc).__name__}: {exc}"
        if not rows_all:
            meta["trace"] = traceback.format_exc(limit=3)
    rows_arr = np.concatenate(rows_all) if rows_all else np.zeros((0, height, width), np.uint8)
    tmp = out.with_suffix(".tmp.npz")
    np.savez(tmp, rows=rows_arr, pages=np.asarray(pages_all, np.int16), gt=np.asarray(gt_all, np.int16),
             found=np.asarray(found_all, np.int16))
    os.replace(tmp, out)
    meta.update(rows=int(len(rows_arr)), seconds=round(time.perf_counter() - t0, 2))
    return meta


def build(corpus: Path, out: Path, height: int, width: int, jobs: int = 2, seed: int = 0,
          only: str | None = None) -> Path:
    """Cut the corpus into rows under ``out`` (resumable) and assemble them."""
    out.mkdir(parents=True, exist_ok=True)
    parts = out / "parts"
    parts.mkdir(exist_ok=True)
    sh, sw = round(height * STORE_SCALE), round(width * STORE_SCALE)
    tasks, split = plan(corpus, seed)
    if only:
        tasks = [t for t in tasks if t.source.kind == only]
    (out / "splits.json").write_text(json.dumps(split, indent=1, sort_keys=True))
    log = (out / "build.log").open("a")
    t0 = time.perf_counter()
    args = [(t, parts, sh, sw) for t in tasks]
    with mp.get_context("spawn").Pool(jobs, maxtasksperchild=50) as pool:
        for i, meta in enumerate(pool.imap_unordered(run_task, args, chunksize=1), 1):
            log.write(json.dumps(meta) + "\n")
            log.flush()
            if i % 25 == 0 or i == len(tasks):
                print(f"[dataset] {i}/{len(tasks)} sources, {time.perf_counter() - t0:.0f} s", flush=True)
    assemble(corpus, out, tasks, height, width)
    return out


def assemble(corpus: Path, out: Path, tasks: list[Task], height: int, width: int) -> None:
    """Concatenate the parts into rows.npy + rows.csv (one line of metadata per row)."""
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
    with (out / "rows.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "composer", "split", "kind", "variant", "group", "work_id", "source", "page"])
        i = 0
        for t, n in counts:
            if not n:
                continue
            with np.load(parts / f"{t.key}.npz") as z:
                rows[i: i + n] = z["rows"]
                pages = z["pages"]
            for j in range(n):
                w.writerow([i + j, t.source.composer, t.split, t.source.kind, t.variant, ";".join(t.source.groups),
                            t.source.work_id, t.source.rel, int(pages[j])])
            i += n
    rows.flush()
    del rows
    os.replace(out / "rows.tmp.npy", out / "rows.npy")
    info = {"height": height, "width": width, "store_height": sh, "store_width": sw, "rows": total,
            "corpus_manifest_sha256": manifest_sha256(corpus), "sources": len(counts)}
    (out / "dataset.json").write_text(json.dumps(info, indent=1))
    print(f"[dataset] {total} rows from {len(counts)} sources → {out}", flush=True)
