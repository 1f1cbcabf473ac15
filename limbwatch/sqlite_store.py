"""`SqliteStore`: the embedded `limbwatch.store.Store`, one SQLite file (stdlib sqlite3).

Layout (measured in `../shared/notes/storage.md`): a row per chunk (one BLE packet, or more) with
its int16 counts as a little-endian BLOB, keyed (device, session, seq), so that rewriting a chunk
is a no-op (INSERT OR IGNORE); an index on (subject, side, t0) serves time-range reads. WAL
journal, synchronous=NORMAL by default: a commit survives the process being killed, but the last
commits (up to the next checkpoint) may roll back on power loss or an OS crash; pass
synchronous="FULL" to fsync every commit. Schema version in `PRAGMA user_version`, and
`PRAGMA application_id` marks the file as a limbwatch store.

Every SQLite failure (locked, read-only, disk full, I/O error, file deleted while open, closed
store) raises `StoreUnavailable` with a one-line message saying what failed and what to do; a
write that fails stores nothing. A file that is not a limbwatch store raises `NotAStore`.
The store may be shared between threads (calls are serialised by a lock).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from limbwatch.recording import SNAP_TOLERANCE, Side, as_side
from limbwatch.store import Chunk, Event, Night, Samples, StoreUnavailable, split_nights
from limbwatch.wire import RATES_HZ

SCHEMA_VERSION = 1
APPLICATION_ID = int.from_bytes(b"LWst", "big")  # PRAGMA application_id of a limbwatch store

Synchronous = Literal["NORMAL", "FULL"]
_SIDES: tuple[Side, Side] = ("left", "right")

_SCHEMA = (
    """CREATE TABLE chunks (
        device TEXT NOT NULL,
        session INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        subject TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('left', 'right')),
        t0 REAL NOT NULL,
        dt REAL NOT NULL,
        n INTEGER NOT NULL,
        counts_per_g INTEGER NOT NULL,
        counts BLOB NOT NULL,
        PRIMARY KEY (device, session, seq)
    ) WITHOUT ROWID""",
    "CREATE INDEX chunks_by_leg_time ON chunks (subject, side, t0)",
    # The longest chunk of each leg (n * dt, s): a read of [start, end) then seeks the index at
    # t0 >= start - max_span instead of scanning the leg's earlier nights.
    """CREATE TABLE leg_spans (
        subject TEXT NOT NULL,
        side TEXT NOT NULL,
        max_span REAL NOT NULL,
        PRIMARY KEY (subject, side)
    ) WITHOUT ROWID""",
    """CREATE TABLE reports (
        subject TEXT NOT NULL,
        night_start REAL NOT NULL,
        report TEXT NOT NULL,
        PRIMARY KEY (subject, night_start)
    ) WITHOUT ROWID""",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        subject TEXT NOT NULL,
        side TEXT CHECK (side IN ('left', 'right')),
        time REAL NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    )""",
    "CREATE INDEX events_by_subject_time ON events (subject, time)",
)

