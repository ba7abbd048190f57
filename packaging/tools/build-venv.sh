#!/usr/bin/env bash
# Creates (or updates) a build venv for one bundle variant:
#   tools/build-venv.sh cpu|gpu VENV_DIR
# It holds PyInstaller, the program (a regular, non-editable install of this checkout) and
# pyproject's runtime dependencies with exactly one ONNX Runtime: plain onnxruntime for `cpu`,
# onnxruntime-gpu for `gpu` (both install the module `onnxruntime`; never both in one venv).
set -euo pipefail
variant="$1"; venv="$2"
here="$(cd "$(dirname "$0")" && pwd)"; root="$(cd "$here/../.." && pwd)"
PY="${PYTHON:-python3}"
PYINSTALLER_SPEC="${PYINSTALLER_SPEC:-pyinstaller>=6.10,<7}"

vpy="$venv/bin/python"
[ -d "$venv/Scripts" ] && vpy="$venv/Scripts/python.exe"   # Windows (Git Bash)
if [ ! -x "$vpy" ]; then
  "$PY" -m venv "$venv"
  [ -d "$venv/Scripts" ] && vpy="$venv/Scripts/python.exe"
fi
req="$venv/requirements-$variant.txt"
"$vpy" "$here/pkgmeta.py" requirements --variant "$variant" > "$req.new"
echo "$PYINSTALLER_SPEC" >> "$req.new"
stamp="$venv/.deps-$("$vpy" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:16])' < "$req.new")"
if [ ! -e "$stamp" ]; then
  echo "packaging: installing the $variant build venv's requirements into $venv"
  "$vpy" -m pip install -q --upgrade pip
  "$vpy" -m pip install -q -r "$req.new"
  rm -f "$venv"/.deps-*; touch "$stamp"
fi
mv "$req.new" "$req"
# The program itself, from this checkout, every time (cheap): the bundle holds what is checked out.
log="$venv/install-bytehoven.log"
"$vpy" -m pip install --no-deps --force-reinstall "$root" > "$log" 2>&1 \
  || { cat "$log" >&2; echo "packaging: could not install the program into $venv" >&2; exit 1; }
# Both ONNX Runtimes install the module `onnxruntime`: a venv holding both has a broken one.
if "$vpy" -m pip show -q onnxruntime >/dev/null 2>&1 && "$vpy" -m pip show -q onnxruntime-gpu >/dev/null 2>&1; then
  echo "packaging: $venv holds both onnxruntime and onnxruntime-gpu; delete it and run again" >&2; exit 1
fi
"$vpy" -c "import bytehoven_desktop, onnxruntime, PySide6, PyInstaller; print('packaging: build venv ok:', onnxruntime.__version__, onnxruntime.get_available_providers())"
