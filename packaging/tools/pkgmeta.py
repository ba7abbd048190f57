"""Project facts the packaging needs, read from their one source (``pyproject.toml``), and the
files rendered from them. Standard library only; runs on Python >= 3.10.

    pkgmeta.py version                          the version, e.g. 0.1.0
    pkgmeta.py requirements --variant cpu|gpu   the runtime requirements for a build venv:
                                                pyproject's dependencies, with plain onnxruntime
                                                instead of onnxruntime-gpu for the CPU variant
    pkgmeta.py metainfo OUT.xml                 the AppStream metainfo with version and date filled in
    pkgmeta.py release-date                     the date the metainfo states (SOURCE_DATE_EPOCH, else
                                                the last commit's date, else today)
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
METAINFO_TEMPLATE = ROOT / "resources" / "linux" / "bytehoven.metainfo.xml.in"
APPSTREAM_ID = "io.github.bytehoven.Bytehoven"
VARIANTS = ("cpu", "gpu")
GPU_RUNTIME = "onnxruntime-gpu"
CPU_RUNTIME = "onnxruntime"


def _minimal_toml_project(text: str) -> dict:
    """``[project]``'s version and dependencies, for Pythons without tomllib (3.10)."""
    section = re.search(r"^\[project\]\s*$(.*?)(?=^\[)", text + "\n[", re.S | re.M)
    if not section:
        raise ValueError("pyproject.toml has no [project] table")
    body = section.group(1)
    version = re.search(r'^version\s*=\s*"([^"]+)"', body, re.M)
    deps = re.search(r"^dependencies\s*=\s*\[(.*?)\]", body, re.S | re.M)
    items = []
    if deps:
        for line in deps.group(1).splitlines():
            line = line.split("#", 1)[0].strip().rstrip(",").strip()
            if line:
                items.append(line.strip("\"'"))
    return {"version": version.group(1) if version else None, "dependencies": items}


def project(pyproject: Path = PYPROJECT) -> dict:
    text = pyproject.read_text(encoding="utf-8")
    try:
        import tomllib  # Python >= 3.11
    except ImportError:  # pragma: no cover - 3.10
        return _minimal_toml_project(text)
    return tomllib.loads(text)["project"]


def version(pyproject: Path = PYPROJECT) -> str:
    v = project(pyproject).get("version")
    if not v:
        raise SystemExit(f"pkgmeta: {pyproject} states no [project] version")
    return str(v)


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def requirements(variant: str, pyproject: Path = PYPROJECT) -> list[str]:
    """The runtime requirements of one bundle variant. Never both ONNX Runtimes: they install
    the same ``onnxruntime`` module and the last one installed wins."""
    if variant not in VARIANTS:
        raise SystemExit(f"pkgmeta: variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    out = []
    for req in project(pyproject).get("dependencies", []):
        if variant == "cpu" and _name(req) == GPU_RUNTIME:
            req = CPU_RUNTIME + req.strip()[len(GPU_RUNTIME):]
        out.append(req)
    runtimes = [r for r in out if _name(r) in (CPU_RUNTIME, GPU_RUNTIME)]
    if len(runtimes) != 1:
        raise SystemExit(f"pkgmeta: expected one ONNX Runtime among pyproject's dependencies, found {runtimes}")
    return out


def release_date() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc).date().isoformat()
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%cs"], capture_output=True,
                             text=True, timeout=30)
        if out.returncode == 0 and re.fullmatch(r"\d{4}-\d\d-\d\d", out.stdout.strip()):
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return _dt.date.today().isoformat()


def render_metainfo(out: Path, ver: str | None = None, date: str | None = None) -> Path:
    text = METAINFO_TEMPLATE.read_text(encoding="utf-8")
    text = text.replace("@VERSION@", ver or version()).replace("@DATE@", date or release_date())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pkgmeta.py", description="Project facts for the packaging.")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("version")
    sub.add_parser("release-date")
    r = sub.add_parser("requirements")
    r.add_argument("--variant", default="cpu", choices=VARIANTS)
    m = sub.add_parser("metainfo")
    m.add_argument("out", type=Path)
    args = p.parse_args(argv)
    if args.cmd == "version":
        print(version())
    elif args.cmd == "release-date":
        print(release_date())
    elif args.cmd == "requirements":
        print("\n".join(requirements(args.variant)))
    elif args.cmd == "metainfo":
        print(render_metainfo(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
