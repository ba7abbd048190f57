"""Joining a Ray cluster, or starting a local Ray for one run, without network beyond loopback."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Callable

from . import ClusterError

# Read by Ray when it is first imported: a local Ray then binds to 127.0.0.1 instead of the
# machine's address (the variable's name says Windows/macOS, but it is Ray's switch between
# "a local instance only" and "a node that others may join" on every platform).
_LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@dataclass(frozen=True)
class Session:
    address: str  # the GCS address (host:port) drivers and `ray start --address` use
    started: bool  # True when this run called ray.init (and leaves at the end)
    local: bool = False  # a local Ray started for this run (stopped when it leaves)


def cluster_address(address: str | None) -> str | None:
    """The cluster to join: the option, else $RAY_ADDRESS, else None (start a local Ray)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def connect(address: str | None = None, cpus: int | None = None) -> Session:
    """Join the cluster at ``address`` ($RAY_ADDRESS), or start a local Ray with ``cpus`` CPUs.

    A Ray already connected in this process (a program that uses Bytehoven as a library, the
    tests) is used as it is and left running."""
    # Ray otherwise reports usage statistics to its makers; scores and runs are private.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = cluster_address(address)
    if address is None:
        os.environ.setdefault(_LOCAL_ONLY_ENV, "0")  # only effective before Ray's first import
    import ray

    if ray.is_initialized():
        return Session(ray.get_runtime_context().gcs_address, started=False)
    quiet = dict(log_to_driver=False,  # workers' output must not mix with JSON Lines on stdout
                 logging_level=logging.ERROR, configure_logging=True)
    try:
        if address is not None:
            ctx = ray.init(address=address, **quiet)
        else:
            # "local": a new Ray for this run even if one was started on this machine with `ray start`.
            ctx = ray.init(address="local", num_cpus=cpus or os.cpu_count() or 1, include_dashboard=False, **quiet)
    except Exception as exc:  # ConnectionError, a version mismatch, no permission on /tmp/ray, ...
        where = f"join the Ray cluster at {address}" if address else "start a local Ray"
        raise ClusterError(f"could not {where} ({type(exc).__name__}: {_first_line(exc)})") from None
    return Session(ctx.address_info.get("address") or ctx.address_info.get("gcs_address", ""),
                   started=True, local=address is None)


def route_messages(say: Callable[[str], None]) -> Callable[[], None]:
    """Ray prints what its raylets report (a worker that died, a task retried) on stdout, where
    JSON Lines go: send the first line of each to ``say`` instead. Returns what undoes it.

    (Ray has no option for this; its module function is replaced, and left alone if it moved.)"""
    try:
        from ray._private import worker as ray_worker

        original = ray_worker.print_to_stdstream
    except (ImportError, AttributeError):
        return lambda: None

    def to_say(data: dict[str, Any], ignore_prefix: bool = False) -> None:
        if data.get("pid") != "raylet":
            return original(data, ignore_prefix)
        for line in data.get("lines", []):
            first = str(line).strip().splitlines()
            if first:
                say(f"Ray: {first[0][:240]}")

    ray_worker.print_to_stdstream = to_say

    def undo() -> None:
        ray_worker.print_to_stdstream = original

    return undo


def close(session: Session) -> None:
    """Leave the cluster (its tasks and actors of this run end); a local Ray this run started stops."""
    import ray

    if session.started:
        ray.shutdown()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
