#!/usr/bin/env bash
# Builds, smoke-runs and packs the bundle on a hosted Windows or macOS runner (bash: Git Bash on
# Windows), as .github/workflows/packages.yml does. Linux uses `make dist` / `make -C packaging smoke`.
#
#   packaging/tools/ci-bundle.sh windows|macos [cpu|gpu]
#
# Outputs in dist/: bytehoven-VERSION-windows-x64[-gpu]-setup.exe (NSIS) and the zipped folder,
# or bytehoven-VERSION-macos-ARCH.dmg. The model must be at models/bytehoven-resnet50.onnx
# (or BYTEHOVEN_BUNDLE_MODEL).
set -euo pipefail
platform="${1:?usage: ci-bundle.sh windows|macos [cpu|gpu]}"; variant="${2:-cpu}"
here="$(cd "$(dirname "$0")" && pwd)"; root="$(cd "$here/../.." && pwd)"
cd "$root"
venv="build/venv-$variant"
PYTHON="${PYTHON:-python}" "$here/build-venv.sh" "$variant" "$venv"
bin="$venv/bin"; [ -d "$venv/Scripts" ] && bin="$venv/Scripts"
version="$("$bin/python" "$here/pkgmeta.py" version)"
work="build/packaging/$platform-$variant"
"$bin/pyinstaller" --noconfirm --log-level WARN --distpath "$work/dist" --workpath "$work/pyinstaller" \
  "packaging/pyinstaller/bytehoven-$platform.spec"

case "$platform" in
  windows) exe="$work/dist/bytehoven/bytehoven.exe" ;;
  macos)   exe="$work/dist/Bytehoven.app/Contents/MacOS/bytehoven" ;;
  *) echo "ci-bundle: platform must be windows or macos" >&2; exit 2 ;;
esac
demo="$(find "$work/dist" -path '*resources/demo/demo.pdf' | head -1)"
[ -n "$demo" ] || { echo "ci-bundle: the demo score is not in the bundle" >&2; exit 1; }

echo "ci-bundle: smoke-running $exe"
got="$("$exe" --version | tr -d '\r')"
[ "$got" = "bytehoven $version" ] || { echo "ci-bundle: --version says '$got'" >&2; exit 1; }
"$exe" analyze "$demo" --device cpu --out "$work/demo.jsonl"
mkdir -p "$work/scores"; cp "$demo" "$work/scores/a.pdf"; cp "$demo" "$work/scores/b.pdf"
"$exe" analyze "$work/scores" --jobs 2 --max-pages 2 --device cpu --out "$work/jobs.jsonl"
"$bin/python" - "$work/demo.jsonl" "$work/jobs.jsonl" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).readline())
assert d["error"] is None and d["rows"] >= 1, d
jobs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
assert len(jobs) == 2 and all(j["error"] is None for j in jobs), jobs
print(f"ci-bundle: demo: {d['pages']} pages, {d['rows']} rows, {d['composer'] or d['best_guess']}; --jobs 2 ok")
PY
QT_QPA_PLATFORM=offscreen "$exe" gui --screenshot "$root/dist/screenshot-$platform-$variant.png" --timeout 300 "$demo"

mkdir -p dist
case "$platform" in
  windows)
    makensis="$(command -v makensis || true)"
    [ -n "$makensis" ] || makensis="/c/Program Files (x86)/NSIS/makensis.exe"
    [ -x "$makensis" ] || { choco install nsis -y --no-progress >/dev/null; makensis="/c/Program Files (x86)/NSIS/makensis.exe"; }
    suffix=""; [ "$variant" = gpu ] && suffix="-gpu"
    out="dist/bytehoven-$version-windows-x64$suffix-setup.exe"
    # MSYS would rewrite /D... arguments as paths: MSYS2_ARG_CONV_EXCL keeps them.
    MSYS2_ARG_CONV_EXCL="*" "$makensis" -V2 -WX "-DVERSION=$version" "-DSOURCE_DIR=$(cygpath -w "$work/dist/bytehoven")" \
      "-DOUTFILE=$(cygpath -w "$out")" "$(cygpath -w packaging/windows/bytehoven.nsi)"
    (cd "$work/dist" && 7z a -bso0 "$root/dist/bytehoven-$version-windows-x64$suffix.zip" bytehoven)
    ;;
  macos)
    out="dist/bytehoven-$version-macos-$(uname -m).dmg"
    packaging/macos/make-dmg.sh "$work/dist/Bytehoven.app" "$out"
    ;;
esac
echo "ci-bundle: $out"
