"""Compiles packaging/windows/bytehoven.nsi with makensis around a stand-in payload (two small
files named like the PyInstaller executables and an _internal/ folder), so the installer script
is checked on Linux: syntax, includes, defines, the icon. The result is a real NSIS installer
.exe of the stand-in; it is not run here.

    python3 packaging/tools/nsis_check.py [--keep OUT.exe]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pkgmeta  # noqa: E402

NSI = pkgmeta.ROOT / "packaging" / "windows" / "bytehoven.nsi"


def make_payload(folder: Path) -> Path:
    (folder / "_internal" / "models").mkdir(parents=True)
    for exe in ("bytehoven.exe", "bytehoven-gui.exe"):
        (folder / exe).write_bytes(b"MZ stand-in for the PyInstaller executable\n")
    (folder / "_internal" / "models" / "README.md").write_text("stand-in\n")
    return folder


def compile_installer(payload: Path, out: Path, version: str | None = None) -> subprocess.CompletedProcess:
    makensis = shutil.which("makensis")
    if makensis is None:
        raise FileNotFoundError("makensis is not installed (Debian: apt-get install nsis)")
    cmd = [makensis, "-V2", "-WX", "-NOCD", f"-DVERSION={version or pkgmeta.version()}", f"-DSOURCE_DIR={payload}",
           f"-DOUTFILE={out}", str(NSI)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keep", type=Path, help="keep the compiled stand-in installer here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        payload = make_payload(Path(tmp) / "bytehoven")
        out = Path(tmp) / "bytehoven-setup.exe"
        res = compile_installer(payload, out)
        print((res.stdout + res.stderr).strip())
        if res.returncode != 0 or not out.is_file() or out.read_bytes()[:2] != b"MZ":
            print("nsis_check: makensis failed", file=sys.stderr)
            return 1
        print(f"nsis_check: {NSI.relative_to(pkgmeta.ROOT)} compiles ({out.stat().st_size} byte stand-in installer)")
        if args.keep:
            shutil.copy2(out, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
