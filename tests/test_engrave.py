"""The three engravers (verovio, LilyPond, MuseScore): a tiny score with a title, a composer, credits, a
part name and a credit-like direction becomes a PDF with staff systems (found by the app's detector)
and none of those words; a broken score gives a result with a reason, not an exception; reruns reuse
what exists. The MusicXML clean-up and MuseScore's crash handling are tested without the programs."""

from __future__ import annotations

import stat
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bytehoven_desktop.training.engrave import ENGRAVERS, engraver
from bytehoven_desktop.training.engrave.musicxml import (MusicXMLError, PageLayout, clean_musicxml,
                                                          random_layout)
from bytehoven_desktop.training.engrave.outputs import short_reason, source_rng

NAMES = ("Quuxly", "Zzyzx", "Mozart", "Haydn", "Piano", "Copyright", "LilyPond", "engraving")


def _measure(n: int, step: str, first: bool = False) -> str:
    attrs = """<attributes><divisions>1</divisions><key><fifths>0</fifths></key>
        <time><beats>4</beats><beat-type>4</beat-type></time><staves>2</staves>
        <clef number="1"><sign>G</sign><line>2</line></clef>
        <clef number="2"><sign>F</sign><line>4</line></clef></attributes>""" if first else ""
    credit = """<direction placement="above"><direction-type><words>W. A. Mozart</words></direction-type>
        <staff>1</staff></direction>
      <direction placement="above"><direction-type><words>Allegretto</words></direction-type>
        <staff>1</staff></direction>""" if first else ""
    brk = '<print new-system="yes"/>' if n == 3 else ""
    upper = "".join(f"""<note><pitch><step>{s}</step><octave>5</octave></pitch><duration>1</duration>
        <voice>1</voice><type>quarter</type><staff>1</staff>{'<lyric><text>Haydn</text></lyric>' if first else ''}</note>"""
                    for s in (step, "E", "G", "E"))
    return f"""<measure number="{n}">{brk}{attrs}{credit}{upper}
      <backup><duration>4</duration></backup>
      <note><pitch><step>{step}</step><octave>3</octave></pitch><duration>4</duration><voice>2</voice>
        <type>whole</type><staff>2</staff></note></measure>"""


TINY = f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD MusicXML 3.1 Partwise//EN" "http://www.musicxml.org/dtds/partwise.dtd">
<score-partwise version="3.1">
  <work><work-title>Sonata Quuxly</work-title></work>
  <movement-title>Allegro Quuxly</movement-title>
  <identification><creator type="composer">Wolfgang Zzyzx</creator><rights>Copyright Zzyzx</rights></identification>
  <defaults><scaling><millimeters>7</millimeters><tenths>40</tenths></scaling></defaults>
  <credit page="1"><credit-words default-x="600" default-y="1500" font-size="24">Sonata Quuxly</credit-words></credit>
  <credit page="1"><credit-words default-x="1100" default-y="1400">Wolfgang Zzyzx</credit-words></credit>
  <part-list><score-part id="P1"><part-name>Piano</part-name><part-abbreviation>Pno.</part-abbreviation></score-part></part-list>
  <part id="P1">{"".join(_measure(i + 1, "CDEFGABC"[i % 8], i == 0) for i in range(12))}</part>
</score-partwise>
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scores") / "tiny.musicxml"
    path.write_text(TINY, encoding="utf-8")
    return path


