"""Row-detection quality (a benchmark, not a test).

A detected row matches a true system when it covers at least 85 % of the system's true box (its
staff lines and ledger lines) and is at most 3x its area; matching is one-to-one. Printed: precision,
recall and F1 per engraver and per scan-like distortion, the hand-checked real scans, and text pages.

1. Engraved: corpus scores engraved by verovio (random fonts and layouts), LilyPond and MuseScore;
   the truth is read from each PDF's vector drawings (``pdf_truth``), and rows come from the app's
   own page preparation (``pipeline.prepare_page``), in PDF points.
2. Distorted: the same pages rendered at 300 dpi, passed through one distortion each
   (``training.scan_look.distort``: rotation 0.5-3°, curl, light gradient, noise, blur, JPEG 50,
   1-bit at 200 dpi) and analysed as an image page; the truth goes through the same geometry.
3. Real scans: pages checked by eye (``bench/fixtures/scan_systems.json``), matched at IoU >= 0.5
   (their boxes are the rows as drawn, not staff-line boxes).
4. Text-only pages: every row is a false positive.

    python bench/bench_detection.py --corpus ../shared/corpus [--scores 20] [--pages 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pymupdf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pdf_truth  # noqa: E402
from bytehoven_desktop.document import Document  # noqa: E402
from bytehoven_desktop.pipeline import prepare_page  # noqa: E402
from bytehoven_desktop.systems import box_iou  # noqa: E402
from bytehoven_desktop.training.scan_look import DISTORTIONS, distort  # noqa: E402

FIXTURE = ROOT / "bench" / "fixtures" / "scan_systems.json"
SCAN_DPI = 300.0
Box = tuple[float, float, float, float]


def _area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def covers(row: Box, true: Box) -> float:
    """Share of ``true``'s area inside ``row`` when ``row`` is at most 3x its area, else 0."""
    a = _area(true)
    if a <= 0 or _area(row) > 3 * a:
        return 0.0
    ix = max(0.0, min(row[2], true[2]) - max(row[0], true[0]))
    iy = max(0.0, min(row[3], true[3]) - max(row[1], true[1]))
    return ix * iy / a


def match(found: list[Box], truth: list[Box], score=covers, thr: float = 0.85) -> tuple[int, int, int]:
    """Greedy one-to-one matching: (true positives, false positives, false negatives)."""
    pairs = sorted(((score(f, t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)), reverse=True)
    used_f, used_t = set(), set()
    for v, i, j in pairs:
        if v < thr:
            break
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
    tp = len(used_f)
    return tp, len(found) - tp, len(truth) - tp


def prf(tp: int, fp: int, fn: int) -> str:
    p = tp / max(1, tp + fp)
    r = tp / max(1, tp + fn)
    f = 2 * p * r / max(1e-9, p + r)
    return f"P {100 * p:6.2f}  R {100 * r:6.2f}  F1 {100 * f:6.2f} %  (tp {tp}, fp {fp}, fn {fn})"


# ----------------------------------------------------------------------------- engravings
def verovio_pdfs(corpus: Path, n: int, rng: np.random.Generator, out: Path, pages: int) -> list[tuple[str, Path]]:
    from bytehoven_desktop.training.corpus import read_sources
    from bytehoven_desktop.training.engrave.verovio import random_style, render_pdf

    sources = [s for s in read_sources(corpus) if s.kind == "symbolic"]
    pdfs = []
    for k in rng.choice(len(sources), min(4 * n, len(sources)), replace=False):
        if len(pdfs) >= n:
            break
        src = sources[k]
        style = random_style(rng)
        pdf = out / f"verovio-{len(pdfs)}.pdf"
        try:
            render_pdf(src.path, pdf, style, max_pages=pages)
        except Exception as exc:  # a score verovio cannot engrave is not a detector error
            print(f"  verovio skipped {src.rel}: {exc}")
            continue
        pdfs.append((f"{src.rel} ({style.font})", pdf))
    return pdfs


def engraver_pdfs(name: str, corpus: Path, n: int, rng: np.random.Generator, out: Path) -> list[tuple[str, Path]]:
    """PDFs of ``n`` random corpus scores by the project's own engraving module ``name``."""
    import importlib

    from bytehoven_desktop.training.corpus import read_sources

    mod = importlib.import_module(f"bytehoven_desktop.training.engrave.{name}")
    sources = [s for s in read_sources(corpus) if s.kind == "symbolic" and s.path.suffix == ".mxl"]
    pick = [sources[k] for k in rng.choice(len(sources), min(2 * n, len(sources)), replace=False)]
    results = mod.engrave([s.path for s in pick], (out / name).resolve(), seed=int(rng.integers(1 << 30)))
    pdfs = [(f"{s.rel}", r.pdf) for s, r in zip(pick, results) if r.pdf is not None]
    failed = [r.error for r in results if r.pdf is None]
    if failed:
        print(f"  {name}: {len(failed)} of {len(results)} scores did not engrave, e.g. {failed[:2]}")
    return pdfs[:n]


def corpus_lilypond_pdfs(corpus: Path, n: int, rng: np.random.Generator) -> list[tuple[str, Path]]:
    pdfs = sorted((corpus / "engraved").glob("*/*/*.pdf"))
    pdfs = [p for p in pdfs if "/phi/" not in str(p)]  # publisher PDFs are not LilyPond
    return [(str(p.relative_to(corpus)), p) for p in (pdfs[k] for k in rng.choice(len(pdfs), min(n, len(pdfs)), replace=False))]


def _gray(page: pymupdf.Page, dpi: float) -> np.ndarray:
    pix = page.get_pixmap(matrix=pymupdf.Matrix(dpi / 72, dpi / 72), colorspace=pymupdf.csGRAY, alpha=False, annots=False)
    return np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.stride)[:, : pix.width].copy()


