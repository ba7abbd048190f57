"""The bundle's entry point: the ``bytehoven`` command."""

import multiprocessing
import sys

if __name__ == "__main__":
    # `bytehoven analyze --jobs N` starts worker processes; on Windows and macOS they are spawned
    # by re-running this executable, which freeze_support() turns into a worker.
    multiprocessing.freeze_support()
    from bytehoven_desktop.main import main

    sys.exit(main())
