"""Builds the .deb from a Linux one-folder bundle (standard library only):

    build_deb.py --bundle DIR --variant cpu|gpu --out DIST_DIR [--compress xz|gzip|zstd|none]

Layout of the package:

    /opt/bytehoven/                     the bundle (the `bytehoven` executable and _internal/)
    /usr/bin/bytehoven                  -> /opt/bytehoven/bytehoven
    /usr/share/applications/bytehoven.desktop        opens PDFs and image scans ("Open with")
    /usr/share/metainfo/io.github.bytehoven.Bytehoven.metainfo.xml
    /usr/share/icons/hicolor/{16..512}/apps/bytehoven.png, scalable/apps/bytehoven.svg
    /usr/share/doc/bytehoven/           copyright, the model card

The GPU variant is the package ``bytehoven-gpu`` (it replaces ``bytehoven`` and vice versa).
Depends is computed like dpkg-shlibdeps does: every library the bundle's ELF files need that the
bundle does not hold is looked up with ``dpkg -S`` (CUDA/cuDNN excepted: the GPU build finds them
at run time and falls back to the CPU without them). The desktop entry and the metainfo are
validated (desktop-file-validate, appstreamcli validate --no-net) before anything is packed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pkgmeta  # noqa: E402

ROOT = pkgmeta.ROOT
RES = ROOT / "resources"
DESKTOP = RES / "linux" / "bytehoven.desktop"
ICONS = RES / "icons"
PREFIX = "opt/bytehoven"
MAINTAINER = os.environ.get("DEB_MAINTAINER", "Bytehoven developers <bytehoven@example.org>")
# Libraries the GPU build loads only when CUDA is there; never a package dependency.
CUDA_LIBS = re.compile(r"^lib(cu|nv|cudnn|nccl|myelin)")
# Fonts are found through fontconfig, not linked: Qt needs at least one.
EXTRA_DEPENDS = ["fonts-dejavu-core | fonts-freefont-ttf | fonts-liberation2"]
# Qt plugins whose libraries a desktop may lack: they are loaded only where those exist.
OPTIONAL_PLUGIN_DIRS = ("platformthemes", "wayland-", "libQt6Wayland", "egldeviceintegrations", "platforminputcontexts",
                        "sqldrivers", "tls", "networkinformation", "printsupport")


class DebError(SystemExit):
    def __init__(self, message: str):
        super().__init__(f"build_deb: {message}")


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=False, text=True, capture_output=True, **kw)


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def external_libraries(bundle: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """({system library path: users}, {unresolved soname: users}) for the bundle's ELF files, as
    the loader sees them at run time (the bootloader puts _internal/ on the library path)."""
    internal = bundle / "_internal"
    env = dict(os.environ, LD_LIBRARY_PATH=str(internal))
    found: dict[str, set[str]] = {}
    missing: dict[str, set[str]] = {}
    elves = [p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink() and is_elf(p)]
    for elf in elves:
        res = run(["ldd", str(elf)], env=env)
        rel = str(elf.relative_to(bundle))
        for line in res.stdout.splitlines():
            m = re.match(r"\s*(\S+)\s+=>\s+(not found|\S+)", line)
            if not m:
                continue
            soname, where = m.groups()
            if where == "not found":
                missing.setdefault(soname, set()).add(rel)
            elif not Path(where).resolve().is_relative_to(bundle.resolve()):
                found.setdefault(where, set()).add(rel)
    return found, missing


def owning_packages(paths: list[str]) -> dict[str, str]:
    """{library path: Debian package} through dpkg -S (tries the path as given and resolved)."""
    owners: dict[str, str] = {}
    for path in paths:
        for candidate in dict.fromkeys([path, str(Path(path).resolve()), path.replace("/lib/", "/usr/lib/", 1)]):
            res = run(["dpkg", "-S", candidate])
            if res.returncode == 0 and res.stdout:
                owners[path] = res.stdout.split(":", 1)[0].strip()
                break
    return owners


def glibc_needed(bundle: Path) -> str | None:
    """The newest GLIBC_x.y symbol version any of the bundle's ELF files requires."""
    best: tuple[int, ...] = ()
    for elf in (p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink() and is_elf(p)):
        for v in re.findall(r"\bGLIBC_(\d+(?:\.\d+)+)\b", run(["objdump", "-p", str(elf)]).stdout):
            best = max(best, tuple(int(x) for x in v.split(".")))
    return ".".join(map(str, best)) or None