def _image_pdf(gray: np.ndarray, size_pt: tuple[float, float], path: Path) -> None:
    import cv2

    doc = pymupdf.open()
    page = doc.new_page(width=size_pt[0], height=size_pt[1])
    ext = ".png" if len(np.unique(gray[::7, ::7])) <= 2 else ".jpg"
    ok, buf = cv2.imencode(ext, gray, [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == ".jpg" else [])
    page.insert_image(page.rect, stream=buf.tobytes())
    doc.save(path)
    doc.close()


def build_cases(pdfs: list[tuple[str, Path]], label: str, pages: int, rng: np.random.Generator, out: Path,
                distortions: bool) -> list[dict]:
    """Pages to detect on: each clean page, and (``distortions``) one image page per distortion of it,
    with their true boxes in PDF points. Written under ``out`` (reused by a later run with --cache)."""
    cases = []
    for n, (name, pdf) in enumerate(pdfs):
        with pymupdf.open(pdf) as doc:
            for i in range(min(pages, doc.page_count)):
                truth = [s.box for s in pdf_truth.page_systems(doc[i])]
                if not truth:
                    continue
                cases.append({"label": f"{label} clean", "name": f"{name} p{i + 1}", "pdf": str(pdf), "page": i,
                              "truth": truth})
                if not distortions:
                    continue
                gray = _gray(doc[i], SCAN_DPI)
                k = SCAN_DPI / 72.0
                truth_px = [tuple(v * k for v in b) for b in truth]
                for kind in DISTORTIONS:
                    img, warp = distort(gray, kind, rng, SCAN_DPI)
                    scan = out / f"{label}-{n}-{i}-{kind}.pdf"
                    _image_pdf(img, (doc[i].rect.width, doc[i].rect.height), scan)
                    cases.append({"label": f"{label} {kind}", "name": f"{name} p{i + 1} {kind}", "pdf": str(scan),
                                  "page": 0, "truth": [tuple(v / k for v in b) for b in warp.boxes(truth_px)],
                                  "source": [str(pdf), i], "warp": [warp.width, warp.height, warp.angle_deg,
                                                                     warp.curl_px]})
    return cases


def retruth(cases: list[dict]) -> list[dict]:
    """Read the truth of cached pages again (the reading may have been improved since)."""
    for c in cases:
        if c["label"].endswith(" clean"):
            with pymupdf.open(c["pdf"]) as doc:
                c["truth"] = [s.box for s in pdf_truth.page_systems(doc[c["page"]])]
        elif "source" in c:
            from bytehoven_desktop.training.scan_look import PageWarp

            with pymupdf.open(c["source"][0]) as doc:
                truth = [s.box for s in pdf_truth.page_systems(doc[c["source"][1]])]
            k = SCAN_DPI / 72.0
            w, h, angle, curl = c["warp"]
            warp = PageWarp(int(w), int(h), float(angle), float(curl))
            c["truth"] = [tuple(v / k for v in b) for b in warp.boxes([tuple(v * k for v in b) for b in truth])]
    return cases


def run_cases(cases: list[dict], totals: dict[str, np.ndarray]) -> None:
    times: dict[str, list[float]] = defaultdict(list)
    misses: dict[str, list[str]] = defaultdict(list)
    for c in cases:
        with Document(c["pdf"]) as doc:
            t = time.process_time()
            page, _ = prepare_page(doc, c["page"], 40, 256)
            times[c["label"]].append(time.process_time() - t)
        r = match(page.boxes, [tuple(b) for b in c["truth"]])
        totals[c["label"]] += r
        if not c["label"].endswith(" clean"):
            totals["all distorted"] += r
        if r[1] or r[2]:
            misses[c["label"].split()[0]].append(f"{c['name']}: fp {r[1]} fn {r[2]}")
    for eng in sorted({lab.split()[0] for lab in times}):
        clean = times.get(f"{eng} clean", [])
        scan = [t for lab, ts in times.items() if lab.split()[0] == eng and not lab.endswith(" clean") for t in ts]
        print(f"{eng}: {len(clean)} pages; page preparation (render + detect + cut rows, CPU time) "
              f"{1000 * np.mean(clean or [0]):.1f} ms per vector page, {1000 * np.mean(scan or [0]):.1f} ms per "
              f"{SCAN_DPI:.0f} dpi scan page")
        for w in misses[eng][:10]:
            print("    miss:", w)
        if len(misses[eng]) > 10:
            print(f"    … {len(misses[eng]) - 10} more pages with a miss")


def scans(corpus: Path) -> None:
    entries = json.loads(FIXTURE.read_text())
    tot = np.zeros(3, int)
    bad = []
    for e in entries:
        with Document(corpus / e["file"]) as doc:
            page, _ = prepare_page(doc, e["page"] - 1, 40, 256)
        r = match(page.boxes, [tuple(b) for b in e["systems"]], score=box_iou, thr=0.5)
        tot += r
        if r[1] or r[2]:
            bad.append(f"{e['file']} p{e['page']}: fp {r[1]} fn {r[2]}")
    print(f"real scans (hand-checked, {len(entries)} pages of {len({e['file'] for e in entries})} PDFs, IoU >= 0.5): "
          f"{prf(*tot)}")
    for b in bad:
        print("    miss:", b)


def text_pages() -> None:
    text = ("Preface. The present edition follows the autograph and the first print; "
            "fingerings in italics are editorial. ") * 12
    rows = 0
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "text.pdf"
        doc = pymupdf.open()
        for k, (font, size) in enumerate([("helv", 9), ("tiro", 11), ("cour", 10), ("helv", 14), ("tiro", 7),
                                          ("helv", 11), ("tiro", 16), ("cour", 8)]):
            page = doc.new_page()
            page.insert_textbox(pymupdf.Rect(60, 60, 540, 780), text * (2 if size < 10 else 1), fontsize=size,
                                fontname=font, lineheight=1.0 + 0.1 * (k % 4))
            if k % 2:
                page.draw_line((60, 50), (540, 50))  # a header rule
                page.draw_rect(pymupdf.Rect(40, 40, 560, 800))  # a frame
        doc.save(pdf)
        doc.close()
        with Document(pdf) as d:
            for i in range(d.page_count):
                rows += len(prepare_page(d, i, 40, 256)[0].boxes)
    print(f"text-only pages (8 generated: prose, rules, frames): {rows} rows found (target 0)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    ap.add_argument("--scores", type=int, default=20, help="scores per engraver")
    ap.add_argument("--pages", type=int, default=2, help="pages per score")
    ap.add_argument("--engravers", default="verovio,lilypond,musescore")
    ap.add_argument("--no-distortions", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=None,
                    help="keep the engraved and distorted pages here and reuse them on the next run")
    args = ap.parse_args()
    text_pages()
    if not (args.corpus / "manifest.csv").exists():
        print(f"no corpus at {args.corpus}: engraved and scan figures skipped")
        return
    scans(args.corpus)
    totals: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(3, int))
    with tempfile.TemporaryDirectory() as tmp_s:
        cache = args.cache or Path(tmp_s)
        index = cache / "cases.json"
        if args.cache and index.exists():
            cases = retruth(json.loads(index.read_text()))
            print(f"pages from {index}")
        else:
            cache.mkdir(parents=True, exist_ok=True)
            cases = []
            for eng in filter(None, args.engravers.split(",")):
                rng = np.random.default_rng([args.seed, len(eng)])
                if eng == "verovio":
                    pdfs = verovio_pdfs(args.corpus, args.scores, rng, cache, args.pages)
                elif eng == "lilypond-corpus":
                    pdfs = corpus_lilypond_pdfs(args.corpus, args.scores, rng)
                else:
                    pdfs = engraver_pdfs(eng, args.corpus, args.scores, rng, cache)
                cases += build_cases(pdfs, eng, args.pages, rng, cache, not args.no_distortions)
            index.write_text(json.dumps(cases))
        run_cases(cases, totals)
    print("\nper engraver and distortion (row covers >= 85 % of the true box, at most 3x its area):")
    for key in sorted(totals, key=lambda k: (k == "all distorted", k)):
        print(f"  {key:24s} {prf(*totals[key])}")


if __name__ == "__main__":
    main()
