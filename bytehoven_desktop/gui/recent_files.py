"""The recent-files list (File → Open Recent), kept in QSettings; files that vanished are dropped."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QMenu

from .settings import qsettings

KEY = "recent/files"
MAX_ENTRIES = 10


class RecentFiles(QObject):
    changed = Signal()

    def __init__(self, settings: Callable[[], QSettings] = qsettings, parent: QObject | None = None):
        super().__init__(parent)
        self._settings = settings

    def _stored(self) -> list[str]:
        raw = self._settings().value(KEY, [])
        if isinstance(raw, str):  # QSettings returns a bare string for a one-item list
            raw = [raw]
        return [str(p) for p in (raw or [])]

    def _store(self, paths: list[str]) -> None:
        s = self._settings()
        s.setValue(KEY, paths)
        s.sync()
        self.changed.emit()

    def paths(self) -> list[Path]:
        """Existing files, most recent first; vanished ones are forgotten for good."""
        stored = self._stored()
        kept = [p for p in stored if os.path.isfile(p)]
        if kept != stored:
            self._store(kept)
        return [Path(p) for p in kept]

    def add(self, path: str | os.PathLike[str]) -> None:
        p = os.path.abspath(path)
        self._store(([p] + [q for q in self._stored() if q != p])[:MAX_ENTRIES])

    def clear(self) -> None:
        self._store([])

    def fill_menu(self, menu: QMenu, open_file: Callable[[str], None]) -> None:
        """Rebuild ``menu``: call it from ``aboutToShow`` so the list is fresh when seen."""
        menu.clear()
        paths = self.paths()
        for i, p in enumerate(paths):
            # &1..&9 give keyboard accelerators; the full path is the tooltip.
            # An '&' in a file name would otherwise become an accelerator.
            name = p.name.replace("&", "&&")
            act = menu.addAction(f"&{i + 1}  {name}" if i < 9 else f"{i + 1}  {name}")
            act.setToolTip(str(p))
            act.setStatusTip(str(p))
            act.triggered.connect(lambda _=False, s=str(p): open_file(s))
        if not paths:
            none = menu.addAction("No recent files")
            none.setEnabled(False)
        menu.addSeparator()
        clear = menu.addAction("Clear List")
        clear.setEnabled(bool(paths))
        clear.triggered.connect(self.clear)
