"""Guards against known faults of the Qt binding, applied once when the GUI package loads.

PySide6 6.12.0 on CPython 3.11 returns ``None`` from every void method (``QPainter.setPen``,
``QWidget.update``...) without taking a reference, and ``True`` from ``Signal.emit`` likewise,
so each call drops the singleton's reference count by one; after a few thousand calls CPython
aborts with "none_dealloc: deallocating None" (or "bool_dealloc"). CPython 3.12+ is immune
(the singletons are immortal there, PEP 683). The real fix is a PySide6 without the fault
(6.11.x is fine); until then we detect the leak at start-up and give ``None``, ``True`` and
``False`` the same effectively-infinite count 3.12 gives them.
"""

from __future__ import annotations

import ctypes
import sys

_HEADROOM = 1 << 40  # a trillion void calls


def void_calls_leak_none(calls: int = 64) -> bool:
    """True when calling a void Qt method costs ``None`` a reference (the PySide6 6.12.0 fault)."""
    from PySide6.QtCore import QPointF

    point = QPointF()
    before = sys.getrefcount(None)
    for _ in range(calls):
        point.setX(1.0)
    return before - sys.getrefcount(None) >= calls - 4


def protect_none_refcount() -> bool:
    """Make ``None``, ``True`` and ``False`` immortal in practice when the binding leaks their
    references; True if applied."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if hasattr(sys, "gettotalrefcount"):  # a debug build: the object header has extra fields
        return False
    if not void_calls_leak_none():
        return False
    for singleton in (None, True, False):
        refcnt = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt is the header's first field
        before = sys.getrefcount(singleton)
        refcnt.value += _HEADROOM
        if sys.getrefcount(singleton) - before != _HEADROOM:  # not the layout we expect: undo
            refcnt.value -= _HEADROOM
            return False
    return True
