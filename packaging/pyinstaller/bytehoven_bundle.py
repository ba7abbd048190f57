"""What goes into a Bytehoven bundle, shared by the three PyInstaller specs beside this file
(``bytehoven-linux.spec``, ``bytehoven-windows.spec``, ``bytehoven-macos.spec``).

Run PyInstaller in a build venv that holds the program, its runtime dependencies and exactly one
ONNX Runtime (``onnxruntime`` for the CPU build, ``onnxruntime-gpu`` for the GPU build); see
``packaging/README.md``. Settings come from the environment:

    BYTEHOVEN_BUNDLE_MODEL    the model to ship (default: models/bytehoven-resnet50.onnx); the build
                              stops if it is missing or is not a usable Bytehoven model
    BYTEHOVEN_BUNDLE_ALLOW_TEST_MODEL=1   accept the tests' stand-in model (for trying the packaging
                              before a model is trained; such a bundle is not for release)

This module is imported by the specs; it must not import PyInstaller at module level so that
``tests/test_packaging.py`` can import it too.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
APP_NAME = "bytehoven"
DEFAULT_MODEL = ROOT / "models" / "bytehoven-resnet50.onnx"
MODEL_NAME = "bytehoven-resnet50.onnx"  # what classifier.default_model_path() looks for
INT8_NAME = "bytehoven-resnet50.int8.onnx"  # shipped too when it lies beside the model
TEST_MODEL_NAMES = ("tiny-test-model",)  # tests/model_factory.py's stand-in

# Modules the bundle must not carry. onnxruntime's hook pulls in onnxruntime.transformers and
# through it torch (1.2 GB); none of these is used at run time (training has the [train] extra).
EXCLUDES = [
    "torch", "functorch", "torchvision", "onnx", "onnxscript", "onnx_ir", "sympy", "onnxconverter_common",
    "onnxruntime.transformers", "onnxruntime.quantization", "onnxruntime.tools", "onnxruntime.datasets",
    "bytehoven_desktop.training", "verovio", "cairosvg", "music21",
    "tkinter", "_tkinter", "matplotlib", "IPython", "pytest", "pytestqt", "setuptools", "pip",
]


class BundleError(SystemExit):
    def __init__(self, message: str):
        super().__init__(f"\nbytehoven bundle: {message}\n")


@dataclass
class BundleInputs:
    platform: str
    variant: str
    version: str
    entry: str
    datas: list = field(default_factory=list)
    hiddenimports: list = field(default_factory=list)
    excludes: list = field(default_factory=lambda: list(EXCLUDES))
    icon: str | None = None
    models: list = field(default_factory=list)


def onnxruntime_variant() -> str:
    """``cpu`` or ``gpu``: which ONNX Runtime this environment holds (refuses both or none)."""
    found = []
    for dist, variant in (("onnxruntime", "cpu"), ("onnxruntime-gpu", "gpu")):
        try:
            md.distribution(dist)
            found.append(variant)
        except md.PackageNotFoundError:
            pass
    if len(found) != 1:
        raise BundleError(f"the build environment must hold exactly one of onnxruntime and onnxruntime-gpu "
                          f"(it holds {found or 'neither'}); build it with `make -C packaging venv`")
    return found[0]


def program_version() -> str:
    try:
        return md.version("bytehoven-desktop")
    except md.PackageNotFoundError:
        raise BundleError("bytehoven-desktop is not installed in the build environment "
                          "(pip install --no-deps . there)") from None


def check_model(path: Path, allow_test_model: bool = False) -> str:
    """Loads ``path`` with the program's own classifier; returns the model's name."""
    if not path.is_file():
        raise BundleError(
            f"no model at {path}.\n  The bundle ships the trained model and never a placeholder: export it to "
            f"models/{MODEL_NAME} (README: 'The model'),\n  or name one: make dist MODEL=/path/to/{MODEL_NAME}")
    from bytehoven_desktop.classifier import Classifier, ModelError

    try:
        clf = Classifier(path, device="cpu", threads=1)
    except ModelError as exc:
        raise BundleError(f"the model cannot be shipped: {exc}") from None
    name = clf.info.name
    if name in TEST_MODEL_NAMES and not allow_test_model:
        raise BundleError(f"{path} is the tests' stand-in model ({name!r}), not a trained one; "
                          "set ALLOW_TEST_MODEL=1 to build a bundle for trying the packaging only")
    return name


def stage_models(model: Path, stage: Path) -> list[Path]:
    """``models/`` as the bundle holds it: the model under the name the program looks for, its
    int8 variant when one lies beside it, and the model card."""
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    staged = [stage / MODEL_NAME]
    shutil.copy2(model, staged[0])
    int8 = model.with_name(INT8_NAME)
    if model.name == MODEL_NAME and int8.is_file():
        staged.append(stage / INT8_NAME)
        shutil.copy2(int8, staged[-1])
    card = model.parent / "README.md"
    if not card.is_file():
        card = ROOT / "models" / "README.md"
    if card.is_file():
        shutil.copy2(card, stage / "README.md")
    return staged


def _reachable(binaries: list, roots: list) -> set:
    """Destination names of ``binaries`` reachable from ``roots`` through link-time imports."""
    from PyInstaller.depend.bindepend import get_imports

    by_name = {Path(dest).name: (dest, src) for dest, src, _ in binaries}
    seen: set = set()
    todo = [(dest, src) for dest, src, _ in roots]
    while todo:
        dest, src = todo.pop()
        if dest in seen:
            continue
        seen.add(dest)
        try:
            imports = get_imports(src)
        except Exception:  # an unreadable file: keep what it might need
            continue
        for name, _ in imports:
            hit = by_name.get(Path(name).name)
            if hit and hit[0] not in seen:
                todo.append(hit)
    return seen


def drop_gtk_theme(binaries: list) -> list:
    """Linux: leaves out Qt's GTK3 platform-theme plugin and the build machine's GTK, Pango and
    Cairo libraries that only it pulled in. Mixing those with a desktop's own GTK at run time can
    crash; without them Qt uses its own style and the XDG desktop portal's file dialogs."""
    drop_plugin = [b for b in binaries if b[0].replace("\\", "/").endswith("platformthemes/libqgtk3.so")]
    if not drop_plugin:
        return binaries
    kept = [b for b in binaries if b not in drop_plugin]

    def from_system(src: str) -> bool:
        return src.startswith(("/usr/lib", "/lib"))

    roots_before = [b for b in binaries if not from_system(b[1])]
    roots_after = [b for b in kept if not from_system(b[1])]
    lost = _reachable(binaries, roots_before) - _reachable(kept, roots_after)
    gone = sorted(d for d, src, _ in kept if d in lost and from_system(src))
    print(f"bytehoven bundle: left out the GTK3 platform theme and {len(gone)} libraries only it needed "
          f"({', '.join(gone)})", file=sys.stderr)
    return [b for b in kept if b[0] not in gone]


