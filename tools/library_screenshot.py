"""Take docs/library.png: the Library window over real analyses made by the released model.

The demo score is split into its four pieces, which are analysed (with the whole demo, a page of
prose and a damaged PDF, so every status shows) into a fresh library in a temporary folder;
the window is then drawn offscreen and saved. Nothing of the user's is read or written.

    QT_QPA_PLATFORM=offscreen python tools/library_screenshot.py [--out docs/library.png]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "resources" / "demo" / "demo.pdf"
PIECES = [  # (first page, last page) of each piece in the demo, 0-based, and a file name for it
    (0, 2, "Joplin - Maple Leaf Rag.pdf"),
    (3, 3, "Mozart - Sonata K. 545, I.pdf"),
    (4, 5, "Chopin - Mazurka Op. 6 No. 2.pdf"),
    (6, 8, "C. P. E. Bach - H. 186.pdf"),
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "library.png")
    p.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped one)")
    args = p.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="bytehoven-libshot-"))
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")
    os.environ["XDG_DATA_HOME"] = str(tmp / "data")
    os.environ["HOME"] = str(tmp / "home")  # the view shows folders under it as ~/…
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    import pymupdf

    from bytehoven_desktop.classifier import get_classifier
    from bytehoven_desktop.library import Library
    from bytehoven_desktop.pipeline import AnalysisOptions, analyze
    from fixtures import make_corrupt_pdf, make_text_pdf

    piano = tmp / "home" / "Scores" / "Piano"
    inbox = tmp / "home" / "Scores" / "Inbox"
    piano.mkdir(parents=True)
    inbox.mkdir(parents=True)
    files = []
    with pymupdf.open(DEMO) as demo:
        for first, last, name in PIECES:
            out = pymupdf.open()
            out.insert_pdf(demo, from_page=first, to_page=last)
            out.save(piano / name)
            files.append(piano / name)
    (inbox / "Demo - four pieces.pdf").write_bytes(DEMO.read_bytes())
    files += [inbox / "Demo - four pieces.pdf", make_text_pdf(inbox / "Preface.pdf"),
              make_corrupt_pdf(inbox / "Download (incomplete).pdf")]

    clf = get_classifier(args.model, "cpu")
    lib = Library(tmp / "library.sqlite3")
    for f in files:
        doc = analyze(f, clf, AnalysisOptions()).to_json()
        lib.store(doc)
        print(f"{f.name}: {doc.get('composer') or doc.get('reason')} ({doc.get('confidence')})", file=sys.stderr)

    from bytehoven_desktop.gui.app import make_application
    from bytehoven_desktop.gui.library_view import LibraryWindow
    from bytehoven_desktop.gui.theme import apply_theme

    app = make_application()
    apply_theme(app, "light")
    view = LibraryWindow(lib)
    view.resize(1180, 330)
    header = view.table.horizontalHeader()
    for col, width in enumerate((260, 55, 150, 85, 90, 230)):
        header.resizeSection(col, width)
    view.show()
    for _ in range(20):
        app.processEvents()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ok = view.grab().save(str(args.out))
    print(f"saved {args.out}" if ok else f"could not write {args.out}", file=sys.stderr)
    view.close()
    lib.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
