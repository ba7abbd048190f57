"""MusicXML as the engravers other than verovio read it: unpacked, converted from Humdrum, stripped of
everything that names the piece, and given a page layout of our choosing.

LilyPond (``musicxml2ly``) and MuseScore print what the MusicXML says: credits (title, composer,
"Copyright Musicalion.com"), ``<work>``/``<movement-title>``/``<identification>`` as a title block, the part
name ("Piano") before the first system, lyrics, and the encoder's page layout and system breaks. The
classifier must not read names, and the system breaks must be each engraver's own (so the same score
gives differently broken rows in each), so all of that is removed here and a seeded layout put in.

Humdrum ``**kern`` has no MusicXML of its own: music21 converts it (verovio reads it natively).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .names import CREDIT_TEXT_RE
from .outputs import output_name, short_reason

__all__ = [
    "MusicXMLError",
    "PageLayout",
    "clean_musicxml",
    "humdrum_musicxml",
    "random_layout",
    "read_mxl",
    "score_musicxml",
]

_DOCTYPE = ('<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD MusicXML 3.1 Partwise//EN" '
            '"http://www.musicxml.org/dtds/partwise.dtd">')
# Children of <score-partwise> that only carry the title block, credits, encoder and layout.
_HEADER_TAGS = frozenset({"work", "movement-number", "movement-title", "identification", "defaults", "credit"})
_XML_DECL_RE = re.compile(r"^\s*<\?xml[^>]*\?>", re.S)
_DOCTYPE_RE = re.compile(r"<!DOCTYPE[^>]*>", re.S)


class MusicXMLError(Exception):
    """A score could not be read or converted to MusicXML; ``reason`` says why, briefly."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_mxl(path: Path) -> str:
    """The MusicXML text inside a compressed .mxl (the file named in ``META-INF/container.xml``)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            member = None
            if "META-INF/container.xml" in names:
                root = ET.fromstring(zf.read("META-INF/container.xml"))
                for el in root.iter():
                    if el.tag.rsplit("}", 1)[-1] == "rootfile" and el.get("full-path") in names:
                        member = el.get("full-path")
                        break
            if member is None:
                cands = [n for n in names if not n.startswith("META-INF/") and n.lower().endswith((".xml", ".musicxml"))]
                if not cands:
                    raise MusicXMLError("no MusicXML file inside the .mxl archive")
                member = cands[0]
            data = zf.read(member)
    except (zipfile.BadZipFile, ET.ParseError, OSError, KeyError) as exc:
        raise MusicXMLError(f"unreadable .mxl archive ({exc})") from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    return data.decode("utf-8-sig", errors="replace")


def _humdrum_to_musicxml(path: Path) -> str:
    try:
        import music21
        from music21.musicxml.m21ToXml import GeneralObjectExporter
    except ImportError as exc:  # pragma: no cover - music21 is in the train and test extras
        raise MusicXMLError("Humdrum needs music21 to become MusicXML (pip install music21)") from exc
    try:
        score = music21.converter.parse(str(path), format="humdrum")
        if isinstance(score, music21.stream.Opus):  # several !!!!SEGMENTs: engrave the first
            score = score.scores[0] if score.scores else score
        data = GeneralObjectExporter(score).parse()
    except Exception as exc:  # music21 raises many kinds for input it does not understand
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        raise MusicXMLError(f"could not convert the Humdrum file ({type(exc).__name__}: {first})") from exc
    return data.decode("utf-8") if isinstance(data, bytes) else str(data)


def humdrum_musicxml(path: Path, cache_dir: Path | None = None, timeout: float = 300.0) -> str:
    """MusicXML made by music21 from a Humdrum file, in a child process (music21 can take minutes or
    hang on odd files; the timeout ends it). With ``cache_dir`` each file is converted once, and a
    failure is remembered there too (every engraver asks for the same files)."""
    path = Path(path)
    cached = err = None
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        cached = Path(cache_dir) / f"{output_name(path)}.musicxml"
        err = cached.with_suffix(".error")
        if cached.is_file():
            return cached.read_text(encoding="utf-8")
        if err.is_file():
            raise MusicXMLError(err.read_text(encoding="utf-8").strip())
    out = Path(cache_dir or Path(os.environ.get("TMPDIR", "/tmp"))) / f".{output_name(path)}.{os.getpid()}-{threading.get_ident()}.musicxml"
    try:
        r = subprocess.run([sys.executable, "-m", __name__, str(path), str(out)], capture_output=True, text=True,
                           errors="replace", timeout=timeout)
        ok = r.returncode == 0 and out.is_file()
        reason = "" if ok else "music21: " + re.sub(r"^error:\s*", "", short_reason(r.stdout + r.stderr))
    except subprocess.TimeoutExpired:
        ok, reason = False, f"music21: Humdrum conversion timed out after {timeout:.0f} s"
    if not ok:
        out.unlink(missing_ok=True)
        if err is not None:
            err.write_text(reason + "\n", encoding="utf-8")
        raise MusicXMLError(reason)
    text = out.read_text(encoding="utf-8")
    if cached is not None:
        os.replace(out, cached)
    else:
        out.unlink()
    return text


def score_musicxml(path: Path, cache_dir: Path | None = None) -> str:
    """The MusicXML text of a score file (.mxl, .musicxml/.xml, or Humdrum .krn converted by music21;
    ``cache_dir`` keeps those conversions)."""
    path = Path(path)
    if not path.is_file():
        raise MusicXMLError("file not found")
    suffix = path.suffix.lower()
    if suffix == ".mxl":
        return read_mxl(path)
    if suffix in (".musicxml", ".xml"):
        data = path.read_bytes()
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        return data.decode("utf-8-sig", errors="replace")
    if suffix == ".krn":
        return humdrum_musicxml(path, cache_dir)
    raise MusicXMLError(f"no MusicXML route for {suffix or 'a file without suffix'} files")


@dataclass(frozen=True)
class PageLayout:
    """Paper, staff size and spacing, in the physical units both MusicXML and LilyPond understand."""

    width_mm: float = 210.0
    height_mm: float = 297.0
    staff_space_mm: float = 1.75  # distance of two staff lines; 7 mm staves
    margin_mm: float = 15.0  # left and right
    top_mm: float = 15.0
    bottom_mm: float = 15.0
    system_gap: float = 8.0  # staff spaces between the last line of a system and the first of the next
    staff_gap: float = 6.0  # staff spaces between the two staves of a grand staff
    indent_mm: float = 10.0  # first system (LilyPond only: MuseScore 3 has no first-system indent)

    @property
    def tenths_per_mm(self) -> float:
        return 10.0 / self.staff_space_mm  # MusicXML tenths: a tenth of a staff space


def random_layout(rng: np.random.Generator) -> PageLayout:
    """A printed edition's page: paper from about A5-wide octavo to large folio, 5.6-8.4 mm staves,
    narrow to generous spacing, so the same score breaks into systems differently each time."""
    width = float(rng.uniform(190.0, 260.0))
    return PageLayout(
        width_mm=round(width, 1),
        height_mm=round(width * float(rng.uniform(1.27, 1.45)), 1),
        staff_space_mm=round(float(rng.uniform(1.4, 2.1)), 3),
        margin_mm=round(float(rng.uniform(8.0, 22.0)), 1),
        top_mm=round(float(rng.uniform(8.0, 22.0)), 1),
        bottom_mm=round(float(rng.uniform(8.0, 22.0)), 1),
        system_gap=round(float(rng.uniform(4.0, 13.0)), 1),
        staff_gap=round(float(rng.uniform(4.0, 8.0)), 1),
        indent_mm=round(float(rng.choice([0.0, float(rng.uniform(5.0, 20.0))])), 1),
    )


def _defaults(layout: PageLayout) -> ET.Element:
    t = layout.tenths_per_mm

    def sub(parent: ET.Element, tag: str, text: float | None = None) -> ET.Element:
        el = ET.SubElement(parent, tag)
        if text is not None:
            el.text = f"{text:.2f}"
        return el

    d = ET.Element("defaults")
    sc = sub(d, "scaling")
    sub(sc, "millimeters", 4 * layout.staff_space_mm)
    ET.SubElement(sc, "tenths").text = "40"  # a staff's height
    pl = sub(d, "page-layout")
    sub(pl, "page-height", layout.height_mm * t)
    sub(pl, "page-width", layout.width_mm * t)
    pm = sub(pl, "page-margins")
    pm.set("type", "both")
    sub(pm, "left-margin", layout.margin_mm * t)
    sub(pm, "right-margin", layout.margin_mm * t)
    sub(pm, "top-margin", layout.top_mm * t)
    sub(pm, "bottom-margin", layout.bottom_mm * t)
    sl = sub(d, "system-layout")
    sm = sub(sl, "system-margins")
    sub(sm, "left-margin", 0.0)
    sub(sm, "right-margin", 0.0)
    sub(sl, "system-distance", layout.system_gap * 10)
    sub(sl, "top-system-distance", 40.0)
    st = sub(d, "staff-layout")
    sub(st, "staff-distance", layout.staff_gap * 10)
    return d


def _blank(el: ET.Element) -> None:
    el.text = ""
    el.set("print-object", "no")
    for child in list(el):
        el.remove(child)


# MuseScore writes dynamics it has no MusicXML name for as <other-dynamics> with its own symbol markup
# ("sempre<sym>dynamicPiano</sym><sym>dynamicPiano</sym>"), music21 writes Humdrum's editorial
# brackets as "[" and "]". musicxml2ly turns each into a LilyPond identifier, which fails to parse
# unless it is letters only. So the markup becomes letters and anything else becomes plain words.
_SYM_LETTERS = {"Piano": "p", "Forte": "f", "Mezzo": "m", "Sforzando": "s", "Rinforzando": "r", "Z": "z",
                "Niente": "n"}
_SYM_RE = re.compile(r"<sym>dynamic(\w+)</sym>|<sym>[^<]*</sym>")
_DYNAMIC_RE = re.compile(r"[pmfsrzn]+")  # what LilyPond can make a dynamic mark of


def _plain_dynamic(text: str | None) -> str:
    spaced = re.sub(r"(?<=[^\s>])<sym>dynamic", " <sym>dynamic", text or "", count=1)  # "sempre pp"
    return _SYM_RE.sub(lambda m: _SYM_LETTERS.get(m.group(1) or "", ""), spaced).strip()


def _fix_other_dynamics(direction_type: ET.Element, dyn: ET.Element) -> None:
    words = []
    for other in dyn.findall("other-dynamics"):
        plain = _plain_dynamic(other.text)
        if _DYNAMIC_RE.fullmatch(plain):
            other.text = plain
        else:
            dyn.remove(other)
            if re.search(r"\w", plain):
                words.append(plain)
    if not len(dyn):
        direction_type.remove(dyn)
    for w in words:
        el = ET.SubElement(direction_type, "words")
        el.text = w
        el.set("font-style", "italic")


def clean_musicxml(text: str, layout: PageLayout | None = None) -> str:
    """The score without anything that names it, without the encoder's layout and breaks, and (when
    ``layout`` is given) with that page layout as its ``<defaults>``. Raises MusicXMLError."""
    body = _DOCTYPE_RE.sub("", _XML_DECL_RE.sub("", text, count=1), count=1)
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise MusicXMLError(f"not well-formed MusicXML ({exc})") from exc
    if root.tag != "score-partwise":
        # score-timewise is legal MusicXML but neither our corpus nor musicxml2ly uses it.
        raise MusicXMLError(f"not a partwise MusicXML score (root <{root.tag}>)")
    for el in [c for c in root if c.tag in _HEADER_TAGS]:
        root.remove(el)
    part_list = root.find("part-list")
    if part_list is None:
        raise MusicXMLError("MusicXML without a <part-list>")
    for tag in ("part-name", "part-abbreviation", "group-name", "group-abbreviation"):
        for el in part_list.iter(tag):
            _blank(el)
    for tag in ("part-name-display", "part-abbreviation-display", "group-name-display",
                "group-abbreviation-display"):
        for parent in list(part_list.iter()):
            for el in parent.findall(tag):
                parent.remove(el)
    for part in root.findall("part"):
        for measure in part.findall("measure"):
            measure.attrib.pop("width", None)  # the encoder's measure widths fix its line breaks
            for el in measure.findall("print"):  # system/page breaks, page numbers, layout overrides
                measure.remove(el)
            for note in measure.findall("note"):
                for lyric in note.findall("lyric"):
                    note.remove(lyric)
                for dyn in note.iter("dynamics"):
                    for other in dyn.findall("other-dynamics"):
                        if not _DYNAMIC_RE.fullmatch(_plain_dynamic(other.text)):
                            dyn.remove(other)
            for direction in measure.findall("direction"):
                for dt in direction.findall("direction-type"):
                    for dyn in dt.findall("dynamics"):
                        _fix_other_dynamics(dt, dyn)
                    for words in dt.findall("words"):
                        if CREDIT_TEXT_RE.search("".join(words.itertext())):
                            dt.remove(words)
                    if not len(dt):
                        direction.remove(dt)
                if direction.find("direction-type") is None:
                    measure.remove(direction)
    if layout is not None:
        root.insert(list(root).index(part_list), _defaults(layout))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + _DOCTYPE + "\n" + ET.tostring(root, encoding="unicode")


def _main(argv: list[str]) -> int:
    """``python -m ...engrave.musicxml IN.krn OUT.musicxml``: the child process of humdrum_musicxml."""
    try:
        text = _humdrum_to_musicxml(Path(argv[0]))
    except MusicXMLError as exc:
        print(f"error: {exc.reason}", file=sys.stderr)
        return 1
    tmp = Path(argv[1] + ".part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
