"""Synthetic score documents for the tests, drawn with PyMuPDF.

``make_score_pdf`` draws piano grand staves the way engravers do: two five-line staves joined
at the left by a system barline and a brace, measure barlines through both staves (never
between two systems), clefs' stand-ins and note-like blobs with stems, on Letter pages with
margins. The staff geometry is chosen so that the core's detector finds exactly
``systems_per_page`` systems on every page at 150 dpi (tests/test_gui_fixtures.py checks it),
so other tests can count on that number.

Everything is deterministic for a given ``seed``; no files outside the given path are touched.
"""

from __future__ import annotations

import random
from pathlib import Path

import pymupdf

PAGE_W, PAGE_H = 612.0, 792.0  # US Letter, points
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 54.0, 60.0, 54.0


def _grand_staff(page: pymupdf.Page, top: float, il: float, rng: random.Random, measures: int = 4) -> None:
    """Draw one grand staff whose upper staff's top line is at ``top``; ``il`` is the line pitch."""
    x0, x1 = MARGIN_X + 3.0 * il, PAGE_W - MARGIN_X
    gap = 5.0 * il  # between the treble staff's bottom line and the bass staff's top line
    tops = (top, top + 4 * il + gap)
    lw = max(0.5, il * 0.12)
    # One shape, several finish() calls (each sets that group's stroke), a single commit.
    shape = page.new_shape()
    for st in tops:
        for j in range(5):
            y = st + j * il
            shape.draw_line((x0, y), (x1, y))
    shape.finish(color=(0, 0, 0), width=lw)
    y_top, y_bottom = tops[0], tops[1] + 4 * il
    # System barline at the left and measure barlines run through both staves and the gap
    # between them: that is what joins the two staves into one system.
    bars = [x0 + (x1 - x0) * k / measures for k in range(measures + 1)]
    for k, bx in enumerate(bars):
        shape.draw_line((bx, y_top), (bx, y_bottom))
    shape.finish(color=(0, 0, 0), width=max(0.8, il * 0.16))
    # Final double bar, slightly heavier.
    shape.draw_line((x1 - 0.5 * il, y_top), (x1 - 0.5 * il, y_bottom))
    shape.finish(color=(0, 0, 0), width=max(1.0, il * 0.2))
    # Brace stand-in: a thick curved stroke left of the system barline.
    bx = x0 - 1.2 * il
    mid = (y_top + y_bottom) / 2
    shape.draw_bezier((x0 - 0.2 * il, y_top), (bx - 0.9 * il, y_top + 0.3 * (mid - y_top)),
                      (bx + 0.4 * il, mid - 0.3 * il), (bx - 0.6 * il, mid))
    shape.draw_bezier((bx - 0.6 * il, mid), (bx + 0.4 * il, mid + 0.3 * il),
                      (bx - 0.9 * il, y_bottom - 0.3 * (y_bottom - mid)), (x0 - 0.2 * il, y_bottom))
    shape.finish(color=(0, 0, 0), width=max(1.0, il * 0.3))
    # Clef stand-ins: a tall blob on the treble staff, a round one on the bass staff.
    shape.draw_oval(pymupdf.Rect(x0 + 0.6 * il, tops[0] - 0.8 * il, x0 + 2.0 * il, tops[0] + 4.8 * il))
    shape.draw_oval(pymupdf.Rect(x0 + 0.6 * il, tops[1] + 0.2 * il, x0 + 2.2 * il, tops[1] + 2.0 * il))
    shape.finish(color=(0, 0, 0), width=max(0.8, il * 0.2))
    # Note heads with stems; stems stay within one staff's reach so nothing links two systems.
    start = x0 + 3.5 * il
    for m in range(measures):
        mx0 = max(start, bars[m] + il)
        mx1 = bars[m + 1] - il
        n = rng.randint(3, 6)
        for k in range(n):
            cx = mx0 + (mx1 - mx0) * (k + 0.5) / n
            for st in tops:
                step = rng.randint(-2, 10)  # half-line steps from the top line (a few ledger positions)
                cy = st + step * il / 2
                shape.draw_oval(pymupdf.Rect(cx - 0.65 * il, cy - 0.45 * il, cx + 0.65 * il, cy + 0.45 * il))
                up = step >= 4
                sx = cx + 0.6 * il if up else cx - 0.6 * il
                shape.draw_line((sx, cy), (sx, cy - 3.2 * il if up else cy + 3.2 * il))
    shape.finish(color=(0, 0, 0), fill=(0, 0, 0), width=max(0.6, il * 0.12))
    shape.commit()


