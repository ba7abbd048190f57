"""Background workers deliver on the GUI thread, cancel cleanly and never lose an error."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtWidgets import QMainWindow, QWidget

from bytehoven_desktop.gui.worker import BackgroundOp, GeneratorWorker, running_workers, shutdown_workers


def counting(n: int, cancel: threading.Event, delay: float = 0.0):  # type: ignore[no-untyped-def]
    for i in range(n):
        if cancel.is_set():
            yield "stopped"
            return
        time.sleep(delay)
        yield (i, threading.get_ident())


def test_values_arrive_in_order_on_the_gui_thread(qtbot) -> None:
    got: list[tuple[object, bool]] = []
    w = GeneratorWorker(counting, 5)
    w.yielded.connect(lambda v: got.append((v, threading.get_ident() == threading.main_thread().ident)))
    with qtbot.waitSignal(w.finished, timeout=60000):
        w.start()
    assert [v[0] for v, _ in got] == list(range(5))
    assert all(on_gui for _, on_gui in got)
    assert all(v[1] != threading.main_thread().ident for v, _ in got)  # the work ran elsewhere
    qtbot.waitUntil(lambda: w not in running_workers(), timeout=5000)


def test_quit_reaches_the_generator_and_it_still_reports(qtbot) -> None:
    got: list[object] = []
    w = GeneratorWorker(counting, 10_000, delay=0.002)
    w.yielded.connect(got.append)
    with qtbot.waitSignal(w.finished, timeout=60000):
        w.start()
        qtbot.waitUntil(lambda: len(got) >= 3, timeout=5000)
        w.quit()
    assert got[-1] == "stopped" and len(got) < 10_000
    assert w.cancelled


def test_errors_are_delivered_with_their_traceback(qtbot) -> None:
    def broken(cancel):  # type: ignore[no-untyped-def]
        yield 1
        raise RuntimeError("boom")

    errors: list[BaseException] = []
    w = GeneratorWorker(broken)
    w.errored.connect(errors.append)
    with qtbot.waitSignal(w.finished, timeout=60000):
        w.start()
    assert isinstance(errors[0], RuntimeError)
    assert "boom" in errors[0].__traceback_text__  # type: ignore[attr-defined]


def test_background_op_success_and_failure(qtbot) -> None:
    win = QMainWindow()
    qtbot.addWidget(win)
    results: list[object] = []
    op = BackgroundOp(win, lambda: threading.get_ident(), results.append).with_progress("Thinking…")
    op.run_in_background()
    assert win.statusBar().currentMessage() == "Thinking…"
    # Wait on the outcome, not on `finished`: a fast op may finish before a late connection.
    qtbot.waitUntil(lambda: bool(results) and win.statusBar().currentMessage() == "", timeout=60000)
    assert results[0] != threading.main_thread().ident

    def fail() -> None:
        raise ValueError("nope")

    failures: list[BaseException] = []
    BackgroundOp(win, fail, results.append).failure(failures.append).run_in_background()
    qtbot.waitUntil(lambda: len(failures) == 1, timeout=60000)
    assert isinstance(failures[0], ValueError)


def test_background_op_skips_success_when_its_parent_is_gone(qtbot) -> None:
    parent = QWidget()
    called: list[object] = []
    gate = threading.Event()
    worker = BackgroundOp(parent, lambda: gate.wait(5), called.append).run_in_background()
    parent.deleteLater()
    qtbot.wait(50)
    with qtbot.waitSignal(worker.finished, timeout=60000):
        gate.set()
    assert called == []


@pytest.mark.parametrize("n", [3])
def test_shutdown_waits_for_every_thread(qtbot, n: int) -> None:
    workers = [GeneratorWorker(counting, 1_000_000, delay=0.001).start() for _ in range(n)]
    assert shutdown_workers(10000)
    assert all(w.cancelled for w in workers)
    qtbot.waitUntil(lambda: not running_workers(), timeout=5000)
