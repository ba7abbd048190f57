"""MuseScore 3 engravings of symbolic scores, many scores per ``mscore3 -j job.json`` process.

MuseScore 3.2 lays a MusicXML score out as soon as it reads it and takes neither the MusicXML page size
nor a style given with ``-S`` into that layout (the PDF page changes, the systems do not: they run off
the page). So each batch is converted twice: MusicXML (stripped of titles, names, layout and breaks by
``musicxml.clean_musicxml``) → ``.mscx``, whose ``<Style>`` is replaced by a seeded one (paper, staff
size, spacing, music font; no header, footer or page numbers), then ``.mscx`` → PDF, laid out anew.

A score that crashes or hangs MuseScore costs only itself: the rest of its batch runs again without it.
Runs offscreen (``QT_QPA_PLATFORM=offscreen``) with its own settings folders, so several processes can
run side by side and a user's MuseScore preferences change nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .musicxml import MusicXMLError, PageLayout, clean_musicxml, random_layout, score_musicxml
from .outputs import EngraveResult, Target, short_reason, source_rng, targets

__all__ = ["NAME", "MuseStyle", "available", "engrave", "random_style", "version"]

NAME = "musescore"
_CANDIDATES = ("mscore3", "musescore3", "mscore")
# Music font and its text font, all built into MuseScore 3.2.
FONTS: tuple[tuple[str, str], ...] = (("Emmentaler", "Emmentaler Text"), ("Bravura", "Bravura Text"),
                                      ("Gonville", "Gootville Text"))
_MM_PER_INCH = 25.4


def _program() -> str | None:
    env = os.environ.get("BYTEHOVEN_MSCORE")
    if env:
        return shutil.which(env)
    return next((p for p in map(shutil.which, _CANDIDATES) if p), None)


def available() -> bool:
    return _program() is not None


def _env(work: Path) -> dict[str, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    for var in ("XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        d = work / var.lower()
        d.mkdir(mode=0o700, exist_ok=True)
        env[var] = str(d)
    return env


def version() -> str | None:
    """``"3.2.3"`` or None when MuseScore is not installed."""
    prog = _program()
    if prog is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run([prog, "--version"], capture_output=True, text=True, timeout=60, env=_env(Path(tmp)))
    m = re.search(r"(\d+\.\d+(?:\.\d+)?)", r.stdout + r.stderr)
    return m.group(1) if m else None


@dataclass(frozen=True)
class MuseStyle:
    layout: PageLayout
    font: tuple[str, str] = FONTS[0]
    measure_spacing: float = 1.2  # MuseScore's "spacing" stretch (default 1.2)

    def mscx(self) -> str:
        """The ``<Style>`` element of a .mscx file (lengths in inches and staff spaces, spatium in mm)."""
        lay = self.layout
        inch = 1 / _MM_PER_INCH
        w, h = lay.width_mm * inch, lay.height_mm * inch
        side, top, bottom = lay.margin_mm * inch, lay.top_mm * inch, lay.bottom_mm * inch
        tags = {
            "pageWidth": w, "pageHeight": h, "pagePrintableWidth": w - 2 * side,
            "pageEvenLeftMargin": side, "pageOddLeftMargin": side,
            "pageEvenTopMargin": top, "pageOddTopMargin": top,
            "pageEvenBottomMargin": bottom, "pageOddBottomMargin": bottom, "pageTwosided": 0,
            "Spatium": lay.staff_space_mm, "measureSpacing": self.measure_spacing,
            "akkoladeDistance": lay.staff_gap, "staffDistance": lay.staff_gap + 1,
            "minSystemDistance": lay.system_gap, "maxSystemDistance": lay.system_gap + 8,
            "musicalSymbolFont": self.font[0], "musicalTextFont": self.font[1],
            "showHeader": 0, "showFooter": 0, "showPageNumber": 0,
        }
        body = "".join(f"<{k}>{v:.4f}</{k}>" if isinstance(v, float) else f"<{k}>{v}</{k}>" for k, v in tags.items())
        return f"<Style>{body}</Style>"


def random_style(rng: np.random.Generator) -> MuseStyle:
    layout = random_layout(rng)
    return MuseStyle(layout, FONTS[int(rng.integers(len(FONTS)))], round(float(rng.uniform(0.9, 1.6)), 2))


def _restyle(mscx: str, style: MuseStyle) -> str:
    new = style.mscx()
    if re.search(r"<Style>.*?</Style>|<Style/>", mscx, flags=re.S):
        return re.sub(r"<Style>.*?</Style>|<Style/>", lambda _: new, mscx, count=1, flags=re.S)
    return re.sub(r"(<Score>)", lambda m: m.group(1) + new, mscx, count=1)


def _chunks(log: str) -> dict[str, str]:
    """MuseScore's output per input file ("convert <in>..." starts each)."""
    out: dict[str, str] = {}
    current = None
    for line in log.splitlines():
        m = re.match(r"convert <(.*)>\.\.\.", line.strip())
        if m:
            current = m.group(1)
            out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return out


