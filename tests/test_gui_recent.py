"""Recent files, preferences in QSettings and the preferences dialog."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMenu

from bytehoven_desktop.gui.prefs_dialog import PreferencesDialog
from bytehoven_desktop.gui.recent_files import MAX_ENTRIES, RecentFiles
from bytehoven_desktop.gui.settings import AnalysisConfig, Preferences, default_threads, qsettings
from gui_helpers import isolated_settings, open_and_wait, score3, gui_model, window  # noqa: F401


def _files(tmp_path: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        p = tmp_path / f"score {i} & co.pdf"
        p.write_bytes(b"%PDF-1.4\n")
        out.append(p)
    return out


def test_recent_files_order_limit_and_vanished_files(qapp, tmp_path) -> None:
    recent = RecentFiles()
    files = _files(tmp_path, MAX_ENTRIES + 3)
    for f in files:
        recent.add(f)
    recent.add(files[5])  # re-opening moves it to the top, no duplicate
    paths = recent.paths()
    assert len(paths) == MAX_ENTRIES
    assert paths[0] == files[5] and len(set(paths)) == MAX_ENTRIES
    files[-1].unlink()
    assert files[-1] not in recent.paths()
    assert files[-1] not in RecentFiles().paths()  # forgotten for good, in the settings too


def test_recent_menu(qapp, tmp_path) -> None:
    recent = RecentFiles()
    menu = QMenu()
    opened: list[str] = []
    recent.fill_menu(menu, opened.append)
    assert [a.text() for a in menu.actions() if a.text()][0] == "No recent files"
    files = _files(tmp_path, 2)
    for f in files:
        recent.add(f)
    recent.fill_menu(menu, opened.append)
    items = [a for a in menu.actions() if a.toolTip().endswith(".pdf")]
    assert "&&" in items[0].text()  # an '&' in a name is not an accelerator
    items[0].trigger()
    assert opened == [str(files[1])]
    clear = [a for a in menu.actions() if a.text() == "Clear List"][0]
    clear.trigger()
    assert recent.paths() == []


def test_opening_a_file_adds_it_to_the_recent_menu(qtbot, window, score3) -> None:
    open_and_wait(qtbot, window, score3)
    window.recent_menu.aboutToShow.emit()
    assert any(a.toolTip() == str(Path(score3).resolve()) for a in window.recent_menu.actions())


def test_preferences_round_trip_and_bad_values(qapp) -> None:
    p = Preferences(device="cuda", batch_size=32, threshold=0.55, model_path="/m.onnx")
    p.save()
    assert Preferences.load() == p
    s = qsettings()
    s.setValue("analysis/device", "tpu")
    s.setValue("analysis/batch_size", "lots")
    s.setValue("analysis/threshold", "")
    s.sync()
    q = Preferences.load()
    assert q.device == "auto" and q.batch_size == 16 and q.threshold is None


def test_command_line_overrides_preferences(qapp) -> None:
    prefs = Preferences(device="cpu", model_path="/pref.onnx")
    assert AnalysisConfig.from_preferences(prefs).model == "/pref.onnx"
    cfg = AnalysisConfig.from_preferences(prefs, model="/cli.onnx", device="cuda")
    assert (cfg.model, cfg.device) == ("/cli.onnx", "cuda")
    assert cfg.threads == default_threads() >= 1
    assert AnalysisConfig.from_preferences(Preferences()).model is None  # env var / shipped model


def test_preferences_dialog(qtbot) -> None:
    dlg = PreferencesDialog(Preferences(device="cpu", batch_size=8, threshold=None))
    qtbot.addWidget(dlg)
    assert dlg.threshold.text() == "Model default"
    assert dlg.preferences() == Preferences(device="cpu", batch_size=8, threshold=None, model_path="")
    dlg.device.setCurrentIndex(dlg.device.findData("cuda"))
    dlg.batch.setValue(64)
    dlg.threshold.setValue(0.5)
    dlg.model.setText(" /x/model.onnx ")
    assert dlg.preferences() == Preferences(device="cuda", batch_size=64, threshold=pytest.approx(0.5),
                                            model_path="/x/model.onnx")
