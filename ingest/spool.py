"""The durable hand-off between the BLE ingester and the store: an on-disk FIFO of chunks.

The ingester `put`s chunks as packets arrive, all night; `drain` moves them into the store,
waiting (with backoff) while the store is unavailable. Either side may be killed at any time.

Design choices:
- **A separate SQLite file in WAL mode**, not segment files: a `put` is one atomic commit that a
  killed process cannot tear (an unfinished commit is rolled back when the file is next opened),
  `ack` is one DELETE, and restarting is opening the file. Segment files would need their own
  framing, checksums, directory fsyncs and compaction to promise the same. It is a file apart
  from the store so that it keeps accepting data while the store is locked, full or gone.
- **Durability**: `put` and `ack` commit with synchronous=FULL, i.e. the WAL is fsynced before
  they return, so an accepted chunk survives a power loss too, not only a killed process. That
  is one fsync per call: put a packet or a few at a time, not single samples.
- **Rows with typed columns** (the store's chunk columns) rather than an opaque item BLOB: SQLite
  REAL is IEEE float64 and INTEGER int64, so t0, dt, session and seq round-trip exactly, and the
  counts are their little-endian int16 bytes; the file can be inspected with any SQLite tool.
- **Ids from INTEGER PRIMARY KEY AUTOINCREMENT**: they only grow, even after everything was acked
  and across reopenings, so an ack can never delete an item put after the batch it acknowledges.
The freed pages of acked items are reused by later puts: the file keeps its high-water size.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from ingest.aio import first_of
from ingest.metrics import STORE_WRITE
from limbwatch.clockmodel import ClockModel
from limbwatch.errors import BadInput, Damaged, Refused, Unavailable
from limbwatch.store.samples import Chunk, ChunkSink
from limbwatch.store.sqlite import chunk_from_row, chunk_row
from limbwatch.store.sqlite_base import GuardedSqlite

SCHEMA_VERSION = 2  # 2: chunks carry their raw ticks and rate (re-stamping)
APPLICATION_ID = int.from_bytes(b"LWsp", "big")  # PRAGMA application_id of a spool
MAX_RETRY_S = 30.0  # cap of drain's exponential backoff
IDLE_POLL_S = 0.2  # how often drain looks for new chunks when the spool is empty

_SCHEMA = (
    """CREATE TABLE items (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device TEXT NOT NULL,
        session INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        subject TEXT NOT NULL,
        side TEXT NOT NULL,
        t0 REAL NOT NULL,
        dt REAL NOT NULL,
        n INTEGER NOT NULL,
        counts_per_g INTEGER NOT NULL,
        ticks INTEGER,
        rate_hz INTEGER,
        counts BLOB NOT NULL
    )""",
)
_COLUMNS = "device, session, seq, subject, side, t0, dt, n, counts_per_g, ticks, rate_hz, counts"

log = logging.getLogger(__name__)


class SpoolError(Unavailable):
    """The spool file cannot be used (locked, read-only, disk full, deleted): nothing was done."""


class Spool(GuardedSqlite):
    """An append-only on-disk queue of chunks (see the module docstring); thread-safe."""

    label = "spool"
    unavailable = SpoolError

    def __init__(self, path: Path | str, *, timeout_s: float = 5.0) -> None:
        self._open(path, application_id=APPLICATION_ID, schema_version=SCHEMA_VERSION,
                   schema=_SCHEMA, what="limbwatch spool", create=True, timeout_s=timeout_s,
                   synchronous="FULL")

    def put(self, chunks: Sequence[Chunk]) -> None:
        """Append chunks, all or none; on disk (fsynced) when this returns. ValueError for a
        malformed chunk (nothing appended), SpoolError when the file cannot be written."""
        rows = [chunk_row(chunk) for chunk in chunks]
        if not rows:
            return
        with self._transaction(f"append {len(rows)} chunks (none was appended)") as db:
            db.executemany(f"INSERT INTO items ({_COLUMNS}) VALUES ({', '.join('?' * 12)})", rows)

    def peek(self, limit: int) -> list[tuple[int, Chunk]]:
        """Up to `limit` of the oldest chunks not acked, oldest first, with their ids."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        with self._reading("read chunks") as db:
            rows = db.execute(
                f"SELECT id, {_COLUMNS} FROM items ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [(row[0], chunk_from_row(row[1:])) for row in rows]

    def ack(self, upto_id: int) -> None:
        """Forget every chunk with id <= `upto_id` (they are safely elsewhere); fsynced."""
        with self._transaction("acknowledge chunks (none was removed)") as db:
            db.execute("DELETE FROM items WHERE id <= ?", (int(upto_id),))

    def seqs(self, device: str, session: int) -> list[int]:
        """Seqs of a device session's chunks waiting here, ascending."""
        with self._reading("read the waiting seqs") as db:
            rows = db.execute(
                "SELECT seq FROM items WHERE device = ? AND session = ? ORDER BY seq",
                (device, int(session)),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def __len__(self) -> int:
        with self._reading("count chunks") as db:
            return int(db.execute("SELECT count(*) FROM items").fetchone()[0])

    def bytes_on_disk(self) -> int:
        """Size of the spool's files (database, WAL, shared memory), bytes."""
        files = (self.path, *(self.path.with_name(self.path.name + s) for s in ("-wal", "-shm")))
        return sum(f.stat().st_size for f in files if f.exists())


class PendingModels:
    """The newest clock model of each sensor session, not yet in the store (latest wins).

    `drain` writes them before each batch of chunks it peeked, so a chunk never reaches the
    store before the model it was stamped with. Used on the event loop only."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, int], ClockModel] = {}

    def put(self, device: str, session: int, model: ClockModel) -> None:
        self._models[(device, session)] = model

    def take(self) -> dict[tuple[str, int], ClockModel]:
        taken, self._models = self._models, {}
        return taken

    def give_back(self, taken: dict[tuple[str, int], ClockModel]) -> None:
        """Models a failed write took: pending again unless a newer one came meanwhile."""
        for key, model in taken.items():
            self._models.setdefault(key, model)


def _store_batch(store: ChunkSink, models: dict[tuple[str, int], ClockModel],
                 chunks: list[Chunk]) -> None:
    if models:
        store.put_clock_models(models)
    if chunks:
        store.write_chunks(chunks)


async def drain(
    spool: Spool,
    store: ChunkSink,
    *,
    models: PendingModels | None = None,
    batch: int = 500,
    retry_s: float = 1.0,
    stop: asyncio.Event,
) -> None:
    """Move chunks from `spool` to `store`, oldest first, until `stop` is set.

    Each round peeks at most `batch` chunks, writes the pending clock `models` and then the
    chunks, then acks the chunks, each step in a worker thread (the spool commits with an
    fsync). While the store or the spool fails (`Unavailable`: locked, full, gone, a server
    down; `Damaged`; `Refused`: a wrong token) the same batch is retried after `retry_s`,
    doubling up to `MAX_RETRY_S` (30 s). Chunks the store refuses as bad data (`BadInput`, e.g.
    an InfluxDB server's HTTP 400: the store has written the others) are logged and dropped,
    never retried forever. Hence:
    - nothing is lost: a chunk leaves the spool only after the store committed it;
    - nothing is reordered: no batch is written before the previous one was stored;
    - nothing is duplicated: if the process dies between write and ack, the batch is written
      again on restart and the store skips the chunks it has (same device, session, seq);
    - memory holds at most one batch.
    If `stop` is set during a write, the write is finished and acked before returning.
    Power loss: the store's commit must be durable before the ack, so give the ingester a
    `SqliteSampleStore(..., synchronous="FULL")`; with "NORMAL" its last commits may roll back after
    the spool forgot them.
    """
    delay = retry_s
    while not stop.is_set():
        pending: dict[tuple[str, int], ClockModel] = {}
        try:
            items = await asyncio.to_thread(spool.peek, batch)
            pending = {} if models is None else models.take()  # after the peek: PendingModels
            if not items and not pending:
                await first_of(stop, timeout=IDLE_POLL_S)
                continue
            started = time.perf_counter()
            outcome = "unavailable"
            try:
                await asyncio.to_thread(_store_batch, store, pending,
                                        [chunk for _, chunk in items])
                outcome = "ok"
            except BadInput as exc:  # the store refused some as bad data: the rest is stored
                outcome = "refused"
                log.error("%s; those chunks are dropped from the spool (sending them again "
                          "cannot help)", exc)
            finally:
                STORE_WRITE.labels(outcome).observe(time.perf_counter() - started)
            if items:
                await asyncio.to_thread(spool.ack, items[-1][0])
        except (Unavailable, Damaged, Refused) as exc:
            if models is not None:
                models.give_back(pending)
            log.warning("%s; the chunks wait in the spool, retrying in %.1f s", exc, delay)
            await first_of(stop, timeout=delay)
            delay = min(2 * delay, MAX_RETRY_S)
            continue
        delay = retry_s