def _run_job(prog: str, pairs: list[tuple[Path, Path]], work: Path, per_item: float) -> dict[Path, str | None]:
    """Convert every (in, out) pair; {in: None when out was made, else why not}. A crash or a hang ends
    only the score being converted; MuseScore is started again for the ones after it."""
    result: dict[Path, str | None] = {}
    todo = list(pairs)
    while todo:
        job = work / "job.json"
        job.write_text(json.dumps([{"in": str(i), "out": str(o)} for i, o in todo]))
        timeout = 60 + per_item * len(todo)
        try:
            r = subprocess.run([prog, "-j", str(job)], capture_output=True, text=True, errors="replace",
                               timeout=timeout, env=_env(work), cwd=work)
            log, crashed = r.stdout + r.stderr, r.returncode < 0
            why = f"MuseScore crashed (signal {-r.returncode})"
        except subprocess.TimeoutExpired as exc:
            log = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(errors="replace")
            crashed, why = True, f"MuseScore timed out ({timeout:.0f} s for {len(todo)} scores)"
        chunks = _chunks(log)
        rest = []
        for i, o in todo:
            if o.is_file() and o.stat().st_size > 0:
                result[i] = None
            elif str(i) not in chunks:
                rest.append((i, o))  # not reached before MuseScore stopped
            elif crashed and str(i) == next(reversed(chunks)):
                result[i] = why
            else:
                text = "\n".join(ln for ln in chunks[str(i)].splitlines()
                                 if not ln.strip().startswith(("to <", "using style")))
                result[i] = short_reason(text) if text.strip() else "MuseScore wrote nothing"
        if len(rest) == len(todo):  # no progress at all: do not loop for ever
            for i, _ in rest:
                result[i] = why if crashed else "MuseScore did not start: " + short_reason(log)
            break
        todo = rest
    return result


def _batch(prog: str, items: list[tuple[Target, MuseStyle]], per_item: float, cache: Path) -> list[EngraveResult]:
    t0 = time.perf_counter()
    out: dict[int, EngraveResult] = {}
    with tempfile.TemporaryDirectory(prefix=".mscore-", dir=items[0][0].out_dir) as tmp:
        work = Path(tmp)
        xml = {}
        for k, (t, _) in enumerate(items):
            try:
                text = clean_musicxml(score_musicxml(t.source, cache))
            except MusicXMLError as exc:
                out[k] = t.fail(exc.reason, time.perf_counter() - t0)
                continue
            xml[k] = work / f"{k}.musicxml"
            xml[k].write_text(text, encoding="utf-8")
        first = _run_job(prog, [(xml[k], work / f"{k}.mscx") for k in xml], work, per_item)
        second_in = {}
        for k, x in xml.items():
            mscx = work / f"{k}.mscx"
            if first[x] is None:
                mscx.write_text(_restyle(mscx.read_text(encoding="utf-8", errors="replace"), items[k][1]),
                                encoding="utf-8")
                second_in[k] = mscx
        second = _run_job(prog, [(m, work / f"{k}.pdf") for k, m in second_in.items()], work, per_item)
        each = (time.perf_counter() - t0) / len(items)
        for k, x in xml.items():
            t = items[k][0]
            why = first[x] if k not in second_in else second[second_in[k]]
            out[k] = t.fail(f"musescore: {why}", each) if why else t.succeed(work / f"{k}.pdf", each)
    return [out[k] for k in range(len(items))]


def engrave(sources: Sequence[Path], out_dir: Path, seed: int = 0, jobs: int = 1,
            names: Sequence[str] | None = None, retry_failed: bool = False, batch: int = 20,
            timeout: float = 60.0, cache: Path | None = None) -> list[EngraveResult]:
    """Engrave each source into ``out_dir/<name>.pdf`` (results in the order of ``sources``), ``batch``
    scores per MuseScore process, ``jobs`` processes at a time. Never raises for a bad score.

    ``timeout`` is per score and pass; ``cache`` keeps the MusicXML made from Humdrum files (default
    ``out_dir/.humdrum-musicxml``)."""
    # MuseScore runs in a work folder of its own: a relative job or output path would point there.
    out_dir = Path(out_dir).resolve()
    tgts = targets(sources, out_dir, names)
    prog = _program()
    if prog is None:
        return [EngraveResult(t.source, None, "MuseScore 3 is not installed (Debian: apt install musescore3)")
                for t in tgts]
    cache = cache or Path(out_dir) / ".humdrum-musicxml"
    results: dict[int, EngraveResult] = {}
    pending = []
    for k, t in enumerate(tgts):
        done = t.done(retry_failed)
        if done is not None:
            results[k] = done
        else:
            pending.append(k)
    size = max(1, batch)
    batches = [pending[i: i + size] for i in range(0, len(pending), size)]
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = [(b, pool.submit(_batch, prog, [(tgts[k], random_style(source_rng(seed, NAME, tgts[k].name)))
                                                  for k in b], timeout, cache)) for b in batches]
        for b, fut in futures:
            for k, res in zip(b, fut.result()):
                results[k] = res
    return [results[k] for k in range(len(tgts))]