def bundle_inputs(platform: str) -> BundleInputs:
    """Everything a spec needs; checks the environment and the model first."""
    from PyInstaller.utils.hooks import collect_submodules, copy_metadata

    variant = onnxruntime_variant()
    version = program_version()
    model = Path(os.environ.get("BYTEHOVEN_BUNDLE_MODEL") or DEFAULT_MODEL).expanduser().resolve()
    allow = os.environ.get("BYTEHOVEN_BUNDLE_ALLOW_TEST_MODEL", "") not in ("", "0")
    name = check_model(model, allow)
    stage = ROOT / "build" / "bundle-models" / f"{platform}-{variant}"
    models = stage_models(model, stage)
    print(f"bytehoven bundle: {platform} {variant} {version}; model {model} ({name}); "
          f"ships {', '.join(p.name for p in models)}", file=sys.stderr)

    demo = ROOT / "resources" / "demo" / "demo.pdf"
    if not demo.is_file():
        raise BundleError(f"the demo score {demo} is missing")
    icons = ROOT / "resources" / "icons"
    datas = [(str(stage), "models"), (str(demo), "resources/demo")]
    # importlib.metadata inside the bundle: the program reports the version pyproject states.
    datas += copy_metadata("bytehoven-desktop")
    hidden = collect_submodules("bytehoven_desktop", filter=lambda n: not n.startswith("bytehoven_desktop.training"))
    icon = {"windows": icons / "bytehoven.ico", "macos": icons / "bytehoven.icns"}.get(platform)
    return BundleInputs(platform=platform, variant=variant, version=version, entry=str(HERE / "entry.py"),
                        datas=datas, hiddenimports=hidden, icon=str(icon) if icon else None, models=models)
