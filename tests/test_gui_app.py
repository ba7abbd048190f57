"""The ``bytehoven gui`` entry point: options, the demo score's location, and real screenshots
(`--screenshot`) taken in a subprocess, off screen and in a real X server (Xvfb)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from bytehoven_desktop.gui import app as gui_app
from bytehoven_desktop.gui import resources
from bytehoven_desktop.gui.colors import PALETTE
from gui_helpers import LABELS6, isolated_settings, score3, gui_model  # noqa: F401


def test_options() -> None:
    args = gui_app.build_parser().parse_args(["x.pdf", "--screenshot", "o.png", "--model", "m.onnx",
                                              "--device", "cpu", "--page", "2"])
    assert (args.file, args.screenshot, args.model, args.device, args.page) == (
        "x.pdf", Path("o.png"), Path("m.onnx"), "cpu", 2)


def test_bad_options_return_usage_errors(capsys) -> None:
    assert gui_app.main(["--device", "tpu"]) == 2
    assert gui_app.main(["x.pdf", "--screenshot", "out.txt"]) == 2
    assert "--screenshot must end in .png" in capsys.readouterr().err
    assert gui_app.main(["--version"]) == 0


def test_demo_score_path_looks_beside_the_package_in_bundles_and_prefix(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(resources, "resource_roots", lambda: [tmp_path / "bundle", tmp_path / "prefix"])
    assert gui_app.demo_score_path() is None
    demo = tmp_path / "prefix" / "resources" / "demo" / "demo.pdf"
    demo.parent.mkdir(parents=True)
    demo.write_bytes(b"%PDF-1.4\n")
    assert gui_app.demo_score_path() == demo
    monkeypatch.undo()
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    roots = resources.resource_roots()
    assert roots[0] == tmp_path / "bundle"
    assert Path(sys.prefix) / "share" / "bytehoven" in roots
    assert Path(gui_app.__file__).resolve().parents[2] in roots  # the source tree beside the package


def _command() -> list[str]:
    exe = Path(sys.executable).with_name("bytehoven")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "bytehoven_desktop"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("BYTEHOVEN_MODEL", None)
    env.update(XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_RUNTIME_DIR=str(tmp_path / "run"), **extra)
    (tmp_path / "run").mkdir(mode=0o700, exist_ok=True)
    return env


def check_screenshot(path: Path) -> np.ndarray:
    """A real picture of the window: the right size, many colours, the composer colour shown."""
    img = QImage(str(path))
    assert not img.isNull(), "the screenshot is not a readable PNG"
    assert (img.width(), img.height()) == (1400, 900)
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3]
    arr = arr.reshape(img.height(), img.width(), 3)
    assert arr.std() > 20, "the screenshot is blank"
    packed = (arr[..., 0].astype(np.uint32) << 16) | (arr[..., 1].astype(np.uint32) << 8) | arr[..., 2]
    colors = set(np.unique(packed).tolist())
    assert len(colors) > 100
    # The rows are outlined in one of the model's composer colours.
    palette = {int(PALETTE[c][1:], 16) for c in LABELS6}
    assert colors & palette, "no row outline in a composer colour"
    return arr


def test_screenshot_offscreen(tmp_path, gui_model, score3) -> None:
    out = tmp_path / "shot.png"
    proc = subprocess.run(_command() + ["gui", str(score3), "--screenshot", str(out), "--model", str(gui_model),
                                        "--device", "cpu", "--timeout", "120"],
                          env=_env(tmp_path, QT_QPA_PLATFORM="offscreen"), capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr
    check_screenshot(out)


def test_screenshot_of_a_missing_file_still_shows_the_window(tmp_path, gui_model) -> None:
    out = tmp_path / "shot.png"
    proc = subprocess.run(_command() + ["gui", str(tmp_path / "nothing.pdf"), "--screenshot", str(out),
                                        "--model", str(gui_model)],
                          env=_env(tmp_path, QT_QPA_PLATFORM="offscreen"), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert QImage(str(out)).width() == 1400


@pytest.fixture
def xvfb_display(tmp_path):  # type: ignore[no-untyped-def]
    """A private X server; its display number is chosen by Xvfb itself (-displayfd)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (Debian package 'xvfb', see packaging/apt-test-packages.txt)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as fh:
            number = fh.readline().strip()
        if not number:
            pytest.fail("Xvfb did not start")
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_screenshot_under_xvfb(tmp_path, gui_model, score3, xvfb_display) -> None:
    out = tmp_path / "xvfb-shot.png"
    env = _env(tmp_path, QT_QPA_PLATFORM="xcb", DISPLAY=xvfb_display, BYTEHOVEN_MODEL=str(gui_model))
    env.pop("WAYLAND_DISPLAY", None)
    proc = subprocess.run(_command() + ["gui", str(score3), "--screenshot", str(out), "--timeout", "120"],
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_screenshot(out)


HIDPI_SNIPPET = """
import sys, time
from PySide6.QtWidgets import QApplication
from bytehoven_desktop.gui.app import make_application
from bytehoven_desktop.gui.settings import Preferences
from bytehoven_desktop.gui.window import MainWindow
app = make_application()
w = MainWindow(prefs=Preferences(device="cpu", model_path=sys.argv[2]))
w.resize(1000, 700)
w.show()
w.open_file(sys.argv[1])
end = time.time() + 60
while time.time() < end and not (w.info and w.page_view.render_is_current()):
    app.processEvents()
    time.sleep(0.01)
c = w.page_view.canvas
print(w.devicePixelRatioF(), c.pixmap.width() / (c.page_size[0] * c.zoom))
w.close()
"""


def test_pages_are_rendered_at_the_device_pixel_ratio(tmp_path, gui_model, score3) -> None:
    proc = subprocess.run([sys.executable, "-c", HIDPI_SNIPPET, str(score3), str(gui_model)],
                          env=_env(tmp_path, QT_QPA_PLATFORM="offscreen", QT_SCALE_FACTOR="2"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    dpr, pixels_per_logical = (float(v) for v in proc.stdout.split()[-2:])
    assert dpr == 2.0
    assert pixels_per_logical == pytest.approx(2.0, abs=0.02)  # sharp, not upscaled
