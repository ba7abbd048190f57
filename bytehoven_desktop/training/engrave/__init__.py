"""The engravers that turn a symbolic score into pages: verovio, LilyPond 2.24 and MuseScore 3.

Each module has the same entry point, ``engrave(sources, out_dir, seed=0, jobs=1, names=None,
retry_failed=False) -> list[EngraveResult]``: one PDF per score in ``out_dir`` (or the reason it failed),
titles and names removed, a seeded page layout per score and engraver, resumable. Importing this package
imports no engraver (verovio, music21 and the external programs load only when used).
"""

from __future__ import annotations

import importlib
from types import ModuleType

ENGRAVERS: tuple[str, ...] = ("verovio", "lilypond", "musescore")

__all__ = ["ENGRAVERS", "engraver"]


def engraver(name: str) -> ModuleType:
    """The module of one engraver (its ``engrave``, ``available`` and ``version``)."""
    if name not in ENGRAVERS:
        raise ValueError(f"unknown engraver {name!r}; choose from {ENGRAVERS}")
    return importlib.import_module(f"{__name__}.{name}")
