"""The ``bytehoven`` command: dispatches to the analysis CLI, the GUI or the training tools.

Kept apart from ``cli.py`` so that the analysis command line never imports Qt."""

from __future__ import annotations

import sys
from typing import Sequence

from . import __version__

USAGE = """usage: bytehoven [FILE]                    open the desktop program (optionally with a score)
       bytehoven gui [FILE] [--screenshot OUT.png]
       bytehoven analyze PATH... [options]  analyse scores on the command line (see analyze --help)
       bytehoven dataset|train|export|calibrate|quantize|evaluate ...   build data, train and evaluate the model
                                            (needs the [train] extra)
       bytehoven --version"""

TRAINING_COMMANDS = ("dataset", "train", "export", "calibrate", "quantize", "evaluate")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    first = args[0] if args else ""
    if first in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if first in ("-V", "--version"):
        print(f"bytehoven {__version__}")
        return 0
    if first == "analyze":
        from .cli import run_analyze

        return run_analyze(args[1:])
    if first in TRAINING_COMMANDS:
        try:
            from .training.commands import main as training_main
        except ImportError as exc:
            print(f"bytehoven: {first} needs the training extra: pip install 'bytehoven-desktop[train]' ({exc})",
                  file=sys.stderr)
            return 2
        return training_main(args)
    if first == "gui":
        args = args[1:]
    from .gui.app import main as gui_main

    return gui_main(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
