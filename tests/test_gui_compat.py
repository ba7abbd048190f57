"""The guard for PySide6's reference-count fault (see bytehoven_desktop/gui/compat.py)."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QPointF, Signal

import bytehoven_desktop.gui as gui
from bytehoven_desktop.gui.compat import void_calls_leak_none


class _Emitter(QObject):
    sig = Signal(object)


def test_many_void_calls_and_emits_do_not_kill_none(qapp) -> None:
    # Without the guard, PySide6 6.12.0 on Python 3.11 aborts the interpreter well before this ends.
    leaks = void_calls_leak_none()
    assert gui.NONE_GUARD_APPLIED or not leaks or sys.version_info >= (3, 12)
    p, e = QPointF(), _Emitter()
    for _ in range(50_000):
        p.setX(1.0)
        e.sig.emit(None)
    assert sys.getrefcount(None) > 0 and sys.getrefcount(True) > 0
