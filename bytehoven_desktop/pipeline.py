"""Document → pages → rows → batched inference → report, as a cancellable generator.

Pages are rendered and their rows detected on a producer thread while the caller's thread
runs inference, so the model is never starved (ONNX Runtime and OpenCV release the GIL;
MuPDF does not, so with ``AnalysisOptions.isolate`` pages are prepared in a child process
that can be killed when a page takes too long). Rows from consecutive pages share batches. The generator
yields a ``Started`` event, one ``PageResult`` per page in order as soon as its rows are
classified, and finally the ``DocumentResult``; it never raises for a bad document.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, Union

import numpy as np

from .classifier import Classifier, ModelInfo, file_sha256
from .document import Document, DocumentError, file_problem
from .probe import Opened, probe_document
from .report import (DEFAULT_ABSTAIN_THRESHOLD, DocumentResult, PageResult, Summary, SystemResult,
                     damaged_pages_notice, document_summary, error_result, summarize)
from .rowimage import rows_from_page
from .systems import PageSystems

# Pages are rendered so that two staff lines lie about this many pixels apart: a 600 dpi
# scan and a vector page then look alike to the detector and to the model.
TARGET_INTERLINE = 10.0
FIRST_DPI = 150.0
# Each page's resolution is guessed from the page before, within blocks of this many pages: every
# block starts from FIRST_DPI, so a page's result does not depend on where an engine that splits
# documents (the cluster engine's page ranges, a multiple of this) cut the document.
DPI_BLOCK = 16
# A page whose rows have their clefs and braces at the right (_left_weight below this) is upside down.
UPSIDE_DOWN_CUE = 0.05


@dataclass(frozen=True)
class AnalysisOptions:
    threshold: float | None = None  # abstain below this pooled confidence; None: the model's own
    page_timeout: float = 60.0  # seconds one page may take before it is skipped
    max_pages: int | None = None
    queue_pages: int = 4  # pages prepared ahead of inference
    # Prepare pages in a child process (killed on page_timeout, and a crash or an out-of-memory
    # kill there costs one page) rather than on a thread that a stuck MuPDF call cannot leave.
    isolate: bool = False


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
    turn: int = 0  # quarter turns (np.rot90) that made the page upright for analysis
    scanned: bool = False  # a raster page: its rows are calibrated with the model's scan temperature


Event = Union[Started, PageResult, DocumentResult]


def prepare_page(doc: Document, index: int, height: int, width: int, dpi: float = FIRST_DPI) -> tuple[PreparedPage, float]:
    """Render one page, find its rows and cut them into model inputs.

    Returns the page and the dpi that put its staff lines at TARGET_INTERLINE (a good first
    guess for the next page of the same document). A page lying sideways or upside down (a scan
    fed the wrong way, a PDF page shown rotated) is analysed turned upright; its boxes stay in
    the coordinates of the page as displayed."""
    w_pt, h_pt = doc.page_size(index)
    img = doc.render(index, dpi)
    turn = 0  # np.rot90 quarter turns applied to the rendered page before detection
    found, rows = rows_from_page(img.gray, height, width)
    if not found.systems:
        turn, found, rows = _try_sideways(img.gray, height, width, found, rows)
    elif _left_weight(img.gray, found) < -UPSIDE_DOWN_CUE:
        t_found, t_rows = rows_from_page(_turned(img.gray, 2), height, width)
        if len(t_found.systems) >= len(found.systems):
            turn, found, rows = 2, t_found, t_rows
    if found.metrics is not None and found.systems:
        ratio = TARGET_INTERLINE / found.metrics.interline
        if not 0.75 <= ratio <= 1.35 and not img.downscaled:
            better = float(np.clip(dpi * ratio, 36.0, 900.0))
            img = doc.render(index, better)
            found, rows = rows_from_page(_turned(img.gray, turn), height, width)
            dpi = better
        else:
            dpi = float(np.clip(dpi * ratio, 36.0, 900.0))
    page = PreparedPage(index, w_pt, h_pt, turn=turn, scanned=img.scanned)
    if img.downscaled:
        page.notes.append("page is very large; analysed at reduced resolution")
    if turn:
        page.notes.append(["", "page lies sideways; analysed turned a quarter turn anticlockwise",
                           "page is upside down; analysed turned upright",
                           "page lies sideways; analysed turned a quarter turn clockwise"][turn])
    h_px, w_px = img.gray.shape
    for s in found.systems:
        page.boxes.append(img.to_page(_unturn_box(found.original_box(s), turn, w_px, h_px)))
        page.staves.append(s.staff_count)
    page.rows = rows
    if found.skew_deg:
        page.notes.append(f"deskewed by {found.skew_deg:.2f} degrees")
    return page, dpi


def _turned(gray: np.ndarray, turn: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(gray, turn)) if turn else gray


def _unturn_box(box: tuple[float, float, float, float], turn: int, w: int, h: int) -> tuple[float, float, float, float]:
    """A box in pixels of np.rot90(page, turn) back in pixels of the page (``w`` x ``h``)."""
    x0, y0, x1, y1 = box
    if turn == 1:  # turned anticlockwise: a point (x, y) came from (w - y, x)
        return (w - y1, x0, w - y0, x1)
    if turn == 2:  # upside down
        return (w - x1, h - y1, w - x0, h - y0)
    if turn == 3:  # turned clockwise: (x, y) came from (y, h - x)
        return (y0, h - x1, y1, h - x0)
    return box


def _try_sideways(gray: np.ndarray, height: int, width: int, found: PageSystems,
                  rows: np.ndarray) -> tuple[int, PageSystems, np.ndarray]:
    """Look for rows in the page turned a quarter turn; (0, found, rows) as given when there are none.

    Of the two quarter turns, the one that puts the brace, system barline and clefs at the left
    of the staves. Only tried on pages with no rows, so pages the right way up cost nothing more."""
    t_found, t_rows = rows_from_page(_turned(gray, 1), height, width)
    if not _looks_like_a_score(t_found, gray.shape[0]):
        return 0, found, rows
    if _left_weight(_turned(gray, 1), t_found) < 0:
        o_found, o_rows = rows_from_page(_turned(gray, 3), height, width)
        if len(o_found.systems) >= len(t_found.systems):
            return 3, o_found, o_rows
    return 1, t_found, t_rows


def _looks_like_a_score(found: PageSystems, width: int) -> bool:
    """Enough music to turn a page for: two staves across a third of its width or more. Text turned
    sideways can mimic a short staff here and there; a sideways score has long staves."""
    long = [st for s in found.systems for st in s.staves if st.x1 - st.x0 >= width / 3]
    return len(long) >= 2


def _left_weight(gray: np.ndarray, found: PageSystems) -> float:
    """(left - right) / (left + right) for the ink just left of and at the start of each system's
    staves (brace, system barline, clef, key signature) and that at their end: positive when the
    page is the right way up. On 68 pages of real scans it ranged 0.10..0.45 (median 0.23)."""
    if found.metrics is None:
        return 0.0
    il = found.metrics.interline
    left = right = 0.0
    frames = [found.frame_image(gray, i) for i in range(len(found.frames))]
    for s in found.systems:
        img = frames[s.frame]
        x0, y0, x1, y1 = s.lines_box
        top, bottom = int(max(0, y0 - il)), int(min(img.shape[0], y1 + il))

        def ink(a: float, b: float) -> float:
            a, b = int(max(0, a)), int(min(img.shape[1], b))
            return float((img[top:bottom, a:b] < 128).sum()) if b > a else 0.0

        left += ink(x0 - 3 * il, x0 + 5 * il)
        right += ink(x1 - 5 * il, x1 + 3 * il)
    return (left - right) / max(left + right, 1.0)


def prepared_pages(path: Path, start: int, stop: int, height: int, width: int,
                    stopped: Callable[[], bool]) -> Iterator[PreparedPage]:
    """Pages [start, stop) of one document, prepared; a page that fails is an error page."""
    try:
        doc = Document(path)
    except DocumentError as exc:
        for i in range(start, stop):
            yield PreparedPage(i, 0, 0, error=str(exc))
        return
    prefix = f"{path}: "
    dpi = FIRST_DPI
    try:
        for i in range(start, stop):
            if stopped():
                return
            if i % DPI_BLOCK == 0:
                dpi = FIRST_DPI
            try:
                page, dpi = prepare_page(doc, i, height, width, dpi)
            except DocumentError as exc:
                msg = str(exc)
                page = PreparedPage(i, 0, 0, error=msg[len(prefix):] if msg.startswith(prefix) else msg)
            except MemoryError:
                page = PreparedPage(i, 0, 0, error="page is too large to analyse (out of memory)")
            except Exception as exc:  # one bad page never ends the document
                page = PreparedPage(i, 0, 0, error=f"page could not be analysed ({type(exc).__name__}: {exc})")
            yield page
    finally:
        doc.close()


class _Producer(threading.Thread):
    """Prepares pages [start, stop) of one document into a queue; abandoned on timeout."""

    def __init__(self, path: Path, start: int, stop: int, height: int, width: int,
                 out: "queue.Queue[tuple[int, PreparedPage]]", cancel: threading.Event, generation: int,
                 page_timeout: float = 60.0):
        super().__init__(daemon=True, name=f"bytehoven-pages-{generation}")
        self.path, self.first, self.stop_at = path, start, stop
        self.height, self.width = height, width
        self.out, self.cancel, self.generation = out, cancel, generation
        self.abandoned = threading.Event()
        self.page_timeout = page_timeout

    def stopped(self) -> bool:
        return self.cancel.is_set() or self.abandoned.is_set()

    def run(self) -> None:
        for page in prepared_pages(self.path, self.first, self.stop_at, self.height, self.width, self.stopped):
            self._put(page)

    def _put(self, page: PreparedPage) -> None:
        while not self.stopped():
            try:
                self.out.put((self.generation, page), timeout=0.1)
                return
            except queue.Full:
                continue


_READY = "ready"
# A child stops itself this long after a page's time limit: the analysis kills it at the limit,
# but if the analysis was killed (SIGKILL), nothing else would end a page that never finishes.
_CHILD_GRACE_S = 10.0


def _child_prepare(path: str, start: int, stop: int, height: int, width: int, page_timeout: float,
                   conn: Any) -> None:
    """Child process of _IsolatedProducer: sends _READY, then each prepared page."""
    # faulthandler's watchdog is a C thread: it ends the process even while MuPDF holds the GIL.
    quiet = open(os.devnull, "w")
    try:
        conn.send(_READY)
        pages = prepared_pages(Path(path), start, stop, height, width, lambda: False)
        while True:
            faulthandler.dump_traceback_later(min(page_timeout + _CHILD_GRACE_S, 1e6), exit=True, file=quiet)
            page = next(pages, None)
            faulthandler.cancel_dump_traceback_later()
            if page is None:
                break
            conn.send(page)
        conn.close()
    except BaseException:  # the analysis went away (a broken pipe): end quietly, no traceback
        os._exit(1)


_mp_lock = threading.Lock()
_mp_ctx: Any = None


def _mp_context() -> Any:
    """forkserver where there is one: a child forks from a small clean server (none of our
    threads, no ONNX Runtime) in milliseconds, where forking this process could deadlock in
    OpenCV's thread pool and spawning costs a second of imports per document; spawn elsewhere."""
    global _mp_ctx
    with _mp_lock:
        if _mp_ctx is None:
            if "forkserver" in multiprocessing.get_all_start_methods():
                _mp_ctx = multiprocessing.get_context("forkserver")
                _mp_ctx.set_forkserver_preload([__name__])
            else:
                _mp_ctx = multiprocessing.get_context("spawn")
        return _mp_ctx


