"""Throughput and memory of the analysis pipeline (a benchmark, not a test).

Prints, in one run, on the same model and the same rows:
  the CPU time of each stage of page preparation on one core (render to grey at the analysis
  resolution, detect, cut rows) per vector page and per 600 dpi scan page, pages/s of page
  preparation with 1, 2 and (where there are more cores) more worker processes,
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


def make_scan_pdf(path: Path, pages: int, dpi: float = 600.0) -> Path:
    """A scanned copy of demo pages: each page a grey 600 dpi image (JPEG), as a library scans."""
    import cv2

    out = pymupdf.open()
    with pymupdf.open(DEMO) as demo:
        for i in range(pages):
            page = demo[i % demo.page_count]
            pix = page.get_pixmap(matrix=pymupdf.Matrix(dpi / 72, dpi / 72), colorspace=pymupdf.csGRAY)
            gray = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.stride)[:, : pix.width]
            ok, buf = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, 85])
            new = out.new_page(width=page.rect.width, height=page.rect.height)
            new.insert_image(new.rect, stream=buf.tobytes())
    out.save(path, garbage=3, deflate=True)
    return path


def stage_times(pdf: Path, pages: int, h: int, w: int) -> dict[str, float]:
    """CPU ms per page of each preparation stage, one thread (as one preparation worker runs)."""
    import cv2

    from bytehoven_desktop.document import Document
    from bytehoven_desktop.pipeline import prepare_page
    from bytehoven_desktop.rowimage import crop_row
    from bytehoven_desktop.systems import detect_systems

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    t = {"render": 0.0, "detect": 0.0, "cut rows": 0.0, "prepare_page (all, as the pipeline)": 0.0}
    try:
        with Document(pdf) as doc:
            _, dpi = prepare_page(doc, 0, h, w)
            n = min(pages, doc.page_count)
            for i in range(n):
                c = time.process_time()
                img = doc.render(i, dpi)
                t["render"] += time.process_time() - c
                c = time.process_time()
                found = detect_systems(img.gray)
                t["detect"] += time.process_time() - c
                c = time.process_time()
                frames = [found.frame_image(img.gray, k) for k in range(len(found.frames))]
                for s in found.systems:
                    crop_row(frames[s.frame], s.box, h, w)
                t["cut rows"] += time.process_time() - c
                c = time.process_time()
                _, dpi = prepare_page(doc, i, h, w, dpi)
                t["prepare_page (all, as the pipeline)"] += time.process_time() - c
    finally:
        cv2.setNumThreads(threads)
    return {k: 1000 * v / n for k, v in t.items()}


def _prepare_range(args: tuple[str, int, int, int, int]) -> int:
    import cv2

    cv2.setNumThreads(1)
    path, start, stop, h, w = args
    return sum(1 for _ in prepared_pages(Path(path), start, stop, h, w, lambda: False))


def workers_rate(pdf: Path, pages: int, h: int, w: int, workers: int) -> float:
    """Pages/s of page preparation spread over ``workers`` processes (contiguous page ranges)."""
    import multiprocessing

    edges = np.linspace(0, pages, workers + 1).astype(int)
    jobs = [(str(pdf), int(a), int(b), h, w) for a, b in zip(edges[:-1], edges[1:])]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_prepare_range, [(str(pdf), 0, 1, h, w)] * workers)  # imports and warm-up
        t = time.perf_counter()
        done = sum(pool.map(_prepare_range, jobs))
        return done / (time.perf_counter() - t)


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
    print(f"model {clf.info.name} ({model.name}), input {h}x{w}, {clf.views} test-time view(s) per row, "
          f"device {clf.device}, {args.threads} threads, batch {args.batch}")
    with tempfile.TemporaryDirectory() as tmp:
        pdf = make_pdf(Path(tmp) / "long.pdf", args.pages)
        small = make_pdf(Path(tmp) / "short.pdf", max(1, args.pages // 4))
        scan = make_scan_pdf(Path(tmp) / "scan.pdf", 9)
        for label, doc, n in (("vector A4 page (demo)", pdf, 27), ("600 dpi scan page (JPEG)", scan, 9)):
            times = stage_times(doc, n, h, w)
            print(f"page preparation, CPU ms per {label}, one thread: " +
                  ", ".join(f"{k} {v:.1f}" for k, v in times.items()))
        cores = os.cpu_count() or 1
        for workers in sorted({1, 2, cores} if cores > 2 else {1, 2}):
            rate = workers_rate(pdf, min(args.pages, 60), h, w, workers)
            print(f"page preparation with {workers} worker process(es): {rate:6.1f} pages/s")
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
