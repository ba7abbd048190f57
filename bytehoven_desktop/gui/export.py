"""Saving results and pictures: a document's results as JSON/CSV (the same schema as
``bytehoven analyze``), a batch's results, and a page image or PDF with its rows drawn on.

Plain functions: the window runs them as background operations (they render pages)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from PySide6.QtCore import QMarginsF, QPointF, QRectF, QSizeF
from PySide6.QtGui import QImage, QPageLayout, QPageSize, QPainter, QPdfWriter

from ..batch import ResultsFile
from ..document import Document
from ..report import PageResult, dumps
from .overlays import paint_damage, paint_rows
from .renderer import gray_to_qimage

RESULT_FILTERS = "JSON (*.json);;JSON Lines (*.jsonl);;CSV (*.csv)"
IMAGE_FILTERS = "PNG image (*.png);;PDF document (*.pdf);;JPEG image (*.jpg)"
EXPORT_DPI = 150.0


def write_results(docs: Sequence[dict[str, Any]], path: Path, labels: Sequence[str]) -> Path:
    """Write documents' JSON forms to ``path``: ``.csv`` and ``.jsonl`` exactly as
    ``bytehoven analyze --out`` writes them; ``.json`` as one indented object (one document)
    or an indented list (several), for reading by people."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        body = docs[0] if len(docs) == 1 else list(docs)
        path.write_text(json.dumps(body, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    elif suffix == ".csv":
        with ResultsFile(path, labels, resume=False) as sink:
            for d in docs:
                sink.append(d)
    else:
        path.write_text("".join(dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


def page_image(doc_path: str, page_index: int, result: PageResult | None, dpi: float = EXPORT_DPI) -> QImage:
    """The page rendered at ``dpi`` with its rows tinted, outlined and labelled."""
    with Document(doc_path) as doc:
        img = doc.render(page_index, dpi, partial=True)  # a damaged page as far as it can be drawn, marked
    out = gray_to_qimage(img.gray).convertToFormat(QImage.Format.Format_RGB32)
    if (result is not None and result.systems) or img.damage:
        p = QPainter(out)
        if result is not None and result.systems:
            paint_rows(p, result.systems, img.scale, label_px=8.0 * img.scale, line_px=1.2 * img.scale)
        if img.damage:
            paint_damage(p, QRectF(out.rect()), img.damage, title_px=14.0 * img.scale)
        p.end()
    return out


def save_page(doc_path: str, page_index: int, result: PageResult | None, out_path: Path,
              dpi: float = EXPORT_DPI) -> Path:
    """Save a page with its overlays as PNG/JPEG, or as a one-page PDF of the page's size
    (the page as an image, the rows as vector shapes over it)."""
    out_path = Path(out_path)
    image = page_image(doc_path, page_index, None if out_path.suffix.lower() == ".pdf" else result, dpi)
    if out_path.suffix.lower() == ".pdf":
        with Document(doc_path) as doc:
            w, h = doc.page_size(page_index)
        writer = QPdfWriter(str(out_path))
        writer.setResolution(72)  # one painter unit per point: boxes are in points already
        writer.setPageLayout(QPageLayout(QPageSize(QSizeF(w, h), QPageSize.Unit.Point, "page"),
                                         QPageLayout.Orientation.Portrait, QMarginsF(0, 0, 0, 0)))
        writer.setCreator("Bytehoven Desktop")
        p = QPainter(writer)
        p.drawImage(QRectF(0, 0, w, h), image)
        if result is not None and result.systems:
            paint_rows(p, result.systems, 1.0, QPointF(0, 0), label_px=8.0, line_px=1.0)
        p.end()
    elif not image.save(str(out_path)):
        raise OSError(f"{out_path}: could not be written")
    return out_path
