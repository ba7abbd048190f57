"""``--screenshot OUT.png``: wait until the opened score is analysed and drawn, then save a
picture of the main window and quit (for the README's pictures and for checks).

For a telling picture the most confident row of the page on screen is selected, so the side
panel shows its top-5 and the page its activation map."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from ..report import DocumentResult
from .window import MainWindow

SETTLE_MS = 400  # after everything is drawn: lets the last repaint land
ACTIVATION_WAIT_S = 30.0


class ScreenshotTaker(QObject):
    def __init__(self, window: MainWindow, out: Path, timeout_s: float = 600.0, select_row: bool = True):
        super().__init__(window)
        self.window, self.out = window, Path(out)
        self.timeout_s, self.select_row = timeout_s, select_row
        self.rc = 1
        self._analysed = False
        self._waiting_activation_since: float | None = None
        self._started = time.monotonic()
        self._poll = QTimer(self, interval=100)
        self._poll.timeout.connect(self._check)
        window.analysisFinished.connect(self._on_finished)
        window.activationFinished.connect(self._on_activation)

    def start(self) -> None:
        self._poll.start()

    def _on_finished(self, result: Any) -> None:
        self._analysed = True
        w = self.window
        if not (self.select_row and isinstance(result, DocumentResult)):
            return
        page = w.results.get(w.page)
        if page is None or not page.systems or w.classifier is None or not w.classifier.has_cam:
            return
        # The most confident row the picture will show (all rows when none is wholly visible).
        candidates = w.page_view.visible_rows() or list(range(len(page.systems)))
        best = max(candidates, key=lambda i: page.systems[i].confidence)
        self._waiting_activation_since = time.monotonic()
        w.select_row(best)

    def _on_activation(self, page: int, row: int, shown: bool) -> None:
        self._waiting_activation_since = None

    def _check(self) -> None:
        w = self.window
        elapsed = time.monotonic() - self._started
        if elapsed > self.timeout_s:
            print(f"bytehoven: screenshot: gave up waiting after {self.timeout_s:.0f} s; saving what is shown",
                  file=sys.stderr)
            self._shoot(timed_out=True)
            return
        # No document (none given, or it was not found): nothing to wait for.
        done = self._analysed or (w.path is None and elapsed > 0.5)
        if self._waiting_activation_since is not None:
            done = done and time.monotonic() - self._waiting_activation_since > ACTIVATION_WAIT_S
        if done and w.display_settled():
            self._poll.stop()
            QTimer.singleShot(SETTLE_MS, lambda: self._shoot(timed_out=False))

    def _shoot(self, timed_out: bool) -> None:
        self._poll.stop()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        ok = self.window.grab().save(str(self.out))
        if ok:
            print(f"bytehoven: screenshot saved to {self.out}")
        else:
            print(f"bytehoven: screenshot could not be written to {self.out}", file=sys.stderr)
        self.rc = 0 if ok and not timed_out else 1
        self.window.close()
        QApplication.instance().exit(self.rc)  # type: ignore[union-attr]
