"""Background work for the GUI: generator workers (as napari's) and one-shot operations (as Anki's QueryOp).

A ``GeneratorWorker`` runs a generator function on its own QThread; every value it yields
reaches the GUI thread through the queued ``yielded`` signal, so slots may touch widgets and the
work itself never does. Cancelling sets a ``threading.Event`` the generator receives as
``cancel=``: the core's pipeline checks it between pages and still yields its final result,
which is why the worker keeps delivering after ``quit()`` rather than dropping values.

``BackgroundOp(parent, op, success).with_progress(label).run_in_background()`` runs ``op()`` in
the background and calls ``success(result)`` on the GUI thread, unless ``parent`` has been
deleted meanwhile. ``op`` must not touch the UI.
"""

from __future__ import annotations

import atexit
import threading
import traceback
from typing import Any, Callable, Generic, Iterator, TypeVar

import shiboken6
from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtWidgets import QMainWindow, QWidget

T = TypeVar("T")

# Workers whose threads are running: Python must keep them alive until the thread has ended,
# or Qt aborts with "QThread: Destroyed while thread is still running".
_live: set["GeneratorWorker"] = set()


class _Thread(QThread):
    def __init__(self, worker: "GeneratorWorker"):
        super().__init__()
        self._worker = worker

    def run(self) -> None:
        w = self._worker
        try:
            for value in w._func(*w._args, cancel=w.cancel_event, **w._kwargs):
                w.yielded.emit(value)
        except BaseException as exc:  # noqa: BLE001 - reported to the GUI, never lost in a thread
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            w.errored.emit(exc)
        finally:
            w.finished.emit()


class GeneratorWorker(QObject):
    """Runs ``func(*args, cancel=event, **kwargs)``, a generator, on a QThread of its own."""

    yielded = Signal(object)
    errored = Signal(object)
    finished = Signal()

    def __init__(self, func: Callable[..., Iterator[Any]], *args: Any, **kwargs: Any):
        super().__init__()
        self._func, self._args, self._kwargs = func, args, kwargs
        self.cancel_event = threading.Event()
        self._thread = _Thread(self)
        self._thread.finished.connect(self._cleanup)

    def start(self) -> "GeneratorWorker":
        _live.add(self)
        self._thread.start()
        return self

    def quit(self) -> None:
        """Ask the generator to stop; it finishes on its own thread, the GUI never waits."""
        self.cancel_event.set()

    @property
    def is_running(self) -> bool:
        return self in _live

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def wait(self, msecs: int = -1) -> bool:
        """Block until the thread has ended (only for shutdown and tests)."""
        return self._thread.wait(msecs) if msecs >= 0 else self._thread.wait()

    def _cleanup(self) -> None:
        # QThread.finished is emitted just before the thread really ends: join it (microseconds).
        self._thread.wait()
        _live.discard(self)


def running_workers() -> list[GeneratorWorker]:
    return list(_live)


def shutdown_workers(timeout_ms: int = 10000) -> bool:
    """Cancel every worker and wait for their threads; True when all ended (called at exit)."""
    workers = list(_live)
    for w in workers:
        w.quit()
    ok = True
    for w in workers:
        ok = w.wait(timeout_ms) and ok
    return ok


# A program that returns without calling shutdown_workers() must not abort on the way out.
atexit.register(shutdown_workers)


def _once(op: Callable[[], T], cancel: threading.Event) -> Iterator[T]:
    yield op()


class BackgroundOp(Generic[T]):
    """A one-shot background operation whose result is delivered on the GUI thread."""

    def __init__(self, parent: QWidget | None, op: Callable[[], T], success: Callable[[T], None]):
        self._parent, self._op, self._success = parent, op, success
        self._failure: Callable[[BaseException], None] | None = None
        self._label: str | None = None

    def failure(self, fn: Callable[[BaseException], None]) -> "BackgroundOp[T]":
        self._failure = fn
        return self

    def with_progress(self, label: str = "Working…") -> "BackgroundOp[T]":
        self._label = label
        return self

    def _alive(self) -> bool:
        return self._parent is None or shiboken6.isValid(self._parent)

    def run_in_background(self) -> GeneratorWorker:
        worker = GeneratorWorker(_once, self._op)
        status = self._parent.statusBar() if isinstance(self._parent, QMainWindow) else None
        if status is not None and self._label:
            status.showMessage(self._label)

        def done(value: T) -> None:
            if self._alive():
                self._success(value)

        def failed(exc: BaseException) -> None:
            if not self._alive():
                return
            if self._failure is not None:
                self._failure(exc)
            else:  # an unhandled failure still must not vanish silently
                text = getattr(exc, "__traceback_text__", repr(exc))
                print(f"bytehoven: background operation failed:\n{text}")

        def finished() -> None:
            if status is not None and self._label and self._alive() and status.currentMessage() == self._label:
                status.clearMessage()

        worker.yielded.connect(done)
        worker.errored.connect(failed)
        worker.finished.connect(finished)
        return worker.start()