_INSERT_CHUNK = "INSERT OR IGNORE INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_GROW_SPAN = """INSERT INTO leg_spans VALUES (?, ?, ?)
    ON CONFLICT (subject, side) DO UPDATE SET max_span = max(max_span, excluded.max_span)"""
_SELECT_SAMPLES = """SELECT t0, dt, n, counts_per_g, counts, device, session, seq FROM chunks
    WHERE subject = ?1 AND side = ?2 AND t0 < ?4
      AND t0 >= ?3 - (SELECT max_span FROM leg_spans WHERE subject = ?1 AND side = ?2)
    ORDER BY t0, device, session, seq"""

ChunkRow = tuple[str, int, int, str, str, float, float, int, int, bytes]

# (prefix of SQLite's error name, what it means and what to do)
_ADVICE = (
    ("SQLITE_BUSY", "the database is locked by another process; retry later"),
    ("SQLITE_LOCKED", "the database is locked by another connection; retry later"),
    ("SQLITE_READONLY", "the file or its directory is read-only; make both writable"),
    ("SQLITE_FULL", "the disk is full; free some space"),
    ("SQLITE_IOERR", "disk I/O error; check the disk and that the file still exists"),
    ("SQLITE_CANTOPEN", "cannot open the file; check that it and its directory exist"),
    ("SQLITE_CORRUPT", "the file is damaged; restore it from a backup"),
    ("SQLITE_NOTADB", "the file is not an SQLite database"),
)


class NotAStore(ValueError):
    """The path holds something other than a limbwatch store (or one of a newer schema)."""


def explain_sqlite_error(exc: sqlite3.Error) -> str:
    """One line: what an SQLite error means and what to do about it."""
    name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    for prefix, advice in _ADVICE:
        if name.startswith(prefix):
            return f"{advice} ({name}: {exc})"
    return f"{exc} ({name})"


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`, None if there is none: tells a replaced file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def open_sqlite(
    path: Path,
    *,
    application_id: int,
    schema_version: int,
    schema: Sequence[str],
    what: str,
    create: bool,
    timeout_s: float,
    synchronous: Synchronous,
) -> sqlite3.Connection:
    """Open (and, when new and `create`, initialise) an SQLite file in WAL mode for one of ours.

    `what` names the kind of file in messages ("limbwatch store"). Raises NotAStore for a
    directory, another application's database or a newer schema; FileNotFoundError when the file
    is missing and not `create`; sqlite3.Error for everything SQLite reports.
    """
    if path.is_dir():
        raise NotAStore(f"{path}: is a directory, not a {what} file")
    if not create and not path.exists():
        raise FileNotFoundError(f"{path}: no such {what} (file not found)")
    db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    try:
        _check_or_create(db, path, application_id, schema_version, schema, what, create)
        db.execute(f"PRAGMA synchronous = {synchronous}")
    except BaseException:
        db.close()
        raise
    return db


def _check_or_create(
    db: sqlite3.Connection,
    path: Path,
    application_id: int,
    schema_version: int,
    schema: Sequence[str],
    what: str,
    create: bool,
) -> None:
    """NotAStore unless `db` is ours (or empty and `create`: then give it WAL and the schema)."""
    try:
        app_id, version, n_tables = _identity(db)
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
            raise NotAStore(f"{path}: is not a {what} (not even an SQLite database)") from None
        raise
    if app_id == 0 and n_tables == 0 and create:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            if _identity(db)[0] == 0:  # not initialised meanwhile by another process
                for statement in schema:
                    db.execute(statement)
                db.execute(f"PRAGMA application_id = {application_id}")
                db.execute(f"PRAGMA user_version = {schema_version}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return
    if app_id != application_id:
        kind = "an empty SQLite database" if n_tables == 0 else "another application's database"
        raise NotAStore(f"{path}: is {kind}, not a {what}")
    if version != schema_version:
        raise NotAStore(
            f"{path}: is a {what} of schema {version}; this limbwatch reads schema "
            f"{schema_version} (upgrade limbwatch)"
        )
    db.execute("PRAGMA journal_mode = WAL")


def _identity(db: sqlite3.Connection) -> tuple[int, int, int]:
    """(application_id, user_version, number of tables) of an open database."""
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    n_tables = db.execute("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").fetchone()[0]
    return int(app_id), int(version), int(n_tables)


def check_chunk(chunk: Chunk) -> None:
    """ValueError unless `chunk` can be stored: a side, int16 counts of shape (n >= 1, 3), a
    finite t0, dt > 0 s and counts_per_g > 0."""
    name = f"chunk {chunk.device}/{chunk.session}/{chunk.seq}"
    if chunk.side not in ("left", "right"):
        raise ValueError(f"{name}: side must be 'left' or 'right', not {chunk.side!r}")
    counts = chunk.counts
    if (
        not isinstance(counts, np.ndarray)
        or counts.dtype.kind != "i"
        or counts.dtype.itemsize != 2
        or counts.ndim != 2
        or counts.shape[1] != 3
        or len(counts) == 0
    ):
        found = f"{counts.dtype} {counts.shape}" if isinstance(counts, np.ndarray) else type(counts)
        raise ValueError(f"{name}: counts must be int16 of shape (n, 3), n >= 1, not {found}")
    if not math.isfinite(chunk.t0):
        raise ValueError(f"{name}: t0 must be a finite Unix time, not {chunk.t0}")
    if not (math.isfinite(chunk.dt) and chunk.dt > 0):
        raise ValueError(f"{name}: dt must be > 0 s, not {chunk.dt}")
    if chunk.counts_per_g <= 0:
        raise ValueError(f"{name}: counts_per_g must be > 0, not {chunk.counts_per_g}")


def chunk_row(chunk: Chunk) -> ChunkRow:
    """A checked chunk as plain values: (device, session, seq, subject, side, t0, dt, n,
    counts_per_g, little-endian int16 counts)."""
    check_chunk(chunk)
    blob = np.ascontiguousarray(chunk.counts, dtype="<i2").tobytes()
    return (
        str(chunk.device), int(chunk.session), int(chunk.seq), str(chunk.subject), chunk.side,
        float(chunk.t0), float(chunk.dt), len(chunk.counts), int(chunk.counts_per_g), blob,
    )


def counts_from_blob(blob: bytes) -> np.ndarray:
    """Native int16 (n, 3) counts from a little-endian BLOB (a writable copy)."""
    return np.frombuffer(blob, dtype="<i2").reshape(-1, 3).astype(np.int16)


def nominal_rate(dt: np.ndarray) -> float:
    """Nominal rate, Hz, of chunk sample periods `dt` (s): round(1 / median), snapped to a rate
    the sensor offers (25, 50, 100 Hz) when within 2 %."""
    raw = 1.0 / float(np.median(dt))
    nearest = min(RATES_HZ, key=lambda rate: abs(raw - rate))
    if abs(raw - nearest) <= SNAP_TOLERANCE * nearest:
        return float(nearest)
    return float(round(raw))


def _join_consecutive(t0: np.ndarray, dt: np.ndarray, n: np.ndarray, devices: tuple[str, ...],
                      sessions: tuple[int, ...], seqs: tuple[int, ...]) -> np.ndarray:
    """Start times (chunks ordered by t0) where a packet that follows its predecessor in one
    sensor session but starts before it ended is moved to just after it."""
    seq = np.array(seqs, dtype=np.int64)
    same = (np.array(devices[1:]) == np.array(devices[:-1])) & (
        np.array(sessions[1:]) == np.array(sessions[:-1])) & (seq[1:] == seq[:-1] + 1)
    t0 = t0.copy()
    last = t0 + (n - 1) * dt
    todo = sorted((np.flatnonzero(same & (t0[1:] <= last[:-1])) + 1).tolist())
    while todo:
        i = todo.pop(0)
        shift = last[i - 1] + dt[i] - t0[i]
        if shift > 0:
            t0[i] += shift
            last[i] += shift
            if i + 1 < t0.size and same[i] and t0[i + 1] <= last[i] and i + 1 not in todo:
                todo.insert(0, i + 1)
    return t0


class GuardedSqlite:
    """One SQLite file used from the event loop and from worker threads: calls are serialised by
    a lock, SQLite errors become `unavailable` errors saying what failed and what to do, and a
    file deleted or replaced while open is refused (SQLite would go on writing to the deleted
    file, and the data would vanish with it). Subclasses set `path`, `_lock`, `_db` and
    `_identity` when they open the file."""

    label: ClassVar[str]  # "store", "spool": for messages
    unavailable: ClassVar[type[Exception]]
    path: Path
    _lock: threading.Lock
    _db: sqlite3.Connection
    _identity: tuple[int, int] | None

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            problem = explain_sqlite_error(exc)
            raise self.unavailable(
                f"{self.label} {self.path}: cannot {action}: {problem}") from exc

    def _check_file(self, action: str) -> None:
        if file_identity(self.path) != self._identity:
            raise self.unavailable(
                f"{self.label} {self.path}: cannot {action}: the file was deleted or replaced "
                f"while open; restore it, or open the {self.label} again"
            )

    @contextmanager
    def _reading(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors(action):
            self._check_file(action)
            yield self._db

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction (taking the write lock first), rolled back on any error."""
        with self._lock, self._errors(action):
            self._check_file(action)
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise


