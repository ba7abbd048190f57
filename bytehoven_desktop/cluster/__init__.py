"""The Ray engine of ``bytehoven analyze --engine ray``: whole libraries on a cluster.

This package is the only place Ray is imported (an import-linter contract in pyproject.toml says
so). Importing the package does not import Ray, so the command line can say how to install it.

    session.py  joining a Ray cluster, or starting a local one for the run
    plan.py     documents cut into page ranges, and ranges put back into one result (no Ray)
    workers.py  the page-preparation task and the inference actor
    driver.py   the scheduler: feeds the workers, retries what died, hands each document back once
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from ..pipeline import AnalysisOptions

INSTALL_HINT = "--engine ray needs Ray: pip install 'bytehoven-desktop[cluster]' (or: pip install ray)"


class ClusterError(Exception):
    """The cluster cannot be used (cannot join it, the model does not load there); for people."""


def missing_ray() -> str | None:
    """None when Ray can be imported here, else what to tell the user."""
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        return f"{INSTALL_HINT} ({exc})"
    return None


def run_on_ray(files: Sequence[Path], *, model: Path | None, device: str, batch_size: int, threads: int | None,
               options: AnalysisOptions, address: str | None, cpus: int | None,
               emit: Callable[[dict[str, Any]], None], say: Callable[[str], None]) -> None:
    """Analyse ``files`` on a Ray cluster; ``emit`` gets each document's JSON result exactly once.

    ``address`` (else $RAY_ADDRESS) names the cluster to join; without either, a local Ray with
    ``cpus`` CPUs (default: all) is started for the run and stopped after it."""
    from .driver import run

    run(files, model=model, device=device, batch_size=batch_size, threads=threads, options=options,
        address=address, cpus=cpus, emit=emit, say=say)
