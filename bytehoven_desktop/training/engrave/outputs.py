"""What every engraver returns and where it writes: one PDF per score, or a short reason why not.

Resumable and safe to run twice at once: a PDF is written under a temporary name and moved into place
in one step, so a PDF that exists is complete and is never made again; a score that failed leaves
``<name>.error`` with the reason, so a rerun does not spend minutes failing on it again
(``retry_failed`` tries those again). The page layout of a score is a pure function of the seed, the
engraver and the output name, so a rerun engraves it the same way.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["EngraveResult", "Target", "output_name", "short_reason", "source_rng", "targets"]


@dataclass(frozen=True)
class EngraveResult:
    source: Path
    pdf: Path | None  # the engraving, when it worked
    error: str | None = None  # why not, in a few words
    seconds: float = 0.0  # spent on this score now (0 when cached)
    cached: bool = False  # done by an earlier run


def output_name(source: Path) -> str:
    """A file name unique to a source path (two ``1.krn`` in different folders do not collide)."""
    digest = hashlib.sha1(str(Path(source).resolve()).encode()).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(source).stem)[:60]
    return f"{stem}-{digest}"


def source_rng(seed: int, engraver: str, name: str) -> np.random.Generator:
    """The random generator for one score's layout in one engraver."""
    return np.random.default_rng(int(hashlib.sha1(f"{seed}|{engraver}|{name}".encode()).hexdigest()[:12], 16))


def short_reason(text: str, limit: int = 160) -> str:
    """The line of a tool's output that says what went wrong, shortened: the first "...error: ..." line
    (LilyPond's "file.ly:3:5: error: ...", Python's "KeyError: ..."), else the last line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    hits = [ln for ln in lines if re.search(r"error\s*:", ln, re.IGNORECASE)]
    return (hits[0] if hits else lines[-1] if lines else "no output")[:limit]


@dataclass(frozen=True)
class Target:
    source: Path
    name: str
    out_dir: Path

    @property
    def pdf(self) -> Path:
        return self.out_dir / f"{self.name}.pdf"

    @property
    def error_file(self) -> Path:
        return self.out_dir / f"{self.name}.error"

    def tmp(self, suffix: str = ".pdf") -> Path:
        """A private name in ``out_dir`` for work in progress (same file system: the final move is atomic)."""
        return self.out_dir / f".{self.name}.{os.getpid()}.tmp{suffix}"

    def done(self, retry_failed: bool = False) -> EngraveResult | None:
        """The result of an earlier run, or None when the score still has to be engraved."""
        if self.pdf.is_file():
            return EngraveResult(self.source, self.pdf, cached=True)
        if not retry_failed and self.error_file.is_file():
            reason = self.error_file.read_text(encoding="utf-8", errors="replace").strip()
            return EngraveResult(self.source, None, reason or "failed before", cached=True)
        return None

    def succeed(self, made: Path, seconds: float) -> EngraveResult:
        os.replace(made, self.pdf)
        self.error_file.unlink(missing_ok=True)
        return EngraveResult(self.source, self.pdf, None, round(seconds, 2))

    def fail(self, reason: str, seconds: float) -> EngraveResult:
        tmp = self.tmp(".error")
        tmp.write_text(reason + "\n", encoding="utf-8")
        os.replace(tmp, self.error_file)
        return EngraveResult(self.source, None, reason, round(seconds, 2))


def targets(sources: Sequence[Path], out_dir: Path, names: Sequence[str] | None = None) -> list[Target]:
    """One target per source in ``out_dir`` (created); ``names`` (without .pdf) default to output_name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if names is not None and len(names) != len(sources):
        raise ValueError(f"{len(names)} names for {len(sources)} sources")
    names = list(names) if names is not None else [output_name(Path(s)) for s in sources]
    if len(set(names)) != len(names):
        raise ValueError("two sources would be written to the same PDF")
    return [Target(Path(s), n, out_dir) for s, n in zip(sources, names)]