def start_page_server() -> None:
    """Start the page-preparation server now, from the main thread, deaf to Ctrl-C.

    A terminal sends SIGINT to the whole process group: a server (or a child forked from it)
    interrupted while it starts would print a traceback. The parent handles Ctrl-C itself and
    stops its children, so they ignore it (the ignore is inherited by every child)."""
    ctx = _mp_context()
    if ctx.get_start_method() != "forkserver" or threading.current_thread() is not threading.main_thread():
        return
    from multiprocessing import forkserver

    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()
    except Exception:  # no child processes here: pages are then prepared on a thread
        pass
    finally:
        signal.signal(signal.SIGINT, old)


class _IsolatedProducer(_Producer):
    """A _Producer whose pages are prepared in a child process, relayed into the queue by this thread.

    MuPDF holds the GIL while it renders, so a page that never finishes (nested forms that draw
    each other twice over, a few kB that take hours) can only be stopped by killing the process
    that renders it: done when the producer is abandoned. A child that dies on a page (a crash
    in a PDF library, the out-of-memory killer) costs that page; a fresh child goes on after it."""

    def run(self) -> None:
        i = self.first
        while i < self.stop_at and not self.stopped():
            ctx = _mp_context()
            conn, child_conn = ctx.Pipe(duplex=False)
            try:
                proc = ctx.Process(target=_child_prepare, daemon=True, name="bytehoven-pages",
                                   args=(str(self.path), i, self.stop_at, self.height, self.width,
                                         self.page_timeout, child_conn))
                proc.start()
            except Exception:  # no child processes here (a sandbox): prepare on this thread
                conn.close()
                for page in prepared_pages(self.path, i, self.stop_at, self.height, self.width, self.stopped):
                    self._put(page)
                return
            finally:
                child_conn.close()
            ready = False
            try:
                while i < self.stop_at and not self.stopped():
                    if conn.poll(0.1):
                        msg = conn.recv()
                        if isinstance(msg, str):  # _READY
                            ready = True
                            continue
                        self._put(msg)
                        i = msg.index + 1
                    elif not proc.is_alive() and not conn.poll():
                        raise EOFError
            except (EOFError, OSError):
                proc.join(timeout=5)
                if not ready:  # the child could not even start: prepare on this thread
                    for page in prepared_pages(self.path, i, self.stop_at, self.height, self.width,
                                                self.stopped):
                        self._put(page)
                    return
                if not self.stopped():
                    code = proc.exitcode
                    why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                    self._put(PreparedPage(i, 0, 0, error=f"page crashed the renderer or ran out of memory "
                                                          f"({why}); skipped"))
                    i += 1
            finally:
                conn.close()
                if proc.is_alive():
                    proc.kill()
                proc.join(timeout=5)


