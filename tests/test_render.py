"""Tests for bytehoven_desktop.training.engrave.verovio (verovio -> page rasters + staff-system boxes).

Only scores that music21 ships are used, so the tests run without the shared corpus. Each test renders
at most a page or two; the module-scoped fixture renders the main page once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("verovio")
pytest.importorskip("cairosvg")
music21 = pytest.importorskip("music21")

from bytehoven_desktop.training.engrave import verovio as render  # noqa: E402
from bytehoven_desktop.training.engrave.verovio import (  # noqa: E402
    FONTS,
    TRANSPOSE_INTERVALS,
    RenderError,
    RenderStyle,
    load_toolkit,
    page_count,
    random_style,
    render_pages,
    render_pdf,
    render_svg,
)

M21_CORPUS = Path(music21.__file__).parent / "corpus"
MAPLE = M21_CORPUS / "joplin" / "maple_leaf_rag.mxl"
MAZURKA = M21_CORPUS / "chopin" / "mazurka06-2.krn"
PX = 12.0

# A tiny piano score whose direction words include a composer credit (as some ASAP files do) and whose
# part has an instrument name that verovio would print in front of the first system.
TINY_MUSICXML = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1">
  <part-list><score-part id="P1"><part-name>Piano</part-name></score-part></part-list>
  <part id="P1">
    <measure number="1">
      <attributes><divisions>1</divisions><key><fifths>0</fifths></key>
        <time><beats>4</beats><beat-type>4</beat-type></time><staves>2</staves>
        <clef number="1"><sign>G</sign><line>2</line></clef>
        <clef number="2"><sign>F</sign><line>4</line></clef></attributes>
      <direction placement="above"><direction-type><words>W. A. Mozart</words></direction-type>
        <staff>1</staff></direction>
      <direction placement="above"><direction-type><words>Allegretto</words></direction-type>
        <staff>1</staff></direction>
      <note><pitch><step>C</step><octave>5</octave></pitch><duration>4</duration><type>whole</type>
        <staff>1</staff></note>
      <backup><duration>4</duration></backup>
      <note><pitch><step>C</step><octave>3</octave></pitch><duration>4</duration><type>whole</type>
        <staff>2</staff></note>
    </measure>
  </part>
</score-partwise>
"""


def _staff_line_rows(gray: np.ndarray, box) -> np.ndarray:
    """Centres (px) of the staff-line rows inside a box, from the raster alone."""
    x0, y0, x1, y1 = box
    band = gray[max(int(y0) - 3, 0) : int(y1) + 4, int(x0) + 2 : int(x1) - 2]
    dark = (255.0 - band) / 255.0
    profile = dark.mean(axis=1)
    # Staff lines darken (almost) every column of the band; beams and slurs only a part of them.
    rows = (dark > 0.15).mean(axis=1) > 0.8
    centres, r = [], 0
    while r < len(rows):
        if rows[r]:
            s = r
            while r < len(rows) and rows[r]:
                r += 1
            idx = np.arange(max(s - 1, 0), min(r + 1, len(rows)))
            w = profile[idx]
            centres.append(float((idx * w).sum() / w.sum()) + 0.5 + max(int(y0) - 3, 0))
        r += 1
    return np.asarray(centres)


@pytest.fixture(scope="module")
def maple_page() -> render.RenderedPage:
    return next(render_pages(MAPLE, RenderStyle(), px_per_staff_space=PX, pages=[1]))


def test_page_raster_is_white_uint8_with_ink(maple_page):
    g = maple_page.gray
    assert maple_page.page == 1
    assert g.dtype == np.uint8 and g.ndim == 2
    assert g.shape[0] > g.shape[1] > 500  # portrait page
    # White paper (no transparent/black background), some black ink.
    assert np.median(g) == 255
    assert g[0, 0] == g[-1, -1] == g[0, -1] == g[-1, 0] == 255
    assert g.min() < 40


def test_systems_inside_ordered_and_disjoint(maple_page):
    h, w = maple_page.gray.shape
    boxes = maple_page.systems
    assert len(boxes) >= 3
    assert len(maple_page.staves_per_system) == len(boxes)
    assert all(n == 2 for n in maple_page.staves_per_system)  # piano grand staff
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert x1 - x0 > w / 2  # a system spans most of the page width
    for (_, _, _, bottom), (_, top, _, _) in zip(boxes, boxes[1:]):
        assert bottom < top  # top to bottom, no overlap


def test_boxes_hug_the_staff_lines_and_spacing_matches(maple_page):
    for box in maple_page.systems:
        centres = _staff_line_rows(maple_page.gray, box)
        assert len(centres) == 10, centres  # two staves of five lines
        # The box spans top line of the top staff to bottom line of the bottom staff (within 1 px).
        assert abs(centres[0] - box[1]) < 1.0
        assert abs(centres[-1] - box[3]) < 1.0
        spacing = np.diff(centres[:5]).tolist() + np.diff(centres[5:]).tolist()
        assert np.allclose(spacing, PX, atol=0.6), spacing
        # Left/right: the top staff line starts and ends at the box edges.
        row = maple_page.gray[int(box[1])]
        ink = np.flatnonzero(row < 200)
        ink = ink[(ink > box[0] - 4) & (ink < box[2] + 4)]
        assert abs(ink.min() - box[0]) <= 1.5 and abs(ink.max() + 1 - box[2]) <= 1.5