def _system_layout(systems: int) -> tuple[float, float]:
    """Line pitch and vertical distance between system tops that fit ``systems`` on a page."""
    avail = PAGE_H - MARGIN_TOP - MARGIN_BOTTOM
    # One system is 13 interlines tall (4 + 5 gap + 4); leave 7 interlines between systems.
    il = min(7.0, avail / (systems * 13.0 + max(0, systems - 1) * 7.0))
    pitch = (avail - 13.0 * il) / max(1, systems - 1) if systems > 1 else 0.0
    return il, pitch


def make_score_pdf(path: str | Path, pages: int = 3, systems_per_page: int = 5, seed: int = 0,
                   title: str | None = "Synthetic Sonata") -> Path:
    """A PDF of ``pages`` pages, each with ``systems_per_page`` piano grand staves (1..8)."""
    if not 1 <= systems_per_page <= 8:
        raise ValueError("systems_per_page must be between 1 and 8")
    path = Path(path)
    rng = random.Random(seed)
    il, pitch = _system_layout(systems_per_page)
    doc = pymupdf.open()
    for p in range(pages):
        page = doc.new_page(width=PAGE_W, height=PAGE_H)
        if title and p == 0:
            page.insert_text((MARGIN_X, MARGIN_TOP - 24), title, fontsize=14)
        page.insert_text((PAGE_W / 2 - 8, PAGE_H - 24), str(p + 1), fontsize=9)
        for s in range(systems_per_page):
            _grand_staff(page, MARGIN_TOP + s * pitch, il, rng)
    doc.save(path)
    doc.close()
    return path


def make_score_png(path: str | Path, systems: int = 4, dpi: int = 150, seed: int = 0) -> Path:
    """A one-page image scan (PNG) of a synthetic score, as a scanner would give it."""
    path = Path(path)
    tmp = path.with_suffix(".tmp.pdf")
    make_score_pdf(tmp, pages=1, systems_per_page=systems, seed=seed)
    with pymupdf.open(tmp) as doc:
        pix = doc[0].get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY, alpha=False)
        pix.save(path)
    tmp.unlink()
    return path


def make_scanned_pdf(path: str | Path, systems: int = 4, dpi: int = 150, seed: int = 0, strips: int = 1) -> Path:
    """A PDF whose one page is a scan of a synthetic score: the page image (in ``strips`` horizontal
    pieces, as some scanners store it) filling the page, as IMSLP PDFs hold their scans."""
    path = Path(path)
    png = make_score_png(path.with_suffix(".tmp.png"), systems=systems, dpi=dpi, seed=seed)
    pix = pymupdf.Pixmap(str(png))
    png.unlink()
    gray = bytes(pix.samples)
    doc = pymupdf.open()
    page = doc.new_page(width=PAGE_W, height=PAGE_H)
    for k in range(strips):
        top, bottom = round(pix.height * k / strips), round(pix.height * (k + 1) / strips)
        piece = pymupdf.Pixmap(pymupdf.csGRAY, pix.width, bottom - top,
                               gray[top * pix.stride: bottom * pix.stride], False)
        page.insert_image(pymupdf.Rect(0, PAGE_H * k / strips, PAGE_W, PAGE_H * (k + 1) / strips), pixmap=piece)
    doc.save(path)
    doc.close()
    return path


def make_text_pdf(path: str | Path, pages: int = 1) -> Path:
    """A PDF with prose and no music: the analysis must say "no music"."""
    path = Path(path)
    doc = pymupdf.open()
    text = ("This document holds no music at all. " * 3 + "\n") * 30
    for _ in range(pages):
        page = doc.new_page(width=PAGE_W, height=PAGE_H)
        page.insert_textbox(pymupdf.Rect(MARGIN_X, MARGIN_TOP, PAGE_W - MARGIN_X, PAGE_H - MARGIN_BOTTOM), text,
                            fontsize=11)
    doc.save(path)
    doc.close()
    return path


def make_corrupt_pdf(path: str | Path) -> Path:
    """A file that claims to be a PDF (has the header) but whose body is garbage."""
    path = Path(path)
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\nthis is not a PDF body\n")
    return path


def make_encrypted_pdf(path: str | Path, password: str = "secret") -> Path:
    """A score PDF that needs a user password to open."""
    path = Path(path)
    tmp = path.with_suffix(".plain.pdf")
    make_score_pdf(tmp, pages=1, systems_per_page=3)
    with pymupdf.open(tmp) as doc:
        doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=password, owner_pw=password + "-owner")
    tmp.unlink()
    return path
