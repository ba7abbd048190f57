"""Open a document in a child process to count its pages and read its notices.

The analysis must know how many pages a document has before it prepares any. Opened in the
program itself, a document that crashes MuPDF (a segfault on a hostile or broken file) ended
the whole program, and one whose repair never finished stopped it for good. Opened in a child
process, either costs that document only: the caller passes the multiprocessing context of its
page processes (``pipeline`` does), so this costs one fork from the same small server.
"""

from __future__ import annotations

import faulthandler
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .document import Document, DocumentError

_READY = "ready"
# The child ends itself this long after the time limit, should nothing be left to kill it (the
# program killed with SIGKILL while MuPDF is still repairing a file).
_CHILD_GRACE_S = 10.0


@dataclass(frozen=True)
class Opened:
    """What opening a document tells: its page count and what a report says of it as a whole."""

    pages: int
    notices: tuple[str, ...] = ()


def open_here(path: Path) -> Opened:
    """Open ``path`` in this process (raises DocumentError)."""
    with Document(path) as doc:
        return Opened(doc.page_count, tuple(doc.notices))


def probe_document(path: Path, ctx: Any | None, timeout: float) -> Opened:
    """Open ``path`` in a child process of ``ctx`` (a multiprocessing context; None: in this one).

    Raises DocumentError for a document that cannot be opened, crashes the child or takes longer
    than ``timeout`` seconds. Where no child process can be started, it is opened here."""
    if ctx is None:
        return open_here(path)
    conn, child_conn = ctx.Pipe(duplex=False)
    try:
        proc = ctx.Process(target=_child_open, args=(str(path), timeout, child_conn), daemon=True,
                           name="bytehoven-open")
        proc.start()
    except Exception:  # no child processes here (a sandbox)
        conn.close()
        return open_here(path)
    finally:
        child_conn.close()
    ready = False
    try:
        while True:
            if not conn.poll(timeout):
                raise DocumentError(f"{path}: took longer than {timeout:.0f} s to open; skipped")
            msg = conn.recv()
            if msg == _READY:
                ready = True
                continue
            break
    except (EOFError, OSError):
        proc.join(timeout=5)
        if not ready:  # the child could not even start
            return open_here(path)
        code = proc.exitcode
        why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        raise DocumentError(f"{path}: crashed the PDF library while being opened ({why}); skipped") from None
    finally:
        conn.close()
        if proc.is_alive():
            proc.kill()
        proc.join(timeout=5)
    if isinstance(msg, str):
        raise DocumentError(msg)
    return msg


def _child_open(path: str, timeout: float, conn: Any) -> None:
    """Child of probe_document: sends _READY, then Opened or the DocumentError's message."""
    # faulthandler's watchdog is a C thread: it ends the process even while MuPDF holds the GIL.
    quiet = open(os.devnull, "w")
    try:
        conn.send(_READY)
        faulthandler.dump_traceback_later(min(timeout + _CHILD_GRACE_S, 1e6), exit=True, file=quiet)
        try:
            result: Opened | str = open_here(Path(path))
        except DocumentError as exc:
            result = str(exc)
        except Exception as exc:  # MuPDF raises its own types for damaged files
            result = f"{path}: damaged PDF that cannot be opened ({type(exc).__name__}: {exc})"
        faulthandler.cancel_dump_traceback_later()
        conn.send(result)
        conn.close()
    except BaseException:  # the analysis went away (a broken pipe): end quietly, no traceback
        os._exit(1)
