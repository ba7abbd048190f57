"""The training corpus (``manifest.csv``, ``scans.csv``) and its split by group.

Splits are made per composer over whole groups (an opus, a book, a collection), never
over rows, pages or files: the same piece in two sources shares a ``work_id`` and a
``group``, so it always lands on one side. The assignment is a stable hash of the group
name, so it does not change when files are added to other groups.
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Source:
    path: Path  # absolute
    rel: str  # as in the manifest
    composer: str
    groups: tuple[str, ...]
    work_id: str
    kind: str  # "symbolic", "engraved" or "scan"


def read_sources(corpus: Path) -> list[Source]:
    corpus = Path(corpus)
    out: list[Source] = []
    with (corpus / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            kind = "engraved" if r["path"].lower().endswith(".pdf") else "symbolic"
            out.append(Source(corpus / r["path"], r["path"], r["composer"], (r["group"],), r["work_id"], kind))
    scans = corpus / "scans.csv"
    if scans.exists():
        with scans.open(newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                groups = tuple(g.strip() for g in r["groups_covered"].split(";") if g.strip())
                out.append(Source(corpus / r["path"], r["path"], r["composer"], groups, "", "scan"))
    return out


def manifest_sha256(corpus: Path) -> str:
    return hashlib.sha256((Path(corpus) / "manifest.csv").read_bytes()).hexdigest()


def _rank(group: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def assign_splits(sources: list[Source], seed: int = 0, dev_frac: float = 0.15,
                  test_frac: float = 0.15) -> dict[str, str]:
    """Map every group to train/dev/test, per composer, by share of files.

    A composer with three or more groups gets at least one dev and one test group; with two,
    one test group; with one, everything is train (it cannot be measured on unseen works)."""
    files_per_group: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for s in sources:
        for g in s.groups:
            files_per_group[s.composer][g] += 1
    split: dict[str, str] = {}
    for composer, groups in files_per_group.items():
        order = sorted(groups, key=lambda g: _rank(g, seed))
        total = sum(groups.values())
        if len(order) == 1:
            split[order[0]] = "train"
            continue
        want = {"test": test_frac * total, "dev": dev_frac * total if len(order) >= 3 else 0.0}
        got = {"test": 0, "dev": 0}
        mine: dict[str, str] = {}
        for g in order:
            target = next((k for k in ("test", "dev") if got[k] < want[k] and got[k] + groups[g] <= want[k] * 1.5),
                          None)
            mine[g] = target or "train"
            if target:
                got[target] += groups[g]
        # Large groups may leave a side empty: give it the smallest train group that keeps
        # at least half of the composer's files for training.
        for side in ("test", "dev"):
            if want[side] and not got[side]:
                train = sorted((g for g in order if mine[g] == "train"), key=lambda g: groups[g])
                train_files = sum(groups[g] for g in train)
                if train and train_files - groups[train[0]] >= 0.5 * total:
                    mine[train[0]] = side
                    got[side] += groups[train[0]]
        split.update(mine)
    return split


def source_split(source: Source, split: dict[str, str]) -> str:
    """A file covering several groups goes to the most protected side any of them is on."""
    sides = {split.get(g, "train") for g in source.groups}
    for side in ("test", "dev"):
        if side in sides:
            return side
    return "train"
