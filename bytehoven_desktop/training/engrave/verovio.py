"""Render symbolic scores with verovio into page rasters plus exact staff-system boxes, or engrave
them into PDFs (``engrave``, the API all three engravers share).

Used by the training pipeline (page images of scores in varied engraving styles), by the detection
benchmark (verovio's own layout is the ground truth for our OpenCV staff-system detector) and to make a
demo PDF.

Pipeline per page: verovio SVG -> ElementTree (ground truth + clean-up) -> cairosvg -> grayscale array.

* Rasterisation must go through cairosvg: PyMuPDF's SVG import ignores the nested ``<svg viewBox>`` that
  verovio emits and draws blank pages.
* Verovio writes the SMuFL *text* glyphs (metronome notes in tempo marks, some dynamics) as ``<text>``
  in the music font, which it embeds only as a WOFF2 ``@font-face``. cairosvg ignores ``@font-face`` and
  would draw empty boxes ("tofu"), so we register verovio's own font files with fontconfig (which cairo
  uses); if that is impossible those glyphs are dropped instead.
* Nothing that names the piece or the composer may reach the page, or the classifier learns to read it:
  header/footer are off, instrument labels are removed, and direction texts that look like a credit line
  (composer names, catalogue numbers, copyright notes; some ASAP/DCML files encode "J. Haydn",
  "W.A. Mozart", "SONATE in G" as ordinary <direction> words) are removed from the SVG.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import functools
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence, Union

import cv2
import numpy as np

from .musicxml import MusicXMLError, read_mxl
from .names import CREDIT_TEXT_RE
from .outputs import EngraveResult, Target, source_rng, targets

if TYPE_CHECKING:
    import verovio

    # A score path, or a toolkit already returned by load_toolkit (saves a second load: Humdrum files
    # with many pages take seconds to import).
    ScoreSource = Union[Path, str, "verovio.toolkit"]

__all__ = [
    "FONTS",
    "NAME",
    "RenderError",
    "RenderStyle",
    "RenderedPage",
    "TRANSPOSE_INTERVALS",
    "available",
    "engrave",
    "load_toolkit",
    "page_count",
    "random_style",
    "render_pages",
    "render_pdf",
    "render_svg",
    "version",
]

# Music fonts bundled with verovio 6.4 (``verovio/data/<name>.xml``); all five were checked to load
# (distinct glyph outlines in the SVG) and render. An unknown name makes verovio log an error and
# silently fall back to Leipzig, so we validate names ourselves.
FONTS: tuple[str, ...] = ("Leipzig", "Bravura", "Gootville", "Leland", "Petaluma")

# Intervals ``random_style(transpose=True)`` picks from: small enough that piano writing stays playable
# and within verovio's comfortable ledger-line range.
TRANSPOSE_INTERVALS: tuple[str, ...] = ("-M3", "-m3", "-M2", "-m2", "+m2", "+M2", "+m3", "+M3")

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
_SVG = "{%s}" % SVG_NS
# Serialise SVG as the default namespace and xlink:href under its usual prefix, as verovio wrote them
# (ElementTree would otherwise invent ns0:/ns1: prefixes; the SVG namespace is the common idiom).
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)

# Verovio's SVG coordinates are page units (tenths of mm) times this factor (DEFINITION_FACTOR).
_DEFINITION_FACTOR = 10
# Default verovio 'unit' is 9 (half a staff space, in tenths of mm) -> 180 SVG units per staff space.
# Only used when a page has no 5-line staff to measure.
_NOMINAL_STAFF_SPACE = 2 * 9.0 * _DEFINITION_FACTOR

SUFFIXES: tuple[str, ...] = (".krn", ".mxl", ".musicxml", ".xml", ".mei")


# Group classes whose whole content is removed: instrument names (verovio prints "Piano" in front of
# Humdrum scores) and any page header/footer that might survive header/footer "none".
_REMOVED_CLASSES = frozenset({"label", "labelAbbr", "pgHead", "pgHead2", "pgFoot", "pgFoot2"})

# Intervals ("+M2", "-m3", "A4"), semitones ("-3") or a target tonic ("Bb"): only the characters are
# checked, verovio does the parsing.
_TRANSPOSE_RE = re.compile(r"^[+-]?[A-Ga-gPMmAd#bsfx0-9+-]+$")
_NUM_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_TRANSFORM_RE = re.compile(r"(matrix|translate|scale|rotate|skewX|skewY)\s*\(([^)]*)\)")


class RenderError(Exception):
    """A score could not be loaded or rendered (verovio refused it or produced zero pages)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


