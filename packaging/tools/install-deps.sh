#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages in packaging/apt-dist-packages.txt that are missing
# (idempotent: a second run only checks). Elsewhere it only says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t pkgs < <(grep -v '^\s*#' apt-dist-packages.txt | sed 's/#.*//; /^\s*$/d')
if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "packaging: not a Debian/Ubuntu machine; make sure these are installed: ${pkgs[*]}" >&2
  exit 0
fi
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ "${#missing[@]}" -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "packaging: missing Debian packages (install them as root): ${missing[*]}" >&2; exit 1
  fi
fi
echo "packaging: installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq || true
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
