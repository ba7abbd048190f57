"""Finding files shipped beside the program: in a source checkout, an installed prefix, or a
frozen (PyInstaller) bundle."""

from __future__ import annotations

import sys
from pathlib import Path

DEMO_RELATIVE = Path("resources") / "demo" / "demo.pdf"


def resource_roots() -> list[Path]:
    """Folders that may hold ``resources/``, most specific first."""
    here = Path(__file__).resolve().parent  # bytehoven_desktop/gui
    roots: list[Path] = []
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass:
        roots.append(Path(meipass))
    roots += [here.parent.parent, here.parent, Path(sys.prefix) / "share" / "bytehoven"]
    return roots


def demo_score_path() -> Path | None:
    """The demo score (``resources/demo/demo.pdf``), or None when it is not installed."""
    for root in resource_roots():
        for candidate in (root / DEMO_RELATIVE, root / "demo" / "demo.pdf"):
            if candidate.is_file():
                return candidate
    return None
