#!/usr/bin/env bash
# Set up everything Bytehoven needs on a fresh Debian/Ubuntu machine: system packages for the
# Qt tests (xvfb, xcb libraries) and a virtual environment with the program and its extras.
# Usage: tools/setup.sh [runtime|test]   (idempotent; a second run only checks)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-test}"
VENV="${VENV:-.venv}"
PY="${PYTHON:-python3}"

# The Qt libraries (xcb plugin) are needed to run the program too, not only to test it.
if command -v apt-get >/dev/null 2>&1; then
  lists=(packaging/apt-test-packages.txt)
  # The training tests engrave with LilyPond and MuseScore; the program itself never needs them.
  if [ "$what" = "test" ]; then lists+=(packaging/apt-train-packages.txt); fi
  mapfile -t pkgs < <(cat "${lists[@]}" | grep -v '^\s*#' | sed '/^\s*$/d')
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || echo "setup: could not install ${missing[*]} (GUI screenshot tests will be skipped)"
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.bytehoven-$what-$(cat pyproject.toml packaging/requirements-*.txt 2>/dev/null | sha256sum | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  if [ "$what" = "test" ]; then
    # The CPU build of torch: the training tests need it, and it is a tenth of the CUDA build.
    "$VENV/bin/python" -m pip install -q -r packaging/requirements-torch-cpu.txt
    "$VENV/bin/python" -m pip install -q -e ".[test,train,cluster]"
  else
    "$VENV/bin/python" -m pip install -q -e .
  fi
  touch "$stamp"
fi
