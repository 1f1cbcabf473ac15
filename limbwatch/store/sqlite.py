"""`SqliteSampleStore`: the embedded `SampleStore`, in the store's SQLite file (stdlib sqlite3).

Layout (measured in `../shared/notes/storage.md`): a row per chunk (one BLE packet, or more) with
its int16 counts as a little-endian BLOB, keyed (device, session, seq), so that rewriting a chunk
is a no-op; an index on (subject, side, t0) serves time-range reads. WAL
journal, synchronous=NORMAL by default: a commit survives the process being killed, but the last
commits (up to the next checkpoint) may roll back on power loss or an OS crash; pass
synchronous="FULL" to fsync every commit. Schema version in `PRAGMA user_version`, and
`PRAGMA application_id` marks the file as a limbwatch store (`limbwatch.store.schema`).

Every SQLite failure (locked, read-only, disk full, I/O error, file deleted while open, closed
store) raises `StoreUnavailable` with a one-line message saying what failed and what to do; a
write that fails stores nothing. A file that is not a limbwatch store raises `NotAStore`.
The store may be shared between threads (calls are serialised by a lock).

Re-stamping: a chunk keeps its device ticks and nominal rate beside the t0 and dt stamped live,
and `put_clock_models` stores the newest clock model of each sensor session
(`limbwatch.clockmodel`); reads map ticks to UTC with it when there is one, so the night's final
fit corrects what was stamped live, and fall back to t0 and dt otherwise (or for a model that
does not parse). Time-range reads look `RESTAMP_MARGIN_S` further by stored t0 for that.

Integrity: every row carries a CRC-32 of its fields (`row_crc`), checked on every read; a row
that fails it is logged, counted in `Samples.damaged` and skipped, never returned as data.
A chunk written under a (device, session, seq) already stored with other contents (same
subject, leg, scale and counts: the times may differ, they are estimates) is not dropped: it goes
to `chunk_conflicts`, is logged, and `conflicts()` lists it; the same contents again are a no-op,
and a good copy replaces a stored row that fails its CRC.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import struct
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from limbwatch.clockmodel import ClockModel
from limbwatch.recording import Side, as_side
from limbwatch.store import schema
from limbwatch.store.assemble import restamped, samples_from_rows
from limbwatch.store.samples import Chunk, Extent, Samples, StoreUnavailable
from limbwatch.store.sqlite_base import GuardedSqlite, Synchronous

log = logging.getLogger(__name__)

_SIDES: tuple[Side, Side] = ("left", "right")

# How far (s) a clock model may move a chunk from the t0 stamped live: reads of [start, end)
# look this much wider by stored t0, then cut by the re-stamped times. Live stamps that were
# further off than this would be cut at a window's edge.
RESTAMP_MARGIN_S = 600.0

_COLUMNS = "device, session, seq, subject, side, t0, dt, n, counts_per_g, ticks, rate_hz, counts"
_INSERT_CHUNK = f"INSERT OR IGNORE INTO chunks VALUES ({', '.join('?' * 13)})"
_SELECT_CHUNK = f"SELECT {_COLUMNS}, crc FROM chunks WHERE device = ? AND session = ? AND seq = ?"
_REPLACE_CHUNK = f"INSERT OR REPLACE INTO chunks VALUES ({', '.join('?' * 13)})"
_INSERT_CONFLICT = f"INSERT OR IGNORE INTO chunk_conflicts VALUES ({', '.join('?' * 14)})"
_GROW_SPAN = """INSERT INTO leg_spans VALUES (?, ?, ?)
    ON CONFLICT (subject, side) DO UPDATE SET max_span = max(max_span, excluded.max_span)"""
_SELECT_SAMPLES = f"""SELECT {_COLUMNS}, crc FROM chunks
    WHERE subject = ?1 AND side = ?2 AND t0 < ?4 + ?5
      AND t0 >= ?3 - ?5 - (SELECT max_span FROM leg_spans WHERE subject = ?1 AND side = ?2)
    ORDER BY t0, device, session, seq"""
_PUT_MODEL = """INSERT INTO clock_models VALUES (?, ?, ?, ?) ON CONFLICT (device, session)
    DO UPDATE SET model = excluded.model, updated = excluded.updated"""
_SELECT_MODEL = "SELECT model FROM clock_models WHERE device = ? AND session = ?"
_SELECT_DEVICE = f"SELECT {_COLUMNS}, crc FROM chunks WHERE device = ? ORDER BY session, seq"

# (device, session, seq, subject, side, t0, dt, n, counts_per_g, ticks, rate_hz, counts)
ChunkRow = tuple[str, int, int, str, str, float, float, int, int, int | None, int | None, bytes]
# session, seq, t0, dt, n, counts_per_g, (has ticks, ticks), (has rate, rate)
_CRC_NUMBERS = struct.Struct("<qqddqq?q?q")


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
    """A checked chunk as plain values (`ChunkRow`; counts as little-endian int16 bytes)."""
    check_chunk(chunk)
    blob = np.ascontiguousarray(chunk.counts, dtype="<i2").tobytes()
    return (
        str(chunk.device), int(chunk.session), int(chunk.seq), str(chunk.subject), chunk.side,
        float(chunk.t0), float(chunk.dt), len(chunk.counts), int(chunk.counts_per_g),
        None if chunk.ticks is None else int(chunk.ticks),
        None if chunk.rate_hz is None else int(chunk.rate_hz), blob,
    )


def row_crc(row: ChunkRow) -> int:
    """CRC-32 of every field of a chunk row: the strings length-prefixed, the numbers as stored
    (int64, float64), then the counts. Stored beside the row, checked on every read."""
    device, session, seq, subject, side, t0, dt, n, counts_per_g, ticks, rate, blob = row
    text = "".join(f"{len(x)}:{x}" for x in (device, subject, side)).encode()
    head = text + _CRC_NUMBERS.pack(session, seq, t0, dt, n, counts_per_g, ticks is not None,
                                    ticks or 0, rate is not None, rate or 0)
    return zlib.crc32(blob, zlib.crc32(head))


def chunk_from_row(row: ChunkRow) -> Chunk:
    device, session, seq, subject, side, t0, dt, _, counts_per_g, ticks, rate, blob = row
    return Chunk(subject, as_side(side), device, session, seq, t0, dt, counts_from_blob(blob),
                 counts_per_g, ticks, rate)


def _same_contents(a: ChunkRow, b: ChunkRow) -> bool:
    """Whether two rows of one key hold the same samples for the same leg (times may differ:
    they are estimates)."""
    return (a[3], a[4], *a[7:]) == (b[3], b[4], *b[7:])


def counts_from_blob(blob: bytes) -> np.ndarray:
    """Native int16 (n, 3) counts from a little-endian BLOB (a writable copy)."""
    return np.frombuffer(blob, dtype="<i2").reshape(-1, 3).astype(np.int16)


def _stored_models(db: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]
                   ) -> dict[tuple[str, int], ClockModel]:
    """The clock models stored for the sessions of chunk rows; one that does not parse is logged
    and left out (its chunks keep the times stamped live)."""
    models = {}
    for device, session in {(r[0], r[1]) for r in rows}:
        found = db.execute(_SELECT_MODEL, (device, session)).fetchone()
        if found is None:
            continue
        try:
            models[(device, session)] = ClockModel.from_json(found[0])
        except ValueError as exc:
            log.warning("clock model of %s/%s is damaged, its chunks keep their live times: %s",
                        device, session, exc)
    return models


def _intact(rows: list[tuple[Any, ...]], what: str) -> tuple[list[tuple[Any, ...]], int]:
    """The stored rows (`ChunkRow` + crc) that pass their checksum, and how many did not (those
    are logged)."""
    ok = [row_crc(r[:12]) == r[12] for r in rows]
    good = [r for r, passed in zip(rows, ok, strict=True) if passed]
    damaged = len(rows) - len(good)
    if damaged:
        keys = ["/".join(map(str, r[:3])) for r, passed in zip(rows, ok, strict=True)
                if not passed]
        log.warning("%s: skipped %d damaged chunks (they fail their checksum: restore the store "
                    "from a backup or collect them again): %s", what, damaged,
                    ", ".join(keys[:20]) + (" ..." if damaged > 20 else ""))
    return good, damaged


class SqliteSampleStore(GuardedSqlite):
    """The samples of a limbwatch store file (see the module docstring).

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
        self._open(path, application_id=schema.APPLICATION_ID,
                   schema_version=schema.SCHEMA_VERSION, schema=schema.TABLES, what=schema.WHAT,
                   upgrades=schema.UPGRADES,
                   create=create, timeout_s=timeout_s, synchronous=synchronous)

    # --- writing ---------------------------------------------------------------------------

    def write_chunks(self, chunks: Sequence[Chunk]) -> None:
        """Store chunks in one transaction, all or none; chunks already stored (same device,
        session, seq and contents) are skipped, other contents under a stored key are kept
        apart as conflicts (see the module docstring). ValueError for a malformed chunk
        (nothing stored)."""
        rows = [chunk_row(chunk) for chunk in chunks]
        if not rows:
            return
        checked = [(*row, row_crc(row)) for row in rows]
        spans: dict[tuple[str, str], float] = {}
        for row in rows:
            leg = (row[3], row[4])
            spans[leg] = max(spans.get(leg, 0.0), row[7] * row[6])
        with self._transaction(f"write {len(rows)} chunks (none was stored)") as db:
            before = db.total_changes
            db.executemany(_INSERT_CHUNK, checked)
            if db.total_changes - before < len(rows):  # some keys were there already
                self._settle_collisions(db, checked)
            db.executemany(_GROW_SPAN, [(*leg, span) for leg, span in spans.items()])

    def _settle_collisions(self, db: sqlite3.Connection,
                           checked: list[tuple[*ChunkRow, int]]) -> None:
        """For rows whose key was stored already: nothing if the contents are the same, repair a
        stored row that fails its CRC, else keep the newcomer apart as a conflict."""
        now = time.time()
        for new in checked:
            stored = db.execute(_SELECT_CHUNK, new[:3]).fetchone()
            if tuple(stored) == new:
                continue  # just inserted, or written before exactly so
            key = "/".join(map(str, new[:3]))
            old_row: ChunkRow = tuple(stored[:12])
            if row_crc(old_row) != stored[12]:
                log.warning("chunk %s: replaced a stored copy that failed its checksum", key)
                db.execute(_REPLACE_CHUNK, new)
            elif not _same_contents(old_row, new[:12]):
                log.warning("chunk %s: arrived with other contents than the stored one; kept "
                            "apart in chunk_conflicts (a sensor reused its seqs?)", key)
                db.execute(_INSERT_CONFLICT, (*new, now))

    def conflicts(self) -> list[Chunk]:
        """The chunks kept apart because their key was stored with other contents."""
        with self._reading("read the conflicting chunks") as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM chunk_conflicts "
                              "ORDER BY device, session, seq, received").fetchall()
        return [chunk_from_row(row) for row in rows]

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
        dropped (the earlier chunk's, in (t0, device, session, seq) order, wins). A chunk that
        fails its checksum is skipped and counted in `damaged`.
        """
        with self._reading("read samples") as db:
            rows = db.execute(_SELECT_SAMPLES,
                              (subject, side, start, end, RESTAMP_MARGIN_S)).fetchall()
            models = _stored_models(db, rows)
        good, damaged = _intact(rows, f"{subject} {side}")
        return samples_from_rows(good, models, start, end, damaged)

    def read_chunks(self, device: str) -> list[Chunk]:
        """Every chunk of a sensor, in (session, seq) order, timed like `read_samples` (from
        the session's clock model when there is one); damaged ones are logged and skipped. For
        checks and exports that need the packets themselves."""
        with self._reading("read a sensor's chunks") as db:
            rows = db.execute(_SELECT_DEVICE, (device,)).fetchall()
            models = _stored_models(db, rows)
        good, _ = _intact(rows, f"sensor {device}")
        t0, dt = restamped(good, models)
        return [replace(chunk_from_row(r[:12]), t0=float(a), dt=float(b))
                for r, a, b in zip(good, t0, dt, strict=True)]

    def put_clock_models(self, models: Mapping[tuple[str, int], ClockModel]) -> None:
        """Store the newest clock model of each (device, session), replacing the previous one:
        reads re-stamp that session's chunks with it."""
        now = time.time()
        with self._transaction(f"store {len(models)} clock models (none was stored)") as db:
            db.executemany(_PUT_MODEL, [(device, int(session), model.to_json(), now)
                                        for (device, session), model in models.items()])

    def clock_model(self, device: str, session: int) -> ClockModel | None:
        """The clock model stored for a device session, None if there is none (or it is
        damaged)."""
        with self._reading("read a clock model") as db:
            return _stored_models(db, [(device, int(session))]).get((device, int(session)))

    def extent(self, subject: str, start: float = -math.inf,
               end: float = math.inf) -> Extent | None:
        """The subject's chunks with start <= t0 < end (Unix s): first and last sample time and
        the legs seen; None when there are none."""
        query = ("SELECT side, min(t0), max(t0 + (n - 1) * dt), count(*) FROM chunks "
                 "WHERE subject = ? AND side = ? AND t0 >= ? AND t0 < ?")
        with self._reading("find the data's extent") as db:
            rows = [db.execute(query, (subject, side, start, end)).fetchone() for side in _SIDES]
        found = [row for row in rows if row[0] is not None]
        if not found:
            return None
        return Extent(min(row[1] for row in found), max(row[2] for row in found),
                      tuple(as_side(row[0]) for row in found), sum(row[3] for row in found))

    def devices(self, subject: str | None = None) -> list[str]:
        """The sensors with chunks stored (of `subject`, or of everyone), sorted."""
        args: tuple[str, ...] = ()
        query = "SELECT DISTINCT device FROM chunks ORDER BY device"
        if subject is not None:
            query, args = ("SELECT DISTINCT device FROM chunks WHERE subject = ? ORDER BY "
                           "device", (subject,))
        with self._reading("list the sensors") as db:
            return [str(r[0]) for r in db.execute(query, args).fetchall()]

    def stored_seqs(self, device: str, session: int) -> list[int]:
        """Every chunk seq stored for a device session, ascending (the primary key's order)."""
        with self._reading("read the stored seqs") as db:
            rows = db.execute(
                "SELECT seq FROM chunks WHERE device = ? AND session = ? ORDER BY seq",
                (device, int(session)),
            ).fetchall()
        return [int(r[0]) for r in rows]
