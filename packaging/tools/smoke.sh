#!/usr/bin/env bash
# The installed-package smoke test behind `make -C packaging dist-check`:
#   tools/smoke.sh dist/bytehoven_VERSION_ARCH.deb
# As root (or with sudo) it installs the .deb for real (apt-get install ./x.deb, which brings its
# Depends; dpkg -i where apt cannot), and purges it again on the way out, whatever happened.
# Otherwise, or with SMOKE_MODE=prefix, it unpacks the .deb into a throw-away prefix instead.
# Checks: `bytehoven` on the PATH, its version, `bytehoven analyze` on the bundled demo score (one
# and two worker processes), `bytehoven gui --screenshot` under Xvfb on the real xcb platform, the
# desktop entry and metainfo as installed, PDFs listed for "Open with" in the MIME cache, and
# that removing the package removes everything.
set -euo pipefail
deb="$(realpath "$1")"
here="$(cd "$(dirname "$0")" && pwd)"
version="$(python3 "$here/pkgmeta.py" version)"
pkg="$(dpkg-deb -f "$deb" Package)"
tmp="$(mktemp -d /tmp/bytehoven-smoke.XXXXXX)"
step() { printf '\nsmoke: %s\n' "$*"; }
fail() { echo "smoke: FAILED: $*" >&2; exit 1; }

SUDO=""
mode="${SMOKE_MODE:-}"
if [ -z "$mode" ]; then
  if [ "$(id -u)" -eq 0 ]; then mode=system
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then mode=system; SUDO=sudo
  else mode=prefix; fi
fi

