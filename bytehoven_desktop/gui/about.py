"""Help → About: version, the model in use and where it runs, and attributions."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QMessageBox, QWidget

from .. import __version__
from ..classifier import Classifier

ATTRIBUTIONS = (
    ("Qt and PySide6", "LGPL-3.0", "The Qt Company and contributors"),
    ("ONNX Runtime", "MIT", "Microsoft"),
    ("PyMuPDF / MuPDF", "AGPL-3.0", "Artifex Software"),
    ("OpenCV", "Apache-2.0", "OpenCV team"),
    ("NumPy", "BSD-3-Clause", "NumPy developers"),
)


def demo_attribution(demo_pdf: Path | None) -> str | None:
    """The demo score's credit line, from the text file shipped beside it."""
    if demo_pdf is None:
        return None
    for name in ("ATTRIBUTION.txt", "ATTRIBUTION.md", "README.md"):
        f = demo_pdf.parent / name
        if f.is_file():
            try:
                return f.read_text(encoding="utf-8").strip()
            except OSError:
                return None
    return None


def about_html(classifier: Classifier | None, model_error: str | None, demo_pdf: Path | None) -> str:
    if classifier is not None:
        info = classifier.info
        device = "GPU (CUDA)" if classifier.device == "cuda" else "CPU"
        model = (f"<b>{html.escape(info.name)}</b> ({len(info.labels)} composers)<br>"
                 f"runs on: <b>{device}</b>"
                 + (f"<br><i>{html.escape(classifier.notice)}</i>" if classifier.notice else "")
                 + f"<br><small>{html.escape(str(info.path))}<br>sha256 {info.sha256[:16]}…</small>")
    else:
        model = html.escape(model_error or "No model loaded yet (it loads with the first score).")
    credits = "".join(f"<li>{html.escape(n)} — {html.escape(who)} ({lic})</li>" for n, lic, who in ATTRIBUTIONS)
    demo = demo_attribution(demo_pdf)
    demo_html = f"<p><b>Demo score</b><br>{html.escape(demo).replace(chr(10), '<br>')}</p>" if demo else ""
    return (f"<h2>Bytehoven Desktop {html.escape(__version__)}</h2>"
            "<p>Reads piano sheet music and says, row by row, whose style it is.</p>"
            f"<p><b>Model</b><br>{model}</p>"
            f"<p><b>Built with</b></p><ul>{credits}</ul>{demo_html}"
            f"<p><small>Qt {qVersion()}, PySide6 {pyside_version}. Licensed under the GPL-3.0-or-later.</small></p>")


def show_about(parent: QWidget, classifier: Classifier | None, model_error: str | None,
               demo_pdf: Path | None) -> None:
    QMessageBox.about(parent, "About Bytehoven", about_html(classifier, model_error, demo_pdf))
