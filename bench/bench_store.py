"""Storing a night: SqliteSampleStore, the Spool, and a row-per-sample baseline, in one run.

A synthetic night (default 10 h, two legs at 50 Hz: 1.8 M samples per leg) in chunks of 39
samples (one BLE packet at ATT MTU 247), written into a fresh file and read back, `--repeat`
times; prints median wall seconds and MB on disk (database and WAL) for:
- SqliteSampleStore, synchronous=NORMAL and FULL, written in batches of 500 chunks (as drain does),
  read as one `read_samples` per leg;
- the Spool: the night put in batches of `--put-batch` chunks, one single-chunk put (fsynced:
  the latency a live packet sees), and drain moving the night into a store;
- the baseline: the same samples as a row per sample (side, time, x, y, z) in a plain SQLite
  table with an index on (side, time), WAL and synchronous=NORMAL, written in the same batches
  and read back into numpy arrays; with the ratio baseline / SqliteSampleStore.

    python bench/bench_store.py [--hours 10] [--fs 50] [--repeat 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.spool import Spool, drain
from limbwatch.recording import Side
from limbwatch.store.samples import Chunk, chunk_times
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_base import Synchronous

T0 = 1795203000.0
PER_CHUNK = 39
BATCH = 500
SIDES: tuple[Side, Side] = ("left", "right")


@dataclass(frozen=True, slots=True)
class Figures:
    """Median wall seconds of a write and of a read, and MB on disk after the write."""

    write_s: float
    read_s: float
    mb: float


def synthetic_night(hours: float, fs: float) -> list[Chunk]:
    """Both legs' chunks: gravity plus noise, in int16 counts (4096 per g)."""
    rng = np.random.default_rng(1)
    n_chunks = round(hours * 3600 * fs / PER_CHUNK)
    chunks = []
    for side in SIDES:
        g = np.array([0.0, 0.6, 0.8]) * 4096
        counts = (g + rng.normal(0, 12, (n_chunks * PER_CHUNK, 3))).astype(np.int16)
        chunks += [
            Chunk("kid", side, f"LW-{side}", 1, i, T0 + i * PER_CHUNK / fs, 1 / fs,
                  counts[i * PER_CHUNK : (i + 1) * PER_CHUNK], 4096)
            for i in range(n_chunks)
        ]
    return chunks


def batches(items: list[Chunk], size: int) -> Iterator[list[Chunk]]:
    for k in range(0, len(items), size):
        yield items[k : k + size]


def mb_on_disk(path: Path) -> float:
    files = (path, path.with_name(path.name + "-wal"))
    return sum(f.stat().st_size for f in files if f.exists()) / 1e6


