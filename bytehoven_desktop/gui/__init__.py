"""The desktop program (PySide6). Only this package imports Qt; the analysis core never does."""

from .compat import protect_none_refcount

# Before any widget exists: see compat.py (PySide6 6.12.0 on Python 3.11 would abort otherwise).
NONE_GUARD_APPLIED = protect_none_refcount()
