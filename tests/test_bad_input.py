"""Bad input, faults and interruption: nothing crashes, nothing is lost.

Every input here is generated in a temporary folder by the tests themselves: damaged and
hostile PDFs, scans in every common form, odd file names, things that are not files, model
and GPU faults, pages that hang or crash the renderer, and a batch killed at random moments.
Each must give a correct result or a clear per-file error; no traceback reaches the user and
the rest of the batch goes on. docs/robustness.md summarises what is asserted here.
"""

from __future__ import annotations

import contextlib
import csv
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import pymupdf
import pytest

from bytehoven_desktop import cli, pipeline
from bytehoven_desktop.batch import ResultsFile, iter_documents
from bytehoven_desktop.classifier import Classifier
from bytehoven_desktop.document import DAMAGED, MAX_IMAGE_PIXELS, Document
from bytehoven_desktop.pipeline import AnalysisOptions, analyze, prepare_page
from bytehoven_desktop.report import NO_MUSIC
from fixtures import make_corrupt_pdf, make_encrypted_pdf, make_score_pdf, make_text_pdf
from model_factory import LABELS, make_model

LINUX = sys.platform.startswith("linux")
ROWS = 4  # systems per page of the generated scores
_ORIGINAL_WORKER = cli._worker_analyze


# -- generators ------------------------------------------------------------------------------
def score_gray(tmp: Path, systems: int = ROWS, seed: int = 0, dpi: int = 150) -> np.ndarray:
    """A synthetic score page as a grey scan (white paper)."""
    pdf = make_score_pdf(tmp / f"_gray-{systems}-{seed}.pdf", pages=1, systems_per_page=systems, seed=seed)
    with pymupdf.open(pdf) as doc:
        pix = doc[0].get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY, alpha=False)
        gray = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.stride)[:, : pix.width].copy()
    pdf.unlink()
    return gray


def write_png_1bit(path: Path, gray: np.ndarray) -> Path:
    """A bilevel PNG (bit depth 1, black = 0), written by hand: cv2 cannot write one."""
    h, w = gray.shape
    bits = np.packbits(gray >= 128, axis=1)
    raw = b"".join(b"\x00" + bits[y].tobytes() for y in range(h))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
                     + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b""))
    return path


def write_png_bomb(path: Path, w: int, h: int) -> Path:
    """A white bilevel PNG of w x h pixels: a few hundred kB that decode to w * h bytes."""
    line = b"\x00" + b"\xff" * ((w + 7) // 8)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(line * 64) for _ in range(h // 64)) + comp.compress(line * (h % 64)) + comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
                     + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b""))
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_tiff_1bit(path: Path, gray: np.ndarray, dpi: int = 150) -> Path:
    """An uncompressed bilevel TIFF (WhiteIsZero), written by hand."""
    h, w = gray.shape
    data = np.packbits(gray < 128, axis=1).tobytes()
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 1), (259, 3, 1, 1), (262, 3, 1, 0),
               (273, 4, 1, 0), (278, 4, 1, h), (279, 4, 1, len(data)), (282, 5, 1, 0), (283, 5, 1, 0),
               (296, 3, 1, 2)]
    ifd_size = 2 + 12 * len(entries) + 4
    res_at = 8 + ifd_size
    data_at = res_at + 8
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        if tag == 273:
            value = data_at
        if tag in (282, 283):
            value = res_at
        ifd += struct.pack("<HHI", tag, typ, count) + (struct.pack("<HH", value, 0) if typ == 3 else
                                                       struct.pack("<I", value))
    ifd += struct.pack("<I", 0)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<II", dpi, 1) + data)
    return path


