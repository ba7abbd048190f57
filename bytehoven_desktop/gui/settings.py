"""Preferences kept in QSettings, and where the program may keep its own files.

Always the INI format: the same file on every platform, and tests can point QSettings at a
temporary folder with ``QSettings.setPath``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

from ..classifier import DEVICES

ORGANIZATION = "Bytehoven"
APPLICATION = "Bytehoven Desktop"


def qsettings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def app_data_dir() -> Path:
    """A writable folder for the program's own files (batch results), created on demand."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    path = Path(base or Path.home() / ".local" / "share") / "bytehoven"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_threads() -> int:
    """Inference threads: leave one core to the GUI thread so it never waits for the CPU."""
    return max(1, (os.cpu_count() or 1) - 1)


@dataclass
class Preferences:
    device: str = "auto"  # auto | cpu | cuda
    batch_size: int = 16
    threshold: float | None = None  # None: the model's calibrated abstain threshold
    model_path: str = ""  # empty: $BYTEHOVEN_MODEL or the shipped model
    library_path: str = ""  # empty: library.sqlite3 in the platform's data folder

    @classmethod
    def load(cls, settings: QSettings | None = None) -> "Preferences":
        s = settings or qsettings()
        p = cls()
        device = str(s.value("analysis/device", p.device))
        p.device = device if device in DEVICES else "auto"
        try:
            p.batch_size = max(1, min(256, int(s.value("analysis/batch_size", p.batch_size))))
        except (TypeError, ValueError):
            pass
        raw = s.value("analysis/threshold", "")
        try:
            p.threshold = None if raw in ("", None) else min(1.0, max(0.0, float(raw)))
        except (TypeError, ValueError):
            p.threshold = None
        p.model_path = str(s.value("analysis/model", "") or "")
        p.library_path = str(s.value("library/path", "") or "")
        return p

    def save(self, settings: QSettings | None = None) -> None:
        s = settings or qsettings()
        s.setValue("analysis/device", self.device)
        s.setValue("analysis/batch_size", int(self.batch_size))
        s.setValue("analysis/threshold", "" if self.threshold is None else float(self.threshold))
        s.setValue("analysis/model", self.model_path)
        s.setValue("library/path", self.library_path)
        s.sync()


@dataclass(frozen=True)
class AnalysisConfig:
    """What one analysis run uses: preferences, overridden by the command line for this session."""

    model: str | None
    device: str
    threads: int
    batch_size: int
    threshold: float | None

    @classmethod
    def from_preferences(cls, prefs: Preferences, model: str | None = None,
                         device: str | None = None) -> "AnalysisConfig":
        return cls(model=model or prefs.model_path or None, device=device or prefs.device,
                   threads=default_threads(), batch_size=prefs.batch_size, threshold=prefs.threshold)
