"""Row-detection quality (a benchmark, not a test): precision / recall / F1 at IoU >= 0.5.

1. Engraved: scores of the corpus engraved by verovio in random styles; verovio's SVG says
   exactly where each system's staff lines are (``render.RenderedPage.systems``), and the
   detector's ``lines_box`` is compared with it.
2. Scans: pages of the real scans in the corpus whose rows were checked by eye and stored in
   ``bench/fixtures/scan_systems.json`` (row boxes in PDF points); compared with the row
   boxes the app reports (``pipeline.prepare_page``).
3. Text-only pages (prose in several fonts and sizes): every detected row is a false positive.

    python bench/bench_detection.py --corpus ../shared/corpus [--scores 80] [--pages 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pymupdf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bytehoven_desktop.document import Document  # noqa: E402
from bytehoven_desktop.pipeline import TARGET_INTERLINE, prepare_page  # noqa: E402
from bytehoven_desktop.systems import box_iou, detect_systems  # noqa: E402

FIXTURE = ROOT / "bench" / "fixtures" / "scan_systems.json"


def match(found: list, truth: list, thr: float = 0.5) -> tuple[int, int, int]:
    """Greedy one-to-one matching by IoU: (true positives, false positives, false negatives)."""
    pairs = sorted(((box_iou(f, t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)), reverse=True)
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
    return f"precision {p:.4f}  recall {r:.4f}  F1 {f:.4f}  (tp {tp}, fp {fp}, fn {fn})"


def engraved(corpus: Path, n_scores: int, pages: int, seed: int) -> None:
    from bytehoven_desktop.training.corpus import read_sources
    from bytehoven_desktop.training.render import random_style, render_pages

    rng = np.random.default_rng(seed)
    sources = [s for s in read_sources(corpus) if s.kind == "symbolic"]
    pick = rng.choice(len(sources), min(n_scores, len(sources)), replace=False)
    tot = np.zeros(3, int)
    n_pages, t_det, worst = 0, 0.0, []
    for k in pick:
        src = sources[k]
        style = random_style(rng, transpose=bool(rng.random() < 0.3))
        try:
            for page in render_pages(src.path, style, px_per_staff_space=TARGET_INTERLINE,
                                     pages=range(1, pages + 1)):
                t = time.perf_counter()
                found = detect_systems(page.gray)
                t_det += time.perf_counter() - t
                boxes = [found.original_box(s.lines_box) if s.frame == 0 else s.lines_box for s in found.systems]
                r = match(boxes, page.systems)
                tot += r
                n_pages += 1
                if r[1] or r[2]:
                    worst.append(f"{src.rel} p{page.page} font={style.font}: fp {r[1]} fn {r[2]}")
        except Exception as exc:  # a score verovio cannot engrave is not a detector error
            print(f"  skipped {src.rel}: {exc}")
    print(f"engraved (verovio, {len(pick)} scores, {n_pages} pages, random fonts/layouts): {prf(*tot)}")
    print(f"  detection time {1000 * t_det / max(1, n_pages):.1f} ms/page at {TARGET_INTERLINE:.0f} px per staff space")
    for w in worst[:10]:
        print("  miss:", w)


def scans(corpus: Path) -> None:
    entries = json.loads(FIXTURE.read_text())
    tot = np.zeros(3, int)
    bad = []
    for e in entries:
        with Document(corpus / e["file"]) as doc:
            page, _ = prepare_page(doc, e["page"] - 1, 40, 256)
        r = match(page.boxes, [tuple(b) for b in e["systems"]])
        tot += r
        if r[1] or r[2]:
            bad.append(f"{e['file']} p{e['page']}: fp {r[1]} fn {r[2]}")
    print(f"scans (hand-checked, {len(entries)} pages of {len({e['file'] for e in entries})} PDFs): {prf(*tot)}")
    for b in bad:
        print("  miss:", b)


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
    ap.add_argument("--scores", type=int, default=80)
    ap.add_argument("--pages", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    text_pages()
    if not (args.corpus / "manifest.csv").exists():
        print(f"no corpus at {args.corpus}: engraved and scan figures skipped")
        return
    scans(args.corpus)
    engraved(args.corpus, args.scores, args.pages, args.seed)


if __name__ == "__main__":
    main()
