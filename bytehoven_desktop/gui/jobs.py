"""The background jobs the GUI runs, as plain functions over the core's API (no Qt here).

Each is a generator for ``worker.GeneratorWorker`` (it receives ``cancel``) or a callable for
``worker.BackgroundOp``. They only sequence core calls and label what they yield; every
decision about pages, rows and composers is the core's."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..batch import ResultsFile, iter_documents
from ..classifier import Classifier, ModelError, file_sha256, get_classifier
from ..document import Document
from ..library import Library, LibraryError, Stored
from ..pipeline import AnalysisOptions, Started, analyze_document, prepare_page
from ..report import DocumentResult, PageResult, document_from_json, error_result
from ..systems import box_iou
from .settings import AnalysisConfig


@dataclass(frozen=True)
class ModelReady:
    """The classifier is loaded; the GUI shows its name and device and keeps it for explanations."""

    classifier: Classifier


@dataclass(frozen=True)
class ModelFailed:
    message: str


@dataclass(frozen=True)
class FromLibrary:
    """The results that follow are the library's, not a new analysis (``stored.outdated`` says
    when they were made with another model or detector)."""

    stored: Stored


@dataclass(frozen=True)
class LibraryProblem:
    message: str  # the library could not be read or written; the analysis itself went on


def load_classifier(config: AnalysisConfig) -> Classifier:
    return get_classifier(config.model, config.device, config.threads, config.batch_size)


def analysis_job(path: str, config: AnalysisConfig, cancel: threading.Event, library: Library | None = None,
                 use_stored: bool = True) -> Iterator[Any]:
    """ModelReady | ModelFailed, then the pipeline's Started, PageResult..., DocumentResult.

    With a ``library``: a result stored for this document (by content) is given instead, after a
    FromLibrary event, unless ``use_stored`` is False; a new result is stored before it is given."""
    try:
        clf = load_classifier(config)
    except ModelError as exc:
        yield ModelFailed(str(exc))
        return
    yield ModelReady(clf)
    if library is not None and use_stored:
        try:
            sha: str | None = file_sha256(Path(path))
        except OSError:
            sha = None  # the analysis says why it cannot be read
        stored = None
        if sha is not None:
            try:
                stored = library.lookup(sha, clf.info.sha256)
            except LibraryError as exc:
                yield LibraryProblem(str(exc))
        if stored is not None:
            result = document_from_json(stored.doc)
            if result.path != path:  # renamed or moved since: the library lists it where it is now
                result.path = path
                try:
                    library.seen_at(sha, path)  # type: ignore[arg-type]
                except LibraryError as exc:
                    yield LibraryProblem(str(exc))
            yield FromLibrary(stored)
            yield Started(path, result.pages, sha)
            yield from result.page_results
            yield result
            return
    for event in analyze_document(path, clf, AnalysisOptions(threshold=config.threshold, isolate=True), cancel):
        if isinstance(event, DocumentResult) and library is not None and not event.cancelled:
            try:
                library.store(event.to_json())
            except LibraryError as exc:
                yield LibraryProblem(str(exc))
        yield event


def row_activation(path: str, page_index: int, bbox: tuple[float, float, float, float],
                   classifier: Classifier) -> np.ndarray | None:
    """The class-activation map (0..1, row-image sized) of the row at ``bbox`` on a page,
    oriented like the page as displayed (turned back when the page was analysed turned).

    The row image is cut again with the core's ``prepare_page``; the row is matched by box
    overlap rather than by index, because the page may be cut at a slightly different
    resolution than during the streaming analysis."""
    if not classifier.has_cam:
        return None
    h, w = classifier.input_size
    with Document(path) as doc:  # one Document per thread: this runs on a worker thread
        page, _dpi = prepare_page(doc, page_index, h, w)
    if not page.boxes or page.rows is None:
        return None
    best = max(range(len(page.boxes)), key=lambda i: box_iou(page.boxes[i], bbox))
    if box_iou(page.boxes[best], bbox) < 0.5:
        return None
    _probs, cam = classifier.explain(page.rows[best], page.scanned)
    # The map is in the upright row's frame; a page lying sideways is shown as it lies.
    return np.ascontiguousarray(np.rot90(cam, -page.turn)) if page.turn else cam


# -- batch folders ----------------------------------------------------------------------
@dataclass(frozen=True)
class BatchPlanned:
    files: list[str]
    problems: list[tuple[str, str]]  # paths that could not be used, with the reason
    labels: tuple[str, ...]
    results_known: int  # documents already in the results file (resume skips those it meets)


@dataclass(frozen=True)
class BatchDocStarted:
    index: int


@dataclass(frozen=True)
class BatchDocProgress:
    index: int
    page: int
    pages: int


@dataclass(frozen=True)
class BatchDocFinished:
    index: int  # into BatchPlanned.files; -1 for a problem path
    doc: dict[str, Any]
    skipped: bool = False  # found in the results file: not analysed again


@dataclass(frozen=True)
class BatchDone:
    cancelled: bool
    results_path: str
    analysed: int
    skipped: int
    failed: int = 0
    labels: tuple[str, ...] = field(default=())


def batch_job(folder: str, recursive: bool, results_path: str, resume: bool, config: AnalysisConfig,
              cancel: threading.Event, library: Library | None = None) -> Iterator[Any]:
    """Analyse every score under ``folder``, appending each finished document to ``results_path``
    (JSON Lines or CSV, as ``bytehoven analyze --out``) and storing it in ``library``; with
    ``resume``, documents whose content hash is already in the file, or in the library for this
    model and detector, are reported from there instead of being analysed again."""
    try:
        clf = load_classifier(config)
    except ModelError as exc:
        yield ModelFailed(str(exc))
        return
    yield ModelReady(clf)
    info = clf.info
    problems: list[tuple[str, str]] = []
    files = [str(p) for p in iter_documents([folder], recursive, problems)]
    opts = AnalysisOptions(threshold=config.threshold, isolate=True)
    analysed = skipped = failed = 0
    known: set[str] = set()
    if library is not None and resume:
        try:
            known = library.current_hashes(info.sha256)
        except LibraryError as exc:
            yield LibraryProblem(str(exc))

    def keep(doc: dict[str, Any]) -> Iterator[LibraryProblem]:
        nonlocal library
        if library is None:
            return
        try:
            library.store(doc)
        except LibraryError as exc:  # said once; the batch goes on with its results file
            library = None
            yield LibraryProblem(str(exc))

    with ResultsFile(Path(results_path), clf.labels, resume) as sink:
        # Files are hashed one by one as they come up, not all first: the table starts filling at once.
        yield BatchPlanned(files, problems, clf.labels, len(set(sink.done) | known))
        for path, message in problems:
            doc = error_result(path, message, clf.device, info.name, info.sha256).to_json()
            sink.append(doc)
            failed += 1
            yield BatchDocFinished(-1, doc)
        for i, f in enumerate(files):
            if cancel.is_set():
                break
            try:
                sha: str | None = file_sha256(Path(f))
            except OSError:
                sha = None  # unreadable: the analysis reports why
            if sha is not None and sink.is_done(sha):
                # Show the stored result under the file's present name (it may have been renamed).
                doc = dict(sink.done[sha], path=f)
                skipped += 1
                yield BatchDocFinished(i, doc, skipped=True)
                continue
            if sha is not None and sha in known and library is not None:
                stored = _stored(library, sha, info.sha256, f)
                if stored is not None:
                    sink.append(stored)  # the results file stays the whole folder's
                    skipped += 1
                    yield BatchDocFinished(i, stored, skipped=True)
                    continue
            yield BatchDocStarted(i)
            final: DocumentResult | None = None
            pages = 0
            for event in analyze_document(f, clf, opts, cancel):
                if isinstance(event, DocumentResult):
                    final = event
                elif isinstance(event, PageResult):
                    yield BatchDocProgress(i, event.page, pages)
                else:
                    pages = event.pages
            assert final is not None
            if final.cancelled:
                break  # a half-analysed document is not a result: resume redoes it
            doc = final.to_json()
            yield from keep(doc)  # the library first: what the results file holds, it holds too
            sink.append(doc)
            analysed += 1
            failed += bool(doc.get("error"))
            yield BatchDocFinished(i, doc)
    yield BatchDone(cancel.is_set(), results_path, analysed, skipped, failed, clf.labels)


def _stored(library: Library, sha: str, model_sha: str, path: str) -> dict[str, Any] | None:
    """The library's current result for a document, under its present name (None on any trouble:
    the document is then analysed again)."""
    try:
        stored = library.lookup(sha, model_sha)
        if stored is None or stored.outdated:
            return None
        if stored.doc.get("path") != path:
            library.seen_at(sha, path)
    except LibraryError:
        return None
    return dict(stored.doc, path=path)