def median_s(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_store(chunks: list[Chunk], tmp: Path, repeat: int, sync: Synchronous) -> Figures:
    """SqliteSampleStore: write the night into fresh files, read both legs from the last one."""
    runs = iter(range(repeat))

    def write() -> None:
        with SqliteSampleStore(tmp / f"store-{sync}-{next(runs)}.db", synchronous=sync) as store:
            for batch in batches(chunks, BATCH):
                store.write_chunks(batch)

    write_s = median_s(write, repeat)
    path = tmp / f"store-{sync}-{repeat - 1}.db"
    with SqliteSampleStore(path) as store:
        mb = mb_on_disk(path)
        read_s = median_s(lambda: [store.read_samples("kid", s, 0, 2e9) for s in SIDES], repeat)
    return Figures(write_s, read_s, mb)


def bench_spool(chunks: list[Chunk], tmp: Path, repeat: int, put_batch: int) -> Figures:
    """Spool: put the night (write), drain it into a fresh store (read); MB of the full spool."""
    figures = []
    for run in range(repeat):
        path = tmp / f"spool-{run}.db"
        with Spool(path) as spool:
            t = time.perf_counter()
            for batch in batches(chunks, put_batch):
                spool.put(batch)
            put_s = time.perf_counter() - t
            mb = mb_on_disk(path)
            with SqliteSampleStore(tmp / f"drained-{run}.db") as store:
                t = time.perf_counter()
                asyncio.run(drain_all(spool, store))
                drain_s = time.perf_counter() - t
        figures.append(Figures(put_s, drain_s, mb))
    return Figures(statistics.median(f.write_s for f in figures),
                   statistics.median(f.read_s for f in figures), figures[-1].mb)


async def drain_all(spool: Spool, store: SqliteSampleStore) -> None:
    """drain until the spool is empty."""
    stop = asyncio.Event()
    task = asyncio.create_task(drain(spool, store, stop=stop))
    while len(spool):
        await asyncio.sleep(0.01)
    stop.set()
    await task


def single_put_ms(chunks: list[Chunk], tmp: Path, n: int = 200) -> float:
    """Median ms of putting one chunk (one fsynced commit)."""
    with Spool(tmp / "single.db") as spool:
        times = []
        for chunk in chunks[:n]:
            t = time.perf_counter()
            spool.put([chunk])
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def bench_rows(chunks: list[Chunk], tmp: Path, repeat: int) -> Figures:
    """Baseline: a row per sample (side, time, x, y, z), WAL, synchronous=NORMAL."""
    runs = iter(range(repeat))

    def write() -> None:
        with connect(tmp / f"rows-{next(runs)}.db") as db:
            db.execute("CREATE TABLE samples (side TEXT, t REAL, x INTEGER, y INTEGER, z INTEGER)")
            db.execute("CREATE INDEX samples_by_time ON samples (side, t)")
            for batch in batches(chunks, BATCH):
                db.execute("BEGIN")
                db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?)", sample_rows(batch))
                db.execute("COMMIT")

    def read() -> None:
        with connect(path) as db:
            for side in SIDES:
                rows = db.execute(
                    "SELECT t, x, y, z FROM samples WHERE side = ? AND t >= 0 AND t < 2e9 "
                    "ORDER BY t", (side,),
                ).fetchall()
                table = np.array(rows, dtype=np.float64)
                _ = table[:, 0], (table[:, 1:] / 4096).astype(np.float32)

    write_s = median_s(write, repeat)
    path = tmp / f"rows-{repeat - 1}.db"
    return Figures(write_s, median_s(read, repeat), mb_on_disk(path))


def sample_rows(chunks: list[Chunk]) -> Iterator[tuple[str, float, int, int, int]]:
    for c in chunks:
        for t, (x, y, z) in zip(chunk_times(c).tolist(), c.counts.tolist(), strict=True):
            yield c.side, t, x, y, z


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """An autocommit SQLite connection in WAL mode, synchronous=NORMAL, closed on exit."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        yield db
    finally:
        db.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hours", type=float, default=10.0)
    ap.add_argument("--fs", type=float, default=50.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--put-batch", type=int, default=100, help="chunks per Spool.put")
    ap.add_argument("--dir", type=Path, help="where to write the files (default: a temp dir)")
    args = ap.parse_args()
    chunks = synthetic_night(args.hours, args.fs)
    n = sum(len(c.counts) for c in chunks)
    print(f"night: {args.hours:g} h, 2 legs at {args.fs:g} Hz, {n / 1e6:.2f} M samples in "
          f"{len(chunks):,} chunks of {PER_CHUNK}; median of {args.repeat}")
    with tempfile.TemporaryDirectory(dir=args.dir) as name:
        tmp = Path(name)
        results = {
            "store, synchronous=NORMAL": bench_store(chunks, tmp, args.repeat, "NORMAL"),
            "store, synchronous=FULL": bench_store(chunks, tmp, args.repeat, "FULL"),
            f"Spool (put by {args.put_batch}; read = drain)":
                bench_spool(chunks, tmp, args.repeat, args.put_batch),
            "row per sample (baseline)": bench_rows(chunks, tmp, args.repeat),
        }
        put_ms = single_put_ms(chunks, tmp)
    print(f"{'':<40} {'write s':>8} {'read s':>8} {'MB':>7}")
    for label, f in results.items():
        print(f"{label:<40} {f.write_s:>8.3f} {f.read_s:>8.3f} {f.mb:>7.1f}")
    print(f"Spool.put of one chunk (fsynced): {put_ms:.2f} ms median")
    store, rows = results["store, synchronous=NORMAL"], results["row per sample (baseline)"]
    print(f"ratio baseline / store: write {rows.write_s / store.write_s:.1f}x, "
          f"read {rows.read_s / store.read_s:.1f}x, disk {rows.mb / store.mb:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
