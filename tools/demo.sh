#!/usr/bin/env bash
# Open the demo score in the desktop program. On a machine with no display (a server, CI),
# analyse it on the command line and save a screenshot of the window instead.
set -euo pipefail
cd "$(dirname "$0")/.."
demo=resources/demo/demo.pdf
if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ] || [ "$(uname)" = Darwin ]; then
  exec .venv/bin/bytehoven gui "$demo"
fi
echo "demo: no display here; analysing $demo on the command line instead" >&2
.venv/bin/bytehoven analyze "$demo" -q | .venv/bin/python tools/demo_summary.py
QT_QPA_PLATFORM=offscreen .venv/bin/bytehoven gui "$demo" --screenshot demo-screenshot.png
echo "demo: window saved as demo-screenshot.png" >&2