@dataclass(frozen=True)
class RenderStyle:
    """Engraving options handed to verovio. ``None`` keeps verovio's default."""

    font: str = "Leipzig"  # one of FONTS
    # Verovio 'scale' (percent). It only sets the SVG's nominal pixel size, not the layout; the raster
    # size comes from ``px_per_staff_space`` instead. Layout density is set by page_width/page_height.
    scale: int = 40
    page_width: int = 2100  # verovio units (tenths of mm); staff space is 1.8 mm -> A4 = 2100 x 2970
    page_height: int = 2970
    spacing_staff: int | None = None  # 'spacingStaff' (MEI units, default 12)
    spacing_system: int | None = None  # 'spacingSystem' (MEI units, default 4)
    spacing_linear: float | None = None  # 'spacingLinear' (default 0.25)
    spacing_non_linear: float | None = None  # 'spacingNonLinear' (default 0.6)
    transpose: str | None = None  # 'transpose', e.g. "+M2", "-m3"
    page_margin: int | None = None  # all four page margins (tenths of mm, verovio default 50)
    justify_vertically: bool = False  # 'justifyVertically': spread systems over the page like print

    def verovio_options(self) -> dict[str, object]:
        """The verovio option dict for this style (header/footer always off)."""
        if self.font not in FONTS:
            raise ValueError(f"unknown verovio font {self.font!r}; choose from {FONTS}")
        opts: dict[str, object] = {
            "font": self.font,
            "scale": int(self.scale),
            "pageWidth": int(self.page_width),
            "pageHeight": int(self.page_height),
            # No title/composer block and no "engraved by" footer: the classifier must not read names.
            "header": "none",
            "footer": "none",
            # Same ids for the same input: makes SVGs reproducible/diffable.
            "xmlIdChecksum": True,
            # cairosvg ignores @font-face anyway (we register the fonts with fontconfig instead); not
            # embedding ~60-100 kB of base64 font CSS per page saves ~40 ms of CSS parsing per page.
            "smuflTextFont": "none",
        }
        if self.spacing_staff is not None:
            opts["spacingStaff"] = int(self.spacing_staff)
        if self.spacing_system is not None:
            opts["spacingSystem"] = int(self.spacing_system)
        if self.spacing_linear is not None:
            opts["spacingLinear"] = float(self.spacing_linear)
        if self.spacing_non_linear is not None:
            opts["spacingNonLinear"] = float(self.spacing_non_linear)
        if self.transpose:
            # Verovio silently ignores a transposition it cannot parse; catch obvious typos here.
            if not _TRANSPOSE_RE.match(self.transpose):
                raise ValueError(f"bad transpose value {self.transpose!r} (e.g. '+M2', '-m3', 'P4')")
            opts["transpose"] = self.transpose
        if self.page_margin is not None:
            m = int(self.page_margin)
            opts.update(pageMarginTop=m, pageMarginBottom=m, pageMarginLeft=m, pageMarginRight=m)
        if self.justify_vertically:
            opts["justifyVertically"] = True
        return opts


def random_style(rng: np.random.Generator, transpose: bool = False) -> RenderStyle:
    """A randomly varied engraving style for training data.

    Varies font, layout density (page size at a fixed physical staff size, so more or fewer bars per
    system), staff/system distances, horizontal spacing and margins. ``transpose=True`` also picks an
    interval from TRANSPOSE_INTERVALS.
    """
    font = str(rng.choice(FONTS))
    # Wider "paper" at the same staff size = smaller staves relative to the page, like a dense edition.
    page_width = int(rng.integers(1700, 2701))
    page_height = int(round(page_width * rng.uniform(1.28, 1.48)))
    return RenderStyle(
        font=font,
        scale=40,
        page_width=page_width,
        page_height=page_height,
        spacing_staff=int(rng.integers(7, 19)),
        spacing_system=int(rng.integers(3, 17)),
        spacing_linear=round(float(rng.uniform(0.15, 0.35)), 3),
        spacing_non_linear=round(float(rng.uniform(0.45, 0.75)), 3),
        transpose=str(rng.choice(TRANSPOSE_INTERVALS)) if transpose else None,
        page_margin=int(rng.integers(40, 201)),
        justify_vertically=bool(rng.random() < 0.6),
    )