installed_here=0
cleanup() {
  local rc=$?
  if [ "$installed_here" = 1 ]; then
    echo "smoke: removing $pkg"
    $SUDO dpkg --purge "$pkg" >/dev/null || echo "smoke: could not remove $pkg: remove it by hand" >&2
  fi
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT

step "package contents ($(du -h "$deb" | cut -f1))"
dpkg-deb -f "$deb" Package Version Architecture Depends
listing="$tmp/contents.txt"
dpkg-deb -c "$deb" > "$listing"
for f in ./opt/bytehoven/bytehoven ./usr/bin/bytehoven ./usr/share/applications/bytehoven.desktop \
         ./usr/share/metainfo/io.github.bytehoven.Bytehoven.metainfo.xml \
         ./usr/share/icons/hicolor/scalable/apps/bytehoven.svg ./opt/bytehoven/_internal/models/bytehoven-resnet50.onnx \
         ./opt/bytehoven/_internal/resources/demo/demo.pdf; do
  grep -q " $f\( \|$\)" "$listing" || fail "$f is not in the package"
done
for s in 16 24 32 48 64 128 256 512; do
  grep -q " ./usr/share/icons/hicolor/${s}x${s}/apps/bytehoven.png$" "$listing" || fail "no ${s}x${s} icon"
done
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "the package's version is not pyproject's $version"

if [ "$mode" = system ]; then
  if dpkg -s "$pkg" >/dev/null 2>&1 && [ "${SMOKE_REPLACE:-0}" != 1 ]; then
    fail "$pkg is already installed on this machine; set SMOKE_REPLACE=1 to let the test replace and then remove it"
  fi
  step "installing $deb (system-wide; removed again at the end)"
  installed_here=1
  if command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$deb" >/dev/null \
      || { echo "smoke: apt-get could not install it; trying dpkg -i"; $SUDO dpkg -i "$deb"; }
  else
    $SUDO dpkg -i "$deb"
  fi
  exe="$(command -v bytehoven || true)"
  [ "$exe" = /usr/bin/bytehoven ] || fail "bytehoven is not on the PATH as /usr/bin/bytehoven (found '$exe')"
  prefix=""
else
  step "unpacking $deb into a throw-away prefix $tmp/root (no system install)"
  dpkg-deb -x "$deb" "$tmp/root"
  prefix="$tmp/root"
  ln -sf "$prefix/opt/bytehoven/bytehoven" "$tmp/bytehoven"   # what /usr/bin/bytehoven points to
  exe="$tmp/bytehoven"
fi
demo="$prefix/opt/bytehoven/_internal/resources/demo/demo.pdf"
[ -f "$demo" ] || fail "the demo score is not installed"

step "version"
got="$("$exe" --version)"; echo "$got"
[ "$got" = "bytehoven $version" ] || fail "bytehoven --version says '$got', pyproject says $version"

step "bytehoven analyze (the demo score)"
start=$(date +%s)
"$exe" analyze "$demo" --device cpu --out "$tmp/demo.jsonl"
echo "analysed in $(( $(date +%s) - start )) s"
python3 - "$tmp/demo.jsonl" <<'PY'
import json, sys
docs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(docs) == 1, docs
d = docs[0]
assert d["error"] is None, d["error"]
assert d["pages"] >= 1 and d["rows"] >= 1, (d["pages"], d["rows"])
assert d["model"]["name"], d["model"]
print(f"smoke: {d['pages']} pages, {d['rows']} rows, composer {d['composer']} "
      f"(best guess {d['best_guess']}, {d['confidence']:.2f}), model {d['model']['name']}, device {d['device']}")
PY

step "bytehoven analyze --jobs 2 (worker processes in the frozen program)"
mkdir -p "$tmp/scores"; cp "$demo" "$tmp/scores/a.pdf"; cp "$demo" "$tmp/scores/b.pdf"
echo "x" > "$tmp/scores/broken.pdf"
"$exe" analyze "$tmp/scores" --jobs 2 --max-pages 2 --device cpu --out "$tmp/jobs.jsonl" 2>"$tmp/jobs.err" \
  || { cat "$tmp/jobs.err"; fail "analyze --jobs 2 failed"; }
python3 - "$tmp/jobs.jsonl" <<'PY'
import json, sys
docs = {d["path"].rsplit("/", 1)[-1]: d for d in map(json.loads, open(sys.argv[1]))}
assert sorted(docs) == ["a.pdf", "b.pdf", "broken.pdf"], sorted(docs)
assert docs["a.pdf"]["error"] is None and docs["b.pdf"]["rows"] >= 1
assert docs["broken.pdf"]["error"], "a broken file must be reported"
print("smoke: two workers analysed 2 scores and reported the broken one:", docs["broken.pdf"]["error"][:70])
PY

step "bytehoven gui --screenshot under Xvfb (xcb)"
command -v xvfb-run >/dev/null || fail "xvfb-run is missing (tools/install-deps.sh installs it)"
shot="${SMOKE_SCREENSHOT:-$tmp/window.png}"
HOME="$tmp/home" QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" \
  "$exe" gui --screenshot "$shot" --timeout 300 "$demo" 2>&1 | tail -5
python3 - "$shot" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (1400, 900), (w, h)
assert len(data) > 50_000, f"suspiciously small screenshot ({len(data)} bytes): a blank window?"
print(f"smoke: window screenshot {w}x{h}, {len(data) // 1024} KiB")
PY

if [ "$mode" = system ]; then
  step "desktop integration as installed"
  desktop-file-validate /usr/share/applications/bytehoven.desktop
  appstreamcli validate --no-net /usr/share/metainfo/io.github.bytehoven.Bytehoven.metainfo.xml | tail -1
  if [ -f /usr/share/applications/mimeinfo.cache ]; then
    grep -q '^application/pdf=.*bytehoven.desktop' /usr/share/applications/mimeinfo.cache \
      || fail "the MIME cache does not offer bytehoven.desktop for PDFs (\"Open with\")"
    echo "smoke: PDFs list bytehoven.desktop in /usr/share/applications/mimeinfo.cache"
  else
    echo "smoke: no MIME cache (desktop-file-utils not installed): 'Open with' not checked"
  fi

  step "removing $pkg"
  $SUDO dpkg --purge "$pkg" >/dev/null
  installed_here=0
  for f in /opt/bytehoven /usr/bin/bytehoven /usr/share/applications/bytehoven.desktop \
           /usr/share/metainfo/io.github.bytehoven.Bytehoven.metainfo.xml /usr/share/icons/hicolor/48x48/apps/bytehoven.png; do
    [ ! -e "$f" ] && [ ! -L "$f" ] || fail "$f is still there after removal"
  done
  if [ -f /usr/share/applications/mimeinfo.cache ] && grep -q 'bytehoven.desktop' /usr/share/applications/mimeinfo.cache; then
    fail "the MIME cache still names bytehoven.desktop after removal"
  fi
  echo "smoke: removed cleanly"
fi
printf '\nsmoke: PASSED (%s, %s install)\n' "$(basename "$deb")" "$mode"
