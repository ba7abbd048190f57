"""The results library: every analysis kept in an SQLite database, so a score is analysed once.

An analysis is keyed by the document's content hash, the model's hash and the detector's version
(``systems.DETECTOR_VERSION``): the same key means the same result, so it is shown at once
instead of being computed again. A result made by another model or detector is kept, but
reported as outdated, never silently reused. Each analysis keeps the full result (the JSON
``bytehoven analyze`` writes, compressed) and the columns the library view filters and sorts on.

Reliability: one transaction per document (a killed program loses at most the document in
flight), WAL and a busy timeout (the GUI and a command-line batch may write at the same time),
the schema version in ``PRAGMA user_version`` with migrations, and a file that is not a usable
database moved aside with a notice, a fresh library started in its place.

No Qt here: the CLI and the GUI both use this module.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .report import dumps
from .systems import DETECTOR_VERSION

LIBRARY_FILE = "library.sqlite3"
BUSY_TIMEOUT_MS = 30_000  # a batch and the GUI writing at once wait for each other this long at most
SORT_COLUMNS = ("name", "pages", "top", "confidence", "status", "folder", "analysed_at")


class LibraryError(Exception):
    """Reading or writing the library failed; the message says what, for people."""


class _TooNew(Exception):
    """The file is a library of a later schema than this program knows."""


def data_dir() -> Path:
    """The platform's folder for the program's own data (not created here).

    Linux: $XDG_DATA_HOME/bytehoven (~/.local/share/bytehoven); Windows: %LOCALAPPDATA%\\Bytehoven;
    macOS: ~/Library/Application Support/Bytehoven."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "Bytehoven"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "Bytehoven"
    base = os.environ.get("XDG_DATA_HOME") or ""
    # The XDG spec says a relative value is invalid and must be ignored.
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share"
    return root / "bytehoven"


def default_library_path() -> Path:
    return data_dir() / LIBRARY_FILE