@dataclass(frozen=True)
class RenderedPage:
    """One rendered page and its ground-truth staff systems."""

    page: int  # 1-based
    gray: np.ndarray  # uint8 HxW, white paper 255, ink 0
    # Per verovio g.system, in document order (top to bottom): (x0, y0, x1, y1) in continuous pixel
    # coordinates of ``gray`` (pixel (r, c) covers [c, c+1) x [r, r+1)). y0/y1 are the centre lines of the
    # top line of the top staff and the bottom line of the bottom staff; x0/x1 the leftmost and rightmost
    # staff-line x.
    systems: list[tuple[float, float, float, float]]
    staves_per_system: list[int]


# --------------------------------------------------------------------------------------------------
# verovio


_log_lock = threading.Lock()
_log_quieted = False


def _verovio():  # imported lazily: verovio is a training-only dependency
    global _log_quieted
    import verovio

    with _log_lock:
        if not _log_quieted:
            # Verovio prints a warning line for every unsupported MusicXML/Humdrum feature; over thousands
            # of scores that drowns everything else. Errors still show.
            verovio.enableLog(verovio.LOG_ERROR)
            _log_quieted = True
    return verovio


def _read_mxl(path: Path) -> str:
    """The MusicXML text inside a compressed .mxl.

    Verovio's own zip reader aborts the whole process (C++ std::length_error) on a corrupt archive, so we
    unzip in Python and hand verovio plain MusicXML.
    """
    try:
        return read_mxl(path)
    except MusicXMLError as exc:
        raise RenderError(path, exc.reason) from exc


def load_toolkit(path: Path, style: RenderStyle = RenderStyle()) -> "verovio.toolkit":
    """A verovio toolkit with ``path`` loaded and laid out in ``style``. Raises RenderError."""
    path = Path(path)
    verovio = _verovio()
    if not path.is_file():
        raise RenderError(path, "file not found")
    tk = verovio.toolkit()
    # Options must be set before loading: layout (page size, spacing, transposition) happens on load.
    if not tk.setOptions(style.verovio_options()):
        raise RenderError(path, f"verovio rejected the options of {style}")
    try:
        if path.suffix.lower() == ".mxl":
            ok = tk.loadData(_read_mxl(path))
        else:
            ok = tk.loadFile(str(path))
    except RenderError:
        raise
    except Exception as exc:  # SWIG wraps some C++ exceptions
        raise RenderError(path, f"verovio failed to load: {exc}") from exc
    if not ok:
        raise RenderError(path, "verovio could not load the file")
    if tk.getPageCount() < 1:
        raise RenderError(path, "verovio produced zero pages")
    return tk


def _toolkit(source: ScoreSource, style: RenderStyle) -> "verovio.toolkit":
    if isinstance(source, (str, os.PathLike)):
        return load_toolkit(Path(source), style)
    return source


def page_count(source: ScoreSource, style: RenderStyle = RenderStyle()) -> int:
    """Number of pages of a score (a path, laid out in ``style``) or of a toolkit from load_toolkit."""
    return int(_toolkit(source, style).getPageCount())


# --------------------------------------------------------------------------------------------------
# SMuFL text glyphs


class _FcFontSet(ctypes.Structure):
    _fields_ = [("nfont", ctypes.c_int), ("sfont", ctypes.c_int), ("fonts", ctypes.POINTER(ctypes.c_void_p))]


# Code points whose coverage we record per music font: SMuFL's private-use block plus the Unicode
# music symbols and space that verovio may put into a music-font <tspan>.
_PROBE_CODEPOINTS = (0x20, *range(0x2669, 0x2670), *range(0xE000, 0xF900))


