"""Writes the program's icon files for the installers into ``resources/icons/`` (committed):

    bytehoven.svg                       the scalable icon (hicolor/scalable, AppStream)
    hicolor/NxN/apps/bytehoven.png      N = 16 24 32 48 64 128 256 512 (the .deb, AppStream)
    bytehoven.ico                       Windows (the .exe and the NSIS installer), PNG-compressed entries
    bytehoven.icns                      macOS (the .app), PNG entries

The PNGs are drawn by the program's own run-time icon code (``bytehoven_desktop/gui/icon.py``),
so the installed icon is the one the window shows. The SVG repeats that drawing's geometry
(a 64-unit square); ``tests/test_packaging.py`` checks the two agree.

    python packaging/make_icons.py [--out resources/icons]      (needs PySide6; no display)
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS element types holding PNG data, by pixel size (retina "@2x" types share the sizes).
ICNS_TYPES = ((b"icp4", 16), (b"icp5", 32), (b"icp6", 64), (b"ic07", 128), (b"ic08", 256),
              (b"ic09", 512), (b"ic10", 1024), (b"ic11", 32), (b"ic12", 64), (b"ic13", 256), (b"ic14", 512))

# The drawing of bytehoven_desktop/gui/icon.py::_draw in its 64-unit square. Qt's default pen cap
# is square, hence stroke-linecap="square".
SVG = """<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">
  <title>Bytehoven</title>
  <rect x="2" y="2" width="60" height="60" rx="13" ry="13" fill="#1f4e8c"/>
  <g stroke="#ffffff" stroke-opacity="0.8235" stroke-width="2.2" stroke-linecap="square">
    <line x1="10" y1="20" x2="54" y2="20"/>
    <line x1="10" y1="26" x2="54" y2="26"/>
    <line x1="10" y1="32" x2="54" y2="32"/>
    <line x1="10" y1="38" x2="54" y2="38"/>
    <line x1="10" y1="44" x2="54" y2="44"/>
  </g>
  <ellipse cx="0" cy="0" rx="6.5" ry="4.6" fill="#f3a712" transform="translate(28 41) rotate(-22)"/>
  <line x1="33.6" y1="40" x2="33.6" y2="12" stroke="#f3a712" stroke-width="3" stroke-linecap="square"/>
</svg>
"""


def png_bytes(size: int) -> bytes:
    """The run-time icon drawn at ``size`` pixels, as PNG."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    from bytehoven_desktop.gui.icon import _draw

    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not _draw(size).toImage().save(buf, "PNG"):
        raise RuntimeError(f"could not encode the {size} px icon")
    buf.close()
    return bytes(data.data())


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """A Windows .ico whose entries are PNGs (supported since Windows Vista)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = 6 + 16 * len(sizes)
    entries, blobs = b"", b""
    for s in sizes:
        blob = pngs[s]
        dim = 0 if s >= 256 else s  # 0 means 256 in the directory
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(blob), offset)
        offset += len(blob)
        blobs += blob
    return header + entries + blobs


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    """A macOS .icns whose elements are PNGs."""
    body = b""
    for kind, size in ICNS_TYPES:
        blob = pngs[size]
        body += kind + struct.pack(">I", 8 + len(blob)) + blob
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "resources" / "icons")
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(["make_icons"])  # noqa: F841 (QPixmap needs it)
    pngs = {s: png_bytes(s) for s in sorted(set(PNG_SIZES) | set(ICO_SIZES) | {s for _, s in ICNS_TYPES})}
    out: Path = args.out
    written = []
    for s in PNG_SIZES:
        f = out / "hicolor" / f"{s}x{s}" / "apps" / "bytehoven.png"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(pngs[s])
        written.append(f)
    for name, data in (("bytehoven.svg", SVG.encode()), ("bytehoven.ico", ico_bytes({s: pngs[s] for s in ICO_SIZES})),
                       ("bytehoven.icns", icns_bytes(pngs))):
        (out / name).write_bytes(data)
        written.append(out / name)
    for f in written:
        print(f"make_icons: wrote {f.relative_to(ROOT) if f.is_relative_to(ROOT) else f} ({f.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