def huge_image_pdf(path: Path, w: int, h: int) -> Path:
    """A Letter page showing one white w x h bilevel image, Flate-compressed (a few hundred kB)."""
    line = b"\xff" * ((w + 7) // 8)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(line * 256) for _ in range(h // 256)) + comp.compress(line * (h % 256)) + comp.flush()
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    img = doc.get_new_xref()
    doc.update_object(img, f"<</Type/XObject/Subtype/Image/Width {w}/Height {h}/ColorSpace/DeviceGray"
                           f"/BitsPerComponent 1/Filter/FlateDecode>>")
    doc.update_stream(img, data, compress=False)
    doc.xref_set_key(img, "Filter", "/FlateDecode")
    doc.xref_set_key(page.xref, "Resources", f"<</XObject<</Im0 {img} 0 R>>>>")
    content = doc.get_new_xref()
    doc.update_object(content, "<<>>")
    doc.update_stream(content, b"q 612 0 0 792 0 0 cm /Im0 Do Q")
    doc.xref_set_key(page.xref, "Contents", f"{content} 0 R")
    doc.save(path)
    doc.close()
    return path


def add_exploding_page(doc: pymupdf.Document, levels: int = 40) -> None:
    """A page of a few kB that takes practically forever to render: form k draws form k-1 twice,
    so the page holds 2**levels strokes (levels=16 already takes about a second)."""
    page = doc.new_page()
    prev = doc.get_new_xref()
    doc.update_object(prev, "<</Type/XObject/Subtype/Form/BBox[0 0 612 792]>>")
    doc.update_stream(prev, b"0 0 m 10 10 l S")
    for _ in range(levels):
        form = doc.get_new_xref()
        doc.update_object(form, "<</Type/XObject/Subtype/Form/BBox[0 0 612 792]"
                                f"/Resources<</XObject<</F {prev} 0 R>>>>>>")
        doc.update_stream(form, b"q /F Do Q q 1 0 0 1 0.5 0.5 cm /F Do Q")
        prev = form
    doc.xref_set_key(page.xref, "Resources", f"<</XObject<</F {prev} 0 R>>>>")
    content = doc.get_new_xref()
    doc.update_object(content, "<<>>")
    doc.update_stream(content, b"/F Do")
    doc.xref_set_key(page.xref, "Contents", f"{content} 0 R")


def exploding_pdf(path: Path) -> Path:
    """Three pages: a score, the exploding page, a score."""
    src_path = make_score_pdf(path.with_suffix(".src.pdf"), pages=2, systems_per_page=3)
    with pymupdf.open(src_path) as src:
        doc = pymupdf.open()
        doc.insert_pdf(src, from_page=0, to_page=0)
        add_exploding_page(doc)
        doc.insert_pdf(src, from_page=1, to_page=1)
        doc.save(path)
        doc.close()
    src_path.unlink()
    return path


def hostile_pdf(path: Path, score: Path) -> Path:
    """A score carrying JavaScript (on open and in the name tree), a Launch action, a web link,
    an embedded file named to escape its folder, and metadata that looks like paths and commands."""
    with pymupdf.open(score) as doc:
        cat = doc.pdf_catalog()
        doc.xref_set_key(cat, "OpenAction", "<</S/JavaScript/JS(app.launchURL\\('http://127.0.0.1:9/x'\\); "
                                            "this.exportDataObject\\({cName: 'evil.sh', nLaunch: 2}\\))>>")
        js = doc.get_new_xref()
        doc.update_object(js, "<</S/JavaScript/JS(app.alert\\('ran'\\))>>")
        doc.xref_set_key(cat, "Names", f"<</JavaScript<</Names[(a) {js} 0 R]>>>>")
        page = doc[0]
        page.insert_link({"kind": pymupdf.LINK_LAUNCH, "from": pymupdf.Rect(10, 10, 100, 30), "file": "/bin/sh"})
        page.insert_link({"kind": pymupdf.LINK_URI, "from": pymupdf.Rect(10, 40, 100, 60),
                          "uri": "http://127.0.0.1:9/track"})
        doc.embfile_add("evil", b"#!/bin/sh\ntouch PWNED\n", filename="../../evil.sh")
        doc.set_metadata({"title": "../../../tmp/evil-title", "author": "$(touch PWNED)",
                          "subject": "/etc/passwd"})
        doc.save(path)
    return path


# -- damaged PDFs: each returns the rows every page must give, None for a page that must be reported damaged
def _object_ends(data: bytes) -> dict[int, int]:
    """Where each object of a PDF written without object streams ends (just past its "endobj")."""
    return {int(m.group(1)): data.index(b"endobj", m.end()) + 6 for m in re.finditer(rb"(?m)^(\d+) 0 obj\b", data)}


def _page_objects(doc: pymupdf.Document, page: pymupdf.Page) -> list[int]:
    """The objects a page needs: its dictionary, its content streams and its resources."""
    kind, value = doc.xref_get_key(page.xref, "Resources")
    return [page.xref, *page.get_contents()] + ([int(value.split()[0])] if kind == "xref" else [])


def truncated_pdf(path: Path, src: Path, fraction: float) -> list[int | None]:
    """``src`` cut off at ``fraction`` of its length, as a download that stopped. A page is intact
    when every object it needs ends before the cut."""
    data = src.read_bytes()
    cut = int(len(data) * fraction)
    path.write_bytes(data[:cut])
    ends = _object_ends(data)
    with pymupdf.open(src) as doc:
        return [ROWS if max(ends[x] for x in _page_objects(doc, page)) <= cut else None for page in doc]


def objstm_cut_pdf(path: Path, src: Path, fraction: float = 0.9) -> list[int | None]:
    """``src`` with its objects (page dictionaries among them) in a compressed object stream whose
    data is cut short at ``fraction``: the objects decoded before the cut survive."""
    with pymupdf.open(src) as doc:
        data = doc.tobytes(use_objstms=1, garbage=1, deflate=True)
    head = re.search(rb"<<[^>]*/Type\s*/ObjStm[^>]*>>\s*stream\r?\n", data)
    assert head, "no object stream written"
    first = int(re.search(rb"/First\s+(\d+)", head.group()).group(1))
    start = head.end()
    end = data.index(b"endstream", start)
    full = zlib.decompress(data[start:end])
    keep = int((end - start) * fraction)
    decoded = len(zlib.decompressobj().decompress(data[start:start + keep]))
    nums = [int(v) for v in full[:first].split()]
    offsets = {nums[i]: first + nums[i + 1] for i in range(0, len(nums), 2)}
    bounds = sorted(offsets.values()) + [len(full)]
    intact = {x for x, off in offsets.items() if bounds[bounds.index(off) + 1] <= decoded}
    path.write_bytes(data[:start + keep] + data[end:])
    with pymupdf.open(stream=data) as doc:
        return [ROWS if all(x in intact for x in _page_objects(doc, page) if x in offsets) else None
                for page in doc]


def bad_content_pdf(path: Path, src: Path) -> list[int | None]:
    """Four pages: the second's content streams are not Flate data, the third's end early."""
    with pymupdf.open(src) as doc:
        for x in doc[1].get_contents():
            doc.update_stream(x, b"this is no Flate data " * 20, compress=False)
            doc.xref_set_key(x, "Filter", "/FlateDecode")
        for x in doc[2].get_contents():
            packed = zlib.compress(doc.xref_stream(x))
            doc.update_stream(x, packed[: len(packed) // 2], compress=False)
            doc.xref_set_key(x, "Filter", "/FlateDecode")
        doc.save(path)
    return [ROWS, None, None, ROWS]


def page_tree_loop_pdf(path: Path, src: Path) -> list[int | None]:
    """The page tree lists itself as its last kid: a cycle. Its /Count counts one page more."""
    with pymupdf.open(src) as doc:
        n = doc.page_count
        root = int(doc.xref_get_key(doc.pdf_catalog(), "Pages")[1].split()[0])
        kids = doc.xref_get_key(root, "Kids")[1]
        doc.xref_set_key(root, "Kids", kids.rstrip("]") + f" {root} 0 R]")
        doc.xref_set_key(root, "Count", str(n + 1))
        doc.save(path)
    return [ROWS] * n + [None]


def inline_image_pdf(path: Path, w: int, h: int, in_form: bool = False) -> Path:
    """A Letter page drawing one white w x h bilevel *inline* image (BI … ID … EI), Flate-compressed
    inside a Flate-compressed content stream (of the page, or of a form it draws): a few kB."""
    comp = zlib.compressobj(9)
    line = b"\xff" * ((w + 7) // 8)
    data = b"".join(comp.compress(line * 256) for _ in range(h // 256)) + comp.compress(line * (h % 256)) + comp.flush()
    image = b"q 612 0 0 792 0 0 cm BI /W %d /H %d /CS /G /BPC 1 /F /Fl ID " % (w, h) + data + b" EI Q"
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    content = doc.get_new_xref()
    doc.update_object(content, "<<>>")
    if in_form:
        form = doc.get_new_xref()
        doc.update_object(form, "<</Type/XObject/Subtype/Form/BBox[0 0 612 792]>>")
        doc.update_stream(form, image)
        doc.xref_set_key(page.xref, "Resources", f"<</XObject<</F {form} 0 R>>>>")
        image = b"/F Do"
    doc.update_stream(content, image)
    doc.xref_set_key(page.xref, "Contents", f"{content} 0 R")
    doc.save(path)
    doc.close()
    return path


ODD_NAMES = ["with space.pdf", "Dvořák – Humoreske.pdf", "line\nbreak.pdf", "quote\"s 'x'.pdf",
             "$(touch PWNED).pdf", "`id`;rm -rf x.pdf", "-dash.pdf", "tab\tand\x1b[31mred.pdf",
             "sep\u2028x\x85y.pdf", "日本語の楽譜.pdf"]
NON_UTF8_NAME = b"latin1-caf\xe9.pdf"  # a name from an old archive: not UTF-8 (Linux allows any bytes)
BAD_NAME = "damaged\x1b[2J\nname.pdf"  # a damaged file whose name would clear the screen if printed raw


def build_zoo(root: Path) -> dict[str, Any]:
    """The batch folder of bad inputs; returns name -> what the report must say about it."""
    root.mkdir()
    expect: dict[str, Any] = {}
    good = make_score_pdf(root / "good.pdf", pages=2, systems_per_page=ROWS)
    expect["good.pdf"] = [ROWS, ROWS]
    data = good.read_bytes()
    # Damaged and not-really-PDF files.
    # Half of good.pdf ends inside page 1's last content stream, before page 2.
    assert truncated_pdf(root / "truncated-half.pdf", good, 0.5) == [None, None]
    expect["truncated-half.pdf"] = ("damaged", [None, None], True)
    (root / "truncated-tail.pdf").write_bytes(data[:-200])
    expect["truncated-tail.pdf"] = "repaired"
    five = make_score_pdf(root / "_five.pdf", pages=5, systems_per_page=ROWS)
    for percent in (10, 40, 90):
        rows = truncated_pdf(root / f"truncated-{percent}.pdf", five, percent / 100)
        expect[f"truncated-{percent}.pdf"] = ("damaged", rows, True)
    expect["objstm-cut.pdf"] = ("damaged", objstm_cut_pdf(root / "objstm-cut.pdf", five), True)
    expect["page-tree-loop.pdf"] = ("damaged", page_tree_loop_pdf(root / "page-tree-loop.pdf", good), False)
    with pymupdf.open(five) as doc:
        doc.select([0, 1, 2, 3])
        doc.save(root / "_four.pdf")
    expect["bad-content.pdf"] = ("damaged", bad_content_pdf(root / "bad-content.pdf", root / "_four.pdf"), False)
    for tmp in ("_five.pdf", "_four.pdf"):
        (root / tmp).unlink()
    make_corrupt_pdf(root / "corrupt.pdf")
    expect["corrupt.pdf"] = ("error", "damaged PDF")
    (root / "empty.pdf").write_bytes(b"")
    expect["empty.pdf"] = ("error", "empty")
    (root / "text-renamed.pdf").write_text("Dear reader, I am a letter, not a PDF.\n")
    expect["text-renamed.pdf"] = ("error", "not a PDF")
    (root / "zip-renamed.pdf").write_bytes(b"PK\x03\x04" + bytes(200))
    expect["zip-renamed.pdf"] = ("error", "not a PDF")
    gray = score_gray(root)
    cv2.imwrite(str(root / "_scan.png"), gray)
    (root / "_scan.png").rename(root / "png-renamed.pdf")
    expect["png-renamed.pdf"] = [ROWS]  # a scan saved as .pdf is read as the image it is
    make_encrypted_pdf(root / "encrypted-user.pdf")
    expect["encrypted-user.pdf"] = ("error", "encrypted")
    with pymupdf.open(good) as doc:
        doc.save(root / "encrypted-owner.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner",
                 user_pw="", permissions=pymupdf.PDF_PERM_ACCESSIBILITY)
    expect["encrypted-owner.pdf"] = [ROWS, ROWS]  # restrictions only: opens without a password
    (root / "zero-pages.pdf").write_bytes(b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
                                          b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
                                          b"trailer<</Root 1 0 R>>\n%%EOF\n")
    expect["zero-pages.pdf"] = ("error", "no pages")
    # Pages without music.
    make_text_pdf(root / "text-only.pdf", pages=2)
    expect["text-only.pdf"] = [0, 0]
    doc = pymupdf.open()
    for _ in range(3):
        doc.new_page()
    doc.save(root / "blank.pdf")
    doc.close()
    expect["blank.pdf"] = [0, 0, 0]
    # A thousand pages: tiny blank ones between two score pages.
    with pymupdf.open(make_score_pdf(root / "_one.pdf", pages=1, systems_per_page=2)) as one:
        doc = pymupdf.open()
        for i in range(1000):
            if i in (0, 999):
                doc.insert_pdf(one)
            else:
                doc.new_page(width=144, height=144)
        doc.save(root / "thousand-pages.pdf")
        doc.close()
    (root / "_one.pdf").unlink()
    expect["thousand-pages.pdf"] = [2] + [0] * 998 + [2]
    # Images too big to decode safely.
    huge_image_pdf(root / "huge-image.pdf", 30000, 30000)
    expect["huge-image.pdf"] = ("error", "30000 x 30000 pixels")
    write_png_bomb(root / "huge-scan.png", 30000, 30000)
    expect["huge-scan.png"] = ("error", "30000 x 30000 pixels")
    # Turned, skewed and two-page layouts.
    for rot in (90, 180, 270):
        with pymupdf.open(good) as doc:
            for page in doc:
                page.set_rotation(rot)
            doc.save(root / f"rotate-{rot}.pdf")
        expect[f"rotate-{rot}.pdf"] = ([ROWS, ROWS], "upside down" if rot == 180 else "sideways")
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    with pymupdf.open(good) as src:
        page.show_pdf_page(page.rect, src, 0, rotate=2)
    doc.save(root / "skew-2deg.pdf")
    doc.close()
    expect["skew-2deg.pdf"] = ([ROWS], "deskewed")
    doc = pymupdf.open()
    page = doc.new_page(width=1224, height=792)
    with pymupdf.open(good) as src:
        page.show_pdf_page(pymupdf.Rect(0, 0, 612, 792), src, 0)
        page.show_pdf_page(pymupdf.Rect(612, 0, 1224, 792), src, 1)
    doc.save(root / "spread.pdf")
    doc.close()
    expect["spread.pdf"] = [2 * ROWS]
    # Scans.
    colour = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    colour[..., 0] = np.where(gray < 128, 40, 200)  # ink and paper tinted differently per channel
    rgba = np.zeros(gray.shape + (4,), np.uint8)
    rgba[..., 3] = 255 - gray  # paper transparent, ink opaque
    cv2.imwrite(str(root / "scan-grey.png"), gray)
    cv2.imwrite(str(root / "scan-colour.png"), colour)
    cv2.imwrite(str(root / "scan-rgba.png"), rgba)
    write_png_1bit(root / "scan-1bit.png", gray)
    cv2.imwrite(str(root / "scan-grey.jpg"), gray, [cv2.IMWRITE_JPEG_QUALITY, 75])
    cv2.imwrite(str(root / "scan-colour.jpeg"), colour)
    cv2.imwrite(str(root / "scan-grey.tif"), gray)
    cv2.imwrite(str(root / "scan-colour.tiff"), colour)
    write_tiff_1bit(root / "scan-1bit.tif", gray)
    for name in ("scan-grey.png", "scan-colour.png", "scan-rgba.png", "scan-1bit.png", "scan-grey.jpg",
                 "scan-colour.jpeg", "scan-grey.tif", "scan-colour.tiff", "scan-1bit.tif"):
        expect[name] = [ROWS]
    cv2.imwritemulti(str(root / "scan-multipage.tif"), [gray, score_gray(root, 3, 1), score_gray(root, 5, 2)])
    expect["scan-multipage.tif"] = [ROWS, 3, 5]
    cv2.imwrite(str(root / "scan-sideways.png"), cv2.rotate(gray, cv2.ROTATE_90_CLOCKWISE))
    expect["scan-sideways.png"] = ([ROWS], "sideways")
    # Hostile content.
    hostile_pdf(root / "hostile.pdf", good)
    expect["hostile.pdf"] = [ROWS, ROWS]
    # Odd names: copies of the good score, and a damaged one named with control characters.
    for name in ODD_NAMES:
        (root / name).write_bytes(data)
        expect[name] = [ROWS, ROWS]
    if LINUX:
        (root / os.fsdecode(NON_UTF8_NAME)).write_bytes(data)
        expect[os.fsdecode(NON_UTF8_NAME)] = [ROWS, ROWS]
    make_corrupt_pdf(root / BAD_NAME)
    expect[BAD_NAME] = ("error", "damaged PDF")
    # Things that are not score files, under score names.
    os.symlink(root / "no-such-target.pdf", root / "dangling-link.pdf")
    expect["dangling-link.pdf"] = ("error", "broken symbolic link")
    os.symlink("self-loop.pdf", root / "self-loop.pdf")
    expect["self-loop.pdf"] = ("error", "broken symbolic link")
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "fifo.pdf")  # opening it would block the batch forever
        expect["fifo.pdf"] = ("error", "not a regular file")
    (root / "folder.pdf").mkdir()  # a folder is walked, not analysed
    # Symlink loops in the tree: sub/loop -> .., and a -> b -> a.
    (root / "sub").mkdir()
    make_score_pdf(root / "sub" / "inner.pdf", pages=1, systems_per_page=3)
    expect["sub/inner.pdf"] = [3]
    os.symlink("..", root / "sub" / "loop")
    (root / "a").mkdir()
    (root / "b").mkdir()
    os.symlink("../b", root / "a" / "to-b")
    os.symlink("../a", root / "b" / "to-a")
    return expect


def rows_per_page(doc: dict[str, Any]) -> list[int]:
    return [len(p["systems"]) for p in doc["page_results"]]


def tree(root: Path) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            out.add(os.path.relpath(os.path.join(dirpath, n), root))
    return out


def run_cli(args: list[str], cwd: Path | None = None, timeout: float = 300, **kw: Any) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **kw.pop("env", {})}
    return subprocess.run([sys.executable, "-m", "bytehoven_desktop", "analyze", *args], cwd=cwd, env=env,
                          capture_output=True, timeout=timeout, **kw)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "the last result line is cut short"
    return [json.loads(line) for line in text.split("\n") if line]


@pytest.fixture(scope="module")
def clf(tiny_model: Path) -> Classifier:
    return Classifier(tiny_model, device="cpu", threads=1, batch_size=8)


# -- the batch of bad inputs, through the real command line --------------------------------------
@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("zoo")
    zoo = base / "zoo"
    expect = build_zoo(zoo)
    work, home = base / "work", base / "home"
    work.mkdir()
    home.mkdir()
    before = tree(zoo)
    t0 = time.perf_counter()
    proc = run_cli([str(zoo), "--recursive", "--model", str(tiny_model), "--out", "results.jsonl", "-q",
                    "--threads", "1"], cwd=work, env={"HOME": str(home)})
    seconds = time.perf_counter() - t0
    docs = read_jsonl(work / "results.jsonl")
    by_name = {os.path.relpath(d["path"], zoo): d for d in docs}
    return {"zoo": zoo, "expect": expect, "proc": proc, "stderr": proc.stderr.decode("utf-8", "replace"),
            "docs": docs, "by_name": by_name, "work": work, "home": home, "before": before, "seconds": seconds,
            "base": base}


def test_zoo_every_input_has_one_result_and_no_traceback(zoo_run: dict[str, Any]) -> None:
    proc, err, by_name = zoo_run["proc"], zoo_run["stderr"], zoo_run["by_name"]
    print(f"zoo: {len(zoo_run['docs'])} inputs in {zoo_run['seconds']:.1f} s")
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Error:" not in err
    # Every line on stderr is one of ours (no MuPDF or ONNX Runtime chatter).
    assert all(line.startswith("bytehoven: ") for line in err.splitlines()), err
    # Exactly one result per input: the symlink loops add nothing, no input is missing.
    assert len(zoo_run["docs"]) == len(by_name)
    assert set(by_name) == set(zoo_run["expect"])


def test_zoo_results_are_correct_or_clear_errors(zoo_run: dict[str, Any]) -> None:
    problems = []
    for name, want in zoo_run["expect"].items():
        doc = zoo_run["by_name"][name]
        if isinstance(want, tuple) and want[0] == "damaged":
            continue  # test_zoo_damaged_pages_say_so
        if isinstance(want, tuple) and want[0] == "error":
            # A clear error, naming the file, in the report.
            if not (doc["error"] and want[1] in doc["error"] and doc["path"] in doc["error"]):
                problems.append((name, doc["error"]))
            continue
        if doc["error"]:
            problems.append((name, doc["error"]))
            continue
        if want == "repaired":  # damaged: what MuPDF can rebuild is analysed, with a notice
            ok = any("repaired" in n for n in doc["notices"]) and rows_per_page(doc)[0] == ROWS
        elif isinstance(want, tuple):
            rows, note = want
            ok = rows_per_page(doc) == rows and all(any(note in n for n in p["notes"]) for p in doc["page_results"])
        else:
            ok = rows_per_page(doc) == want
        if not ok:
            problems.append((name, rows_per_page(doc)[:6], [p["notes"] for p in doc["page_results"]][:2]))
    assert not problems


def test_zoo_damaged_pages_say_so(zoo_run: dict[str, Any]) -> None:
    # A page MuPDF could not wholly read is an error naming what was lost, never "no music"; the
    # document keeps its notice and says how many pages were lost.
    cases = {n: w for n, w in zoo_run["expect"].items() if isinstance(w, tuple) and w[0] == "damaged"}
    assert {"truncated-10.pdf", "truncated-40.pdf", "truncated-90.pdf", "objstm-cut.pdf", "bad-content.pdf",
            "page-tree-loop.pdf"} <= set(cases)
    seen_good = seen_damaged = 0
    for name, (_, rows, repaired) in cases.items():
        doc = zoo_run["by_name"][name]
        pages = doc["page_results"]
        got = [None if p["error"] else len(p["systems"]) for p in pages]
        assert got == rows, name
        lost = [i + 1 for i, r in enumerate(rows) if r is None]
        assert lost, name
        for p in pages:
            if p["page"] in lost:
                assert p["damaged"] is True and f"page {p['page']}{DAMAGED}" in p["error"], (name, p["error"])
                assert "MuPDF" in p["error"] or "cannot be" in p["error"], (name, p["error"])
                assert p["reason"] == "error" and p["composer"] is None and p["systems"] == []
            else:
                assert p["damaged"] is False and p["error"] is None and p["reason"] != NO_MUSIC
        seen_good += len(rows) - len(lost)
        seen_damaged += len(lost)
        assert doc["damaged_pages"] == lost, name
        assert any(f"{len(lost)} of {len(rows)} page" in n and "damaged" in n for n in doc["notices"]), doc["notices"]
        assert any("repaired" in n for n in doc["notices"]) == repaired, (name, doc["notices"])
        if len(lost) == len(rows):
            assert "no page could be analysed" in doc["error"] and "damaged" in doc["error"]
        else:
            assert doc["error"] is None and doc["reason"] != "error", name
    # Each cut keeps what it must: 40 % and 90 % of five pages keep some pages and lose some.
    assert 0 < cases["truncated-40.pdf"][1].count(None) < 5 and 0 < cases["truncated-90.pdf"][1].count(None) < 5
    assert cases["objstm-cut.pdf"][1].count(None) < 5
    print(f"damaged PDFs: {seen_damaged} pages reported damaged, {seen_good} intact pages analysed")


def test_zoo_no_music_is_said_not_guessed(zoo_run: dict[str, Any]) -> None:
    for name in ("text-only.pdf", "blank.pdf"):
        doc = zoo_run["by_name"][name]
        assert doc["composer"] is None and doc["reason"] == NO_MUSIC


def test_zoo_turned_and_spread_boxes_are_on_the_displayed_page(zoo_run: dict[str, Any]) -> None:
    by_name = zoo_run["by_name"]
    upright = [s["bbox"] for s in by_name["good.pdf"]["page_results"][0]["systems"]]
    w, h = 612.0, 792.0

    def turned(box: list[float], rot: int) -> list[float]:
        x0, y0, x1, y1 = box  # /Rotate turns the page clockwise for display
        return {90: [h - y1, x0, h - y0, x1], 180: [w - x1, h - y1, w - x0, h - y0],
                270: [y0, w - x1, y1, w - x0]}[rot]

    for rot in (90, 180, 270):
        page = by_name[f"rotate-{rot}.pdf"]["page_results"][0]
        assert page["size"] == ([h, w] if rot != 180 else [w, h])
        got = sorted(s["bbox"] for s in page["systems"])
        want = sorted(turned(b, rot) for b in upright)
        np.testing.assert_allclose(got, want, atol=6.0)
    spread = by_name["spread.pdf"]["page_results"][0]["systems"]
    assert sum(s["bbox"][2] <= 612 + 5 for s in spread) == ROWS
    assert sum(s["bbox"][0] >= 612 - 5 for s in spread) == ROWS


def test_zoo_file_names_are_data_not_commands(zoo_run: dict[str, Any]) -> None:
    zoo, by_name, err = zoo_run["zoo"], zoo_run["by_name"], zoo_run["stderr"]
    for name in ODD_NAMES + ([os.fsdecode(NON_UTF8_NAME)] if LINUX else []):
        # The exact name (byte for byte) is in the JSON, escaped, never changed.
        assert os.fsencode(by_name[name]["path"]) == os.fsencode(str(zoo / name))
    # The results file is valid UTF-8 with one JSON object per "\n"-ended line.
    raw = (zoo_run["work"] / "results.jsonl").read_bytes()
    raw.decode("utf-8")
    assert len(raw.split(b"\n")) == len(zoo_run["docs"]) + 1
    # Nothing named in a file name or in PDF metadata was run or created.
    assert not list(zoo_run["base"].rglob("PWNED")) and not Path("PWNED").exists()
    # The control characters of a damaged file's name are shown escaped on the terminal.
    assert "damaged\\x1b[2J\\nname.pdf" in err and "\x1b" not in err


def test_zoo_writes_nothing_but_the_results_file(zoo_run: dict[str, Any]) -> None:
    # Output paths come from --out only: not from document metadata or embedded file names.
    assert tree(zoo_run["work"]) == {"results.jsonl"}
    assert tree(zoo_run["zoo"]) == zoo_run["before"]
    assert tree(zoo_run["home"]) == set()
    assert not Path("/tmp/evil-title").exists()


# -- hostile PDF content -------------------------------------------------------------------------
def test_pdf_code_is_never_run_nor_files_extracted(tmp_path: Path, clf: Classifier,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pdf = hostile_pdf(tmp_path / "hostile.pdf", make_score_pdf(tmp_path / "s.pdf", pages=1, systems_per_page=ROWS))
    calls: list[str] = []

    def forbidden(name: str) -> Any:
        def guard(*a: Any, **k: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} called during analysis")
        return guard

    # No network, no programs, no embedded file or link is touched, no document is written.
    for mod, attr in [(socket.socket, "connect"), (socket, "create_connection"), (socket, "getaddrinfo"),
                      (subprocess, "Popen"), (os, "system"), (os, "execv"), (os, "execve"), (os, "posix_spawn"),
                      (pymupdf.Document, "embfile_get"), (pymupdf.Document, "embfile_names"),
                      (pymupdf.Document, "save"), (pymupdf.Document, "ez_save"), (pymupdf.Page, "get_links"),
                      (pymupdf.Page, "load_links")]:
        monkeypatch.setattr(mod, attr, forbidden(f"{getattr(mod, '__name__', mod)}.{attr}"))
    res = analyze(pdf, clf)
    assert res.error is None and [len(p.systems) for p in res.page_results] == [ROWS]
    assert not calls
    with Document(pdf) as d:  # MuPDF's JavaScript engine is never switched on
        assert pymupdf.mupdf.pdf_js_supported(pymupdf.mupdf.pdf_document_from_fz_document(d._require().this)) == 0


# -- file names on the command line and in CSV ----------------------------------------------------
def test_names_verbatim_in_csv_and_dash_names(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    one = make_score_pdf(tmp_path / "one.pdf", pages=1, systems_per_page=2).read_bytes()
    names = ODD_NAMES + ([os.fsdecode(NON_UTF8_NAME)] if LINUX else [])
    for n in names:
        (folder / n).write_bytes(one)
    out = tmp_path / "res.csv"
    assert cli.main(["analyze", str(folder), "--model", str(tiny_model), "--out", str(out), "-q"]) == 0
    with out.open(encoding="utf-8", errors="surrogateescape", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(os.fsencode(r["path"]) for r in rows) == sorted(os.fsencode(str(folder / n)) for n in names)
    assert all(r["error"] == "" and r["rows"] == "2" for r in rows)
    # A name starting with "-" is a file after "--" or as ./-name, never an option.
    monkeypatch.chdir(folder)
    capsys.readouterr()
    assert cli.main(["analyze", "--model", str(tiny_model), "-q", "--", "-dash.pdf"]) == 0
    assert cli.main(["analyze", "--model", str(tiny_model), "-q", "./-dash.pdf"]) == 0
    docs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [d["path"] for d in docs] == ["-dash.pdf", "-dash.pdf"] and all(d["error"] is None for d in docs)


# -- files that cannot be read ----------------------------------------------------------------
@contextlib.contextmanager
def as_unprivileged() -> Iterator[None]:
    """Run as a user that file permissions apply to: root ignores them, so drop the effective uid
    (and with it CAP_DAC_OVERRIDE) for the duration."""
    if os.geteuid() != 0:
        yield
        return
    try:
        os.setegid(65534)
        os.seteuid(65534)
    except OSError as exc:
        pytest.skip(f"running as root and cannot drop privileges to test permissions ({exc})")
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.mark.skipif(not hasattr(os, "seteuid"), reason="POSIX permissions")
def test_unreadable_files_and_folders_are_reported(clf: Classifier) -> None:
    root = Path(tempfile.mkdtemp(prefix="bytehoven-perm-"))
    try:
        root.chmod(0o755)
        make_score_pdf(root / "ok.pdf", pages=1, systems_per_page=2)
        locked = make_score_pdf(root / "locked.pdf", pages=1, systems_per_page=2)
        locked.chmod(0o000)
        (root / "closed").mkdir()
        make_score_pdf(root / "closed" / "hidden.pdf", pages=1, systems_per_page=2)
        (root / "closed").chmod(0o000)
        with as_unprivileged():
            errors: list[tuple[str, str]] = []
            found = sorted(p.name for p in iter_documents([root], recursive=True, errors=errors))
            res_locked = analyze(locked, clf)
            res_ok = analyze(root / "ok.pdf", clf)
        assert found == ["locked.pdf", "ok.pdf"]
        assert errors and errors[0][0] == str(root / "closed") and "cannot be listed" in errors[0][1]
        assert res_locked.error == f"{locked}: cannot be read (Permission denied)"
        assert res_locked.sha256 is None  # nothing known of its content: retried on --resume
        assert res_ok.error is None and len(res_ok.page_results[0].systems) == 2
    finally:
        (root / "closed").chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)


# -- memory -----------------------------------------------------------------------------------
_PEAK_RSS = """
import json, resource, sys
from bytehoven_desktop.classifier import Classifier
from bytehoven_desktop.pipeline import analyze
clf = Classifier(sys.argv[1], device="cpu", threads=1)
out = []
for f in sys.argv[2:]:
    r = analyze(f, clf)
    out.append({"error": r.error, "notes": [n for p in r.page_results for n in p.notes]})
out.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print(json.dumps(out))
"""


@pytest.mark.skipif(not LINUX, reason="ru_maxrss is in kB on Linux")
def test_enormous_pages_do_not_exhaust_memory(tmp_path: Path, tiny_model: Path) -> None:
    # A 30000 x 30000 scan decodes to 900 MB in MuPDF (measured: 1 GB peak RSS) and a 100000 x
    # 100000 image in a PDF to 10 GB; both are refused unread. A 20000 x 20000 pt page is
    # rendered at reduced resolution. Peak memory is measured on the process (RSS), not Python's heap.
    png = write_png_bomb(tmp_path / "bomb.png", 30000, 30000)
    pdf = huge_image_pdf(tmp_path / "bomb.pdf", 100_000, 100_000)
    big = pymupdf.open()
    page = big.new_page(width=20000, height=20000)
    with pymupdf.open(make_score_pdf(tmp_path / "s.pdf", pages=1)) as src:
        page.show_pdf_page(pymupdf.Rect(0, 0, 612, 792), src, 0)
    big.save(tmp_path / "big-page.pdf")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(tiny_model), str(png), str(pdf),
                           str(tmp_path / "big-page.pdf")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    *results, peak_kb = json.loads(proc.stdout.splitlines()[-1])
    print(f"peak RSS {peak_kb / 1024:.0f} MB in {time.perf_counter() - t0:.1f} s")
    assert "30000 x 30000 pixels" in results[0]["error"] and "100000 x 100000 pixels" in results[1]["error"]
    assert f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels" in results[0]["error"]
    assert results[2]["error"] is None and any("very large" in n for n in results[2]["notes"])
    assert peak_kb < 1024 * 1024  # below 1 GB, where the scan alone would take more when decoded


def test_inline_images_are_size_checked_before_decoding(tmp_path: Path, clf: Classifier) -> None:
    # MuPDF decodes an inline image while it reads the content stream, whatever the resolution it
    # draws at (measured: a 15000 x 15000 one in an 868-byte file took 276 MB and 1.5 s); its
    # dictionary says its size, so it is refused unread like an image object.
    limit = int(MAX_IMAGE_PIXELS ** 0.5) + 1000  # just over the limit: 15142 x 15142 pixels
    for in_form in (False, True):
        pdf = inline_image_pdf(tmp_path / f"inline-{in_form}.pdf", limit, limit, in_form=in_form)
        assert pdf.stat().st_size < 5000
        t0 = time.perf_counter()
        res = analyze(pdf, clf)
        page = res.page_results[0]
        assert page.error and f"{limit} x {limit} pixels" in page.error and not page.damaged, page.error
        assert time.perf_counter() - t0 < 1.0  # refused before anything is decoded
    small = inline_image_pdf(tmp_path / "small-inline.pdf", 3000, 3000)  # below the limit: drawn
    res = analyze(small, clf)
    assert res.error is None and res.page_results[0].error is None


# -- time limits --------------------------------------------------------------------------------
def test_stalled_page_is_skipped_and_the_rest_analysed(tmp_path: Path, clf: Classifier,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pdf = make_score_pdf(tmp_path / "s.pdf", pages=3, systems_per_page=3)
    release = threading.Event()
    real = pipeline.prepare_page

    def stall_on_page_2(doc: Document, index: int, *a: Any, **k: Any) -> Any:
        if index == 1:
            release.wait(30)  # a page that does not come back (until the test ends)
        return real(doc, index, *a, **k)

    monkeypatch.setattr(pipeline, "prepare_page", stall_on_page_2)
    t0 = time.perf_counter()
    try:
        res = analyze(pdf, clf, AnalysisOptions(page_timeout=3.0))
    finally:
        release.set()
    assert time.perf_counter() - t0 < 25
    assert res.error is None
    assert [p.page for p in res.page_results] == [1, 2, 3]
    assert [len(p.systems) for p in res.page_results] == [3, 0, 3]
    assert res.page_results[1].error and "longer than 3 s" in res.page_results[1].error


def warm_up_isolation(tmp_path: Path, clf: Classifier) -> None:
    """Start the page-process server once, so that its start-up is not counted as a page's time."""
    res = analyze(make_score_pdf(tmp_path / "warm.pdf", pages=1, systems_per_page=2), clf,
                  AnalysisOptions(isolate=True))
    assert res.error is None and len(res.page_results[0].systems) == 2


def _forkserver_children() -> list[int]:
    fs = getattr(getattr(multiprocessing, "forkserver", None), "_forkserver", None)
    server = getattr(fs, "_forkserver_pid", None)
    if not server:
        return []
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == server:
                kids.append(int(entry))
    return kids


@pytest.mark.skipif(not LINUX, reason="uses the forkserver and /proc")
def test_exploding_page_is_stopped_in_isolation(tmp_path: Path, clf: Classifier) -> None:
    # MuPDF holds the GIL while it renders, so only a child process can be stopped mid-page.
    pdf = exploding_pdf(tmp_path / "explodes.pdf")
    warm_up_isolation(tmp_path, clf)
    t0 = time.perf_counter()
    res = analyze(pdf, clf, AnalysisOptions(page_timeout=4.0, isolate=True))
    print(f"exploding page skipped; document done in {time.perf_counter() - t0:.1f} s")
    assert time.perf_counter() - t0 < 40
    assert res.error is None and [len(p.systems) for p in res.page_results] == [3, 0, 3]
    assert "longer than 4 s" in (res.page_results[1].error or "")
    deadline = time.time() + 10  # and the child rendering it is gone
    while _forkserver_children() and time.time() < deadline:
        time.sleep(0.1)
    assert _forkserver_children() == []


@pytest.mark.skipif(not LINUX, reason="uses the forkserver and /proc")
def test_renderer_killed_mid_page_costs_one_page(tmp_path: Path, clf: Classifier) -> None:
    # What the out-of-memory killer or a crash in the PDF library does: the child dies on page 2.
    pdf = exploding_pdf(tmp_path / "explodes.pdf")
    warm_up_isolation(tmp_path, clf)
    killed: list[int] = []
    busy = os.sysconf("SC_CLK_TCK")  # one second of CPU: busy on the exploding page

    def killer() -> None:
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            for pid in _forkserver_children():
                try:
                    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[11])
                except (OSError, IndexError, ValueError):
                    continue
                if ticks > busy:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.05)

    threading.Thread(target=killer, daemon=True).start()
    res = analyze(pdf, clf, AnalysisOptions(page_timeout=120.0, isolate=True))
    assert killed
    assert res.error is None and [len(p.systems) for p in res.page_results] == [3, 0, 3]
    assert "signal 9" in (res.page_results[1].error or "")


# -- batch durability --------------------------------------------------------------------------
def _crash_on_purpose(path: str) -> dict[str, Any]:
    """A worker that dies (like a segfault in a PDF library) on files named crash*."""
    if Path(path).name.startswith("crash"):
        os._exit(3)
    return _ORIGINAL_WORKER(path)


def test_crashed_worker_costs_only_its_document(tmp_path: Path, tiny_model: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(4):
        make_score_pdf(folder / f"s{i}.pdf", pages=1, systems_per_page=2, seed=i)
    make_score_pdf(folder / "crash.pdf", pages=1, systems_per_page=2, seed=9)
    monkeypatch.setattr(cli, "_worker_analyze", _crash_on_purpose)
    out = tmp_path / "res.jsonl"
    assert cli.main(["analyze", str(folder), "--model", str(tiny_model), "--out", str(out), "-q",
                     "--jobs", "2", "--threads", "1"]) == 0
    docs = {Path(d["path"]).name: d for d in read_jsonl(out)}
    assert len(read_jsonl(out)) == len(docs) == 5
    assert "crashed" in docs["crash.pdf"]["error"]
    assert all(docs[f"s{i}.pdf"]["error"] is None and docs[f"s{i}.pdf"]["rows"] == 2 for i in range(4))


# Loaded by every Python process of the test's command line (sitecustomize): a segfault inside
# MuPDF while it opens a hostile file, whichever process opens it.
_CRASH_ON_OPEN = """
import os, signal
import pymupdf
_open = pymupdf.open
def _crashing_open(*args, **kwargs):
    if args and os.path.basename(str(args[0])).startswith("crash"):
        os.kill(os.getpid(), signal.SIGSEGV)
    return _open(*args, **kwargs)
pymupdf.open = _crashing_open
"""


@pytest.mark.skipif(not LINUX, reason="uses the forkserver and signals")
def test_mupdf_crash_while_opening_costs_only_its_document_with_one_job(tmp_path: Path, tiny_model: Path) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_CRASH_ON_OPEN)
    folder = tmp_path / "batch"
    folder.mkdir()
    make_score_pdf(folder / "crash.pdf", pages=1, systems_per_page=2, seed=9)  # first in the batch
    for i in range(3):
        make_score_pdf(folder / f"s{i}.pdf", pages=1, systems_per_page=2, seed=i)
    out = tmp_path / "res.jsonl"
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH")) if p)}
    args = [str(folder), "--model", str(tiny_model), "--out", str(out), "-q", "--jobs", "1", "--threads", "1"]
    proc = run_cli(args, env=env)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, err
    assert "Traceback" not in err and all(line.startswith("bytehoven: ") for line in err.splitlines()), err
    docs = {Path(d["path"]).name: d for d in read_jsonl(out)}
    assert set(docs) == {"crash.pdf", "s0.pdf", "s1.pdf", "s2.pdf"}
    assert "crashed the PDF library while being opened (signal 11)" in docs["crash.pdf"]["error"]
    assert all(docs[f"s{i}.pdf"]["error"] is None and docs[f"s{i}.pdf"]["rows"] == 2 for i in range(3))
    # With its content hash, so that --resume skips it rather than meeting it again.
    assert docs["crash.pdf"]["sha256"]
    again = run_cli(args + ["--resume"], env=env)
    assert again.returncode == 0 and b"4 document(s) already in" in again.stderr
    assert len(read_jsonl(out)) == 4


def test_cut_last_line_is_repaired_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    with ResultsFile(out, LABELS, resume=False) as sink:
        sink.append({"path": "a.pdf", "sha256": "aa", "composers": {}})
        sink.append({"path": "b.pdf", "sha256": None, "error": "b.pdf: file not found"})
    with out.open("ab") as fh:
        fh.write(b'{"path":"c.pdf","sha256":"cc","compo')  # killed mid-write
    with ResultsFile(out, LABELS, resume=True) as sink:
        assert sink.is_done("aa") and not sink.is_done("cc")
        assert sink.is_done(None, "b.pdf") and not sink.is_done(None, "c.pdf")
        sink.append({"path": "c.pdf", "sha256": "cc", "composers": {}})
    assert [d["path"] for d in read_jsonl(out)] == ["a.pdf", "b.pdf", "c.pdf"]


def test_killed_at_random_moments_then_resumed_loses_nothing(tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    good = {}
    for i in range(8):
        pages = 1 + i % 3
        make_score_pdf(folder / f"score{i:02d}.pdf", pages=pages, systems_per_page=4, seed=i)
        good[f"score{i:02d}.pdf"] = pages
    make_corrupt_pdf(folder / "corrupt.pdf")
    make_encrypted_pdf(folder / "locked.pdf")
    (folder / "empty.pdf").write_bytes(b"")
    os.symlink("gone.pdf", folder / "dangling.pdf")
    make_text_pdf(folder / "preface.pdf")
    out = tmp_path / "batch.jsonl"
    args = [str(folder), "--model", str(tiny_model), "--out", str(out), "--resume", "-q", "--threads", "1"]
    cmd = [sys.executable, "-m", "bytehoven_desktop", "analyze", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    moments = []
    # Ctrl-C in the middle of the batch, then SIGKILL of the program alone (its page process is
    # orphaned) and of its whole process group, at random moments (start-up included).
    for how in ("ctrl-c", "kill", "killpg"):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        if how == "ctrl-c":  # once the first result is written
            deadline = time.time() + 60
            while proc.poll() is None and time.time() < deadline and not (out.exists() and out.stat().st_size):
                time.sleep(0.02)
            moment = None
        else:
            moment = rng.uniform(0.3, 3.0)
            time.sleep(moment)
        moments.append((how, moment and round(moment, 2)))
        running = proc.poll() is None
        if running:
            if how == "kill":
                proc.kill()
            else:
                os.killpg(proc.pid, signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
        err = proc.communicate(timeout=120)[1].decode()
        if how == "ctrl-c" and running:  # a message, not a traceback
            assert "Traceback" not in err, err
            if proc.returncode == 0:
                # The signal landed after the last document was written (a loaded machine can
                # finish the batch between the poll and the signal): then nothing may be missing.
                assert len(read_jsonl(out)) == len(os.listdir(folder)), err
            else:
                assert proc.returncode == 130 and "interrupted" in err, err
    print(f"seed {seed}: interrupted after {moments} s")
    final = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert b"Traceback" not in final.stderr
    docs = read_jsonl(out)
    names = [Path(d["path"]).name for d in docs]
    assert sorted(names) == sorted(set(names)), f"seed {seed}: a document has two results"
    by_name = {Path(d["path"]).name: d for d in docs}
    assert set(by_name) == set(good) | {"corrupt.pdf", "locked.pdf", "empty.pdf", "dangling.pdf", "preface.pdf"}
    for name, pages in good.items():
        assert by_name[name]["error"] is None and by_name[name]["pages"] == pages
        assert by_name[name]["rows"] == 4 * pages
    assert all(by_name[n]["error"] for n in ("corrupt.pdf", "locked.pdf", "empty.pdf", "dangling.pdf"))
    assert by_name["preface.pdf"]["reason"] == NO_MUSIC


def test_max_pages_on_a_thousand_page_pdf(zoo_run: dict[str, Any], clf: Classifier) -> None:
    res = analyze(zoo_run["zoo"] / "thousand-pages.pdf", clf, AnalysisOptions(max_pages=5))
    assert res.pages == 1000 and [p.page for p in res.page_results] == [1, 2, 3, 4, 5]


# -- model and GPU faults -----------------------------------------------------------------------
@pytest.mark.parametrize("case", ["missing", "empty", "folder", "corrupt", "no-metadata", "label-count"])
def test_model_faults_on_the_command_line(tmp_path: Path, case: str, capsys: pytest.CaptureFixture) -> None:
    model = tmp_path / f"{case}.onnx"
    if case == "empty":
        model.write_bytes(b"")
    elif case == "folder":
        model.mkdir()
    elif case == "corrupt":
        model.write_bytes(b"\x08\x01garbage that is not a protobuf" * 10)
    elif case == "no-metadata":
        make_model(model, metadata={"labels": None, "mean": None})
    elif case == "label-count":
        make_model(model, n_outputs=len(LABELS) + 1)
    score = make_score_pdf(tmp_path / "s.pdf", pages=1, systems_per_page=2)
    assert cli.main(["analyze", str(score), "--model", str(model), "-q"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and str(model) in err


def test_cuda_requested_but_unusable_is_a_notice(tmp_path: Path, tiny_model: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    score = make_score_pdf(tmp_path / "s.pdf", pages=1, systems_per_page=2)
    assert cli.main(["analyze", str(score), "--model", str(tiny_model), "--device", "cuda", "-q"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["error"] is None and doc["rows"] == 2 and "Traceback" not in err
    if doc["device"] == "cpu":  # no usable GPU here: said in the report and on the terminal
        assert any("CPU" in n for n in doc["notices"]) and "CPU" in err


class _FailingGPU:
    """An ONNX Runtime session on a GPU that fails once running (e.g. CUDA error 700)."""

    def run(self, *a: Any, **k: Any) -> Any:
        raise RuntimeError("CUDA failure 700: an illegal memory access was encountered")


def test_gpu_failing_mid_analysis_finishes_on_cpu(tmp_path: Path, tiny_model: Path, clf: Classifier) -> None:
    score = make_score_pdf(tmp_path / "s.pdf", pages=2, systems_per_page=3)
    gpu = Classifier(tiny_model, device="cpu", threads=1, batch_size=8)
    gpu.session, gpu.device = _FailingGPU(), "cuda"  # type: ignore[assignment]
    res = analyze(score, gpu)
    assert res.error is None and res.device == "cpu"
    assert any("GPU failed" in n and "CPU" in n for n in res.notices)
    want = analyze(score, clf)
    np.testing.assert_allclose([s.probs for p in res.page_results for s in p.systems],
                               [s.probs for p in want.page_results for s in p.systems], atol=1e-5)


# -- orientation ------------------------------------------------------------------------------
@pytest.mark.parametrize("turn", [cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_90_COUNTERCLOCKWISE, cv2.ROTATE_180])
def test_turned_scans_are_read_upright(tmp_path: Path, turn: int) -> None:
    gray = score_gray(tmp_path)
    cv2.imwrite(str(tmp_path / "up.png"), gray)
    cv2.imwrite(str(tmp_path / "turned.png"), cv2.rotate(gray, turn))
    with Document(tmp_path / "up.png") as d:
        up, _ = prepare_page(d, 0, 32, 192)
    with Document(tmp_path / "turned.png") as d:
        turned, _ = prepare_page(d, 0, 32, 192)
    assert turned.rows is not None and up.rows is not None and len(turned.rows) == len(up.rows) == ROWS
    # The model sees the same row images as for the upright page (not mirrored or upside down).
    diff = np.abs(turned.rows.astype(int) - up.rows.astype(int)).mean()
    flipped = np.abs(turned.rows[:, ::-1, ::-1].astype(int) - up.rows.astype(int)).mean()
    assert diff < 1.0 < flipped
    assert turned.notes and ("sideways" in turned.notes[0] or "upside down" in turned.notes[0])
    assert up.turn == 0 and turned.turn == {cv2.ROTATE_90_CLOCKWISE: 1, cv2.ROTATE_90_COUNTERCLOCKWISE: 3,
                                            cv2.ROTATE_180: 2}[turn]


@pytest.mark.parametrize("turn", [None, cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_180])
def test_activation_map_lies_like_the_displayed_row(tmp_path: Path, clf: Classifier, turn: int | None) -> None:
    from bytehoven_desktop.gui.jobs import row_activation

    gray = score_gray(tmp_path)
    path = tmp_path / "page.png"
    cv2.imwrite(str(path), gray if turn is None else cv2.rotate(gray, turn))
    with Document(path) as d:
        page, _ = prepare_page(d, 0, *clf.input_size)
        box = page.boxes[1]
        _, upright_cam = clf.explain(page.rows[1])
    cam = row_activation(str(path), 0, box, clf)
    assert cam is not None
    # The map is stretched over the box as displayed: tall boxes (a sideways page) get a tall map.
    assert (cam.shape[0] > cam.shape[1]) == (box[3] - box[1] > box[2] - box[0])
    want = {None: upright_cam, cv2.ROTATE_90_CLOCKWISE: np.rot90(upright_cam, -1),
            cv2.ROTATE_180: np.rot90(upright_cam, 2)}[turn]
    np.testing.assert_allclose(cam, want, atol=1e-5)