def _fontconfig_coverage(fc, family: str) -> frozenset[int]:
    """Code points (of _PROBE_CODEPOINTS) that fontconfig's font ``family`` has a glyph for."""
    pat = fc.FcNameParse(family.encode())
    objs = fc.FcObjectSetCreate()
    fc.FcObjectSetAdd(objs, b"charset")
    fs = fc.FcFontList(None, pat, objs)
    covered: set[int] = set()
    try:
        for i in range(fs.contents.nfont if fs else 0):
            cs = ctypes.c_void_p()
            if fc.FcPatternGetCharSet(fs.contents.fonts[i], b"charset", 0, ctypes.byref(cs)) == 0:
                covered.update(c for c in _PROBE_CODEPOINTS if fc.FcCharSetHasChar(cs, c))
    finally:
        if fs:
            fc.FcFontSetDestroy(fs)
        fc.FcObjectSetDestroy(objs)
        fc.FcPatternDestroy(pat)
    return frozenset(covered)


@functools.lru_cache(maxsize=1)
def _registered_text_fonts() -> dict[str, frozenset[int]]:
    """Make verovio's music fonts known to fontconfig (hence cairo) in this process.

    Returns {font: code points it can draw} for the fonts that were registered. Verovio's WOFF2 files are
    subsets (Gootville has no metronome glyphs at all), so coverage is checked per glyph in _clean.
    """
    try:
        from importlib.resources import files

        import verovio

        data_dir = Path(str(files("verovio") / "data"))
        lib = ctypes.util.find_library("fontconfig")
        if lib is None:
            return {}
        fc = ctypes.CDLL(lib)
        fc.FcConfigAppFontAddFile.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        fc.FcConfigAppFontAddFile.restype = ctypes.c_int
        fc.FcNameParse.argtypes = [ctypes.c_char_p]
        fc.FcNameParse.restype = ctypes.c_void_p
        fc.FcObjectSetCreate.restype = ctypes.c_void_p
        fc.FcObjectSetAdd.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        fc.FcFontList.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        fc.FcFontList.restype = ctypes.POINTER(_FcFontSet)
        fc.FcPatternGetCharSet.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p)]
        fc.FcCharSetHasChar.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        fc.FcFontSetDestroy.argtypes = [ctypes.c_void_p]
        fc.FcObjectSetDestroy.argtypes = [ctypes.c_void_p]
        fc.FcPatternDestroy.argtypes = [ctypes.c_void_p]
        version = re.sub(r"[^\w.-]", "_", verovio.toolkit().getVersion())
        uid = os.getuid() if hasattr(os, "getuid") else 0
        cache = Path(tempfile.gettempdir()) / f"bytehoven-verovio-fonts-{version}-{uid}"
        cache.mkdir(parents=True, exist_ok=True)
    except Exception:
        return {}
    out: dict[str, frozenset[int]] = {}
    for font in FONTS:
        try:
            woff = cache / f"{font}.woff2"
            if not woff.is_file():
                css = (data_dir / f"{font}.css").read_text()
                m = re.search(r"base64,([A-Za-z0-9+/=]+)", css)
                if m is None:
                    continue
                tmp = woff.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(base64.b64decode(m.group(1)))
                os.replace(tmp, woff)  # atomic: parallel workers never see half a font
            # FcConfigAppFontAddFile fails (returns 0) where FreeType cannot read WOFF2.
            if fc.FcConfigAppFontAddFile(None, str(woff).encode()):
                out[font] = _fontconfig_coverage(fc, font)
        except Exception:
            continue
    return out


# --------------------------------------------------------------------------------------------------
# SVG geometry


def _parse_transform(text: str | None) -> np.ndarray:
    """SVG transform attribute -> 3x3 affine matrix."""
    m = np.eye(3)
    if not text:
        return m
    for name, args in _TRANSFORM_RE.findall(text):
        v = [float(a) for a in _NUM_RE.findall(args)]
        t = np.eye(3)
        if name == "matrix" and len(v) == 6:
            t[0, :] = v[0], v[2], v[4]
            t[1, :] = v[1], v[3], v[5]
        elif name == "translate":
            t[0, 2] = v[0]
            t[1, 2] = v[1] if len(v) > 1 else 0.0
        elif name == "scale":
            t[0, 0] = v[0]
            t[1, 1] = v[1] if len(v) > 1 else v[0]
        elif name == "rotate":
            a = np.deg2rad(v[0])
            cx, cy = (v[1], v[2]) if len(v) == 3 else (0.0, 0.0)
            r = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
            t = _translate(cx, cy) @ r @ _translate(-cx, -cy)
        elif name == "skewX":
            t[0, 1] = np.tan(np.deg2rad(v[0]))
        elif name == "skewY":
            t[1, 0] = np.tan(np.deg2rad(v[0]))
        m = m @ t
    return m


