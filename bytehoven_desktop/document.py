"""Score documents (PDF or image scans) as lazily rendered grayscale pages.

A document is opened once; each page is rendered on demand, so a 1000-page PDF costs
the memory of one page. Page coordinates are PDF points (1/72 inch) for PDFs and for
images (a scan's pixels converted with its stated resolution, 96 dpi when it states
none), so boxes mean the same thing whatever the source.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pymupdf

PDF_SUFFIXES = {".pdf"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
SUPPORTED_SUFFIXES = PDF_SUFFIXES | IMAGE_SUFFIXES
# In the error of a page whose content could not be read ("page N is damaged: …"); the report and the
# GUI look for it to tell a damaged page from one with no music.
DAMAGED = " is damaged: "

# A page is never rasterised beyond this many pixels: a 20000 x 20000 pt page at
# 150 dpi would need 1.7 GB. Larger pages are rendered at a lower resolution.
MAX_PAGE_PIXELS = 40_000_000
# MuPDF decodes a scan (PNG, TIFF...) at full size whatever the rendering scale: a 30000 x 30000
# 1-bit PNG of 150 kB takes 1 GB of memory. Pages holding an image above this are refused
# unread; a 1200 dpi Letter scan is 135 megapixels, a 600 dpi A3 one 70.
MAX_IMAGE_PIXELS = 200_000_000
# A PDF page whose images cover at least this share of it is a scan (the model is calibrated apart
# for scans). Scans in the corpus covered 1.0, vector engravings 0.0.
SCANNED_COVER = 0.5

# What a file holds, from its first bytes: a scan saved as ".pdf" (or a PDF as ".png") is
# opened as what it is rather than refused.
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpg"), (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"))

pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)

REPAIRED_NOTICE = "the PDF is damaged and was repaired on opening; some pages may be incomplete"
# MuPDF says what it could not read only as warnings, in one store per process: a page is loaded
# and drawn under this lock so that its warnings are its own (MuPDF holds the GIL while it draws
# anyway, so no two pages are drawn at once either way).
_WARNINGS_LOCK = threading.RLock()
# Warnings that mean content was lost: a broken page tree, a missing or cut object, a content stream
# that ends early. Others are harmless: on the 466 PDFs of the corpus (2157 pages) MuPDF warned on
# two pages only, both about a font's ascent/descent, and none of these words came up.
_DAMAGE_WORDS = re.compile(r"format error|syntax error|library error|cannot (?:load|find|read|parse)|premature end|"
                           r"read error|not a stream|page tree|corrupt|truncat|out of range|missing|zlib|"
                           r"unexpected end|invalid|broken", re.IGNORECASE)
_NOT_DAMAGE = re.compile(r"^\.\.\. repeated|^Page tree load failed|Length incorrect", re.IGNORECASE)
_MUPDF_PREFIX = re.compile(r"^(?:format|syntax|library|generic) error: ", re.IGNORECASE)
# An inline image's dictionary (BI ... ID) in a content stream: its data follows ID, undeclared in size.
_INLINE_IMAGE = re.compile(rb"(?<![A-Za-z0-9])BI[\s/](.{0,4000}?)[\s/]ID[\s]", re.DOTALL)
_INLINE_W = re.compile(rb"/(?:W|Width)\s+(\d+)")
_INLINE_H = re.compile(rb"/(?:H|Height)\s+(\d+)")


class DocumentError(Exception):
    """A document that cannot be read; the message is meant for people."""


@dataclass(frozen=True)
class PageImage:
    """One rendered page: ``gray`` pixels and how they map to page coordinates."""

    index: int  # 0-based
    gray: np.ndarray  # uint8, H x W, paper white (255)
    scale: float  # pixels per page unit (point)
    width: float  # page size in points
    height: float
    downscaled: bool = False  # True when MAX_PAGE_PIXELS forced a lower resolution
    damage: str | None = None  # with render(partial=True): what MuPDF could not read ("page N is damaged: …")
    scanned: bool = False  # a raster page (an image file, or a PDF page that is mostly images): a scan

    def to_page(self, box_px: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """Convert a pixel box of ``gray`` to page coordinates (points)."""
        s = self.scale
        return (box_px[0] / s, box_px[1] / s, box_px[2] / s, box_px[3] / s)


class Document:
    """An open score. Use as a context manager; ``render`` pages one at a time."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._doc: pymupdf.Document | None = None
        problem = file_problem(self.path)
        if problem:
            raise DocumentError(problem)
        if self.path.stat().st_size == 0:
            raise DocumentError(f"{self.path}: file is empty")
        try:
            with self.path.open("rb") as fh:
                head = fh.read(1024)
        except OSError as exc:
            raise DocumentError(f"{self.path}: cannot be read ({exc.strerror or exc})") from None
        magic = next((kind for m, kind in _MAGIC if head.startswith(m)), None)
        is_pdf = b"%PDF" in head
        self.kind = "image" if magic or (not is_pdf and self.path.suffix.lower() in IMAGE_SUFFIXES) else "pdf"
        if self.kind == "pdf" and not is_pdf:
            raise DocumentError(f"{self.path}: not a PDF file (no PDF header)")
        try:
            # MuPDF opens images (PNG, JPEG, multi-page TIFF) as documents too, decoding lazily.
            filetype = "pdf" if self.kind == "pdf" else (magic or self.path.suffix.lower().lstrip("."))
            doc = _open_mupdf(self.path, filetype)
        except Exception as exc:  # MuPDF raises various types for damaged files
            what = "damaged PDF" if self.kind == "pdf" else "unreadable image"
            raise DocumentError(f"{self.path}: {what} that cannot be opened ({_short(exc)})") from None
        if doc.needs_pass and not doc.authenticate(""):
            # An owner-only password (printing restrictions) opens with the empty password above.
            doc.close()
            raise DocumentError(f"{self.path}: PDF is encrypted with a password; open it in a PDF "
                                "reader and save an unprotected copy")
        if doc.page_count == 0:
            doc.close()
            raise DocumentError(f"{self.path}: document has no pages")
        self.repaired = bool(doc.is_repaired)  # MuPDF rebuilt a broken PDF (e.g. a truncated download)
        self._doc = doc
        # What a report says of the whole document: repaired, a page tree MuPDF could not follow.
        self.notices: list[str] = [REPAIRED_NOTICE] if self.repaired else []
        tree = self._page_tree_damage() if self.kind == "pdf" else None
        if tree:
            self.notices.append(f"the PDF's page tree is damaged ({tree}); pages it no longer leads to are "
                                "reported as damaged")

    @property
    def page_count(self) -> int:
        return self._require().page_count

    def _require(self) -> pymupdf.Document:
        if self._doc is None:
            raise DocumentError(f"{self.path}: document is closed")
        return self._doc

    def page_size(self, index: int) -> tuple[float, float]:
        """Page size in points (images: pixels at their stated resolution, MuPDF assumes 96 dpi).

        A page that cannot even be loaded (a loop in the page tree) raises DocumentError."""
        with _WARNINGS_LOCK:
            rect = self._load(index).rect
        return float(rect.width), float(rect.height)

    def render(self, index: int, dpi: float = 150.0, partial: bool = False) -> PageImage:
        """Render page ``index`` (0-based) to grayscale at ``dpi`` (capped by MAX_PAGE_PIXELS).

        A damaged page, one that MuPDF could not wholly read (it is missing from a cut file, its
        content stream ends early...), raises DocumentError "page N is damaged: …", so that it is
        never analysed as if it were all there. With ``partial`` (for display) what could be drawn
        is returned instead, with ``damage`` saying what is missing."""
        if not 0 <= index < self.page_count:
            raise IndexError(index)
        with _WARNINGS_LOCK:
            _clear_warnings()
            try:
                page = self._load(index)
                width, height = float(page.rect.width), float(page.rect.height)
                scale = dpi / 72.0
                downscaled = False
                if width * height * scale * scale > MAX_PAGE_PIXELS:
                    scale = (MAX_PAGE_PIXELS / max(width * height, 1.0)) ** 0.5
                    downscaled = True
                sizes = self._check_images(page, index)
                # A page without images (every engraving) is not a scan: no content walk for it.
                scanned = self.kind == "image" or (bool(sizes) and _image_cover(page) >= SCANNED_COVER)
                pix = page.get_pixmap(matrix=pymupdf.Matrix(scale, scale), colorspace=pymupdf.csGRAY,
                                      alpha=False, annots=False)
            except (DocumentError, MemoryError):
                raise
            except Exception as exc:
                raise self._damaged_error(index, f"it cannot be rendered ({_short(exc)})") from None
            damage = _damage(pymupdf.TOOLS.mupdf_warnings(reset=True))
            if self._lost(page) and "non-page object" not in (damage or ""):  # said when first looked up
                damage = "non-page object in page tree" + (f"; {damage}" if damage else "")
        if damage and not partial:
            raise self._damaged_error(index, damage)
        gray = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.stride)[:, : pix.width]
        # Scale actually used: MuPDF rounds the pixmap to whole pixels.
        real_scale = pix.width / width if width > 0 else scale
        return PageImage(index, np.ascontiguousarray(gray), real_scale, width, height, downscaled,
                         _damaged(index, damage) if damage else None, scanned)

    def _load(self, index: int) -> pymupdf.Page:
        try:
            return self._require()[index]
        except (IndexError, DocumentError):
            raise
        except Exception as exc:  # e.g. "cycle in page tree"
            raise self._damaged_error(index, f"it cannot be loaded ({_short(exc)})") from None

    def _damaged_error(self, index: int, what: str) -> DocumentError:
        return DocumentError(f"{self.path}: {_damaged(index, what)}")

    def _lost(self, page: pymupdf.Page) -> bool:
        """A page of the page tree whose object is not in the file (cut off): MuPDF shows it blank."""
        if self.kind != "pdf":
            return False
        doc = self._require()
        try:
            return not 0 < page.xref < doc.xref_length() or doc.xref_object(page.xref).strip() == "null"
        except Exception:  # "bad xref"
            return True

    def _page_tree_damage(self) -> str | None:
        """What MuPDF reports while it first reads the page tree, which it does once per document."""
        doc = self._require()
        with _WARNINGS_LOCK:
            _clear_warnings()
            try:
                pymupdf.mupdf.pdf_lookup_page_obj(pymupdf.mupdf.pdf_document_from_fz_document(doc.this), 0)
            except Exception as exc:
                return _short(exc)
            return _damage(pymupdf.TOOLS.mupdf_warnings(reset=True))

    def _check_images(self, page: pymupdf.Page, index: int) -> list[tuple[int, int]]:
        """Refuse a page whose images would need more than MAX_IMAGE_PIXELS to decode; else the
        sizes of its images.

        Only image sizes are read (the image dictionaries of a PDF page and those of the inline
        images in its content streams, the header of a scan), nothing is decoded."""
        if self.kind == "pdf":
            sizes = [(int(im[2]), int(im[3])) for im in page.get_images(full=True)] + _inline_image_sizes(page)
        else:
            sizes = [(int(im["width"]), int(im["height"])) for im in page.get_image_info()]
        for w, h in sizes:
            if w * h > MAX_IMAGE_PIXELS:
                raise DocumentError(f"{self.path}: page {index + 1} holds an image of {w} x {h} pixels, too "
                                    f"large to analyse safely (limit {MAX_IMAGE_PIXELS // 1_000_000} megapixels)")
        return sizes

    def pages(self, dpi: float = 150.0) -> Iterator[PageImage]:
        for i in range(self.page_count):
            yield self.render(i, dpi)

    def close(self) -> None:
        if self._doc is not None:
            self._doc.close()
            self._doc = None

    def __enter__(self) -> "Document":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_document(path: str | os.PathLike[str]) -> Document:
    return Document(path)


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a score (a message naming it), or None for a regular file.

    Checked before anything opens a file: opening a FIFO blocks until someone writes to it,
    and a device may never end."""
    try:
        st = path.stat()
    except OSError as exc:
        if path.is_symlink():  # dangling, or a loop of links
            return f"{path}: broken symbolic link ({exc.strerror or exc})"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return f"{path}: file not found"
        return f"{path}: cannot be read ({exc.strerror or exc})"
    if stat.S_ISDIR(st.st_mode):
        return f"{path}: is a folder, not a score"
    if not stat.S_ISREG(st.st_mode):
        return f"{path}: not a regular file (a pipe, socket or device); not read"
    return None


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def _open_mupdf(path: Path, filetype: str) -> pymupdf.Document:
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        # MuPDF takes UTF-8 file names; a Linux name that is not UTF-8 (any bytes are allowed) is
        # reopened through its descriptor, or read into memory where /proc is missing.
        fd = os.open(path, os.O_RDONLY)
        try:
            proc = f"/proc/self/fd/{fd}"
            if os.path.exists(proc):
                return pymupdf.open(proc, filetype=filetype)
            return pymupdf.open(stream=path.read_bytes(), filetype=filetype)
        finally:
            os.close(fd)
    return pymupdf.open(name, filetype=filetype)


def _image_cover(page: pymupdf.Page) -> float:
    """The share of the page that its images cover (their drawn boxes, clipped to the page; summed,
    so a scan stored as strips counts whole). Only the content stream is read, nothing is decoded."""
    area = abs(page.rect)
    if area <= 0:
        return 0.0
    covered = sum(abs(pymupdf.Rect(im["bbox"]) & page.rect) for im in page.get_image_info())
    return min(1.0, covered / area)


def _inline_image_sizes(page: pymupdf.Page) -> list[tuple[int, int]]:
    """Width and height of every inline image (BI … ID … EI) in the page's content and its forms.

    MuPDF decodes an inline image while it reads the content stream, whatever it draws: it has no
    length, so its data is decoded to find where it ends (a 15000 x 15000 one in an 868-byte file
    took 276 MB and 1.5 s, a 100000 x 100000 one would take 10 GB). Reading its dictionary is enough."""
    doc = page.parent
    streams = [page.read_contents()]
    for xobj in page.get_xobjects():  # forms, nested ones too
        try:
            streams.append(doc.xref_stream(xobj[0]) or b"")
        except Exception:  # a broken form: MuPDF reports it when it draws the page
            continue
    sizes = []
    for data in streams:
        if b"BI" not in data:
            continue
        for m in _INLINE_IMAGE.finditer(data):
            w, h = _INLINE_W.search(m.group(1)), _INLINE_H.search(m.group(1))
            if w and h:
                sizes.append((int(w.group(1)), int(h.group(1))))
    return sizes


def _clear_warnings() -> None:
    # MuPDF says a warning once and then counts its repeats: a page looked up twice would say it only the
    # first time. Flushing forgets the last one.
    pymupdf.mupdf.fz_flush_warnings()
    pymupdf.TOOLS.reset_mupdf_warnings()


def _damaged(index: int, what: str) -> str:
    """A damaged page's error: "page N is damaged: " and what was lost."""
    what = re.sub(r"\(code=\d+: ", "(", what)  # PyMuPDF's exceptions start with MuPDF's error code
    if what.startswith("it cannot"):
        pass
    elif "non-page object in page tree" in what:
        what = f"the file no longer holds it (MuPDF: {what})"
    else:
        what = f"part of it cannot be read (MuPDF: {what})"
    return f"page {index + 1}{DAMAGED}{what}"


def _damage(warnings: str) -> str | None:
    """The warnings that mean something was lost, MuPDF's words made shorter; None when there are none."""
    lines = []
    for line in warnings.splitlines():
        line = line.strip()
        if line and _DAMAGE_WORDS.search(line) and not _NOT_DAMAGE.search(line):
            line = _MUPDF_PREFIX.sub("", line).removesuffix(" ()")
            if line not in lines:
                lines.append(line)
    return "; ".join(lines[:3])[:200] if lines else None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
