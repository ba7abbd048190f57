"""The cheap half of the packaging checks (the full build, install and run is
`make -C packaging dist-check`, see packaging/README.md): the version has one source, the desktop
entry and AppStream metainfo validate, the icons are complete and match the program's own, the
PyInstaller specs and the bundle settings hold together, the .deb layout is right (built from a
stand-in bundle), and the Windows installer script compiles."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
sys.path.insert(0, str(PACKAGING / "tools"))
sys.path.insert(0, str(PACKAGING / "pyinstaller"))

import bytehoven_bundle  # noqa: E402
import pkgmeta  # noqa: E402

ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
DESKTOP = ROOT / "resources" / "linux" / "bytehoven.desktop"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (packaging/apt-dist-packages.txt)")
    return path


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


# -- one version ---------------------------------------------------------------------------------

def test_the_version_comes_from_pyproject() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert pkgmeta.version() == project["version"]
    # Python 3.10 has no tomllib: the fallback reader must agree with it.
    minimal = pkgmeta._minimal_toml_project((ROOT / "pyproject.toml").read_text())
    assert minimal == {"version": project["version"], "dependencies": project["dependencies"]}
    assert importlib.metadata.version("bytehoven-desktop") == project["version"]
    # The frozen/source-tree fallback in bytehoven_desktop/__init__.py must not tell another story.
    init = (ROOT / "bytehoven_desktop" / "__init__.py").read_text()
    fallbacks = re.findall(r'__version__\s*=\s*"([^"]+)"', init)
    assert all(v == project["version"] for v in fallbacks), (fallbacks, project["version"])


def test_build_requirements_hold_exactly_one_onnx_runtime() -> None:
    cpu, gpu = pkgmeta.requirements("cpu"), pkgmeta.requirements("gpu")
    names = lambda reqs: [pkgmeta._name(r) for r in reqs]  # noqa: E731
    assert "onnxruntime" in names(cpu) and "onnxruntime-gpu" not in names(cpu)
    assert "onnxruntime-gpu" in names(gpu) and "onnxruntime" not in names(gpu)
    rest = lambda reqs: [r for r in reqs if not pkgmeta._name(r).startswith("onnxruntime")]  # noqa: E731
    assert rest(cpu) == rest(gpu) and len(cpu) == len(gpu)
    ort_cpu = next(r for r in cpu if pkgmeta._name(r) == "onnxruntime")
    ort_gpu = next(r for r in gpu if pkgmeta._name(r) == "onnxruntime-gpu")
    assert ort_cpu[len("onnxruntime"):] == ort_gpu[len("onnxruntime-gpu"):]  # same version bounds


# -- desktop entry, metainfo, icons --------------------------------------------------------------

def test_desktop_entry_opens_scores_and_matches_the_program() -> None:
    text = DESKTOP.read_text()
    assert re.search(r"^MimeType=.*application/pdf;", text, re.M), "PDFs must offer Bytehoven in 'Open with'"
    assert re.search(r"^Exec=bytehoven %[fFuU]$", text, re.M)
    assert re.search(r"^Icon=bytehoven$", text, re.M)
    # Wayland matches windows to their .desktop file by the name the program gives Qt.
    app_py = (ROOT / "bytehoven_desktop" / "gui" / "app.py").read_text()
    assert 'setDesktopFileName("bytehoven")' in app_py
    res = subprocess.run([_tool("desktop-file-validate"), str(DESKTOP)], capture_output=True, text=True)
    assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr


def test_metainfo_renders_and_validates(tmp_path: Path) -> None:
    out = pkgmeta.render_metainfo(tmp_path / f"{pkgmeta.APPSTREAM_ID}.metainfo.xml", date="2025-01-02")
    tree = ET.parse(out).getroot()
    assert tree.findtext("id") == pkgmeta.APPSTREAM_ID
    assert tree.findtext("launchable") == DESKTOP.name
    assert tree.find("releases/release").get("version") == pkgmeta.version()
    assert "@" not in out.read_text()
    res = subprocess.run([_tool("appstreamcli"), "validate", "--no-net", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_icons_exist_in_every_hicolor_size() -> None:
    icons = ROOT / "resources" / "icons"
    for s in ICON_SIZES:
        assert _png_size(icons / "hicolor" / f"{s}x{s}" / "apps" / "bytehoven.png") == (s, s)
    ET.parse(icons / "bytehoven.svg")
    ico = (icons / "bytehoven.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", ico[:6])
    assert (reserved, kind) == (0, 1) and count >= 6
    sizes = {(e[0] or 256) for e in (struct.unpack("<BBBBHHII", ico[6 + 16 * i: 22 + 16 * i]) for i in range(count))}
    assert {16, 32, 48, 256} <= sizes
    icns = (icons / "bytehoven.icns").read_bytes()
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)
    assert b"ic10" in icns and b"icp4" in icns  # 1024 (512@2x) and 16 px


def test_icon_files_show_the_programs_own_icon(qapp) -> None:
    """The committed PNGs and the SVG draw what bytehoven_desktop/gui/icon.py draws
    (regenerate them with `make -C packaging icons` after changing it)."""
    import numpy as np
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    from bytehoven_desktop.gui.icon import _draw

    def pixels(img: QImage) -> np.ndarray:
        img = img.convertToFormat(QImage.Format.Format_RGBA8888)
        return np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())[
            :, : img.width() * 4].astype(int)

    icons = ROOT / "resources" / "icons"
    for s in (16, 64, 256):
        drawn = pixels(_draw(s).toImage())
        committed = pixels(QImage(str(icons / "hicolor" / f"{s}x{s}" / "apps" / "bytehoven.png")))
        assert np.abs(drawn - committed).mean() < 2.0, f"{s} px icon differs from the run-time icon"
    svg = QImage(256, 256, QImage.Format.Format_RGBA8888)
    svg.fill(Qt.GlobalColor.transparent)
    painter = QPainter(svg)
    renderer = QSvgRenderer(str(icons / "bytehoven.svg"))
    assert renderer.isValid()
    renderer.render(painter)
    painter.end()
    assert np.abs(pixels(svg) - pixels(_draw(256).toImage())).mean() < 2.0, "the SVG differs from the run-time icon"


# -- PyInstaller specs and bundle settings --------------------------------------------------------

@pytest.mark.parametrize("platform", ["linux", "windows", "macos"])
def test_specs_parse_and_use_the_shared_settings(platform: str) -> None:
    spec = PACKAGING / "pyinstaller" / f"bytehoven-{platform}.spec"
    tree = ast.parse(spec.read_text(), str(spec))
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert {"bundle_inputs", "Analysis", "PYZ", "EXE", "COLLECT"} <= calls
    assert f'bundle_inputs("{platform}")' in spec.read_text()
    if platform == "macos":
        assert "BUNDLE" in calls and pkgmeta.APPSTREAM_ID in spec.read_text()


def test_bundle_excludes_what_the_program_never_uses() -> None:
    ex = set(bytehoven_bundle.EXCLUDES)
    assert {"torch", "functorch", "onnx", "onnxscript", "onnx_ir", "sympy", "onnxconverter_common",
            "onnxruntime.transformers", "onnxruntime.quantization", "bytehoven_desktop.training"} <= ex
    entry = (PACKAGING / "pyinstaller" / "entry.py").read_text()
    assert "freeze_support()" in entry and "bytehoven_desktop.main import main" in entry


def test_the_bundle_refuses_a_missing_or_stand_in_model(tmp_path: Path, tiny_model: Path) -> None:
    with pytest.raises(SystemExit, match="(?s)no model at .*make dist MODEL="):
        bytehoven_bundle.check_model(tmp_path / "absent.onnx")
    with pytest.raises(SystemExit, match="stand-in model"):
        bytehoven_bundle.check_model(tiny_model)
    assert bytehoven_bundle.check_model(tiny_model, allow_test_model=True) == "tiny-test-model"
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(SystemExit, match="cannot be shipped"):
        bytehoven_bundle.check_model(broken, allow_test_model=True)


def test_models_are_staged_under_the_name_the_program_looks_for(tmp_path: Path, tiny_model: Path) -> None:
    from bytehoven_desktop.classifier import DEFAULT_MODEL_NAME, INT8_MODEL_NAME

    assert bytehoven_bundle.MODEL_NAME == DEFAULT_MODEL_NAME and bytehoven_bundle.INT8_NAME == INT8_MODEL_NAME
    staged = bytehoven_bundle.stage_models(tiny_model, tmp_path / "stage")
    assert [p.name for p in staged] == [DEFAULT_MODEL_NAME]
    assert (tmp_path / "stage" / "README.md").is_file()  # the model card travels with it
    src = tmp_path / "models"
    src.mkdir()
    shutil.copy2(tiny_model, src / DEFAULT_MODEL_NAME)
    shutil.copy2(tiny_model, src / INT8_MODEL_NAME)
    staged = bytehoven_bundle.stage_models(src / DEFAULT_MODEL_NAME, tmp_path / "stage")
    assert sorted(p.name for p in staged) == sorted([DEFAULT_MODEL_NAME, INT8_MODEL_NAME])


def test_make_dist_stops_at_once_without_a_model(tmp_path: Path) -> None:
    _tool("make")
    res = subprocess.run(["make", "-s", "-C", str(PACKAGING), "check-model", f"MODEL={tmp_path}/none.onnx"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert "no model at" in res.stderr and "make dist MODEL=" in res.stderr


# -- the .deb, from a stand-in bundle -------------------------------------------------------------

def test_deb_layout_from_a_stand_in_bundle(tmp_path: Path) -> None:
    for tool in ("dpkg-deb", "desktop-file-validate", "appstreamcli", "objdump", "ldd"):
        _tool(tool)
    import build_deb

    bundle = tmp_path / "bundle"
    (bundle / "_internal" / "models").mkdir(parents=True)
    shutil.copy2(shutil.which("true") or "/bin/true", bundle / "bytehoven")  # a real ELF executable
    (bundle / "_internal" / "models" / "README.md").write_text("card\n")
    deb = build_deb.build(bundle, "cpu", tmp_path / "out", "none", tmp_path / "work")
    assert deb.name == f"bytehoven_{pkgmeta.version()}_{deb.name.rsplit('_', 1)[1]}"
    field = lambda name: subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True,  # noqa: E731
                                        text=True, check=True).stdout.strip()
    assert field("Package") == "bytehoven" and field("Version") == pkgmeta.version()
    assert re.search(r"\blibc6 \(>= 2\.\d+\)", field("Depends")), field("Depends")
    assert field("Conflicts") == "bytehoven-gpu"
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    lines = listing.splitlines()
    assert all(" root/root " in line for line in lines), "files must be owned by root"
    names = {re.split(r"\s+", line, maxsplit=5)[5].split(" -> ")[0] for line in lines}
    expected = {"./opt/bytehoven/bytehoven", "./usr/bin/bytehoven", "./usr/share/applications/bytehoven.desktop",
                f"./usr/share/metainfo/{pkgmeta.APPSTREAM_ID}.metainfo.xml",
                "./usr/share/icons/hicolor/scalable/apps/bytehoven.svg", "./usr/share/doc/bytehoven/copyright",
                "./usr/share/doc/bytehoven/model-card.md"}
    expected |= {f"./usr/share/icons/hicolor/{s}x{s}/apps/bytehoven.png" for s in ICON_SIZES}
    assert expected <= names, expected - names
    assert re.search(r"\./usr/bin/bytehoven -> /opt/bytehoven/bytehoven$", listing, re.M)


# -- Windows and macOS recipes --------------------------------------------------------------------

def test_nsis_installer_script_compiles(tmp_path: Path) -> None:
    _tool("makensis")
    import nsis_check

    payload = nsis_check.make_payload(tmp_path / "bytehoven")
    out = tmp_path / "bytehoven-setup.exe"
    res = nsis_check.compile_installer(payload, out)
    assert res.returncode == 0, res.stdout + res.stderr
    assert out.read_bytes()[:2] == b"MZ"


def test_shell_scripts_parse() -> None:
    scripts = sorted(PACKAGING.rglob("*.sh"))
    assert {"smoke.sh", "build-venv.sh", "install-deps.sh", "ci-bundle.sh", "make-dmg.sh"} <= {s.name for s in scripts}
    for script in scripts:
        res = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert res.returncode == 0, f"{script}: {res.stderr}"


def test_ci_workflow_builds_all_three_platforms() -> None:
    wf = ROOT / ".github" / "workflows" / "packages.yml"
    text = wf.read_text()
    for path in re.findall(r"(packaging/[\w./-]+\.(?:sh|py|nsi|spec))", text):
        assert (ROOT / path).is_file(), f"{wf.name} names {path}, which does not exist"
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(text)
    assert set(doc["jobs"]) == {"linux", "windows", "macos"}
    runners = {job["runs-on"] for job in doc["jobs"].values()}
    assert any(r.startswith("ubuntu") for r in runners) and any(r.startswith("windows") for r in runners) \
        and any(r.startswith("macos") for r in runners)
