"""The local engine and the Ray engine on the same folder, in one run (a benchmark, not a test).

Prints documents/s, pages/s and rows/s of ``bytehoven analyze`` with the local engine and with
``--engine ray`` on a local Ray of ``--cpus`` CPUs, and where Ray's overhead goes: starting Ray,
the first run (workers start, import the pipeline, load the model) and a second run on the same
Ray with its workers warm. Both engines' results are checked to be the same.

It also prints what a page costs in CPU time (one thread, so other jobs on the machine matter
less): preparing it (render, detect, cut rows) and classifying its rows on the CPU, on the demo
pages and, with ``--scans DIR``, on real scans. These are the measured inputs of the cluster plan
in the README.

    python bench/bench_cluster.py [--docs 24] [--pages 5] [--cpus 2] [--model FILE] [--scans DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pymupdf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bytehoven_desktop import cli  # noqa: E402
from bytehoven_desktop.classifier import Classifier, default_model_path  # noqa: E402
from bytehoven_desktop.document import Document, DocumentError  # noqa: E402
from bytehoven_desktop.pipeline import prepared_pages  # noqa: E402

DEMO = ROOT / "resources" / "demo" / "demo.pdf"


def make_folder(folder: Path, docs: int, pages: int) -> None:
    """``docs`` PDFs of ``pages`` pages each, cut from the demo score at different places."""
    folder.mkdir(parents=True, exist_ok=True)
    with pymupdf.open(DEMO) as demo:
        n = demo.page_count
        for d in range(docs):
            out = pymupdf.open()
            for k in range(pages):
                i = (d + k) % n
                out.insert_pdf(demo, from_page=i, to_page=i)
            out.save(folder / f"doc{d:03d}.pdf", garbage=3, deflate=True)
            out.close()


def cpu_costs(pdfs: list[Path], model: Path, max_pages: int) -> tuple[int, float, float, float]:
    """(pages, CPU s per page to prepare, CPU s per row to classify on one thread, rows per page)."""
    clf = Classifier(model, device="cpu", threads=1)
    h, w = clf.input_size
    pages = rows = 0
    prep = infer = 0.0
    for pdf in pdfs:
        try:
            with Document(pdf) as doc:
                n = doc.page_count
        except DocumentError:
            continue
        t = time.process_time()
        got = list(prepared_pages(pdf, 0, min(n, max_pages - pages), h, w, lambda: False))
        prep += time.process_time() - t
        got = [g for g in got if g.error is None]
        pages += len(got)
        batch = [g.rows for g in got if g.rows is not None and len(g.rows)]
        if batch:
            x = np.concatenate(batch)
            t = time.process_time()
            clf.predict(x)
            infer += time.process_time() - t
            rows += len(x)
        if pages >= max_pages:
            break
    return pages, prep / max(pages, 1), infer / max(rows, 1), rows / max(pages, 1)


def timed_run(argv: list[str]) -> float:
    t = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        rc = cli.main(argv)
    if rc != 0:
        raise SystemExit(f"bytehoven analyze {' '.join(argv)} exited {rc}")
    return time.perf_counter() - t


def totals(out: Path) -> tuple[int, int, int, dict[str, str | None]]:
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    return (len(docs), sum(d["pages"] for d in docs), sum(d["rows"] for d in docs),
            {Path(d["path"]).name: d["composer"] for d in docs})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=24)
    ap.add_argument("--pages", type=int, default=5)
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="CPUs of the local Ray")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--scans", type=Path, default=None, help="a folder of real scan PDFs for the per-page costs")
    ap.add_argument("--cost-pages", type=int, default=60, help="pages measured for the per-page costs")
    args = ap.parse_args()
    model = args.model or default_model_path("cpu")
    with tempfile.TemporaryDirectory(prefix="bytehoven-bench-cluster-") as tmp:
        folder = Path(tmp) / "scores"
        make_folder(folder, args.docs, args.pages)
        common = [str(folder), "--model", str(model), "-q"]

        runs: list[tuple[str, float, Path]] = []
        out = Path(tmp) / "local.jsonl"
        runs.append((f"local engine (one process, {os.cpu_count()} inference threads)",
                     timed_run(["analyze", *common, "--out", str(out)]), out))

        from bytehoven_desktop.cluster import session

        t = time.perf_counter()
        sess = session.connect(None, cpus=args.cpus)
        ray_start = time.perf_counter() - t
        try:
            for label in ("first run: workers start", "second run: workers warm"):
                out = Path(tmp) / f"ray-{len(runs)}.jsonl"
                runs.append((f"Ray, {args.cpus} CPUs, {label}",
                             timed_run(["analyze", *common, "--out", str(out), "--engine", "ray"]), out))
        finally:
            session.close(sess)

        n_docs, n_pages, n_rows, composers = totals(runs[0][2])
        print(f"{n_docs} documents, {n_pages} pages, {n_rows} rows (demo pages); model {model.name}; "
              f"{os.cpu_count()} CPUs on this machine")
        print(f"{'run':58s} {'s':>7s} {'docs/s':>7s} {'pages/s':>8s} {'rows/s':>7s}")
        for label, s, out in runs:
            d, p, r, c = totals(out)
            same = "" if (d, p, r, c) == (n_docs, n_pages, n_rows, composers) else (
                "  RESULTS DIFFER: " + ", ".join(k for k in composers if c.get(k) != composers[k])[:200])
            print(f"{label:58s} {s:7.1f} {d / s:7.2f} {p / s:8.1f} {r / s:7.1f}{same}")
        local_s, cold_s, warm_s = runs[0][1], runs[1][1], runs[2][1]
        print(f"starting the local Ray: {ray_start:.1f} s")
        print(f"Ray overhead against the local engine: {ray_start + cold_s - local_s:+.1f} s for a fresh start "
              f"(Ray start + first run), {warm_s - local_s:+.1f} s with warm workers "
              f"({(warm_s / local_s - 1) * 100:+.0f} %)")

        print("CPU time per page, one thread:")
        sets = [("demo pages (engraved)", sorted(folder.glob("*.pdf")))]
        if args.scans:
            sets.append((f"real scans in {args.scans}", sorted(args.scans.rglob("*.pdf"))))
        for label, pdfs in sets:
            n, prep, infer, rpp = cpu_costs(pdfs, model, args.cost_pages)
            print(f"  {label}: {n} pages, {rpp:.1f} rows/page; prepare {prep * 1000:.0f} ms/page, "
                  f"classify {infer * 1000:.1f} ms/row = {infer * rpp * 1000:.0f} ms/page on the CPU")


if __name__ == "__main__":
    main()
