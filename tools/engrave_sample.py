"""How many corpus scores each engraver renders, how long it takes and why the others fail.

    nice .venv/bin/python tools/engrave_sample.py --corpus ../shared/corpus --out /tmp/engrave-sample \
        [--mxl 40] [--krn 20] [--seed 0] [--jobs 1] [--engravers verovio,lilypond,musescore]

Draws a seeded random sample of the corpus's .mxl and .krn scores, engraves it with every engraver
(``bytehoven_desktop.training.engrave``; resumable: a rerun reuses the PDFs in --out) and writes
``summary.json`` and ``summary.md`` there: per engraver and format, scores rendered, seconds per score
(median and total, over this and earlier runs) and the failures grouped by reason.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bytehoven_desktop.training.corpus import read_sources  # noqa: E402
from bytehoven_desktop.training.engrave import ENGRAVERS, engraver  # noqa: E402


def _group(reason: str) -> str:
    """A failure reason without its file names, numbers and quoted values, so alike failures count together."""
    reason = re.sub(r"/\S+|\S+\.(?:ly|musicxml|mscx|xml)\b", "<file>", reason)
    reason = re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*'", "'…'", reason)
    return re.sub(r"(?<![A-Za-z])\d+", "N", reason)[:110]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--mxl", type=int, default=40)
    ap.add_argument("--krn", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--engravers", default=",".join(ENGRAVERS))
    ap.add_argument("--retry-failed", action="store_true", help="engrave the scores that failed before again")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    symbolic = sorted((s for s in read_sources(args.corpus) if s.kind == "symbolic"), key=lambda s: s.rel)
    sample = []
    for suffix, n in ((".mxl", args.mxl), (".krn", args.krn)):
        pool = [s for s in symbolic if s.rel.lower().endswith(suffix)]
        sample += [pool[i] for i in sorted(rng.choice(len(pool), size=min(n, len(pool)), replace=False))]
    summary: dict = {"corpus": str(args.corpus), "seed": args.seed, "scores": [s.rel for s in sample], "engravers": {}}
    cache = args.out / "humdrum-musicxml"  # one music21 conversion per Humdrum file for both engravers
    for name in args.engravers.split(","):
        mod = engraver(name)
        t0 = time.perf_counter()
        kwargs = {"cache": cache} if name != "verovio" else {}
        results = mod.engrave([s.path for s in sample], args.out / name, seed=args.seed, jobs=args.jobs,
                              retry_failed=args.retry_failed, **kwargs)
        wall = time.perf_counter() - t0
        # Seconds per score are kept across runs (a rerun reuses PDFs and would otherwise time nothing).
        timings_file = args.out / name / "timings.json"
        timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
        timings.update({str(r.source): r.seconds for r in results if not r.cached})
        timings_file.write_text(json.dumps(timings, indent=1))
        entry: dict = {"version": mod.version(), "wall_seconds": round(wall, 1), "formats": {}}
        for suffix in (".mxl", ".krn"):
            rs = [r for s, r in zip(sample, results) if s.rel.lower().endswith(suffix)]
            ok = [r for r in rs if r.pdf is not None]
            fresh = [timings[str(r.source)] for r in ok if str(r.source) in timings]
            pages = []
            for r in ok:
                import pymupdf

                with pymupdf.open(r.pdf) as doc:
                    pages.append(doc.page_count)
            entry["formats"][suffix] = {
                "scores": len(rs), "rendered": len(ok),
                "median_seconds": round(statistics.median(fresh), 2) if fresh else None,
                "total_seconds": round(sum(fresh), 1), "pages": sum(pages),
                "failures": Counter(_group(r.error or "") for r in rs if r.pdf is None).most_common(),
                "failed_scores": [(s.rel, r.error) for s, r in zip(sample, results)
                                  if s.rel.lower().endswith(suffix) and r.pdf is None],
            }
        summary["engravers"][name] = entry
        print(f"[engrave-sample] {name}: " + ", ".join(
            f"{k} {v['rendered']}/{v['scores']}" for k, v in entry["formats"].items()) + f" in {wall:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    lines = [f"Sample: {args.mxl} .mxl + {args.krn} .krn scores of {args.corpus} (seed {args.seed}).", "",
             "| engraver | version | format | rendered | median s/score | pages | failures (grouped) |",
             "|---|---|---|---:|---:|---:|---|"]
    for name, e in summary["engravers"].items():
        for suffix, f in e["formats"].items():
            fails = "; ".join(f"{n}× {why}" for why, n in f["failures"]) or "none"
            lines.append(f"| {name} | {e['version']} | {suffix} | {f['rendered']}/{f['scores']} | "
                         f"{f['median_seconds']} | {f['pages']} | {fails} |")
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
