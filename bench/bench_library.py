"""How big and how fast is a results library of 100,000 documents?

Generates results shaped like the released model's (20 composers, every row of every page with
its box and probabilities, pooled the way ``report`` pools them) for documents of 1..MAX pages
in a few hundred folders, stores them in a fresh library, then measures: the file size, opening
the library, the library view's query (count every document, read the first screen of rows,
newest first), filtering by composer, other filters and sorts, scrolling to the end, and storing one more result (one
transaction, as a batch does per document). With ``--gui``, also the GUI's table model
(offscreen) resetting to each query. Prints the figures; it asserts nothing.

    python bench/bench_library.py                       # 100,000 documents of 1..16 pages
    python bench/bench_library.py --docs 20000 --keep lib.sqlite3 --gui

Target: the view's query and the composer filter under 200 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bytehoven_desktop.library import Library, Query  # noqa: E402
from bytehoven_desktop.report import PageResult, SystemResult, document_summary, summarize  # noqa: E402

LABELS = ("bach", "bach_cpe", "beethoven", "brahms", "chopin", "czerny", "debussy", "grieg", "handel", "haydn",
          "joplin", "kozeluch", "liszt", "medtner", "mozart", "paderewski", "scarlatti", "schubert", "schumann",
          "tchaikovsky")
SCREEN_ROWS = 60  # rows a library view shows at once


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=100_000, help="documents in the library (default 100000)")
    p.add_argument("--max-pages", type=int, default=16, help="pages per document, uniform in 1..N (default 16)")
    p.add_argument("--templates", type=int, default=400,
                   help="distinct generated page sets the documents are drawn from (default 400)")
    p.add_argument("--repeat", type=int, default=7, help="timings are the median of this many runs")
    p.add_argument("--keep", type=Path, help="build the library at this path and keep it")
    p.add_argument("--reuse", action="store_true", help="with --keep: measure the library there, do not build it")
    p.add_argument("--gui", action="store_true", help="also time the GUI's table model (offscreen)")
    return p.parse_args()


def template_doc(rng: np.random.Generator, pages: int) -> dict[str, Any]:
    """One document's analyze JSON with random but well-formed rows (pooled as the core pools)."""
    labels = list(LABELS)
    favourite = int(rng.integers(len(labels)))
    alpha = np.full(len(labels), 0.3)
    alpha[favourite] = 2.0
    page_results = []
    for p in range(pages):
        n = int(rng.integers(4, 9))
        systems = [SystemResult((54.0, 60.0 + 80 * i, 558.0, 120.0 + 80 * i), rng.dirichlet(alpha), labels)
                   for i in range(n)]
        page_results.append(PageResult(p + 1, systems, summarize(systems, labels, 0.4), 612.0, 792.0))
    s = document_summary(page_results, labels, 0.4)
    return {"path": "", "sha256": "", "pages": pages, "composer": s.composer,
            "confidence": None if s.confidence is None else round(s.confidence, 5), "composers": s.composers,
            "best_guess": s.best_guess, "reason": s.reason, "rows": s.rows, "rows_won": s.wins, "device": "cpu",
            "model": {"name": "bytehoven-resnet50", "sha256": "0" * 64}, "error": None, "notices": [],
            "cancelled": False, "seconds": 1.0, "page_results": [pr.to_json() for pr in page_results]}