def test_clean_musicxml_drops_names_layout_and_breaks() -> None:
    import xml.etree.ElementTree as ET

    layout = PageLayout(width_mm=230.0, height_mm=300.0, staff_space_mm=2.0)
    text = clean_musicxml(TINY, layout)
    root = ET.fromstring(text.split("\n", 2)[2])
    for word in ("Quuxly", "Zzyzx", "Mozart", "Haydn", "Pno."):
        assert word not in text
    assert "Allegretto" in text  # a performance direction stays
    assert root.find("credit") is None and root.find("work") is None and root.find("identification") is None
    assert root.find("part-list/score-part/part-name").get("print-object") == "no"
    assert not list(root.iter("print")) and not list(root.iter("lyric"))
    # Exactly one <defaults>: ours (2 mm staff space: 40 tenths = 8 mm; 230 mm = 1150 tenths).
    (defaults,) = root.findall("defaults")
    assert float(defaults.findtext("scaling/millimeters")) == pytest.approx(8.0)
    assert float(defaults.findtext("page-layout/page-width")) == pytest.approx(1150.0)
    assert [c.tag for c in root][:2] == ["defaults", "part-list"]  # the order MusicXML requires
    with pytest.raises(MusicXMLError):
        clean_musicxml("<score-partwise><part-list>")


def test_credit_pattern_catches_names_and_dedications_not_directions() -> None:
    from bytehoven_desktop.training.engrave.names import CREDIT_TEXT_RE

    for text in ("W. A. Mozart", "Für Maria Anna Edle v. Gennzinger", "SONATE in Es 1. Satz", "Op. 10",
                 "Dedicated to Clara", "Copyright Musicalion.com"):
        assert CREDIT_TEXT_RE.search(text), text
    for text in ("Allegretto", "Tempo di Mazurka", "L.H.", "cresc.", "dolce espress.", "Menuett TRIO",
                 "Furioso", "dolcissimo"):
        assert not CREDIT_TEXT_RE.search(text), text


def test_other_dynamics_become_what_musicxml2ly_can_parse() -> None:
    def direction(text: str) -> str:
        return (f"<direction><direction-type><dynamics><other-dynamics>{text}</other-dynamics></dynamics>"
                "</direction-type></direction>")

    score = TINY.replace("<backup>", direction("sempre&lt;sym&gt;dynamicPiano&lt;/sym&gt;&lt;sym&gt;dynamicPiano"
                                               "&lt;/sym&gt;") + direction("&lt;sym&gt;dynamicSforzando&lt;/sym&gt;"
                                               "&lt;sym&gt;dynamicPiano&lt;/sym&gt;") + direction("[") + "<backup>", 1)
    text = clean_musicxml(score)
    assert "<other-dynamics>sp</other-dynamics>" in text  # a dynamic LilyPond can name
    assert ">sempre pp</words>" in text  # text with a dynamic in it becomes words
    assert "[" not in text.split("<part-list>", 1)[1] and "sym" not in text


def test_layouts_are_seeded_per_score_and_engraver() -> None:
    a = random_layout(source_rng(0, "lilypond", "x"))
    assert a == random_layout(source_rng(0, "lilypond", "x"))
    others = {random_layout(source_rng(0, e, n)) for e in ("lilypond", "musescore") for n in "xyz"}
    assert len(others) == 6
    widths = [random_layout(source_rng(0, "lilypond", str(i))).width_mm for i in range(50)]
    assert 190 <= min(widths) and max(widths) <= 260 and np.std(widths) > 8


def test_short_reason_picks_the_error_line() -> None:
    log = "Processing `x.ly'\nParsing...\nx.ly:3:5: error: syntax error, unexpected '}'\nfatal error: failed files"
    assert short_reason(log) == "x.ly:3:5: error: syntax error, unexpected '}'"
    assert short_reason("Traceback (most recent call last):\n  File ...\nKeyError: 'staff'") == "KeyError: 'staff'"
    assert short_reason("") == "no output"


def _text_and_systems(pdf: Path) -> tuple[str, int]:
    import pymupdf

    from bytehoven_desktop.systems import detect_systems

    with pymupdf.open(pdf) as doc:
        text = "".join(page.get_text() for page in doc)
        pix = doc[0].get_pixmap(dpi=150, colorspace=pymupdf.csGRAY, alpha=False)
    gray = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.stride)[:, : pix.width]
    return text, len(detect_systems(np.ascontiguousarray(gray)).systems)


