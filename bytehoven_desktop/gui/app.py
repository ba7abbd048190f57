"""``bytehoven [gui] [FILE] [--screenshot OUT.png] [--model FILE] [--device auto|cpu|cuda]``:
starts the desktop program."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QApplication

from .. import __version__
from ..classifier import DEVICES
from .icon import app_icon
from .resources import demo_score_path
from .settings import APPLICATION, ORGANIZATION
from .theme import MODES, apply_theme
from ..pipeline import start_page_server
from .worker import shutdown_workers

__all__ = ["main", "demo_score_path", "build_parser", "make_application"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bytehoven gui",
                                description="Open the desktop program, optionally with a score.")
    p.add_argument("file", nargs="?", help="a PDF or image scan to open")
    p.add_argument("--screenshot", type=Path, metavar="OUT.png",
                   help="open FILE, wait until it is analysed, save a picture of the window and quit")
    p.add_argument("--model", type=Path, metavar="FILE", help="ONNX model to use (this session only)")
    p.add_argument("--device", choices=DEVICES, help="where the model runs (this session only)")
    p.add_argument("--page", type=int, default=1, metavar="N", help="page to show first (default 1)")
    p.add_argument("--theme", choices=MODES, default="system", help="colour scheme (default: the system's)")
    p.add_argument("--size", metavar="WxH", help="window size, e.g. 1400x900 (for screenshots)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="--screenshot gives up waiting after S seconds (default 600)")
    p.add_argument("--version", action="version", version=f"bytehoven {__version__}")
    return p


def make_application() -> QApplication:
    """The QApplication, named so QSettings and the desktop know the program."""
    # Hand the GIL back to the GUI thread within 1 ms (CPython's default is 5 ms): the render and
    # analysis threads run Python between their C calls, and every Qt call the GUI thread makes
    # can wait that long to get the GIL back. Halves the longest stalls; throughput is unchanged.
    sys.setswitchinterval(0.001)
    app = QApplication.instance()
    if app is None:
        # Qt sees only the program name: our own options are not Qt's to parse.
        app = QApplication([sys.argv[0] if sys.argv and sys.argv[0] else "bytehoven"])
    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    QCoreApplication.setApplicationVersion(__version__)
    QApplication.setDesktopFileName("bytehoven")
    app.setWindowIcon(app_icon())
    return app  # type: ignore[return-value]


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"bytehoven gui: --size must look like 1400x900, not {text!r}") from None
    return max(400, w), max(300, h)


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error: argparse has printed why
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    size = _parse_size(args.size)
    if args.screenshot is not None and args.screenshot.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp"):
        print("bytehoven gui: --screenshot must end in .png (or .jpg)", file=sys.stderr)
        return 2
    app = make_application()
    start_page_server()  # before any analysis thread: page children ignore a terminal's Ctrl-C
    apply_theme(app, args.theme)

    from .window import MainWindow  # after the QApplication exists

    window = MainWindow(model=str(args.model) if args.model else None, device=args.device,
                        remember_layout=args.screenshot is None)
    if size:
        window.resize(*size)
    taker = None
    if args.screenshot is not None:
        from .screenshot import ScreenshotTaker

        if not size:
            window.resize(1400, 900)  # pictures do not depend on the last session's geometry
        taker = ScreenshotTaker(window, args.screenshot, args.timeout)
    window.show()
    if args.file:
        # Once the event loop runs, so the window is on screen before the file is read.
        QTimer.singleShot(0, lambda: window.open_file(args.file, page=max(0, args.page - 1)))
    if taker is not None:
        taker.start()
    rc = app.exec()
    shutdown_workers()
    return int(taker.rc if taker is not None else rc)
