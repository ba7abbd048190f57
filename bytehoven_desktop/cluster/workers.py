"""What runs on the cluster's workers: opening and page preparation as CPU tasks, inference in actors.

Files and the model travel as bytes through Ray's object store, so workers on other machines
need no shared file system, only Bytehoven installed. A page task renders its pages in a child
process exactly as the local engine does (pipeline.prepare_range with ``isolate``): a page that
crashes the renderer or hangs costs that page. Its rows stay in the object store and go from there
to an inference actor, never through the driver.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import ray

from ..classifier import Classifier
from ..document import DocumentError
from ..pipeline import AnalysisOptions, PreparedPage, open_for_analysis, prepare_range
from ..probe import Opened


@contextmanager
def _local_copy(data: bytes, name: str) -> Iterator[str]:
    """The document as a file on this worker, with its name's suffix (images are told by it)."""
    fd, tmp = tempfile.mkstemp(prefix="bytehoven-", suffix=Path(name).suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        yield tmp
    finally:
        os.unlink(tmp)


@ray.remote
def open_document(data: bytes, name: str, options: AnalysisOptions) -> Opened | str:
    """Page count and notices of the document ``data`` (named ``name``), opened as the local engine
    opens it; or why it cannot be opened, naming ``name``."""
    with _local_copy(data, name) as tmp:
        try:
            return open_for_analysis(Path(tmp), options)
        except DocumentError as exc:
            return str(exc).replace(tmp, name)


@ray.remote(num_returns=2)
def prepare_pages(data: bytes, name: str, start: int, stop: int, height: int, width: int,
                  options: AnalysisOptions) -> tuple[list[PreparedPage], np.ndarray]:
    """Pages [start, stop) of the document ``data`` (named ``name``): the pages without their rows,
    and all their rows (N x height x width uint8) in page order."""
    pages, rows = [], []
    with _local_copy(data, name) as tmp:
        for page in prepare_range(tmp, start, stop, height, width, options):
            if page.rows is not None and len(page.rows):
                rows.append(page.rows)
            # A message that names the worker's copy names the user's file instead.
            pages.append(replace(page, rows=None, error=page.error and page.error.replace(tmp, name),
                                 notes=[n.replace(tmp, name) for n in page.notes]))
    return pages, (np.concatenate(rows) if rows else np.zeros((0, height, width), np.uint8))


def _model_file(data: bytes, sha256: str) -> Path:
    """The model as a file on this node, written once and shared by its actors (named by content)."""
    folder = Path(tempfile.gettempdir()) / "bytehoven-models"
    folder.mkdir(exist_ok=True)
    path = folder / f"{sha256}.onnx"
    if not path.is_file() or path.stat().st_size != len(data):
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)  # atomic: an actor starting meanwhile never reads half a model
    return path


@ray.remote
class InferenceActor:
    """One ONNX Runtime session, fed batches of rows from any documents."""

    def __init__(self, model: list[Any], sha256: str, device: str, threads: int | None, batch_size: int):
        # ``model`` is [the model's bytes in the object store], held by the driver for the whole run.
        data = ray.get(model[0])
        self.clf = Classifier(_model_file(data, sha256), device=device, threads=threads, batch_size=batch_size)

    def describe(self) -> dict[str, Any]:
        return {"info": self.clf.info, "device": self.clf.device, "notice": self.clf.notice}

    def logits(self, *rows: np.ndarray) -> tuple[list[np.ndarray], str, str | None]:
        """Logits for each array of rows; the rows of several ranges share the batches. They are
        calibrated per page where the document's result is built (a scan and an engraving differ)."""
        sizes = [len(r) for r in rows]
        out = self.clf.logits(np.concatenate(rows)) if sum(sizes) else np.zeros((0, len(self.clf.labels)))
        bounds = np.cumsum([0] + sizes)
        # The device after the fact: a GPU that failed in this batch has fallen back to the CPU.
        return [out[a:b] for a, b in zip(bounds[:-1], bounds[1:])], self.clf.device, self.clf.notice