# -- schema ----------------------------------------------------------------------------------
# Each step takes the database from version i to i + 1; a new database runs them all. Steps are
# never edited once released: a change to the schema is a new step.
def _v1(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE analyses (
        id INTEGER PRIMARY KEY,
        doc_sha256 TEXT NOT NULL,
        model_sha256 TEXT NOT NULL,
        detector TEXT NOT NULL,
        path TEXT NOT NULL,
        analysed_at REAL NOT NULL,          -- Unix time
        result TEXT NOT NULL,               -- the analyze JSON of the document
        UNIQUE (doc_sha256, model_sha256, detector))""")


def _v2(db: sqlite3.Connection) -> None:
    """The library view's columns, filled from the stored JSON, with their indexes; the results
    themselves move to a table of their own, zlib-compressed.

    Kept apart, the rows the view scans stay small (a 50-page result is ~100 kB of JSON, and a
    scan would read every byte of it); compressed, the file is about a fifth of the size.
    ``current`` marks the newest analysis of each document: the view lists one row per document."""
    # Rebuilt rather than altered: ALTER TABLE DROP COLUMN needs SQLite 3.35, newer than some
    # supported systems ship.
    db.execute("""CREATE TABLE analyses2 (
        id INTEGER PRIMARY KEY,
        doc_sha256 TEXT NOT NULL,
        model_sha256 TEXT NOT NULL,
        detector TEXT NOT NULL,
        path TEXT NOT NULL,
        analysed_at REAL NOT NULL,
        name TEXT NOT NULL COLLATE NOCASE,  -- sorted as people expect (ASCII letters in any case)
        folder TEXT NOT NULL,
        pages INTEGER,
        top TEXT,                           -- the top composer, named or withheld
        composer TEXT,                      -- NULL when withheld
        confidence REAL,
        status TEXT NOT NULL,               -- done | uncertain | no music | error
        model_name TEXT,
        current INTEGER NOT NULL DEFAULT 1,
        UNIQUE (doc_sha256, model_sha256, detector))""")
    db.execute("CREATE TABLE results (id INTEGER PRIMARY KEY REFERENCES analyses(id) ON DELETE CASCADE, "
               "data BLOB NOT NULL)")
    for row in db.execute("SELECT id, doc_sha256, model_sha256, detector, path, analysed_at, result "
                          "FROM analyses").fetchall():
        try:
            doc = json.loads(row[6])
        except ValueError:
            doc = {}
        db.execute("INSERT INTO analyses2 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                   (*row[:6], *_view_columns(row[4], doc)))
        db.execute("INSERT INTO results (id, data) VALUES (?, ?)", (row[0], _pack(row[6])))
    db.execute("DROP TABLE analyses")
    db.execute("ALTER TABLE analyses2 RENAME TO analyses")
    db.execute("UPDATE analyses SET current = (id = (SELECT b.id FROM analyses b WHERE b.doc_sha256 = "
               "analyses.doc_sha256 ORDER BY b.analysed_at DESC, b.id DESC LIMIT 1))")
    # What the view sorts on, with the two most used filters inside: walking an index in order and
    # filtering on it never touches the table (a lookup per row costs more than the walk).
    # id right after the sort column: the sort's tie-break is the index's own order too (else
    # SQLite sorts the ties of every row it walks past, and an offset of 100,000 costs 150 ms).
    for col in SORT_COLUMNS:
        db.execute(f"CREATE INDEX analyses_{col} ON analyses(current, {col}, id, top, confidence)")
    db.execute("CREATE INDEX analyses_top_date ON analyses(current, top, analysed_at, id)")
    db.execute("CREATE INDEX analyses_doc ON analyses(doc_sha256)")


def _pack(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8", "surrogatepass"), 6)


def _unpack(data: bytes) -> dict[str, Any]:
    return json.loads(zlib.decompress(data).decode("utf-8", "surrogatepass"))


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2)
SCHEMA_VERSION = len(MIGRATIONS)


def _status(doc: dict[str, Any]) -> str:
    if doc.get("error"):
        return "error"
    return str(doc.get("reason") or "done")


def _view_columns(path: str, doc: dict[str, Any]) -> tuple[Any, ...]:
    """name, folder, pages, top composer, composer (None when withheld), confidence, status, model name."""
    p = os.path.abspath(path) if path else ""
    return (os.path.basename(p), os.path.dirname(p), doc.get("pages"), doc.get("best_guess"), doc.get("composer"),
            doc.get("confidence"), _status(doc), (doc.get("model") or {}).get("name"))


# -- what the library gives back ---------------------------------------------------------------
@dataclass(frozen=True)
class Stored:
    """A stored analysis of a document."""

    doc: dict[str, Any]  # the analyze JSON
    analysed_at: float  # Unix time
    model_name: str | None
    model_sha256: str
    detector: str
    outdated: str | None = None  # why it is not the present model's and detector's result, or None

    @property
    def date_text(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.analysed_at))


@dataclass(frozen=True)
class Entry:
    """One document as the library view lists it."""

    id: int
    path: str
    name: str
    folder: str
    pages: int | None
    top: str | None  # the top composer, named or not
    composer: str | None  # None when withheld (uncertain, no music, error)
    confidence: float | None
    status: str
    analysed_at: float
    model_name: str | None


_ENTRY_COLS = "id, path, name, folder, pages, top, composer, confidence, status, analysed_at, model_name"


@dataclass(frozen=True)
class Query:
    """What the library view shows: filters, a name search and the sort order."""

    composer: str | None = None  # top composer
    min_confidence: float | None = None
    folder: str | None = None  # this folder and those under it
    search: str = ""  # part of the file name, any case
    sort: str = "analysed_at"
    descending: bool = True


class Library:
    """The results database, safe to use from several threads.

    Writes go through one connection under a lock; reads through another, so the library view
    never waits for a write (in WAL mode a reader sees the last committed state at once), even
    while another process holds the write lock.

    ``notice`` says, for people, what happened on opening when it was not plain (a damaged file
    moved aside; a library that could not be opened at all, replaced by one in memory)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, busy_timeout_ms: int = BUSY_TIMEOUT_MS):
        self.path = Path(path) if path is not None else default_library_path()
        self.busy_timeout_ms = busy_timeout_ms
        self.notice: str | None = None
        self.in_memory = False
        self._wlock = threading.RLock()
        self._rlock = threading.RLock()
        self._db = self._open()
        if self.in_memory:  # one database, one connection: reads wait for writes there
            self._read, self._rlock = self._db, self._wlock
        else:
            self._read = self._connect(str(self.path), check=False)

    # -- opening ----------------------------------------------------------------------------
    def _connect(self, target: str, check: bool = True) -> sqlite3.Connection:
        # isolation_level=None: transactions are begun explicitly (BEGIN IMMEDIATE for writes, so
        # a writer waits for the other one at its start rather than failing half-way).
        db = sqlite3.connect(target, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            if check:  # before anything is written: a file that is no library is left as it was
                self._check_kind(db)
            if target != ":memory:":
                mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise sqlite3.DatabaseError(f"cannot use write-ahead logging (journal mode {mode})")
            # In WAL mode NORMAL loses no committed transaction when the program is killed, only
            # (possibly) the last ones on a power cut, and saves an fsync per document.
            db.execute("PRAGMA synchronous = NORMAL")
            if not check:
                return db
            self._migrate(db)
            # A damaged file can have a readable header. Reading every row the view lists finds most
            # damage at a cost that stays small (100,000 documents: tens of ms; PRAGMA quick_check
            # reads the stored results too, 2.3 s); damage inside a stored result is reported when
            # that result is read.
            if target != ":memory:":
                db.execute("SELECT count(*), sum(length(path)), sum(length(name)) FROM analyses").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return self._fallback(f"its folder cannot be created ({exc.strerror or exc})")
        try:
            return self._connect(str(self.path))
        except _TooNew as exc:  # a valid library of a later version: left as it is
            return self._fallback(str(exc))
        except sqlite3.Error as exc:
            why = str(exc)
            if not self._damaged(exc):  # locked for too long, a full disk: the file itself is fine
                return self._fallback(f"it could not be opened ({why})")
        try:
            aside = self._move_aside()
        except OSError as exc:
            return self._fallback(f"it is unreadable ({why}) and could not be moved aside "
                                  f"({exc.strerror or exc})")
        try:
            db = self._connect(str(self.path))
        except sqlite3.DatabaseError as exc:
            return self._fallback(f"it is unreadable ({why}), and a new one could not be started there ({exc})")
        self.notice = (f"The results library {self.path} could not be read ({why}). It was moved aside to "
                       f"{aside} and a new, empty library was started.")
        return db

    def _damaged(self, exc: sqlite3.Error) -> bool:
        """Is the file itself the trouble (damaged, not a library, unreadable)? A library locked
        by another program for longer than the busy timeout must not be moved aside."""
        name = getattr(exc, "sqlite_errorname", "")  # Python 3.11+
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            return True
        text = str(exc).lower()
        if any(k in text for k in ("malformed", "not a database", "not a bytehoven library", "encrypted")):
            return True
        return self.path.exists() and not os.access(self.path, os.R_OK | os.W_OK)

    def _fallback(self, why: str) -> sqlite3.Connection:
        self.notice = (f"The results library {self.path} cannot be used: {why}. Results are kept in memory "
                       f"until the program ends.")
        self.in_memory = True
        return self._connect(":memory:")

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{n}")
        if self.path.exists():
            os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):  # the log belongs to the damaged file, not to the new one
            side = Path(str(self.path) + suffix)
            if side.exists():
                os.replace(side, Path(str(aside) + suffix))
        return aside

    def _check_kind(self, db: sqlite3.Connection) -> int:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise sqlite3.DatabaseError("not a Bytehoven library (tables without a schema version)")
        if version > SCHEMA_VERSION:
            raise _TooNew(f"it was made by a newer Bytehoven (schema {version}, this one knows "
                          f"{SCHEMA_VERSION}); update Bytehoven or choose another library file")
        return int(version)

    def _migrate(self, db: sqlite3.Connection) -> None:
        if self._check_kind(db) == SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated it while we waited for the lock.
            version = self._check_kind(db)
            for step in range(version, SCHEMA_VERSION):
                MIGRATIONS[step](db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        with self._rlock:
            return int(self._read.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._wlock, self._rlock:
            if self._read is not self._db:
                self._read.close()
            self._db.close()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------
    def store(self, doc: dict[str, Any], detector: str = DETECTOR_VERSION, analysed_at: float | None = None) -> bool:
        """Keep one document's result (its analyze JSON) in one transaction. False when it cannot
        be kept: no content hash (the file could not be read) or a cancelled, partial analysis."""
        return self.store_many([doc], detector, analysed_at) == 1

    def store_many(self, docs: Iterable[dict[str, Any]], detector: str = DETECTOR_VERSION,
                   analysed_at: float | None = None) -> int:
        """Several results in one transaction (imports, the benchmark); the number kept."""
        rows = []
        for doc in docs:
            sha = doc.get("sha256")
            if not sha or doc.get("cancelled"):
                continue
            path = str(doc.get("path") or "")
            model_sha = str((doc.get("model") or {}).get("sha256") or "")
            rows.append(((sha, model_sha, detector, path, time.time() if analysed_at is None else analysed_at,
                          *_view_columns(path, doc)), _pack(dumps(doc))))
        if not rows:
            return 0
        try:
            self._write(rows)
        except sqlite3.Error as exc:
            raise self._failed("written", exc) from None
        return len(rows)

    def _write(self, rows: list[tuple[tuple[Any, ...], bytes]]) -> None:
        with self._wlock, self._transaction():
            for cols, data in rows:
                self._db.execute("UPDATE analyses SET current = 0 WHERE doc_sha256 = ? AND current = 1", (cols[0],))
                self._db.execute(
                    "INSERT INTO analyses (doc_sha256, model_sha256, detector, path, analysed_at, name, folder, "
                    "pages, top, composer, confidence, status, model_name, current) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) "
                    "ON CONFLICT (doc_sha256, model_sha256, detector) DO UPDATE SET path = excluded.path, "
                    "analysed_at = excluded.analysed_at, name = excluded.name, folder = excluded.folder, "
                    "pages = excluded.pages, top = excluded.top, composer = excluded.composer, "
                    "confidence = excluded.confidence, status = excluded.status, "
                    "model_name = excluded.model_name, current = 1", cols)
                # Not RETURNING: that needs SQLite 3.35.
                rid = self._db.execute("SELECT id FROM analyses WHERE doc_sha256 = ? AND model_sha256 = ? AND "
                                       "detector = ?", cols[:3]).fetchone()[0]
                self._db.execute("INSERT OR REPLACE INTO results (id, data) VALUES (?, ?)", (rid, data))

    def seen_at(self, doc_sha256: str, path: str) -> None:
        """The document was met again under ``path`` (renamed or moved): the view shows it there."""
        p = os.path.abspath(path)
        try:
            with self._wlock, self._transaction():
                self._db.execute("UPDATE analyses SET path = ?, name = ?, folder = ? WHERE doc_sha256 = ? "
                                 "AND path != ?", (path, os.path.basename(p), os.path.dirname(p), doc_sha256, path))
        except sqlite3.Error as exc:
            raise self._failed("written", exc) from None

    def _failed(self, action: str, exc: sqlite3.Error) -> LibraryError:
        return LibraryError(f"The results library {self.path} could not be {action} ({exc})")

    class _Tx:
        def __init__(self, db: sqlite3.Connection):
            self.db = db

        def __enter__(self) -> None:
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type: Any, *rest: object) -> None:
            if exc_type is None:
                try:
                    self.db.execute("COMMIT")
                    return
                except sqlite3.Error:
                    if self.db.in_transaction:  # leave the connection usable for the next document
                        self.db.execute("ROLLBACK")
                    raise
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")

    def _transaction(self) -> "Library._Tx":
        return Library._Tx(self._db)

    # -- reading ----------------------------------------------------------------------------
    def lookup(self, doc_sha256: str, model_sha256: str | None, detector: str = DETECTOR_VERSION) -> Stored | None:
        """This document's result for the given model and detector; else its newest result, marked
        outdated (with the reason); None when it was never analysed."""
        try:
            row = self._lookup(doc_sha256, model_sha256 or "", detector)
        except sqlite3.Error as exc:
            raise self._failed("read", exc) from None
        if row is None:
            return None
        data, at, model_name, m_sha, det = row
        outdated = None
        if m_sha != (model_sha256 or ""):
            outdated = f"made with another model ({model_name or 'unnamed'}, sha256 {m_sha[:12]})"
        elif det != detector:
            outdated = f"rows found by another version of the detector ({det}; this one is {detector})"
        return Stored(_unpack(data), at, model_name, m_sha, det, outdated)

    def _lookup(self, doc_sha256: str, model_sha256: str, detector: str) -> tuple[Any, ...] | None:
        with self._rlock:
            row = self._read.execute(
                "SELECT data, analysed_at, model_name, model_sha256, detector FROM analyses JOIN results USING (id) "
                "WHERE doc_sha256 = ? AND model_sha256 = ? AND detector = ?",
                (doc_sha256, model_sha256, detector)).fetchone()
            if row is None:
                row = self._read.execute(
                    "SELECT data, analysed_at, model_name, model_sha256, detector FROM analyses "
                    "JOIN results USING (id) WHERE doc_sha256 = ? ORDER BY analysed_at DESC, id DESC LIMIT 1",
                    (doc_sha256,)).fetchone()
        return row

    def current_hashes(self, model_sha256: str | None, detector: str = DETECTOR_VERSION) -> set[str]:
        """Documents that have a result for this model and detector (what a resumed batch skips)."""
        return {r[0] for r in self._rows("SELECT doc_sha256 FROM analyses WHERE model_sha256 = ? AND detector = ?",
                                         (model_sha256 or "", detector))}

    def _where(self, q: Query, walk: bool = False) -> tuple[str, list[Any]]:
        """The WHERE clause of a view query. ``walk``: rows are wanted in the sort's order, so the
        confidence range must not be used to seek (unary +): SQLite would otherwise take
        nearly every row from that index and sort them (0.8 s for 100,000), where walking the
        sort index and testing the confidence stored in it stops after a screenful."""
        where, args = ["current = 1"], []
        if q.composer:
            where.append("top = ?")
            args.append(q.composer)
        if q.min_confidence is not None and q.min_confidence > 0:
            where.append("+confidence >= ?" if walk else "confidence >= ?")
            args.append(float(q.min_confidence))
        if q.folder:
            f = os.path.abspath(q.folder).rstrip(os.sep) or os.sep
            under = f if f.endswith(os.sep) else f + os.sep
            # A range on the folder index: every folder that starts with "f/" sorts in [f/, f0).
            where.append("(folder = ? OR (folder >= ? AND folder < ?))")
            args += [f, under, under[:-1] + chr(ord(under[-1]) + 1)]
        if q.search.strip():
            esc = q.search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("name LIKE ? ESCAPE '\\'")
            args.append(f"%{esc}%")
        return " AND ".join(where), args

    def _order(self, q: Query) -> str:
        if q.sort not in SORT_COLUMNS:
            raise ValueError(f"cannot sort by {q.sort!r}")
        order = "DESC" if q.descending else "ASC"
        # id keeps ties in a stable order; it is in every index, so the sort is the index's order.
        # (NULLs - no confidence, no composer - sort as the smallest values, as SQLite does.)
        return f"ORDER BY {q.sort} {order}, id {order}"

    def _rows(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            with self._rlock:
                return self._read.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise self._failed("read", exc) from None

    def count(self, q: Query | None = None) -> int:
        """Documents in the library (one per content hash), or those a view query lists."""
        where, args = self._where(q or Query())
        return int(self._rows(f"SELECT count(*) FROM analyses WHERE {where}", args)[0][0])

    def page(self, q: Query, offset: int, limit: int) -> list[Entry]:
        """Rows ``offset`` .. ``offset + limit`` of what the view lists, in its order.

        The view asks for the rows it shows, a block at a time: SQLite walks the sort index to
        the offset in C, reading only the index (the ids are in it), and Python never builds
        100,000 of anything; then the block's rows are read by id."""
        where, args = self._where(q, walk=True)
        sql = f"SELECT id FROM analyses WHERE {where} {self._order(q)} LIMIT ? OFFSET ?"
        ids = [r[0] for r in self._rows(sql, [*args, int(limit), int(offset)])]
        found = self.entries(ids)
        return [found[i] for i in ids if i in found]

    def query_ids(self, q: Query = Query()) -> list[int]:
        """Ids of every document a view query lists, in its order (to export them all)."""
        where, args = self._where(q, walk=True)
        return [r[0] for r in self._rows(f"SELECT id FROM analyses WHERE {where} {self._order(q)}", args)]

    def entries(self, ids: Sequence[int]) -> dict[int, Entry]:
        """The view's columns of these documents, by id."""
        out: dict[int, Entry] = {}
        for start in range(0, len(ids), 500):  # under SQLite's limit on bound parameters
            chunk = list(ids[start:start + 500])
            marks = ",".join("?" * len(chunk))
            for r in self._rows(f"SELECT {_ENTRY_COLS} FROM analyses WHERE id IN ({marks})", chunk):
                out[r[0]] = Entry(*r)
        return out

    def results(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The full results (analyze JSON) of these documents, in the order given."""
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start:start + 500])
            marks = ",".join("?" * len(chunk))
            for rid, data in self._rows(f"SELECT id, data FROM results WHERE id IN ({marks})", chunk):
                found[rid] = _unpack(data)
        return [found[i] for i in ids if i in found]

    def composers(self) -> list[str]:
        """Top composers present in the library, for the view's filter."""
        return [r[0] for r in self._rows("SELECT DISTINCT top FROM analyses WHERE current = 1 AND top IS NOT NULL "
                                         "ORDER BY top", ())]

    def folders(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT DISTINCT folder FROM analyses WHERE current = 1 ORDER BY folder",
                                         ())]