def _translate(x: float, y: float) -> np.ndarray:
    t = np.eye(3)
    t[0, 2], t[1, 2] = x, y
    return t


def _classes(el: ET.Element) -> list[str]:
    return (el.get("class") or "").split()


@dataclass
class _SystemGeom:
    lines: list[tuple[float, float, float, float]]  # (x0, y0, x1, y1) in viewBox units, page origin
    staves: dict[int, int]  # id(measure element or 0) -> number of staves drawn in it


@dataclass(frozen=True)
class _PageSvg:
    """A parsed and cleaned verovio page."""

    root: ET.Element
    view_box: tuple[float, float, float, float]  # of the inner definition-scale svg (x, y, w, h)
    systems: list[_SystemGeom]
    staff_space: float  # median staff-line distance in viewBox units


def _collect_systems(inner: ET.Element, view_box: Sequence[float]) -> tuple[list[_SystemGeom], list[float]]:
    """Staff lines of every g.system (page coordinates = viewBox units minus the viewBox origin)."""
    systems: list[_SystemGeom] = []
    gaps: list[float] = []

    def walk(el: ET.Element, m: np.ndarray, system: _SystemGeom | None, measure: int) -> None:
        m = m @ _parse_transform(el.get("transform"))
        cls = _classes(el)
        if el.tag == _SVG + "g":
            if "system" in cls:
                system = _SystemGeom(lines=[], staves={})
                systems.append(system)
            elif "measure" in cls:
                measure = id(el)
            elif "staff" in cls and system is not None:
                ys: list[float] = []
                # The staff lines are the direct <path> children of g.staff ("M x0 y L x1 y"); ledger
                # lines, notes, clefs etc. sit in nested groups.
                for p in el.findall(_SVG + "path"):
                    nums = [float(n) for n in _NUM_RE.findall(p.get("d") or "")]
                    if len(nums) < 4:
                        continue
                    pts = m @ np.array([nums[0::2][:2], nums[1::2][:2], [1.0, 1.0]])
                    x0, x1 = sorted((pts[0, 0], pts[0, 1]))
                    y0, y1 = sorted((pts[1, 0], pts[1, 1]))
                    system.lines.append((x0, y0, x1, y1))
                    ys.append((y0 + y1) / 2)
                if ys:
                    system.staves[measure] = system.staves.get(measure, 0) + 1
                    ys.sort()
                    gaps.extend(b - a for a, b in zip(ys, ys[1:]))
        for child in el:
            walk(child, m, system, measure)

    walk(inner, _translate(-view_box[0], -view_box[1]), None, 0)
    return systems, gaps


def _clean(root: ET.Element, text_fonts: dict[str, frozenset[int]]) -> None:
    """Remove instrument labels and credit-like texts; make SMuFL text glyphs drawable or drop them."""
    parent = {c: p for p in root.iter() for c in p}
    doomed: list[ET.Element] = []
    for el in root.iter():
        tag = el.tag
        if tag == _SVG + "g" and _REMOVED_CLASSES.intersection(_classes(el)):
            doomed.append(el)
        elif tag == _SVG + "text":
            if CREDIT_TEXT_RE.search("".join(el.itertext())):
                doomed.append(el)
        elif tag == _SVG + "tspan":
            fam = el.get("font-family")
            if fam in FONTS:
                need = {ord(c) for c in (el.text or "")}
                # The page's own font first, then verovio's fallback fonts.
                usable = [f for f in (fam, "Leipzig", "Bravura") if need <= text_fonts.get(f, frozenset())]
                if usable:
                    el.set("font-family", usable[0])
                else:
                    doomed.append(el)  # better nothing than an empty box ("tofu")
    for el in doomed:
        p = parent.get(el)
        if p is not None and el in list(p):
            p.remove(el)