def compute_depends(bundle: Path) -> tuple[list[str], list[str]]:
    """(Depends entries, notes about libraries no package provides)."""
    found, missing = external_libraries(bundle)
    owners = owning_packages(sorted(found))
    notes: list[str] = []
    unresolved: list[str] = []
    pkgs = set()
    for lib, users in sorted(found.items()):
        pkg = owners.get(lib)
        if pkg:
            pkgs.add(pkg.split(":")[0])
        else:
            notes.append(f"{lib} (needed by {sorted(users)[0]}) belongs to no Debian package")
    for soname, users in sorted(missing.items()):
        if CUDA_LIBS.match(soname):
            continue
        optional = all(any(d in u for d in OPTIONAL_PLUGIN_DIRS) for u in users)
        if optional:
            notes.append(f"{soname} (needed only by the optional {sorted(users)[0]}) is not installed here")
        else:
            unresolved.append(f"{soname} (needed by {', '.join(sorted(users)[:3])})")
    if unresolved:
        raise DebError("the bundle needs libraries that are neither in it nor on this machine, so the package "
                       "could not depend on them:\n  " + "\n  ".join(unresolved) +
                       "\ninstall them (tools/install-deps.sh installs packaging/apt-dist-packages.txt) and "
                       "rebuild the bundle")
    glibc = glibc_needed(bundle)
    if glibc:
        pkgs.add("libc6")
    entries = [f"libc6 (>= {glibc})" if p == "libc6" and glibc else p for p in sorted(pkgs)]
    return entries + EXTRA_DEPENDS, notes


def validate(root: Path) -> None:
    desktop = root / "usr/share/applications/bytehoven.desktop"
    metainfo = root / f"usr/share/metainfo/{pkgmeta.APPSTREAM_ID}.metainfo.xml"
    for cmd in (["desktop-file-validate", str(desktop)], ["appstreamcli", "validate", "--no-net", str(metainfo)]):
        if shutil.which(cmd[0]) is None:
            raise DebError(f"{cmd[0]} is missing (make -C packaging deps installs it)")
        res = run(cmd)
        out = (res.stdout + res.stderr).strip()
        if res.returncode != 0:
            raise DebError(f"{' '.join(cmd[:-1])} rejects {cmd[-1]}:\n{out}")
        print(f"build_deb: {cmd[0]}: ok{(' (' + out.splitlines()[-1] + ')') if out else ''}")


def copy_tree(src: Path, dst: Path) -> None:
    """Hard links where possible (the bundle is large), a copy otherwise."""
    if dst.exists():
        shutil.rmtree(dst)
    res = run(["cp", "-al", str(src), str(dst)])
    if res.returncode != 0:
        shutil.copytree(src, dst, symlinks=True)


def copyright_text(version: str) -> str:
    return f"""Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: bytehoven-desktop
Comment: Bytehoven Desktop {version}, packaged with PyInstaller: /opt/bytehoven/_internal holds
 the program, a Python interpreter and the libraries it uses, each under its own licence (their
 licence files lie beside them in /opt/bytehoven/_internal/*.dist-info/).

Files: *
Copyright: The Bytehoven developers
License: GPL-3.0-or-later
 On Debian systems the full text of the GNU General Public License version 3 is in
 /usr/share/common-licenses/GPL-3.

Files: opt/bytehoven/_internal/models/*
Copyright: The Bytehoven developers; derived from training data by the authors named in the model card
License: non-commercial research use
 The model is derived from training data most of which is licensed CC BY-NC-SA 4.0; it is for
 non-commercial research use. Sources, licences and attributions: the model card,
 /usr/share/doc/bytehoven/model-card.md.
"""


