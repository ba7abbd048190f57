"""LilyPond 2.24 engravings of symbolic scores: MusicXML → ``musicxml2ly`` → ``lilypond`` → PDF.

Humdrum goes through music21's MusicXML first (``musicxml.score_musicxml``). The MusicXML is stripped of
titles, names, layout and breaks (``musicxml.clean_musicxml``); the LilyPond file then gets empty header
fields, no tagline, no page numbers, and a seeded paper size, staff size, indent and spacing, so LilyPond
breaks the systems its own way. One ``lilypond`` process per score (a few seconds each), ``jobs`` at a time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from .musicxml import MusicXMLError, PageLayout, clean_musicxml, random_layout, score_musicxml
from .outputs import EngraveResult, Target, short_reason, source_rng, targets

__all__ = ["NAME", "available", "engrave", "version"]

NAME = "lilypond"
MUSICXML2LY = os.environ.get("BYTEHOVEN_MUSICXML2LY", "musicxml2ly")
LILYPOND = os.environ.get("BYTEHOVEN_LILYPOND", "lilypond")
_LY_PT_PER_MM = 72.27 / 25.4  # LilyPond points are TeX points
_HEADER_FIELDS = ("dedication", "title", "subtitle", "subsubtitle", "instrument", "poet", "composer", "meter",
                  "arranger", "opus", "piece", "copyright", "tagline")


_TUPLET_RE = re.compile(r"<tuplet\b[^>]*/>|<tuplet\b[^>]*>.*?</tuplet>", re.S)


def available() -> bool:
    return shutil.which(MUSICXML2LY) is not None and shutil.which(LILYPOND) is not None


def version() -> str | None:
    """``"2.24.1"`` or None when LilyPond is not installed."""
    if shutil.which(LILYPOND) is None:
        return None
    out = subprocess.run([LILYPOND, "--version"], capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"LilyPond (\d+\.\d+\.\d+)", out)
    return m.group(1) if m else None


def ly_settings(layout: PageLayout) -> tuple[str, str]:
    """(what goes right after ``\\version``, what goes at the end of the file) for ``layout``."""
    staff_pt = 4 * layout.staff_space_mm * _LY_PT_PER_MM
    head = f"#(set-global-staff-size {staff_pt:.3f})\n"
    fields = " ".join(f"{f} = ##f" for f in _HEADER_FIELDS)
    # Distances between staff reference points (middle lines): the gap between outer lines plus 4.
    tail = (
        f"\n\\header {{ {fields} }}\n"
        "\\paper {\n"
        f"  paper-width = {layout.width_mm:.1f}\\mm\n  paper-height = {layout.height_mm:.1f}\\mm\n"
        f"  left-margin = {layout.margin_mm:.1f}\\mm\n  right-margin = {layout.margin_mm:.1f}\\mm\n"
        f"  top-margin = {layout.top_mm:.1f}\\mm\n  bottom-margin = {layout.bottom_mm:.1f}\\mm\n"
        f"  indent = {layout.indent_mm:.1f}\\mm\n  short-indent = 0\\mm\n"
        f"  system-system-spacing.basic-distance = #{layout.system_gap + 4:.1f}\n"
        "  print-page-number = ##f\n  print-first-page-number = ##f\n"
        "  oddHeaderMarkup = ##f\n  evenHeaderMarkup = ##f\n  oddFooterMarkup = ##f\n  evenFooterMarkup = ##f\n"
        "}\n"
        "\\layout {\n"
        f"  \\context {{ \\PianoStaff \\override StaffGrouper.staff-staff-spacing.basic-distance = #{layout.staff_gap + 4:.1f} }}\n"
        "  \\context { \\Staff \\remove \"Instrument_name_engraver\" }\n"
        "}\n"
    )
    return head, tail


def _patch(ly: str, layout: PageLayout) -> str:
    head, tail = ly_settings(layout)
    ly = re.sub(r"^#\(set-global-staff-size[^\n]*\n", "", ly, flags=re.M)
    m = re.search(r"^\\version[^\n]*\n", ly, flags=re.M)
    at = m.end() if m else 0
    return ly[:at] + head + ly[at:] + tail


def _run(cmd: list[str], cwd: Path, timeout: float) -> tuple[int, str]:
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {timeout:.0f} s"
    return r.returncode, r.stdout + r.stderr


def _engrave_one(target: Target, seed: int, timeout: float, cache: Path | None) -> EngraveResult:
    t0 = time.perf_counter()
    layout = random_layout(source_rng(seed, NAME, target.name))
    try:
        xml = clean_musicxml(score_musicxml(target.source, cache))
    except MusicXMLError as exc:
        return target.fail(exc.reason, time.perf_counter() - t0)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=target.out_dir) as tmp:
        work = Path(tmp)
        (work / "in.musicxml").write_text(xml, encoding="utf-8")
        # --npl: no page layout or breaks from the MusicXML (there are none left): LilyPond's own.
        rc, log = _run([MUSICXML2LY, "--npl", "-o", "score.ly", "in.musicxml"], work, timeout)
        if rc != 0 and rc != -1 and _TUPLET_RE.search(xml):
            # musicxml2ly 2.24 stops on tuplets whose start and stop do not pair up ("'>' not supported
            # between 'int' and 'NoneType'"): try once more without tuplet marks (durations stay).
            (work / "in.musicxml").write_text(_TUPLET_RE.sub("", xml), encoding="utf-8")
            rc2, log2 = _run([MUSICXML2LY, "--npl", "-o", "score.ly", "in.musicxml"], work, timeout)
            if rc2 == 0:
                rc, log = rc2, log2
        if rc != 0 or not (work / "score.ly").is_file():
            return target.fail("musicxml2ly: " + short_reason(log), time.perf_counter() - t0)
        ly = (work / "score.ly").read_text(encoding="utf-8", errors="replace")
        (work / "score.ly").write_text(_patch(ly, layout), encoding="utf-8")
        rc, log = _run([LILYPOND, "-dno-point-and-click", "--loglevel=ERROR", "-o", "score", "score.ly"], work,
                       max(1.0, timeout - (time.perf_counter() - t0)))
        pdf = work / "score.pdf"
        if rc != 0 or not pdf.is_file():
            return target.fail("lilypond: " + short_reason(log), time.perf_counter() - t0)
        return target.succeed(pdf, time.perf_counter() - t0)


def engrave(sources: Sequence[Path], out_dir: Path, seed: int = 0, jobs: int = 1,
            names: Sequence[str] | None = None, retry_failed: bool = False,
            timeout: float = 600.0, cache: Path | None = None) -> list[EngraveResult]:
    """Engrave each source into ``out_dir/<name>.pdf`` (results in the order of ``sources``).

    Never raises for a bad score: its result carries the reason. ``timeout`` is per score; ``cache``
    keeps the MusicXML made from Humdrum files (default ``out_dir/.humdrum-musicxml``)."""
    tgts = targets(sources, out_dir, names)
    if not available():
        return [EngraveResult(t.source, None, "LilyPond is not installed (Debian: apt install lilypond)")
                for t in tgts]

    cache = cache or Path(out_dir) / ".humdrum-musicxml"

    def one(t: Target) -> EngraveResult:
        return t.done(retry_failed) or _engrave_one(t, seed, timeout, cache)

    # The work happens in child processes (music21 aside), so threads are enough to keep `jobs` busy.
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        return list(pool.map(one, tgts))