@pytest.mark.parametrize("name", ENGRAVERS)
def test_engraver_makes_a_nameless_pdf_and_reports_failures(name: str, tiny: Path, tmp_path: Path) -> None:
    mod = engraver(name)
    if not mod.available():
        pytest.skip(f"{name} is not installed (tools/setup.sh test installs it)")
    broken = tmp_path / "broken.mxl"  # not a zip archive
    broken.write_bytes(b"PK\x03\x04 this is not a score")
    out = tmp_path / "out"
    good, bad = mod.engrave([tiny, broken], out, seed=3)
    assert good.error is None and good.pdf is not None and good.pdf.is_file(), good.error
    assert bad.pdf is None and bad.error and len(bad.error) < 200
    text, systems = _text_and_systems(good.pdf)
    assert systems >= 1
    for word in NAMES:
        assert word.lower() not in text.lower(), f"{name} printed {word!r}"
    # A rerun makes nothing again: the PDF is reused and the failure is remembered.
    again = mod.engrave([tiny, broken], out, seed=3)
    assert again[0].cached and again[0].pdf == good.pdf and again[1].cached and again[1].error == bad.error
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert [Path(f).suffix for f in files] == [".error", ".pdf"] and files[1] == good.pdf.name
    assert not [p for p in out.iterdir() if ".tmp" in p.name or p.name.startswith(".mscore-")]


def test_lilypond_is_2_24() -> None:
    from bytehoven_desktop.training.engrave import lilypond

    if not lilypond.available():
        pytest.skip("LilyPond is not installed")
    assert lilypond.version().startswith("2.24.")


def test_musescore_survives_a_crash_in_its_batch(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake mscore3 that copies its inputs and dies (SIGSEGV) on one: only that score fails."""
    from bytehoven_desktop.training.engrave import musescore

    fake = tmp_path / "fake-mscore"
    fake.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, shutil, signal, sys
        job = json.load(open(sys.argv[sys.argv.index("-j") + 1]))
        for item in job:
            print(f"convert <{{item['in']}}>...", file=sys.stderr, flush=True)
            data = open(item["in"], encoding="utf-8").read()
            if "CRASH" in data:
                os.kill(os.getpid(), signal.SIGSEGV)
            if item["out"].endswith(".mscx"):
                shutil.copy(item["in"], item["out"])
            else:
                open(item["out"], "wb").write(b"%PDF-1.4 " + data[-40:].encode())
            print("... success!", file=sys.stderr, flush=True)
        """))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("BYTEHOVEN_MSCORE", str(fake))
    scores = []
    for i in range(4):
        p = tmp_path / f"s{i}.musicxml"
        p.write_text(TINY.replace("Allegretto", "CRASH" if i == 1 else f"Allegretto {i}"), encoding="utf-8")
        scores.append(p)
    res = musescore.engrave(scores, tmp_path / "out", batch=4)
    assert [r.error is None for r in res] == [True, False, True, True]
    assert "crashed" in res[1].error
    assert res[0].pdf.read_bytes().startswith(b"%PDF")
    assert res[1].error.startswith("musescore: MuseScore crashed")
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".mscore-")]


def test_musescore_style_replaces_the_imported_one() -> None:
    from bytehoven_desktop.training.engrave import musescore

    style = musescore.MuseStyle(PageLayout(width_mm=254.0, staff_space_mm=1.5), musescore.FONTS[1], 1.4)
    mscx = "<museScore><Score><Style><Spatium>1.76389</Spatium></Style><Part/></Score></museScore>"
    out = musescore._restyle(mscx, style)
    assert out.count("<Style>") == 1 and "<Spatium>1.5000</Spatium>" in out and "1.76389" not in out
    assert "<pageWidth>10.0000</pageWidth>" in out and "<showPageNumber>0</showPageNumber>" in out
    assert "<musicalSymbolFont>Bravura</musicalSymbolFont>" in out
    assert "<Style>" in musescore._restyle("<museScore><Score><Part/></Score></museScore>", style)