def _parse_page(svg: str, clean: bool = True) -> _PageSvg:
    root = ET.fromstring(svg)
    inner = root.find(_SVG + "svg")
    if inner is None or inner.get("viewBox") is None:
        raise ValueError("unexpected verovio SVG: no nested <svg viewBox>")
    vb = tuple(float(v) for v in _NUM_RE.findall(inner.get("viewBox", "")))
    if len(vb) != 4 or vb[2] <= 0 or vb[3] <= 0:
        raise ValueError(f"unexpected viewBox {inner.get('viewBox')!r}")
    for attr in ("x", "y", "width", "height"):
        # We rely on the inner svg filling its parent (100%); verovio never sets these.
        if inner.get(attr) not in (None, "0", "100%"):
            raise ValueError(f"unexpected verovio SVG attribute {attr}={inner.get(attr)!r}")
    if clean:
        _clean(root, _registered_text_fonts())
    systems, gaps = _collect_systems(inner, vb)
    staff_space = statistics.median(gaps) if gaps else _NOMINAL_STAFF_SPACE
    return _PageSvg(root=root, view_box=vb, systems=systems, staff_space=staff_space)  # type: ignore[arg-type]


def _serialize(page: _PageSvg, width: str, height: str) -> bytes:
    """The cleaned SVG with the outer size replaced; the inner viewBox then maps uniformly onto it."""
    root = page.root
    root.set("width", width)
    root.set("height", height)
    root.attrib.pop("viewBox", None)
    return ET.tostring(root, encoding="utf-8")


def render_svg(tk, page: int, px_per_staff_space: float = 12.0) -> str:
    """The cleaned SVG of one page (1-based) of a loaded toolkit, exactly as it is rasterised.

    Its width/height are the raster size in px for ``px_per_staff_space``. Handy for debugging and for
    checking what reaches the page.
    """
    parsed = _parse_page(tk.renderToSVG(int(page)))
    k = px_per_staff_space / parsed.staff_space
    _, _, vw, vh = parsed.view_box
    return _serialize(parsed, f"{vw * k:.6f}", f"{vh * k:.6f}").decode("utf-8")


# --------------------------------------------------------------------------------------------------
# rasters and PDF


def _to_gray(png: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError("cairosvg produced an undecodable PNG")
    if img.ndim == 2:
        return img
    gray = cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY)
    if img.shape[2] == 4:
        alpha = img[:, :, 3]
        if alpha.min() < 255:  # composite onto white paper
            a = alpha.astype(np.uint16)
            gray = ((gray.astype(np.uint16) * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)
    return np.ascontiguousarray(gray)


def _cairo_gray(svg: bytes) -> np.ndarray:
    """Rasterise with cairosvg onto white paper; returns uint8 gray.

    Fast path: draw with cairosvg's PNGSurface but read the cairo image buffer directly instead of
    encoding and decoding a PNG (saves ~85 ms of ~0.5 s per page). Falls back to the public
    ``svg2png`` + ``cv2.imdecode`` route if cairosvg's internals ever change.
    """
    import cairosvg

    try:
        from cairosvg.parser import Tree
        from cairosvg.surface import PNGSurface

        surface = PNGSurface(Tree(bytestring=svg), None, 96, background_color="white")
        img = surface.cairo
        img.flush()
        h, w, stride = img.get_height(), img.get_width(), img.get_stride()
        buf = np.frombuffer(img.get_data(), np.uint8).reshape(h, stride)[:, : 4 * w].reshape(h, w, 4)
        # cairo ARGB32 is a native-endian 32-bit word: bytes B, G, R, A on little-endian machines.
        bgra = buf if sys.byteorder == "little" else buf[:, :, ::-1]
        gray = cv2.cvtColor(np.ascontiguousarray(bgra[:, :, :3]), cv2.COLOR_BGR2GRAY)
        alpha = bgra[:, :, 3]
        if alpha.min() < 255:  # premultiplied colour: over white = c + (255 - a)
            gray = np.clip(gray.astype(np.int16) + (255 - alpha.astype(np.int16)), 0, 255).astype(np.uint8)
        surface.finish()
        return gray
    except (ImportError, AttributeError, TypeError):
        pass
    # background_color: paint white paper so the PNG has no transparency to composite.
    return _to_gray(cairosvg.svg2png(bytestring=svg, background_color="white"))


def _mupdf_gray(page: _PageSvg, k: float) -> np.ndarray:
    """Rasterise with MuPDF, about ten times faster than cairosvg.

    MuPDF ignores a nested ``<svg viewBox>`` (verovio's page) and CSS style sheets (where
    verovio says ``path {stroke: currentColor}``), which is why it draws blank or line-less
    pages as is. The nested svg is therefore turned into a ``<g>`` with the equivalent
    transform, and the stroke colour is set as an inherited attribute.
    """
    import pymupdf

    root = page.root
    vx, vy, vw, vh = page.view_box
    inner = root.find(_SVG + "svg")
    if inner is not None:
        inner.tag = _SVG + "g"
        inner.attrib.pop("viewBox", None)
        inner.set("transform", f"scale({k:.8f}) translate({-vx:.4f},{-vy:.4f})")
        inner.set("color", "black")
        inner.set("stroke", "black")
        inner.set("fill", "black")
        for text in inner.iter(_SVG + "text"):
            text.set("stroke", "none")
        # verovio hides these with CSS (``g.placeholder {visibility:hidden}``), which MuPDF ignores.
        hidden = [(parent, g) for parent in inner.iter() for g in parent
                  if g.tag == _SVG + "g" and {"placeholder", "cursor"}.intersection(_classes(g))]
        for parent, g in hidden:
            parent.remove(g)
    for style in list(root.iter(_SVG + "style")):
        style.text = ""
    w, h = max(1, round(vw * k)), max(1, round(vh * k))
    root.set("width", str(w))
    root.set("height", str(h))
    root.attrib.pop("viewBox", None)
    data = ET.tostring(root, encoding="utf-8")
    with pymupdf.open(stream=data, filetype="svg") as doc:
        pix = doc[0].get_pixmap(colorspace=pymupdf.csGRAY, alpha=False)
    gray = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.stride)[:, : pix.width]
    return np.ascontiguousarray(gray)


