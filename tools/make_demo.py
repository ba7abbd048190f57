"""Build resources/demo/demo.pdf with the project's own engraving tooling (verovio via
bytehoven_desktop.training.engrave.verovio) from public-domain scores that music21 ships.

    python tools/make_demo.py            (needs the [train] extra and music21)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import music21
import pymupdf

from bytehoven_desktop.training.engrave.verovio import RenderStyle, render_pdf

CORPUS = Path(music21.__file__).parent / "corpus"
PIECES = [
    ("joplin/maple_leaf_rag.mxl", "Scott Joplin (1868-1917): Maple Leaf Rag (1899)"),
    ("mozart/k545/movement1_exposition.mxl", "W. A. Mozart (1756-1791): Sonata in C major K. 545, "
                                             "first movement (exposition)"),
    ("chopin/mazurka06-2.krn", "Frédéric Chopin (1810-1849): Mazurka in C-sharp minor Op. 6 No. 2"),
    ("cpebach/h186.mxl", "C. P. E. Bach (1714-1788): H. 186"),
]
OUT = Path(__file__).resolve().parent.parent / "resources" / "demo" / "demo.pdf"


def main() -> None:
    out = pymupdf.open()
    with tempfile.TemporaryDirectory() as tmp:
        for rel, caption in PIECES:
            one = Path(tmp) / (Path(rel).stem + ".pdf")
            render_pdf(CORPUS / rel, one, RenderStyle(page_width=2100, page_height=2970))
            with pymupdf.open(one) as doc:
                start = out.page_count
                out.insert_pdf(doc)
            # A small caption at the foot of each piece's first page (well away from the music),
            # so a reader knows what the demo shows and where it comes from.
            page = out[start]
            bottom = page.rect.height
            page.insert_text((36, bottom - 26), caption, fontsize=9, fontname="helv")
            page.insert_text((36, bottom - 15), "Public domain; encoding from the music21 corpus; engraved by "
                             "Bytehoven's tooling (verovio).", fontsize=6.5, fontname="helv", color=(0.35, 0.35, 0.35))
    out.set_metadata({"title": "Bytehoven demo score", "creator": "tools/make_demo.py",
                      "subject": "Four public-domain piano pieces for trying Bytehoven Desktop"})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    out.save(OUT, garbage=4, deflate=True)
    print(f"{OUT}: {out.page_count} pages, {OUT.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
