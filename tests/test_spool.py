"""Spool and drain on real SQLite files: FIFO order, exact round trips, restarts, store outages.

The store outage is real (a second connection holds the store's write lock for about a second)
and the crash is real (a child process is SIGKILLed after putting). `SpyStore` is a real
SqliteSampleStore that also records what each write_chunks call was given, to check the order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.spool import PendingModels, Spool, drain
from limbwatch.clockmodel import ClockModel, ClockSegment
from limbwatch.store.samples import Chunk, chunk_times, counts_to_g
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_base import NotAStore

T0 = 1795203000.0


def make_chunks(n: int, *, first_seq: int = 0, per_chunk: int = 13) -> list[Chunk]:
    """`n` consecutive chunks of one sensor with awkward values (full int16 range, odd floats)."""
    rng = np.random.default_rng(first_seq)
    dt = 1 / 50.3
    return [
        Chunk("kid", "left", "LW-0001", 2**40, seq, T0 + seq * per_chunk * dt + 1e-7, dt,
              rng.integers(-32768, 32768, (per_chunk, 3)).astype(np.int16), 4096,
              ticks=2**33 + seq * 9999, rate_hz=50)
        for seq in range(first_seq, first_seq + n)
    ]


def same(a: Chunk, b: Chunk) -> bool:
    """Field by field, counts by value and dtype."""
    plain = [f.name for f in dataclasses.fields(Chunk) if f.name != "counts"]
    return (
        all(getattr(a, name) == getattr(b, name) for name in plain)
        and b.counts.dtype == np.int16
        and np.array_equal(a.counts, b.counts)
    )


def n_rows(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT count(*) FROM chunks").fetchone()[0])


def assert_stored_once(store: SqliteSampleStore, chunks: Sequence[Chunk]) -> None:
    assert n_rows(store.path) == len(chunks)
    got = store.read_samples("kid", "left", 0.0, 2e9)
    assert np.array_equal(got.time, np.concatenate([chunk_times(c) for c in chunks]))
    assert np.array_equal(got.accel, np.concatenate([counts_to_g(c.counts, 4096) for c in chunks]))


class SpyStore(SqliteSampleStore):
    """A real SqliteSampleStore that records the seqs of every write_chunks call and its outcome,
    and the order of the successful chunk and clock model writes."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, timeout_s=0.05)
        self.calls: list[tuple[list[int], bool]] = []
        self.written: list[str] = []

    def write_chunks(self, chunks: Sequence[Chunk]) -> None:
        seqs = [c.seq for c in chunks]
        try:
            super().write_chunks(chunks)
        except Exception:
            self.calls.append((seqs, False))
            raise
        self.calls.append((seqs, True))
        self.written.append("chunks")

    def put_clock_models(self, models: Mapping[tuple[str, int], ClockModel]) -> None:
        super().put_clock_models(models)
        self.written.append("models")


def test_put_peek_ack_in_order_and_across_reopening(tmp_path: Path) -> None:
    chunks = make_chunks(25)
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        for k in range(0, 25, 5):
            spool.put(chunks[k : k + 5])
        items = spool.peek(100)
        ids = [i for i, _ in items]
        assert ids == sorted(ids) and len(set(ids)) == 25 and len(spool) == 25
        assert all(same(a, b) for a, (_, b) in zip(chunks, items, strict=True))
        assert [c.seq for _, c in spool.peek(3)] == [0, 1, 2]
        spool.ack(ids[9])
        assert len(spool) == 15 and spool.bytes_on_disk() > 0
    with Spool(path) as spool:
        items = spool.peek(100)
        assert [i for i, _ in items] == ids[10:]
        c = chunks[10]
        assert spool.seqs(c.device, c.session) == [x.seq for x in chunks[10:]]
        assert spool.seqs(c.device, c.session + 1) == []
        assert all(same(a, b) for a, (_, b) in zip(chunks[10:], items, strict=True))
        spool.ack(ids[-1])
        assert len(spool) == 0 and spool.peek(10) == []
        spool.put(make_chunks(1, first_seq=99))
        ((new_id, _),) = spool.peek(10)
        assert new_id > ids[-1]  # ids are never reused, even after everything was acked


def test_malformed_put_appends_nothing(tmp_path: Path) -> None:
    good = make_chunks(3)
    bad = dataclasses.replace(good[0], seq=7, dt=0.0)
    with Spool(tmp_path / "spool.db") as spool:
        with pytest.raises(ValueError, match="dt"):
            spool.put([*good, bad])
        assert len(spool) == 0


def test_a_store_file_is_not_a_spool(tmp_path: Path) -> None:
    SqliteSampleStore(tmp_path / "store.db").close()
    with pytest.raises(NotAStore, match="not a limbwatch spool"):
        Spool(tmp_path / "store.db")


_CHILD = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from test_spool import make_chunks
from ingest.spool import Spool
spool = Spool({path!r})
chunks = make_chunks(40)
for k in range(0, 40, 8):
    spool.put(chunks[k : k + 8])
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_what_was_put_survives_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    code = _CHILD.format(tests=str(Path(__file__).parent), path=str(path))
    root = str(Path(__file__).parent.parent)
    child = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                           env={"PYTHONPATH": root}, timeout=60, check=False)
    assert child.returncode == -9, child.stderr
    with Spool(path) as spool:
        items = spool.peek(100)
    assert len(items) == 40 and all(
        same(a, b) for a, (_, b) in zip(make_chunks(40), items, strict=True)
    )