def abstain_threshold(options: AnalysisOptions, info: ModelInfo) -> float:
    """The confidence below which pages and documents abstain: the option, else the model's own."""
    if options.threshold is not None:
        return options.threshold
    return info.abstain_threshold if info.abstain_threshold is not None else DEFAULT_ABSTAIN_THRESHOLD


def page_result(page: PreparedPage, logits: np.ndarray, info: ModelInfo, threshold: float) -> PageResult:
    """A prepared page and its rows' logits (in row order) as the page's result: the rows' probabilities
    are calibrated here, with the temperature for the page's kind (scanned or born-digital)."""
    labels = list(info.labels)
    probs = info.calibrated(logits, page.scanned)
    systems = [SystemResult(b, p, labels, s) for b, p, s in zip(page.boxes, probs, page.staves)]
    summary = summarize(systems, labels, threshold, info.pool_sharpness) if page.error is None else Summary(
        None, None, None, {}, {}, 0, "error")
    return PageResult(page.index + 1, systems, summary, page.width, page.height, page.error, page.notes)


def document_error(path: str | Path, pages: Sequence[PageResult]) -> str | None:
    """The document's error when not one of its pages could be analysed, else None."""
    errors = [p for p in pages if p.error]
    if pages and len(errors) == len(pages):
        return f"{path}: no page could be analysed ({errors[0].error})"
    return None


