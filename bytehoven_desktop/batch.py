"""Folders of scores: which files to analyse, and a results file that survives interruption.

Results are appended one document at a time and flushed to disk, so a batch killed at any
moment loses at most the document in progress; ``resume`` skips documents whose content
hash is already in the file (a renamed file is not analysed twice; a changed one is).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from .document import file_problem, is_supported
from .report import CSV_FIELDS, csv_row, dumps


def iter_documents(paths: Iterable[str | os.PathLike[str]], recursive: bool = False,
                   errors: list[tuple[str, str]] | None = None) -> Iterator[Path]:
    """Score files named directly, or found in folders (sorted; symlink loops are visited once).

    Paths that cannot be used are reported in ``errors`` as (path, message)."""
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()

    def note(p: str, msg: str) -> None:
        if errors is not None:
            errors.append((p, msg))

    def walk(folder: Path, depth: int) -> Iterator[Path]:
        try:
            st = folder.stat()
        except OSError as exc:
            note(str(folder), f"{folder}: cannot be read ({exc.strerror or exc})")
            return
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            return  # a symlink loop or a folder reached twice
        seen_dirs.add(key)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            note(str(folder), f"{folder}: cannot be listed ({exc.strerror or exc})")
            return
        for e in entries:
            p = Path(e.path)
            try:
                is_dir = e.is_dir()
            except OSError:  # e.g. a link that points to itself
                is_dir = False
            if is_dir:
                if recursive:
                    yield from walk(p, depth + 1)
            elif is_supported(p):
                # A score's name on something that is no file (a dangling link, a pipe) is
                # reported, not silently left out, and never opened (a pipe would block).
                problem = file_problem(p)
                if problem:
                    note(str(p), problem)
                else:
                    yield p

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            items: Iterable[Path] = walk(p, 0)
        else:
            problem = file_problem(p)
            if problem:
                note(str(p), problem)
                continue
            items = [p]
        for item in items:
            key = os.path.abspath(item)
            if key not in seen_files:
                seen_files.add(key)
                yield item


class ResultsFile:
    """Append-only results: JSON Lines (one document per line) or CSV (one row per document)."""

    def __init__(self, path: Path, labels: Sequence[str], resume: bool):
        self.path = path
        self.labels = list(labels)
        self.csv = path.suffix.lower() == ".csv"
        self.done: dict[str, dict[str, Any]] = {}
        # Paths whose result has no content hash (the file could not be read at all): on resume
        # they are not reported a second time while they still cannot be read.
        self.done_paths: set[str] = set()
        # On resume a CSV keeps its own header: appending rows of other columns (a file written by
        # an older version, or with other labels) would shift every value under the wrong heading.
        self._header: list[str] | None = None
        if resume and path.exists():
            self._load_and_repair()
            mode = "a"
        else:
            mode = "w"
        path.parent.mkdir(parents=True, exist_ok=True)
        # surrogateescape: a file name that is not UTF-8 (Linux allows any bytes) is written back
        # as its own bytes in CSV rather than crashing the batch (JSON Lines escape it instead).
        self._fh = path.open(mode, encoding="utf-8", errors="surrogateescape", newline="")
        if self.csv and (mode == "w" or path.stat().st_size == 0):
            self._fh.write(self._csv_line(None))
            self._fh.flush()

    def _fields(self) -> list[str]:
        return self._header or list(CSV_FIELDS) + ["sha256"] + [f"p_{c}" for c in self.labels]

    def _csv_line(self, doc: dict[str, Any] | None) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self._fields(), extrasaction="ignore")
        if doc is None:
            w.writeheader()
        else:
            row = csv_row(doc, self.labels)
            row["sha256"] = doc.get("sha256") or ""
            w.writerow(row)
        return buf.getvalue()

    def _load_and_repair(self) -> None:
        """Read finished documents; drop a last line cut short by a crash so appends stay valid."""
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            with self.path.open("r+b") as fh:
                fh.truncate(end)
            data = data[:end]
        text = data.decode("utf-8", errors="surrogateescape")
        if self.csv:
            reader = csv.DictReader(io.StringIO(text))
            for row in reader:
                self._mark(row)
            self._header = list(reader.fieldnames or []) or None
        else:
            # Split on "\n" only: str.splitlines() also splits on characters a name may hold.
            for line in text.split("\n"):
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(doc, dict):
                    self._mark(doc)

    def _mark(self, doc: dict[str, Any]) -> None:
        if doc.get("cancelled"):
            return
        if doc.get("sha256"):
            self.done[doc["sha256"]] = doc
        elif doc.get("path"):
            self.done_paths.add(doc["path"])

    def is_done(self, sha256: str | None, path: str | None = None) -> bool:
        """Already in the file: by content when it can be read, else by path (an unreadable file)."""
        if sha256:
            return sha256 in self.done
        return path is not None and path in self.done_paths

    def append(self, doc: dict[str, Any]) -> None:
        self._fh.write(self._csv_line(doc) if self.csv else dumps(doc) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._mark(doc)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "ResultsFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
