"""Document → pages → rows → batched inference → report, as a cancellable generator.

Pages are rendered and their rows detected on a producer thread while the caller's thread
runs inference, so the model is never starved (ONNX Runtime, OpenCV and MuPDF's
rendering release the GIL). Rows from consecutive pages share batches. The generator
yields a ``Started`` event, one ``PageResult`` per page in order as soon as its rows are
classified, and finally the ``DocumentResult``; it never raises for a bad document.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Union

import numpy as np

from .classifier import Classifier, file_sha256
from .document import Document, DocumentError
from .report import (DEFAULT_ABSTAIN_THRESHOLD, DocumentResult, PageResult, Summary, SystemResult,
                     document_summary, error_result, summarize)
from .rowimage import rows_from_page

# Pages are rendered so that two staff lines lie about this many pixels apart: a 600 dpi
# scan and a vector page then look alike to the detector and to the model.
TARGET_INTERLINE = 10.0
FIRST_DPI = 150.0


@dataclass(frozen=True)
class AnalysisOptions:
    threshold: float | None = None  # abstain below this mean confidence; None: the model's own
    page_timeout: float = 60.0  # seconds one page may take before it is skipped
    max_pages: int | None = None
    queue_pages: int = 4  # pages prepared ahead of inference


@dataclass(frozen=True)
class Started:
    path: str
    pages: int
    sha256: str | None


@dataclass
class PreparedPage:
    index: int
    width: float
    height: float
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    staves: list[int] = field(default_factory=list)
    rows: np.ndarray | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)


Event = Union[Started, PageResult, DocumentResult]


def prepare_page(doc: Document, index: int, height: int, width: int, dpi: float = FIRST_DPI) -> tuple[PreparedPage, float]:
    """Render one page, find its rows and cut them into model inputs.

    Returns the page and the dpi that put its staff lines at TARGET_INTERLINE (a good first
    guess for the next page of the same document)."""
    w_pt, h_pt = doc.page_size(index)
    img = doc.render(index, dpi)
    found, rows = rows_from_page(img.gray, height, width)
    if found.metrics is not None and found.systems:
        ratio = TARGET_INTERLINE / found.metrics.interline
        if not 0.75 <= ratio <= 1.35 and not img.downscaled:
            better = float(np.clip(dpi * ratio, 36.0, 900.0))
            img = doc.render(index, better)
            found, rows = rows_from_page(img.gray, height, width)
            dpi = better
        elif found.metrics is not None:
            dpi = float(np.clip(dpi * ratio, 36.0, 900.0))
    page = PreparedPage(index, w_pt, h_pt)
    if img.downscaled:
        page.notes.append("page is very large; analysed at reduced resolution")
    for s in found.systems:
        page.boxes.append(img.to_page(found.original_box(s)))
        page.staves.append(s.staff_count)
    page.rows = rows
    if found.skew_deg:
        page.notes.append(f"deskewed by {found.skew_deg:.2f} degrees")
    return page, dpi


class _Producer(threading.Thread):
    """Prepares pages [start, stop) of one document into a queue; abandoned on timeout."""

    def __init__(self, path: Path, start: int, stop: int, height: int, width: int,
                 out: "queue.Queue[tuple[int, PreparedPage]]", cancel: threading.Event, generation: int):
        super().__init__(daemon=True, name=f"bytehoven-pages-{generation}")
        self.path, self.first, self.stop_at = path, start, stop
        self.height, self.width = height, width
        self.out, self.cancel, self.generation = out, cancel, generation
        self.abandoned = threading.Event()

    def run(self) -> None:
        try:
            doc = Document(self.path)
        except DocumentError as exc:
            for i in range(self.first, self.stop_at):
                self._put(PreparedPage(i, 0, 0, error=str(exc)))
            return
        dpi = FIRST_DPI
        try:
            for i in range(self.first, self.stop_at):
                if self.cancel.is_set() or self.abandoned.is_set():
                    return
                try:
                    page, dpi = prepare_page(doc, i, self.height, self.width, dpi)
                except DocumentError as exc:
                    page = PreparedPage(i, 0, 0, error=str(exc).split(": ", 1)[-1])
                except MemoryError:
                    page = PreparedPage(i, 0, 0, error="page is too large to analyse (out of memory)")
                except Exception as exc:  # one bad page never ends the document
                    page = PreparedPage(i, 0, 0, error=f"page could not be analysed ({type(exc).__name__}: {exc})")
                self._put(page)
        finally:
            doc.close()

    def _put(self, page: PreparedPage) -> None:
        while not (self.cancel.is_set() or self.abandoned.is_set()):
            try:
                self.out.put((self.generation, page), timeout=0.1)
                return
            except queue.Full:
                continue


def analyze_document(path: str | Path, classifier: Classifier, options: AnalysisOptions = AnalysisOptions(),
                     cancel: threading.Event | None = None) -> Iterator[Event]:
    """Analyse one document, yielding Started, each PageResult, then the DocumentResult."""
    t0 = time.perf_counter()
    path = Path(path)
    cancel = cancel or threading.Event()
    info = classifier.info
    labels = list(info.labels)
    threshold = options.threshold if options.threshold is not None else (
        info.abstain_threshold if info.abstain_threshold is not None else DEFAULT_ABSTAIN_THRESHOLD)
    notices = [classifier.notice] if classifier.notice else []

    def failed(message: str, sha: str | None = None, pages: int = 0) -> DocumentResult:
        res = error_result(str(path), message, classifier.device, info.name, info.sha256, sha, pages)
        res.notices, res.seconds = notices, time.perf_counter() - t0
        return res

    try:
        with Document(path) as doc:
            n_pages = doc.page_count
        sha = file_sha256(path)
    except DocumentError as exc:
        yield failed(str(exc))
        return
    except OSError as exc:
        yield failed(f"{path}: cannot be read ({exc.strerror or exc})")
        return
    yield Started(str(path), n_pages, sha)
    last = min(n_pages, options.max_pages) if options.max_pages else n_pages

    height, width = classifier.input_size
    pages_q: "queue.Queue[tuple[int, PreparedPage]]" = queue.Queue(maxsize=max(1, options.queue_pages))
    generation = 0
    producer = _Producer(path, 0, last, height, width, pages_q, cancel, generation)
    producer.start()

    done: list[PageResult] = []
    pending: list[tuple[PreparedPage, np.ndarray | None]] = []  # pages waiting for their probabilities
    row_buf: list[np.ndarray] = []
    probs_out: list[np.ndarray] = []
    next_page = 0
    received = 0
    waiting_since: float | None = None

    def run_batch(full_only: bool) -> None:
        while row_buf and (len(row_buf) >= classifier.batch_size or not full_only):
            take = row_buf[: classifier.batch_size]
            del row_buf[: classifier.batch_size]
            probs_out.append(classifier.predict(np.stack(take)))

    def finished_pages() -> Iterator[PageResult]:
        nonlocal probs_out
        available = np.concatenate(probs_out) if probs_out else np.zeros((0, len(labels)), np.float32)
        used = 0
        while pending:
            page, _ = pending[0]
            n = 0 if page.rows is None else len(page.rows)
            if available.shape[0] - used < n:
                break
            pending.pop(0)
            probs = available[used: used + n]
            used += n
            systems = [SystemResult(b, p, labels, s) for b, p, s in zip(page.boxes, probs, page.staves)]
            summary = summarize(systems, labels, threshold) if page.error is None else Summary(
                None, None, None, {}, {}, 0, "error")
            yield PageResult(page.index + 1, systems, summary, page.width, page.height, page.error, page.notes)
        probs_out = [available[used:]] if used < available.shape[0] else []

    try:
        while received < last:
            if cancel.is_set():
                break
            try:
                gen, page = pages_q.get(timeout=min(0.2, options.page_timeout))
            except queue.Empty:
                # Nothing ready: classify what we have rather than wait, then check the clock.
                run_batch(full_only=False)
                for res in finished_pages():
                    done.append(res)
                    yield res
                if waiting_since is None:
                    waiting_since = time.perf_counter()
                elif time.perf_counter() - waiting_since > options.page_timeout:
                    # A page stalled: skip it and carry on with a fresh producer.
                    producer.abandoned.set()
                    waiting_since = None
                    pending.append((PreparedPage(next_page, 0, 0, error=f"page took longer than "
                                                 f"{options.page_timeout:.0f} s and was skipped"), None))
                    received += 1
                    next_page += 1
                    generation += 1
                    if next_page < last:
                        producer = _Producer(path, next_page, last, height, width, pages_q, cancel, generation)
                        producer.start()
                continue
            waiting_since = None
            if gen != generation:
                continue  # a late page from an abandoned producer
            received += 1
            next_page = page.index + 1
            pending.append((page, page.rows))
            if page.rows is not None and len(page.rows):
                row_buf.extend(page.rows)
            run_batch(full_only=True)
            for res in finished_pages():
                done.append(res)
                yield res
        if not cancel.is_set():
            run_batch(full_only=False)
            for res in finished_pages():
                done.append(res)
                yield res
    except Exception as exc:  # inference failure: report it, keep what was done
        result = failed(f"{path}: analysis failed ({type(exc).__name__}: {exc})", sha, n_pages)
        result.page_results = done
        yield result
        producer.abandoned.set()
        return
    finally:
        producer.abandoned.set()

    summary = document_summary(done, labels, threshold)
    errors = [p for p in done if p.error]
    error = None
    if done and len(errors) == len(done):
        error = f"{path}: no page could be analysed ({errors[0].error})"
    result = DocumentResult(str(path), sha, n_pages, done, summary, classifier.device, info.name, info.sha256,
                            error=error, notices=notices, seconds=time.perf_counter() - t0,
                            cancelled=cancel.is_set())
    yield result


def analyze(path: str | Path, classifier: Classifier, options: AnalysisOptions = AnalysisOptions(),
            cancel: threading.Event | None = None) -> DocumentResult:
    """Analyse one document and return only its final result."""
    result: DocumentResult | None = None
    for event in analyze_document(path, classifier, options, cancel):
        if isinstance(event, DocumentResult):
            result = event
    assert result is not None
    return result
