"""Pytest fixtures shared by the GUI tests (imported by name from tests/test_gui_*.py).

Every GUI test gets its own settings and data folders, so it never reads or writes the user's
QSettings or batch results, and a tiny model built with tests/model_factory.py."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from PySide6.QtCore import QSettings

from fixtures import make_score_pdf
from model_factory import make_model


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cfg = tmp_path / "config"
    cfg.mkdir()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(cfg))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(cfg))
    monkeypatch.delenv("BYTEHOVEN_MODEL", raising=False)
    return cfg


# Six composers, so a row's top-5 is a real cut of the list.
LABELS6 = ("bach", "beethoven", "chopin", "mozart", "liszt", "debussy")


@pytest.fixture(scope="session")
def gui_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("model") / "tiny.onnx", labels=LABELS6)


@pytest.fixture(scope="session")
def score3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three pages of five grand staves each."""
    return make_score_pdf(tmp_path_factory.mktemp("scores") / "score3.pdf", pages=3, systems_per_page=5)


@pytest.fixture(scope="session")
def score_long(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough that a cancel lands mid-run."""
    return make_score_pdf(tmp_path_factory.mktemp("scores") / "long.pdf", pages=60, systems_per_page=6, seed=3)


@pytest.fixture
def window(qtbot, gui_model: Path) -> Iterator["object"]:  # type: ignore[no-untyped-def]
    from bytehoven_desktop.gui.settings import Preferences
    from bytehoven_desktop.gui.window import MainWindow
    from bytehoven_desktop.gui.worker import shutdown_workers

    # The tiny model's rows score about 0.4: a low threshold lets the documents name a composer.
    w = MainWindow(prefs=Preferences(device="cpu", model_path=str(gui_model), threshold=0.2))
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    yield w
    w.close()
    assert shutdown_workers(20000), "a background thread did not stop"


def open_and_wait(qtbot, window, path: Path, timeout: int = 30000):  # type: ignore[no-untyped-def]
    """Open ``path`` and return the DocumentResult (or None) once the analysis has finished."""
    with qtbot.waitSignal(window.analysisFinished, timeout=timeout) as blocker:
        assert window.open_file(str(path))
    return blocker.args[0]