def build(bundle: Path, variant: str, out_dir: Path, compress: str, work: Path) -> Path:
    version = pkgmeta.version()
    if not (bundle / "bytehoven").is_file():
        raise DebError(f"{bundle} is not a bundle (no bytehoven executable in it)")
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    if not arch:
        raise DebError("dpkg --print-architecture failed: build the .deb on Debian or Ubuntu")
    package = "bytehoven" if variant == "cpu" else "bytehoven-gpu"
    other = "bytehoven-gpu" if variant == "cpu" else "bytehoven"
    root = work / "root"
    if root.exists():
        shutil.rmtree(root)
    old_umask = os.umask(0o022)
    try:
        (root / "DEBIAN").mkdir(parents=True)
        (root / "opt").mkdir()
        copy_tree(bundle, root / PREFIX)
        (root / "usr/bin").mkdir(parents=True)
        os.symlink(f"/{PREFIX}/bytehoven", root / "usr/bin/bytehoven")
        apps = root / "usr/share/applications"
        apps.mkdir(parents=True)
        shutil.copy2(DESKTOP, apps / "bytehoven.desktop")
        pkgmeta.render_metainfo(root / f"usr/share/metainfo/{pkgmeta.APPSTREAM_ID}.metainfo.xml", version)
        for png in sorted((ICONS / "hicolor").glob("*/apps/bytehoven.png")):
            dest = root / "usr/share/icons/hicolor" / png.relative_to(ICONS / "hicolor")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(png, dest)
        svg = root / "usr/share/icons/hicolor/scalable/apps/bytehoven.svg"
        svg.parent.mkdir(parents=True)
        shutil.copy2(ICONS / "bytehoven.svg", svg)
        doc = root / "usr/share/doc" / package
        doc.mkdir(parents=True)
        (doc / "copyright").write_text(copyright_text(version))
        card = bundle / "_internal/models/README.md"
        if card.is_file():
            shutil.copy2(card, doc / "model-card.md")
        for p in [root, *root.rglob("*")]:  # files from the checkout may carry odd modes
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        validate(root)

        depends, notes = compute_depends(root / PREFIX)
        for n in notes:
            print(f"build_deb: warning: {n}", file=sys.stderr)
        size_kb = int(run(["du", "-sk", "--exclude=DEBIAN", str(root)]).stdout.split()[0])
        gpu_note = ("\n This build runs the model on an NVIDIA GPU through CUDA 12/13 and cuDNN 9 when the\n"
                    " system provides them, and on the CPU otherwise." if variant == "gpu" else "")
        control = f"""Package: {package}
Version: {version}
Architecture: {arch}
Maintainer: {MAINTAINER}
Installed-Size: {size_kb}
Depends: {', '.join(depends)}
Recommends: desktop-file-utils, hicolor-icon-theme
Conflicts: {other}
Replaces: {other}
Provides: bytehoven-desktop
Section: misc
Priority: optional
Description: reads piano sheet music and says, row by row, whose style it is
 Bytehoven opens a PDF score or an image scan, outlines every staff system
 on the page and classifies it among 20 composers, with a breakdown per row,
 per page and per document. `bytehoven analyze` does whole folders from the
 command line. Self-contained: the program, its Python and its libraries
 live in /opt/bytehoven. The bundled model is for non-commercial research use.{gpu_note}
"""
        (root / "DEBIAN/control").write_text(control)
        out_dir.mkdir(parents=True, exist_ok=True)
        deb = out_dir / f"{package}_{version}_{arch}.deb"
        t0 = time.monotonic()
        res = subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{compress}", "--build", str(root), str(deb)],
                             text=True)
        if res.returncode != 0:
            raise DebError("dpkg-deb failed")
        print(f"build_deb: {deb} ({deb.stat().st_size / 2**20:.0f} MiB, installed {size_kb / 1024:.0f} MiB, "
              f"packed with {compress} in {time.monotonic() - t0:.0f} s)")
        print(f"build_deb: Depends: {', '.join(depends)}")
        return deb
    finally:
        os.umask(old_umask)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Build the Bytehoven .deb from a Linux bundle.")
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--variant", choices=pkgmeta.VARIANTS, required=True)
    p.add_argument("--out", type=Path, default=ROOT / "dist")
    p.add_argument("--work", type=Path, default=None, help="staging folder (default build/packaging/VARIANT/deb)")
    p.add_argument("--compress", default="xz", choices=("xz", "gzip", "zstd", "none"))
    args = p.parse_args(argv)
    work = args.work or ROOT / "build" / "packaging" / args.variant / "deb"
    build(args.bundle.resolve(), args.variant, args.out.resolve(), args.compress, work.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