def build(lib: Library, n: int, max_pages: int, n_templates: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    templates = [template_doc(rng, int(rng.integers(1, max_pages + 1))) for _ in range(n_templates)]
    folders = [f"/home/user/scores/collection{i // 20:02d}/set{i:03d}" for i in range(300)]
    t0 = time.perf_counter()
    now = time.time()
    total_pages = 0
    batch: list[dict[str, Any]] = []
    for i in range(n):
        t = templates[i % n_templates]
        total_pages += t["pages"]
        doc = dict(t, path=f"{folders[i % len(folders)]}/score-{i:06d} op. {i % 97}.pdf",
                   sha256=hashlib.sha256(str(i).encode()).hexdigest())
        batch.append(doc)
        if len(batch) == 1000:
            lib.store_many(batch, analysed_at=now - (n - i))
            batch = []
    if batch:
        lib.store_many(batch, analysed_at=now)
    return time.perf_counter() - t0, total_pages / n


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def view(lib: Library, q: Query) -> int:
    """What the library view does for a query: count what it lists, read the first screen of rows."""
    n = lib.count(q)
    lib.page(q, 0, SCREEN_ROWS)
    return n


def main() -> int:
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bytehoven-bench-"))
    path = args.keep or tmp / "library.sqlite3"
    if not (args.reuse and args.keep and path.exists()):
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        lib = Library(path)
        build_s, mean_pages = build(lib, args.docs, args.max_pages, args.templates)
        lib.close()  # closing the last connection folds the write-ahead log into the file
        print(f"library: {args.docs} documents, {mean_pages:.1f} pages on average, built in {build_s:.1f} s")
    size = sum(os.path.getsize(str(path) + s) for s in ("", "-wal") if os.path.exists(str(path) + s))
    with Library(path) as lib:
        n_docs = lib.count()
    print(f"file size: {size / 2**20:.1f} MiB ({size / n_docs / 1024:.1f} KiB per document, {n_docs} documents)")

    t = time.perf_counter()
    lib = Library(path)
    print(f"open (schema check, reading every row the view lists): {(time.perf_counter() - t) * 1000:.0f} ms")
    composer = lib.composers()[3]
    folder = lib.folders()[7]
    queries = [
        ("view: every document, newest first", Query()),
        (f"filter: composer = {composer}", Query(composer=composer)),
        ("filter: confidence >= 0.5", Query(min_confidence=0.5)),
        (f"filter: folder {folder.rsplit('/', 1)[0]} and below", Query(folder=folder.rsplit("/", 1)[0])),
        ("search: name contains 'op. 42'", Query(search="op. 42")),
        ("sort: by confidence, ascending", Query(sort="confidence", descending=False)),
        ("sort: by name", Query(sort="name", descending=False)),
        (f"filter + sort: {composer}, confidence >= 0.5, by name", Query(composer=composer, min_confidence=0.5,
                                                                        sort="name", descending=False)),
    ]
    for label, q in queries:
        ms, n = timed(lambda: view(lib, q), args.repeat)
        print(f"{label}: {ms:.1f} ms ({n} documents)")
    q = Query(sort="name", descending=False)
    n = lib.count(q)
    ms, _ = timed(lambda: lib.page(q, n - SCREEN_ROWS, SCREEN_ROWS), args.repeat)
    print(f"scroll to the end (the last screen, sorted by name): {ms:.1f} ms")
    ms, _ = timed(lambda: lib.query_ids(Query()), args.repeat)
    print(f"every id in order (export of everything listed): {ms:.1f} ms")

    rng = np.random.default_rng(1)
    one = template_doc(rng, 10)
    stores = []
    for i in range(max(20, args.repeat)):
        doc = dict(one, path=f"/home/user/new/n{i}.pdf", sha256=hashlib.sha256(f"new{i}".encode()).hexdigest())
        t = time.perf_counter()
        lib.store(doc)
        stores.append((time.perf_counter() - t) * 1000)
    print(f"store one result (10 pages, one transaction): {statistics.median(stores):.2f} ms median, "
          f"{max(stores):.2f} ms max of {len(stores)}")
    sha = hashlib.sha256(b"5000").hexdigest()
    ms, _ = timed(lambda: lib.lookup(sha, "0" * 64), args.repeat)
    print(f"look up one document (opening a score): {ms:.2f} ms")

    if args.gui:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtWidgets import QApplication

        from bytehoven_desktop.gui.library_view import LibraryTableModel

        app = QApplication.instance() or QApplication([])
        model = LibraryTableModel(lib)
        for label, q in queries[:2]:
            def reset() -> None:
                model.set_query(q)
                for r in range(min(SCREEN_ROWS, model.rowCount())):
                    for c in range(model.columnCount()):
                        model.data(model.index(r, c))
            ms, _ = timed(reset, args.repeat)
            print(f"GUI table model, {label}: {ms:.1f} ms (query + first {SCREEN_ROWS} rows drawn)")
        del app
    lib.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