# "mupdf" (fast, the default for training data) or "cairo" (cairosvg, the reference).
RASTERIZER = os.environ.get("BYTEHOVEN_RASTERIZER", "mupdf")


def _rasterize(page: _PageSvg, px_per_staff_space: float) -> tuple[np.ndarray, float]:
    """(gray image, pixels per viewBox unit)."""
    k = px_per_staff_space / page.staff_space
    _, _, vw, vh = page.view_box
    if RASTERIZER == "mupdf":
        return _mupdf_gray(page, k), k
    return _cairo_gray(_serialize(page, f"{vw * k:.6f}", f"{vh * k:.6f}")), k


def render_pages(
    path: ScoreSource,
    style: RenderStyle = RenderStyle(),
    px_per_staff_space: float = 12.0,
    pages: Iterable[int] | None = None,
) -> Iterator[RenderedPage]:
    """Render pages (1-based numbers, default all; numbers past the end are skipped) of a score as
    grayscale rasters with system boxes.

    ``path`` may also be a toolkit from load_toolkit (``style`` is then ignored: layout happened at
    load). The raster size is chosen per page so that the distance between two staff lines (median over
    the page's staves) is ``px_per_staff_space`` pixels.
    """
    if px_per_staff_space <= 0:
        raise ValueError("px_per_staff_space must be positive")
    tk = _toolkit(path, style)
    where = path if isinstance(path, (str, os.PathLike)) else "<verovio toolkit>"
    n = tk.getPageCount()
    wanted = range(1, n + 1) if pages is None else list(pages)
    if any(int(p) < 1 for p in wanted):
        raise ValueError(f"page numbers are 1-based, got {list(wanted)} for {where}")
    # Numbers past the last page are skipped, so pages=range(1, limit + 1) means "at most limit pages".
    wanted = [int(p) for p in wanted if int(p) <= n]
    for p in wanted:
        svg = tk.renderToSVG(int(p))
        try:
            parsed = _parse_page(svg)
        except (ET.ParseError, ValueError) as exc:
            raise RenderError(where, f"page {p}: {exc}") from exc
        gray, k = _rasterize(parsed, px_per_staff_space)
        boxes: list[tuple[float, float, float, float]] = []
        staves: list[int] = []
        for s in parsed.systems:
            if not s.lines:
                continue  # a system without staff lines has nothing to detect
            arr = np.asarray(s.lines) * k
            boxes.append(
                (float(arr[:, 0].min()), float(arr[:, 1].min()), float(arr[:, 2].max()), float(arr[:, 3].max()))
            )
            staves.append(max(s.staves.values()))
        yield RenderedPage(page=int(p), gray=gray, systems=boxes, staves_per_system=staves)