async def _drain_until_empty(spool: Spool, store: SqliteSampleStore, *, batch: int,
                             models: PendingModels | None = None) -> None:
    """Run drain until the spool is empty (10 s at most), then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(drain(spool, store, models=models, batch=batch, retry_s=0.05,
                                     stop=stop))
    deadline = time.monotonic() + 10
    while len(spool) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)


def test_drain_waits_out_a_locked_store_and_loses_nothing(tmp_path: Path) -> None:
    chunks = make_chunks(60)
    spool = Spool(tmp_path / "spool.db")
    store = SpyStore(tmp_path / "store.db")
    other = sqlite3.connect(store.path, isolation_level=None)

    async def scenario() -> None:
        spool.put(chunks[:30])
        other.execute("BEGIN EXCLUSIVE")  # the store is unavailable...
        asyncio.get_running_loop().call_later(1.0, other.execute, "ROLLBACK")  # ...for 1 s
        draining = asyncio.create_task(_drain_until_empty(spool, store, batch=7))
        for k in range(30, 60, 6):  # the ingester goes on putting meanwhile
            await asyncio.sleep(0.1)
            spool.put(chunks[k : k + 6])
        await draining

    try:
        asyncio.run(scenario())
        assert len(spool) == 0
        assert_stored_once(store, chunks)
        failed = [seqs for seqs, ok in store.calls if not ok]
        written = [s for seqs, ok in store.calls if ok for s in seqs]
        assert len(failed) >= 3 and failed[0] == list(range(7))  # it retried the same batch
        assert written == list(range(60))  # in order, each chunk once
        assert all(len(seqs) <= 7 for seqs, _ in store.calls)
    finally:
        other.close()
        spool.close()
        store.close()


def test_killed_between_write_and_ack_replays_without_duplicates(tmp_path: Path) -> None:
    chunks = make_chunks(30)
    with Spool(tmp_path / "spool.db") as spool, SqliteSampleStore(tmp_path / "store.db") as store:
        spool.put(chunks)
        store.write_chunks([c for _, c in spool.peek(20)])  # ...and dies before the ack
    with Spool(tmp_path / "spool.db") as spool, SqliteSampleStore(tmp_path / "store.db") as store:
        assert len(spool) == 30
        asyncio.run(_drain_until_empty(spool, store, batch=8))
        assert len(spool) == 0
        assert_stored_once(store, chunks)


def test_drain_stops_promptly_when_idle(tmp_path: Path) -> None:
    async def scenario(spool: Spool, store: SqliteSampleStore) -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(drain(spool, store, stop=stop))
        await asyncio.sleep(0.05)
        start = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 5)
        return time.monotonic() - start

    with Spool(tmp_path / "spool.db") as spool, SqliteSampleStore(tmp_path / "store.db") as store:
        assert asyncio.run(scenario(spool, store)) < 0.1


# Operations: ("put", k chunks), ("ack", index into the pending items), ("reopen", 0).
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 4)),
        st.tuples(st.just("ack"), st.integers(-1, 8)),
        st.tuples(st.just("reopen"), st.just(0)),
    ),
    max_size=15,
)


@settings(max_examples=40, deadline=None)
@given(_OPS)
def test_any_puts_and_acks_keep_fifo_order(ops: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spool.db"
        spool = Spool(path)
        pending: list[tuple[int, int]] = []  # the model: (id, seq) not acked, oldest first
        last_id, next_seq = 0, 0
        try:
            for op, arg in ops:
                if op == "put":
                    spool.put(make_chunks(arg, first_seq=next_seq, per_chunk=2))
                    new = spool.peek(1000)[len(pending):]
                    assert [c.seq for _, c in new] == list(range(next_seq, next_seq + arg))
                    assert all(i > last_id for i, _ in new)
                    pending += [(i, c.seq) for i, c in new]
                    last_id = max([last_id, *(i for i, _ in new)])
                    next_seq += arg
                elif op == "ack" and pending:
                    upto = pending[min(arg, len(pending) - 1)][0] if arg >= 0 else 0
                    spool.ack(upto)
                    pending = [(i, s) for i, s in pending if i > upto]
                elif op == "reopen":
                    spool.close()
                    spool = Spool(path)
                assert [(i, c.seq) for i, c in spool.peek(1000)] == pending
                assert len(spool) == len(pending)
        finally:
            spool.close()


def test_drain_writes_the_newest_clock_model_before_the_chunks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    chunks = make_chunks(30)
    spool = Spool(tmp_path / "spool.db")
    store = SpyStore(tmp_path / "store.db")
    models = PendingModels()
    first = ClockModel((ClockSegment(0, T0 - 2**33 / 32768, 1 / 32768),))
    newest = ClockModel((ClockSegment(0, T0 - 2**33 / 32768 + 0.5, 1 / 32768),))
    other = sqlite3.connect(store.path, isolation_level=None)

    async def scenario() -> None:
        models.put("LW-0001", 2**40, first)
        spool.put(chunks)
        other.execute("BEGIN EXCLUSIVE")  # the store is down: the models wait too...
        asyncio.get_running_loop().call_later(0.5, other.execute, "ROLLBACK")
        draining = asyncio.create_task(_drain_until_empty(spool, store, batch=100, models=models))
        await asyncio.sleep(0.2)
        models.put("LW-0001", 2**40, newest)  # ...and a refit meanwhile replaces the first
        await draining

    try:
        asyncio.run(scenario())
        assert store.clock_model("LW-0001", 2**40) == newest
        assert "cannot store 1 clock models" in caplog.text  # the outage happened
        assert store.written == ["models", "chunks"]  # once, first
        assert store.calls == [(list(range(30)), True)]  # tried only once the models were in
        got = store.read_samples("kid", "left", 0.0, 2e9)
        assert got.time[0] == pytest.approx(T0 + 0.5)  # re-stamped: tick 2**33 is T0 + 0.5
    finally:
        other.close()
        spool.close()
        store.close()
