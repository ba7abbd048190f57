"""The work of one document on the cluster: its page ranges, and their results put back together.

A long score is cut into ranges of ``PAGES_PER_TASK`` pages, so that a 1000-page PDF is prepared
by many workers at once rather than holding one for an hour. Each range comes back as prepared
pages (boxes, notes, errors) and the logits of its rows; the document's result is built
from them with the same functions the local engine uses (pipeline.page_result, report), so both
engines give the same results. Nothing here imports Ray.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..classifier import ModelInfo
from ..pipeline import DPI_BLOCK, PreparedPage, damage_notices, document_error, page_result
from ..report import DocumentResult, document_summary, error_result

# A multiple of pipeline.DPI_BLOCK: a range then starts where the local engine starts a block of
# pages afresh, and every page comes out as the local engine has it.
PAGES_PER_TASK = DPI_BLOCK


def split_pages(pages: int, per_task: int = PAGES_PER_TASK) -> list[tuple[int, int]]:
    """[start, stop) ranges covering pages 0..pages-1, in order, at most ``per_task`` pages each."""
    per_task = max(1, per_task)
    return [(a, min(a + per_task, pages)) for a in range(0, pages, per_task)]


@dataclass
class PageRange:
    """Pages [start, stop) of one document, as they go through preparation and inference."""

    doc: "DocumentJob"
    start: int
    stop: int
    attempts: int = 0  # tries that failed because a worker or its rows were lost
    pages: list[PreparedPage] | None = None  # prepared, without their rows (those stay in the object store)
    rows: int = 0
    rows_ref: Any = None  # the object holding this range's rows (Ray's ObjectRef), until classified
    logits: np.ndarray | None = None  # rows x composers, in row order (calibrated per page, page_result)
    device: str | None = None  # where its rows were classified
    notice: str | None = None  # what that inference worker had to say (a GPU that fell back to the CPU)

    @property
    def done(self) -> bool:
        return self.logits is not None

    def prepared(self, pages: list[PreparedPage], rows: int) -> None:
        self.pages, self.rows = pages, rows
        if rows == 0:
            self.classified(np.zeros((0, 0), np.float32), None, None)

    def classified(self, logits: np.ndarray, device: str | None, notice: str | None) -> None:
        self.logits, self.device, self.notice = logits, device, notice
        self.rows_ref = None  # the rows can go

    def fail(self, message: str) -> None:
        """Every page of the range becomes an error page saying ``message``."""
        self.pages = [PreparedPage(i, 0, 0, error=message) for i in range(self.start, self.stop)]
        self.rows = 0
        self.classified(np.zeros((0, 0), np.float32), None, None)

    @property
    def label(self) -> str:
        return f"page {self.start + 1}" if self.stop - self.start == 1 else f"pages {self.start + 1}-{self.stop}"


@dataclass
class DocumentJob:
    path: Path
    sha256: str
    opened: bool = False  # its page count is known and its ranges are planned
    pages: int = 0  # in the document
    last: int = 0  # pages analysed (--max-pages)
    notices: tuple[str, ...] = ()  # from opening it (a PDF that was repaired, a damaged page tree)
    ranges: list[PageRange] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    data: Any = None  # the file's bytes in the object store, while pages are still to prepare
    size: int = 0  # of the file, in bytes

    def plan(self, pages: int, last: int, notices: tuple[str, ...],
             per_task: int = PAGES_PER_TASK) -> list[PageRange]:
        """The ranges of an opened document with ``pages`` pages, ``last`` of them to analyse."""
        self.opened, self.pages, self.last, self.notices = True, pages, last, notices
        self.ranges = [PageRange(self, a, b) for a, b in split_pages(last, per_task)]
        return self.ranges

    @property
    def done(self) -> bool:
        return self.opened and all(r.done for r in self.ranges)

    def result(self, info: ModelInfo, threshold: float, device: str) -> DocumentResult:
        """The document's result, once every range is done; ``device`` when no row was classified."""
        labels = list(info.labels)
        done = []
        for r in self.ranges:
            assert r.pages is not None and r.logits is not None
            used = 0
            for page in r.pages:
                n = len(page.boxes) if page.error is None else 0
                done.append(page_result(page, r.logits[used: used + n], info, threshold))
                used += n
        devices = sorted({r.device for r in self.ranges if r.device})
        # In the local engine's order: the inference's (a GPU that fell back), the file's, the pages lost.
        notices = [n for n in dict.fromkeys(r.notice for r in self.ranges) if n]
        notices += list(self.notices) + damage_notices(done)
        return DocumentResult(str(self.path), self.sha256, self.pages, done,
                              document_summary(done, labels, threshold, info.pool_sharpness),
                              ",".join(devices) or device, info.name, info.sha256,
                              error=document_error(self.path, done), notices=notices,
                              seconds=time.perf_counter() - self.started)


def failed_document(path: Path, message: str, info: ModelInfo, device: str, sha256: str | None = None,
                    started: float | None = None) -> DocumentResult:
    """A document that could not be opened: reported as the local engine reports it."""
    res = error_result(str(path), message, device, info.name, info.sha256, sha256)
    if started is not None:
        res.seconds = time.perf_counter() - started
    return res
