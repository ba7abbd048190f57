"""Page images for display, rendered off the GUI thread with the core's ``Document``.

One ``PageRenderer`` per open document owns one render thread with its own ``Document``
(documents are not thread-safe). Requests are served most urgent first (the page on screen
before thumbnails, newest before older) and repeated requests are merged, so scrolling through
thumbnails or zooming never builds a backlog. Images arrive as QImage (safe to build off the
GUI thread; QPixmap is not) through ``rendered``.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from dataclasses import dataclass
from typing import Any, Iterator

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from ..document import DAMAGED, Document, DocumentError
from .worker import GeneratorWorker

VIEW, THUMB = 0, 1  # request priorities: lower is served first


@dataclass(frozen=True)
class DocumentInfo:
    path: str
    page_sizes: list[tuple[float, float]]  # points

    @property
    def page_count(self) -> int:
        return len(self.page_sizes)


@dataclass(frozen=True)
class _Opened:
    info: DocumentInfo


@dataclass(frozen=True)
class _Failed:
    message: str


@dataclass(frozen=True)
class _Skipped:
    page: int


@dataclass(frozen=True)
class _Damaged:
    page: int
    message: str  # "page N is damaged: …"


@dataclass(frozen=True)
class _Rendered:
    page: int
    dpi: float
    kind: int
    image: QImage


class _Requests:
    """A priority queue that merges duplicates; thread-safe."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, int, float]] = []
        self._pending: set[tuple[int, int, float]] = set()
        self._seq = itertools.count()
        self._cv = threading.Condition()

    def put(self, page: int, dpi: float, kind: int) -> bool:
        """Queue a request; False when the same one is already waiting."""
        key = (kind, page, dpi)
        with self._cv:
            if key in self._pending:
                return False
            self._pending.add(key)
            # Newest first within a priority: the page the user just went to matters most.
            heapq.heappush(self._heap, (kind, -next(self._seq), page, dpi))
            self._cv.notify()
            return True

    def get(self, timeout: float) -> tuple[int, int, float] | None:
        with self._cv:
            if not self._heap:
                self._cv.wait(timeout)
            if not self._heap:
                return None
            kind, _, page, dpi = heapq.heappop(self._heap)
            self._pending.discard((kind, page, dpi))
            return kind, page, dpi


def gray_to_qimage(gray: Any) -> QImage:
    h, w = gray.shape
    img = QImage(gray.data, w, h, int(gray.strides[0]), QImage.Format.Format_Grayscale8)
    return img.copy()  # detach from the numpy buffer


def _render_loop(path: str, requests: _Requests, cancel: threading.Event) -> Iterator[Any]:
    try:
        doc = Document(path)
    except DocumentError as exc:
        yield _Failed(str(exc))
        return
    prefix = f"{path}: "
    damaged: dict[int, str] = {}
    try:
        try:
            sizes: list[tuple[float, float]] = []
            for i in range(doc.page_count):
                try:
                    sizes.append(doc.page_size(i))
                except DocumentError as exc:  # a page the page tree no longer leads to: shown, marked
                    sizes.append(sizes[-1] if sizes else (612.0, 792.0))
                    damaged[i] = str(exc).removeprefix(prefix)
        except Exception as exc:  # a damaged page tree: MuPDF raises its own types
            yield _Failed(f"{path}: pages cannot be read ({exc})")
            return
        yield _Opened(DocumentInfo(path, sizes))
        for i, message in damaged.items():
            yield _Damaged(i, message)
        while not cancel.is_set():
            req = requests.get(timeout=0.2)
            if req is None:
                continue
            kind, page, dpi = req
            try:
                # Drawn as far as it can be: a damaged page shows what is left of it, and is marked.
                img = doc.render(page, dpi, partial=True)
            except (DocumentError, IndexError) as exc:
                if DAMAGED in str(exc) and page not in damaged:
                    damaged[page] = str(exc).removeprefix(prefix)
                    yield _Damaged(page, damaged[page])
                yield _Skipped(page)  # the page stays blank; the analysis reports the page's error
                continue
            if img.damage and page not in damaged:
                damaged[page] = img.damage
                yield _Damaged(page, img.damage)
            # dpi actually used (MAX_PAGE_PIXELS may lower it) so the view scales it right.
            yield _Rendered(page, img.scale * 72.0, kind, gray_to_qimage(img.gray))
    finally:
        doc.close()


class PageRenderer(QObject):
    opened = Signal(object)  # DocumentInfo
    failed = Signal(str)
    rendered = Signal(int, float, int, QImage)  # page, dpi, kind, image
    damaged = Signal(int, str)  # page, what could not be read of it ("page N is damaged: …")

    def __init__(self, path: str, parent: QObject | None = None):
        super().__init__(parent)
        self.path = path
        self._requests = _Requests()
        self._outstanding = 0  # requests not yet answered: 0 means every asked-for image is here
        self._worker = GeneratorWorker(_render_loop, path, self._requests)
        self._worker.yielded.connect(self._deliver)

    def start(self) -> None:
        self._worker.start()

    def request(self, page: int, dpi: float, kind: int = VIEW) -> None:
        if self._requests.put(page, round(float(dpi), 1), kind):
            self._outstanding += 1

    def idle(self) -> bool:
        """True when every image asked for has been delivered."""
        return self._outstanding == 0

    def close(self) -> None:
        """Stop the render thread (it ends on its own; nothing waits here)."""
        self._worker.yielded.disconnect(self._deliver)
        self._worker.quit()

    def _deliver(self, item: Any) -> None:
        if isinstance(item, (_Rendered, _Skipped)):
            self._outstanding = max(0, self._outstanding - 1)
        if isinstance(item, _Rendered):
            self.rendered.emit(item.page, item.dpi, item.kind, item.image)
        elif isinstance(item, _Opened):
            self.opened.emit(item.info)
        elif isinstance(item, _Failed):
            self.failed.emit(item.message)
        elif isinstance(item, _Damaged):
            self.damaged.emit(item.page, item.message)