def damage_notices(pages: Sequence[PageResult]) -> list[str]:
    """What a document's result says, after its pages, of those it lost to a damaged file."""
    damaged = [p.page for p in pages if p.damaged]
    return [damaged_pages_notice(damaged, len(pages))] if damaged else []


def open_for_analysis(path: Path, options: AnalysisOptions) -> Opened:
    """Page count and notices of a document, opened in a child process when ``options.isolate``:
    a crash in MuPDF on opening then costs this document only. Raises DocumentError."""
    return probe_document(path, _mp_context() if options.isolate else None, options.page_timeout)


def prepare_range(path: str | Path, start: int, stop: int, height: int, width: int,
                  options: AnalysisOptions = AnalysisOptions(), cancel: threading.Event | None = None,
                  idle: float | None = None) -> Iterator[PreparedPage | None]:
    """Pages [start, stop) of one document prepared on a producer (in a child process with
    ``options.isolate``), in order, one PreparedPage per page: a page that stalls past
    ``options.page_timeout`` is skipped as an error page and a fresh producer goes on.

    With ``idle``, None is yielded whenever no page has come for that many seconds, so that the
    caller can use the wait (analyze_document classifies the rows it has). Used by
    analyze_document and by engines that classify the rows elsewhere (the cluster's page tasks)."""
    path = Path(path)
    cancel = cancel or threading.Event()
    producer_class = _IsolatedProducer if options.isolate else _Producer
    pages_q: "queue.Queue[tuple[int, PreparedPage]]" = queue.Queue(maxsize=max(1, options.queue_pages))
    generation = 0
    producer = producer_class(path, start, stop, height, width, pages_q, cancel, generation, options.page_timeout)
    producer.start()
    next_page = start
    wait = options.page_timeout if idle is None else min(idle, options.page_timeout)
    waiting_since: float | None = None  # when the caller was first told nothing was ready
    try:
        while next_page < stop and not cancel.is_set():
            try:
                gen, page = pages_q.get(timeout=wait)
            except queue.Empty:
                if idle is not None:
                    if waiting_since is None:
                        waiting_since = time.perf_counter()
                        yield None
                        continue
                    if time.perf_counter() - waiting_since <= options.page_timeout:
                        yield None
                        continue
                # A page stalled: skip it and carry on with a fresh producer.
                producer.abandoned.set()
                waiting_since = None
                yield PreparedPage(next_page, 0, 0, error=f"page took longer than {options.page_timeout:.0f} s "
                                                          "and was skipped")
                next_page += 1
                generation += 1
                if next_page < stop:
                    producer = producer_class(path, next_page, stop, height, width, pages_q, cancel, generation,
                                              options.page_timeout)
                    producer.start()
                continue
            if gen != generation:
                continue  # a late page from an abandoned producer
            next_page = page.index + 1
            waiting_since = None
            yield page
    finally:
        producer.abandoned.set()
        # Let the producer leave its current page before we return: a thread still inside
        # OpenCV or MuPDF when the interpreter exits can abort the process. A truly stuck
        # page is not waited for beyond this.
        producer.join(timeout=5.0)


