"""Throughput and memory of the analysis pipeline (a benchmark, not a test).

Prints, in one run, on the same model and the same rows:
  bare ONNX Runtime rows/s (rows already cut, only inference), end-to-end rows/s
  (render + detect + crop + inference through pipeline.analyze_document), their ratio,
  pages/s, and the peak RSS of analysing a 50-page and a 200-page PDF in fresh processes
  (memory must not grow with the number of pages).

    python bench/bench_speed.py [--model FILE] [--pages 200] [--threads 2] [--batch 16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pymupdf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bytehoven_desktop.classifier import Classifier, default_model_path  # noqa: E402
from bytehoven_desktop.pipeline import analyze, prepared_pages  # noqa: E402

DEMO = ROOT / "resources" / "demo" / "demo.pdf"


def make_pdf(path: Path, pages: int) -> Path:
    """A long score made of the demo's pages repeated."""
    out = pymupdf.open()
    with pymupdf.open(DEMO) as demo:
        while out.page_count < pages:
            out.insert_pdf(demo, to_page=min(demo.page_count, pages - out.page_count) - 1)
    out.save(path, garbage=3, deflate=True)
    return path


def peak_rss_child(pdf: Path, model: Path, threads: int, batch: int) -> dict:
    code = (
        "import json,resource,sys,time;"
        "from bytehoven_desktop.classifier import Classifier;"
        "from bytehoven_desktop.pipeline import analyze;"
        f"c=Classifier({str(model)!r},device='cpu',threads={threads},batch_size={batch});"
        "base=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;t=time.perf_counter();"
        f"r=analyze({str(pdf)!r},c);"
        "print(json.dumps({'rows':r.summary.rows,'pages':r.pages,'s':time.perf_counter()-t,"
        "'peak_mib':resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024,'model_loaded_mib':base/1024}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    model = args.model or default_model_path(args.device)
    clf = Classifier(model, device=args.device, threads=args.threads, batch_size=args.batch)
    h, w = clf.input_size
    print(f"model {clf.info.name} ({model.name}), input {h}x{w}, device {clf.device}, "
          f"{args.threads} threads, batch {args.batch}")
    with tempfile.TemporaryDirectory() as tmp:
        pdf = make_pdf(Path(tmp) / "long.pdf", args.pages)
        small = make_pdf(Path(tmp) / "short.pdf", max(1, args.pages // 4))
        # The same rows the pipeline will see (cut once, outside the timing).
        # The pipeline's own page preparation (each page starts from the previous page's dpi).
        rows = np.concatenate([p.rows for p in prepared_pages(pdf, 0, args.pages, h, w, lambda: False)])
        clf.predict(rows[: args.batch])  # warm-up
        t = time.perf_counter()
        clf.predict(rows)
        bare = len(rows) / (time.perf_counter() - t)
        t = time.perf_counter()
        res = analyze(pdf, clf)
        dt = time.perf_counter() - t
        assert res.summary.rows == len(rows), (res.summary.rows, len(rows))
        e2e = len(rows) / dt
        print(f"rows                 {len(rows)} on {res.pages} pages")
        print(f"bare ORT             {bare:8.1f} rows/s")
        print(f"end-to-end           {e2e:8.1f} rows/s   ({res.pages / dt:.2f} pages/s)")
        print(f"ratio e2e / bare     {e2e / bare:8.3f}   (target >= 0.9 on CPU)")
        a = peak_rss_child(small, model, args.threads, args.batch)
        b = peak_rss_child(pdf, model, args.threads, args.batch)
        print(f"peak RSS {a['pages']:4d} pages  {a['peak_mib']:8.1f} MiB (model loaded: {a['model_loaded_mib']:.1f} MiB)")
        print(f"peak RSS {b['pages']:4d} pages  {b['peak_mib']:8.1f} MiB (model loaded: {b['model_loaded_mib']:.1f} MiB)")
        print(f"RSS growth {a['pages']}->{b['pages']} pages: {b['peak_mib'] - a['peak_mib']:+.1f} MiB")


if __name__ == "__main__":
    main()