def test_raster_scales_with_px_per_staff_space(maple_page):
    small = next(render_pages(MAPLE, RenderStyle(), px_per_staff_space=6.0, pages=[1]))
    ratio = 6.0 / PX
    assert small.gray.shape[1] == pytest.approx(maple_page.gray.shape[1] * ratio, abs=1)
    assert len(small.systems) == len(maple_page.systems)  # same layout, smaller raster
    for a, b in zip(small.systems, maple_page.systems):
        assert np.allclose(a, np.asarray(b) * ratio, atol=0.05)


def test_humdrum_with_other_font_and_transposition_renders():
    style = RenderStyle(font="Bravura", transpose="-m3", page_margin=120, spacing_system=10)
    tk = load_toolkit(MAZURKA, style)  # a loaded toolkit can be reused instead of a path
    assert page_count(tk) >= 1
    pages = list(render_pages(tk, px_per_staff_space=8.0, pages=[1]))
    assert len(pages) == 1
    page = pages[0]
    assert page.systems and all(n == 2 for n in page.staves_per_system)
    centres = _staff_line_rows(page.gray, page.systems[0])
    assert np.allclose(np.diff(centres[:5]), 8.0, atol=0.6)


def test_transposition_changes_the_music():
    def key_accidentals(style: RenderStyle) -> int:
        return load_toolkit(MAPLE, style).renderToSVG(1).count('class="keyAccid"')

    # Maple Leaf Rag is in A-flat (4 flats per staff): up a major second gives B-flat (2 flats).
    assert key_accidentals(RenderStyle(transpose="+M2")) * 2 == key_accidentals(RenderStyle())


def test_random_style_is_valid_and_renders():
    a = random_style(np.random.default_rng(7))
    assert a == random_style(np.random.default_rng(7))  # reproducible
    assert a.font in FONTS and a.transpose is None
    styles = [random_style(np.random.default_rng(s), transpose=True) for s in range(20)]
    assert all(s.transpose in TRANSPOSE_INTERVALS for s in styles)
    assert len({s.font for s in styles}) > 1 and len({s.page_width for s in styles}) > 1
    for s in styles:
        s.verovio_options()  # all values valid
    page = next(render_pages(MAPLE, styles[0], px_per_staff_space=6.0, pages=[1]))
    assert page.systems


def test_no_credit_or_instrument_text_reaches_the_page(tmp_path):
    score = tmp_path / "tiny.musicxml"
    score.write_text(TINY_MUSICXML)
    tk = load_toolkit(score, RenderStyle())
    raw = tk.renderToSVG(1)
    assert "Mozart" in raw and ">Piano<" in raw  # verovio would print both...
    svg = render_svg(tk, 1)
    assert "Mozart" not in svg and ">Piano<" not in svg  # ...we remove them
    assert "Allegretto" in svg  # real directions stay
    page = next(render_pages(score, RenderStyle(), pages=[1]))
    assert len(page.systems) == 1 and page.staves_per_system == [2]


def test_mei_input(tmp_path):
    score = tmp_path / "tiny.musicxml"
    score.write_text(TINY_MUSICXML)
    mei = tmp_path / "tiny.mei"
    mei.write_text(load_toolkit(score, RenderStyle()).getMEI())
    assert page_count(mei) == 1
    page = next(render_pages(mei, RenderStyle(font="Leland")))
    assert page.staves_per_system == [2]


def test_undrawable_music_font_text_is_dropped_not_tofu():
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg"><g class="tempo"><text>'
        '<tspan font-family="Gootville">\ueca5</tspan><tspan> = 60</tspan></text></g></svg>'
    )
    import xml.etree.ElementTree as ET

    root = ET.fromstring(svg)
    render._clean(root, {})  # no music font usable for text: the glyph goes, the number stays
    assert "\ueca5" not in "".join(root.itertext()) and "= 60" in "".join(root.itertext())
    root = ET.fromstring(svg)
    render._clean(root, {"Gootville": frozenset(), "Leipzig": frozenset({0xECA5})})
    tspan = root.find(".//{http://www.w3.org/2000/svg}tspan")
    assert tspan.get("font-family") == "Leipzig"  # falls back to a font that has the glyph


def test_render_pdf_page_count(tmp_path):
    pymupdf = pytest.importorskip("pymupdf")
    out = tmp_path / "sub" / "mazurka.pdf"
    n = render_pdf(MAZURKA, out, RenderStyle())
    assert n == page_count(MAZURKA) >= 1
    with pymupdf.open(out) as doc:
        assert doc.page_count == n
        page = doc[0]
        assert page.rect.width == pytest.approx(210 / 25.4 * 72, rel=0.01)  # A4 width in points
        assert len(page.get_drawings()) > 100  # vector music, not a blank page


def test_errors(tmp_path):
    bad_zip = tmp_path / "broken.mxl"
    bad_zip.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(RenderError) as exc:
        load_toolkit(bad_zip, RenderStyle())  # verovio itself would abort the process here
    assert exc.value.path == bad_zip and "mxl" in exc.value.reason
    empty = tmp_path / "empty.krn"
    empty.write_text("")
    with pytest.raises(RenderError):
        list(render_pages(empty, RenderStyle()))
    with pytest.raises(RenderError):
        page_count(tmp_path / "missing.krn")
    with pytest.raises(ValueError):
        load_toolkit(MAPLE, RenderStyle(font="Comic Sans"))
    with pytest.raises(ValueError):
        list(render_pages(MAPLE, RenderStyle(), pages=[0]))
    # Pages past the end are skipped: pages=range(1, limit + 1) means "at most limit pages".
    assert list(render_pages(MAPLE, RenderStyle(), pages=[99])) == []