class SqliteStore(GuardedSqlite):
    """A limbwatch store in one SQLite file (see the module docstring).

    `create`: make the file when missing (else FileNotFoundError); `timeout_s`: how long to wait
    for another process's write lock before StoreUnavailable; `synchronous`: "NORMAL" or "FULL".
    """

    label = "store"
    unavailable = StoreUnavailable

    def __init__(
        self,
        path: Path | str,
        *,
        create: bool = True,
        timeout_s: float = 5.0,
        synchronous: Synchronous = "NORMAL",
    ) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        with self._errors("open the store"):
            self._db = open_sqlite(
                self.path, application_id=APPLICATION_ID, schema_version=SCHEMA_VERSION,
                schema=_SCHEMA, what="limbwatch store", create=create, timeout_s=timeout_s,
                synchronous=synchronous,
            )
        self._identity = file_identity(self.path)

    # --- writing ---------------------------------------------------------------------------

    def write_chunks(self, chunks: Sequence[Chunk]) -> None:
        """Store chunks in one transaction, all or none; chunks already stored (same device,
        session, seq) are skipped. ValueError for a malformed chunk (nothing stored)."""
        rows = [chunk_row(chunk) for chunk in chunks]
        if not rows:
            return
        spans: dict[tuple[str, str], float] = {}
        for row in rows:
            leg = (row[3], row[4])
            spans[leg] = max(spans.get(leg, 0.0), row[7] * row[6])
        with self._transaction(f"write {len(rows)} chunks (none was stored)") as db:
            db.executemany(_INSERT_CHUNK, rows)
            db.executemany(_GROW_SPAN, [(*leg, span) for leg, span in spans.items()])

    def write_report(self, subject: str, night_start: float, report_json: str) -> None:
        """Store (or replace) the report of the night starting at `night_start` (Unix s)."""
        with self._transaction("write the report (it was not stored)") as db:
            db.execute(
                """INSERT INTO reports VALUES (?, ?, ?) ON CONFLICT (subject, night_start)
                DO UPDATE SET report = excluded.report""",
                (subject, float(night_start), report_json),
            )

    def write_events(self, events: Sequence[Event]) -> None:
        """Append events, all or none."""
        rows = [
            (e.subject, None if e.side is None else as_side(e.side), float(e.time), e.kind,
             json.dumps(e.detail))
            for e in events
        ]
        with self._transaction(f"write {len(rows)} events (none was stored)") as db:
            db.executemany(
                "INSERT INTO events (subject, side, time, kind, detail) VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    # --- reading ---------------------------------------------------------------------------

    def read_samples(self, subject: str, side: Side, start: float, end: float) -> Samples:
        """All samples of a leg with start <= time < end (Unix s), in time order.

        Times are t0 + k * dt (float64 s), values counts / counts_per_g (float32 g); fs is the
        nominal rate of the chunks read (0.0 when there are none). Consecutive packets of one
        sensor session hold consecutive samples by construction: if clock-alignment error makes
        one start before the previous one ended, it is moved to follow it (by at most that
        error) rather than losing samples. Other chunks of one leg should not overlap; if some
        do (e.g. a sensor session restarted with its clock behind), both are kept, the samples
        sorted by time, and a sample whose time is not strictly after the previous one is
        dropped (the earlier chunk's, in (t0, device, session, seq) order, wins).
        """
        with self._reading("read samples") as db:
            rows = db.execute(_SELECT_SAMPLES, (subject, side, start, end)).fetchall()
        if not rows:
            return Samples(np.empty(0), np.empty((0, 3), dtype=np.float32), 0.0)
        t0s, dts, ns, cpgs, blobs, devices, sessions, seqs = zip(*rows, strict=True)
        dt = np.array(dts, dtype=np.float64)
        n = np.array(ns, dtype=np.int64)
        t0 = _join_consecutive(np.array(t0s, dtype=np.float64), dt, n, devices, sessions, seqs)
        first = np.cumsum(n) - n
        k = np.arange(int(n.sum())) - np.repeat(first, n)
        time = np.repeat(t0, n) + k * np.repeat(dt, n)
        counts = np.frombuffer(b"".join(blobs), dtype="<i2").reshape(-1, 3)
        scale = np.repeat(np.array(cpgs, dtype=np.float32), n)[:, None]
        accel = (counts.astype(np.float32) / scale).astype(np.float32)
        steps = np.diff(time)
        if len(steps) and not (steps > 0).all():
            order = np.argsort(time, kind="stable")
            time, accel = time[order], accel[order]
            keep = np.concatenate(([True], np.diff(time) > 0))
            time, accel = time[keep], accel[keep]
        i0, i1 = np.searchsorted(time, (start, end), side="left")
        return Samples(time[i0:i1], accel[i0:i1], nominal_rate(dt))

    def nights(self, subject: str) -> list[Night]:
        """The subject's nights, oldest first: chunk spans merged unless no leg has data for
        `NIGHT_GAP_S` (4 h); each with the sides that have data in it."""
        with self._reading("list nights") as db:
            rows = db.execute(
                "SELECT t0, t0 + (n - 1) * dt, side = 'left' FROM chunks WHERE subject = ? "
                "ORDER BY t0",
                (subject,),
            ).fetchall()
        if not rows:
            return []
        starts, ends, lefts = (np.array(column) for column in zip(*rows, strict=True))
        spans = split_nights(starts, ends)
        night_of = np.searchsorted([s for s, _ in spans], starts, side="right") - 1
        has = {side: np.zeros(len(spans), dtype=bool) for side in _SIDES}
        has["left"][night_of[lefts == 1]] = True
        has["right"][night_of[lefts == 0]] = True
        return [
            Night(subject, s, e, tuple(side for side in _SIDES if has[side][i]))
            for i, (s, e) in enumerate(spans)
        ]

    def stored_seqs(self, device: str, session: int) -> list[int]:
        """Every chunk seq stored for a device session, ascending (the primary key's order)."""
        with self._reading("read the stored seqs") as db:
            rows = db.execute(
                "SELECT seq FROM chunks WHERE device = ? AND session = ? ORDER BY seq",
                (device, int(session)),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def read_report(self, subject: str, night_start: float) -> str | None:
        with self._reading("read the report") as db:
            row = db.execute(
                "SELECT report FROM reports WHERE subject = ? AND night_start = ?",
                (subject, float(night_start)),
            ).fetchone()
        return None if row is None else str(row[0])

    def read_events(self, subject: str, start: float, end: float) -> list[Event]:
        """The subject's events with start <= time < end (Unix s), in time (then write) order."""
        with self._reading("read events") as db:
            rows = db.execute(
                "SELECT side, time, kind, detail FROM events "
                "WHERE subject = ? AND time >= ? AND time < ? ORDER BY time, id",
                (subject, start, end),
            ).fetchall()
        return [
            Event(subject, None if side is None else as_side(side), time, kind, json.loads(detail))
            for side, time, kind, detail in rows
        ]

    def close(self) -> None:
        with self._lock, self._errors("close the store"):
            self._db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