def render_pdf(path: Path, out_pdf: Path, style: RenderStyle = RenderStyle(), max_pages: int | None = None) -> int:
    """Write the pages of a score (the first ``max_pages``; None: all) as a vector PDF (physical page
    size = verovio page size in mm).

    Returns the number of pages written.
    """
    import cairosvg
    import pymupdf

    tk = load_toolkit(Path(path), style)
    n = tk.getPageCount() if max_pages is None else min(max_pages, tk.getPageCount())
    out = pymupdf.open()
    try:
        for p in range(1, n + 1):
            try:
                parsed = _parse_page(tk.renderToSVG(p))
            except (ET.ParseError, ValueError) as exc:
                raise RenderError(path, f"page {p}: {exc}") from exc
            _, _, vw, vh = parsed.view_box
            unit_mm = 1.0 / (10 * _DEFINITION_FACTOR)  # viewBox unit = 1/10 verovio unit = 1/100 mm
            svg = _serialize(parsed, f"{vw * unit_mm:.4f}mm", f"{vh * unit_mm:.4f}mm")
            with pymupdf.open("pdf", cairosvg.svg2pdf(bytestring=svg)) as one:
                out.insert_pdf(one)
        out_pdf = Path(out_pdf)
        out_pdf.parent.mkdir(parents=True, exist_ok=True)
        out.save(str(out_pdf), garbage=3, deflate=True)
    finally:
        out.close()
    return n


# --------------------------------------------------------------------------------------------------
# the engraver API shared with lilypond.py and musescore.py

NAME = "verovio"


def available() -> bool:
    try:
        _verovio()
        import cairosvg  # noqa: F401
    except ImportError:
        return False
    return True


def version() -> str | None:
    """verovio's version, or None when it is not installed."""
    try:
        return str(_verovio().toolkit().getVersion())
    except ImportError:
        return None


def _engrave_one(target: Target, seed: int) -> EngraveResult:
    t0 = time.perf_counter()
    style = random_style(source_rng(seed, NAME, target.name))
    tmp = target.tmp(".pdf")
    try:
        render_pdf(target.source, tmp, style)
    except RenderError as exc:
        tmp.unlink(missing_ok=True)
        return target.fail(f"verovio: {exc.reason}", time.perf_counter() - t0)
    except Exception as exc:  # a bad score must not stop a batch of thousands
        tmp.unlink(missing_ok=True)
        return target.fail(f"verovio: {type(exc).__name__}: {str(exc)[:120]}", time.perf_counter() - t0)
    return target.succeed(tmp, time.perf_counter() - t0)


def engrave(sources: Sequence[Path], out_dir: Path, seed: int = 0, jobs: int = 1,
            names: Sequence[str] | None = None, retry_failed: bool = False) -> list[EngraveResult]:
    """Engrave each source into ``out_dir/<name>.pdf`` in a seeded ``random_style`` (results in the order
    of ``sources``; ``jobs`` worker processes). Never raises for a bad score: its result says why."""
    tgts = targets(sources, out_dir, names)
    if not available():
        return [EngraveResult(t.source, None, "verovio is not installed (pip install '.[train]')") for t in tgts]
    results = {k: t.done(retry_failed) for k, t in enumerate(tgts)}
    todo = [(k, t) for k, t in enumerate(tgts) if results[k] is None]
    if jobs <= 1 or len(todo) <= 1:
        for k, t in todo:
            results[k] = _engrave_one(t, seed)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        from concurrent.futures.process import BrokenProcessPool

        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = [(k, pool.submit(_engrave_one, t, seed)) for k, t in todo]
            for k, fut in futures:
                try:
                    results[k] = fut.result()
                except BrokenProcessPool:  # verovio aborted the process: not recorded, a rerun tries again
                    results[k] = EngraveResult(tgts[k].source, None, "verovio: a worker process died")
    return [results[k] for k in range(len(tgts))]  # type: ignore[misc]