def analyze_document(path: str | Path, classifier: Classifier, options: AnalysisOptions = AnalysisOptions(),
                     cancel: threading.Event | None = None) -> Iterator[Event]:
    """Analyse one document, yielding Started, each PageResult, then the DocumentResult."""
    t0 = time.perf_counter()
    path = Path(path)
    cancel = cancel or threading.Event()
    info = classifier.info
    labels = list(info.labels)
    threshold = abstain_threshold(options, info)
    notices = [classifier.notice] if classifier.notice else []

    def failed(message: str, sha: str | None = None, pages: int = 0) -> DocumentResult:
        res = error_result(str(path), message, classifier.device, info.name, info.sha256, sha, pages)
        res.notices, res.seconds = notices, time.perf_counter() - t0
        return res

    try:
        opened = open_for_analysis(path, options)
        n_pages = opened.pages
        sha = file_sha256(path)
    except DocumentError as exc:
        # The hash of a file that could be read but not analysed (damaged, encrypted) lets
        # --resume know it is done; an unreadable file, a pipe or a missing one has none.
        yield failed(str(exc), _sha_if_readable(path))
        return
    except OSError as exc:
        yield failed(f"{path}: cannot be read ({exc.strerror or exc})")
        return
    notices.extend(opened.notices)  # repaired, a damaged page tree
    yield Started(str(path), n_pages, sha)
    last = min(n_pages, options.max_pages) if options.max_pages else n_pages

    height, width = classifier.input_size
    pages = prepare_range(path, 0, last, height, width, options, cancel, idle=0.2)

    done: list[PageResult] = []
    pending: list[tuple[PreparedPage, np.ndarray | None]] = []  # pages waiting for their rows' logits
    row_buf: list[np.ndarray] = []
    logits_out: list[np.ndarray] = []

    def run_batch(full_only: bool) -> None:
        while row_buf and (len(row_buf) >= classifier.batch_size or not full_only):
            take = row_buf[: classifier.batch_size]
            del row_buf[: classifier.batch_size]
            logits_out.append(classifier.logits(np.stack(take)))

    def finished_pages() -> Iterator[PageResult]:
        nonlocal logits_out
        available = np.concatenate(logits_out) if logits_out else np.zeros((0, len(labels)), np.float32)
        used = 0
        while pending:
            page, _ = pending[0]
            n = 0 if page.rows is None else len(page.rows)
            if available.shape[0] - used < n:
                break
            pending.pop(0)
            logits = available[used: used + n]
            used += n
            yield page_result(page, logits, info, threshold)
        logits_out = [available[used:]] if used < available.shape[0] else []

    try:
        for page in pages:
            if page is None:
                # Nothing ready: classify what we have rather than wait.
                run_batch(full_only=False)
            else:
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
        pages.close()
        result = failed(f"{path}: analysis failed ({type(exc).__name__}: {exc})", sha, n_pages)
        result.page_results = done
        yield result
        return
    finally:
        pages.close()  # stops the producer (and waits briefly for it to leave its page)

    if classifier.notice and classifier.notice not in notices:
        notices.append(classifier.notice)  # the GPU failed during this document: now on the CPU
    notices.extend(damage_notices(done))
    summary = document_summary(done, labels, threshold, info.pool_sharpness)
    error = document_error(path, done)
    result = DocumentResult(str(path), sha, n_pages, done, summary, classifier.device, info.name, info.sha256,
                            error=error, notices=notices, seconds=time.perf_counter() - t0,
                            cancelled=cancel.is_set())
    yield result


def _sha_if_readable(path: Path) -> str | None:
    if file_problem(path) is not None:
        return None
    try:
        return file_sha256(path)
    except OSError:
        return None


def analyze(path: str | Path, classifier: Classifier, options: AnalysisOptions = AnalysisOptions(),
            cancel: threading.Event | None = None) -> DocumentResult:
    """Analyse one document and return only its final result."""
    result: DocumentResult | None = None
    for event in analyze_document(path, classifier, options, cancel):
        if isinstance(event, DocumentResult):
            result = event
    assert result is not None
    return result
