"""SqliteSampleStore on real SQLite files: round trips, idempotency, all-or-none, faults, extents.

Faults are real: locks held by a second connection, read-only and deleted files, a failing
trigger installed from a second connection. Nothing is mocked.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from analysis.night import analyze_night
from firmware_sim.night import LegSignal, simulate_night
from firmware_sim.scenario import load_scenario
from limbwatch.clockmodel import ClockModel, ClockSegment
from limbwatch.recording import Side, recording_from_arrays
from limbwatch.store.samples import Chunk, StoreUnavailable, chunk_times, counts_to_g
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_base import NotAStore
from limbwatch.wire import TICK_HZ

T0 = 1795203000.0
CPG = 4096
SIDES: tuple[Side, Side] = ("left", "right")


def leg_chunks(
    side: Side,
    n_chunks: int,
    *,
    t0: float = T0,
    dt: float = 0.02,
    per_chunk: int = 39,
    device: str | None = None,
    session: int = 1,
    seed: int = 0,
) -> list[Chunk]:
    """Consecutive chunks of random counts from one sensor."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(-8 * CPG, 8 * CPG, (n_chunks * per_chunk, 3)).astype(np.int16)
    return [
        Chunk("kid", side, device or f"LW-{side}", session, i, t0 + i * per_chunk * dt, dt,
              counts[i * per_chunk : (i + 1) * per_chunk], CPG)
        for i in range(n_chunks)
    ]


def expected(chunks: list[Chunk]) -> tuple[np.ndarray, np.ndarray]:
    """Times and g of non-overlapping chunks, in time order, as the store must return them."""
    ordered = sorted(chunks, key=lambda c: c.t0)
    time = np.concatenate([chunk_times(c) for c in ordered])
    accel = np.concatenate([counts_to_g(c.counts, c.counts_per_g) for c in ordered])
    return time, accel


def n_rows(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT count(*) FROM chunks").fetchone()[0])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteSampleStore]:
    s = SqliteSampleStore(tmp_path / "store.db", timeout_s=0.05)
    yield s
    s.close()


def test_round_trip_is_exact_and_time_ordered(store: SqliteSampleStore) -> None:
    legs = {
        "left": leg_chunks("left", 200, dt=0.0200004),  # a sensor clock drifting by 20 ppm
        "right": leg_chunks("right", 150, t0=T0 + 0.013, seed=1),
    }
    rng = np.random.default_rng(5)
    shuffled = [legs["left"][i] for i in rng.permutation(200)] + legs["right"]
    store.write_chunks(shuffled[:100])
    store.write_chunks(shuffled[100:])
    for side in SIDES:
        chunks = legs[side]
        got = store.read_samples("kid", side, 0.0, 2e9)
        time, accel = expected(chunks)
        assert np.array_equal(got.time, time) and got.time.dtype == np.float64
        assert np.array_equal(got.accel, accel) and got.accel.dtype == np.float32
        assert got.fs == 50.0


def test_window_is_start_inclusive_end_exclusive(store: SqliteSampleStore) -> None:
    chunks = leg_chunks("left", 100)
    store.write_chunks(chunks)
    time, accel = expected(chunks)
    got = store.read_samples("kid", "left", float(time[1000]), float(time[2000]))
    assert np.array_equal(got.time, time[1000:2000])
    assert np.array_equal(got.accel, accel[1000:2000])
    assert len(store.read_samples("kid", "right", 0.0, 2e9).time) == 0
    empty = store.read_samples("kid", "left", 0.0, T0)
    assert empty.time.shape == (0,) and empty.accel.shape == (0, 3) and empty.fs == 0.0


@pytest.mark.parametrize(("dt", "fs"), [(1 / 25.4, 25.0), (0.0102, 100.0), (1 / 30, 30.0)])
def test_nominal_rate(store: SqliteSampleStore, dt: float, fs: float) -> None:
    store.write_chunks(leg_chunks("left", 10, dt=dt))
    assert store.read_samples("kid", "left", 0.0, 2e9).fs == fs


def test_rewriting_stores_once(store: SqliteSampleStore) -> None:
    chunks = leg_chunks("left", 100)
    store.write_chunks(chunks[:60])
    store.write_chunks(chunks[40:])  # overlaps the first batch by 20 chunks
    store.write_chunks(chunks)
    assert n_rows(store.path) == 100
    time, accel = expected(chunks)
    got = store.read_samples("kid", "left", 0.0, 2e9)
    assert np.array_equal(got.time, time) and np.array_equal(got.accel, accel)


def test_malformed_chunk_stores_nothing_of_its_batch(store: SqliteSampleStore) -> None:
    chunks = leg_chunks("left", 10)
    bad = Chunk("kid", "left", "LW-left", 1, 99, T0 + 100, 0.02,
                np.zeros((39, 3), dtype=np.int32), CPG)
    with pytest.raises(ValueError, match="int16"):
        store.write_chunks([*chunks, bad])
    assert store.extent("kid") is None


def test_failure_inside_the_transaction_rolls_the_batch_back(store: SqliteSampleStore) -> None:
    chunks = leg_chunks("left", 50)
    store.write_chunks(chunks[:10])
    with closing(sqlite3.connect(store.path)) as other:  # a real SQLite error mid-batch
        other.execute("""CREATE TRIGGER fail BEFORE INSERT ON chunks WHEN NEW.seq = 30
                         BEGIN SELECT RAISE(ABORT, 'disk says no'); END""")
    with pytest.raises(StoreUnavailable, match="none was stored"):
        store.write_chunks(chunks[10:])
    assert n_rows(store.path) == 10
    with closing(sqlite3.connect(store.path)) as other:
        other.execute("DROP TRIGGER fail")
    store.write_chunks(chunks[10:])
    assert n_rows(store.path) == 50


def test_overlapping_chunks_keep_strictly_increasing_times(store: SqliteSampleStore) -> None:
    first = leg_chunks("left", 20, device="a")
    same = leg_chunks("left", 5, device="b", seed=7)  # restart: same times, other values
    shifted = leg_chunks("left", 5, device="c", t0=T0 + 3.01, seed=8)  # between the samples
    store.write_chunks([*shifted, *same, *first])
    got = store.read_samples("kid", "left", 0.0, 2e9)
    assert (np.diff(got.time) > 0).all()
    union = np.concatenate([chunk_times(c) for c in (*first, *same, *shifted)])
    assert np.array_equal(got.time, np.unique(union))
    time, accel = expected(first)
    kept = np.isin(got.time, time)
    assert np.array_equal(got.accel[kept], accel)  # on equal times the earlier chunk ("a") wins


def test_extent_gives_first_and_last_sample_legs_and_chunks(store: SqliteSampleStore) -> None:
    hour = 3600.0
    left = leg_chunks("left", 100)
    right = leg_chunks("right", 50, t0=T0 + hour, session=2)
    later = leg_chunks("left", 10, t0=T0 + 24 * hour, session=3)
    store.write_chunks([*left, *right, *later])
    whole = store.extent("kid")
    assert whole is not None
    assert whole.first == T0 and whole.sides == ("left", "right") and whole.chunks == 160
    assert whole.last == pytest.approx(chunk_times(later[-1])[-1], abs=1e-6)
    first_night = store.extent("kid", T0 - 1, T0 + 12 * hour)
    assert first_night is not None and first_night.chunks == 150
    assert first_night.last == pytest.approx(chunk_times(right[-1])[-1], abs=1e-6)
    only_later = store.extent("kid", T0 + 12 * hour, T0 + 48 * hour)
    assert only_later is not None and only_later.sides == ("left",)
    assert store.extent("kid", T0 + 48 * hour) is None
    assert store.extent("nobody") is None


def test_stored_seqs(store: SqliteSampleStore) -> None:
    assert store.stored_seqs("LW-left", 1) == []
    store.write_chunks(leg_chunks("left", 30)[5:])
    store.write_chunks(leg_chunks("left", 3, session=2))
    assert store.stored_seqs("LW-left", 1) == list(range(5, 30))
    assert store.stored_seqs("LW-left", 2) == [0, 1, 2]
    assert store.stored_seqs("LW-right", 1) == []


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make `path` read-only for this process: chmod, or for root (whom modes do not stop) the
    immutable attribute; skip the test when neither works."""
    path.chmod(0o444)
    immutable = False
    try:
        if os.access(path, os.W_OK):
            chattr = shutil.which("chattr")
            if chattr is None or subprocess.run([chattr, "+i", str(path)]).returncode:
                pytest.skip("cannot make a file read-only for this user")
            immutable = True
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o644)


def test_read_only_file_reads_but_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    chunks = leg_chunks("left", 20)
    with SqliteSampleStore(path) as s:
        s.write_chunks(chunks[:10])
    with read_only(path), SqliteSampleStore(path) as s:
        with pytest.raises(StoreUnavailable, match="read-only"):
            s.write_chunks(chunks[10:])
        assert len(s.read_samples("kid", "left", 0.0, 2e9).time) == 10 * 39
    assert n_rows(path) == 10


def test_what_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(NotAStore, match="is a directory"):
        SqliteSampleStore(tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("time,x,y,z\n" * 100)
    with pytest.raises(NotAStore, match="not even an SQLite database"):
        SqliteSampleStore(text)
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(NotAStore, match="another application"):
        SqliteSampleStore(other)
    newer = tmp_path / "newer.db"
    SqliteSampleStore(newer).close()
    with closing(sqlite3.connect(newer)) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(NotAStore, match="schema 99"):
        SqliteSampleStore(newer)
    with pytest.raises(FileNotFoundError, match=r"missing\.db"):
        SqliteSampleStore(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(StoreUnavailable, match="SQLITE_CANTOPEN"):
        SqliteSampleStore(tmp_path / "no-such-dir" / "store.db")


def test_locked_database_is_unavailable_and_loses_nothing(store: SqliteSampleStore) -> None:
    chunks = leg_chunks("left", 40)
    store.write_chunks(chunks[:20])
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            store.write_chunks(chunks[20:])
        assert len(store.read_samples("kid", "left", 0.0, 2e9).time) == 20 * 39  # WAL: reads go on
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.write_chunks(chunks[20:])
    time, accel = expected(chunks)
    got = store.read_samples("kid", "left", 0.0, 2e9)
    assert np.array_equal(got.time, time) and np.array_equal(got.accel, accel)


def test_deleted_file_is_unavailable(store: SqliteSampleStore) -> None:
    store.write_chunks(leg_chunks("left", 2))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store.path}{suffix}").unlink(missing_ok=True)
    with pytest.raises(StoreUnavailable, match="deleted or replaced"):
        store.write_chunks(leg_chunks("left", 4))


def test_closed_store_is_unavailable(tmp_path: Path) -> None:
    s = SqliteSampleStore(tmp_path / "store.db")
    s.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        s.extent("kid")


def sim_chunks(leg: LegSignal, side: Side, per_chunk: int = 39, *, subject: str = "kid",
               device: str | None = None, session: int = 1) -> list[Chunk]:
    """A simulated leg as the ingester would store it: counts, in chunks of consecutive samples
    (split at lost packets), dt = 1 / fs; from `device` (default LW-<side>) of `subject`."""
    counts = np.rint(leg.accel.astype(np.float64) * leg.counts_per_g).astype(np.int16)
    breaks = np.flatnonzero(np.diff(leg.time) > 1.5 / leg.fs) + 1
    chunks: list[Chunk] = []
    for run in np.split(np.arange(len(leg.time)), breaks):
        for part in np.split(run, np.arange(per_chunk, len(run), per_chunk)):
            chunks.append(Chunk(subject, side, device or f"LW-{side}", session, len(chunks),
                                float(leg.time[part[0]]), 1 / leg.fs, counts[part],
                                leg.counts_per_g))
    return chunks


def test_store_gives_the_same_report_as_the_arrays(store: SqliteSampleStore) -> None:
    night = simulate_night(load_scenario("mild_plms"), 3, duration_h=1.0)
    direct = []
    for side in SIDES:
        leg = night.legs[side]
        chunks = sim_chunks(leg, side)
        time, accel = expected(chunks)  # what the store holds: t0 + k * dt, counts / counts_per_g
        assert np.abs(time - leg.time).max() < 1e-6 and np.array_equal(accel, leg.accel)
        direct.append(recording_from_arrays(leg.time, leg.accel, side, source=f"kid/{side}"))
        store.write_chunks(chunks)
    whole = store.extent("kid")
    assert whole is not None
    stored = []
    for side in SIDES:
        got = store.read_samples("kid", side, whole.first, np.nextafter(whole.last, np.inf))
        stored.append(recording_from_arrays(got.time, got.accel, side, fs=got.fs,
                                            source=f"kid/{side}"))
    a = analyze_night(direct, age_months=96).to_report().model_dump_json()
    b = analyze_night(stored, age_months=96).to_report().model_dump_json()
    assert a == b


def test_consecutive_packets_timed_slightly_apart_keep_every_sample(
    store: SqliteSampleStore,
) -> None:
    a, b, c = leg_chunks("left", 3)
    # Clock alignment moved packet b 30 ms earlier than packet a's last sample: b follows a in
    # the sensor's sequence, so it is placed right after a instead of losing samples.
    b = replace(b, t0=a.t0 + (len(a.counts) - 1) * a.dt - 0.03)
    store.write_chunks([a, b, c])
    got = store.read_samples("kid", "left", T0 - 1, T0 + 100)
    assert got.time.size == 3 * len(a.counts)
    assert (np.diff(got.time) > 0).all()
    assert got.time[len(a.counts)] == pytest.approx(a.t0 + len(a.counts) * a.dt)


def flip_byte(path: Path, seq: int, column: str = "counts", at: int = 7) -> None:
    """Damage one stored chunk from a second connection, as a failing disk or a stray writer
    would: one byte of its counts BLOB flipped, or (column "t0") its start time nudged."""
    with closing(sqlite3.connect(path)) as other, other:
        if column == "counts":
            (blob,) = other.execute("SELECT counts FROM chunks WHERE seq = ?", (seq,)).fetchone()
            damaged = bytearray(blob)
            damaged[at] ^= 0x40
            other.execute("UPDATE chunks SET counts = ? WHERE seq = ?", (bytes(damaged), seq))
        else:
            other.execute(f"UPDATE chunks SET {column} = {column} + 1e-6 WHERE seq = ?", (seq,))


@pytest.mark.parametrize("column", ["counts", "t0"])
def test_a_damaged_chunk_is_reported_and_skipped_never_returned(
    tmp_path: Path, column: str, caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "store.db"
    chunks = leg_chunks("left", 20)
    with SqliteSampleStore(path) as s:
        s.write_chunks(chunks)
    flip_byte(path, 5, column)
    with SqliteSampleStore(path) as s:
        got = s.read_samples("kid", "left", 0.0, 2e9)
        packets = s.read_chunks("LW-left")
    assert got.damaged == 1 and [c.seq for c in packets] == [*range(5), *range(6, 20)]
    time, accel = expected(chunks[:5] + chunks[6:])
    assert np.array_equal(got.time, time) and np.array_equal(got.accel, accel)
    assert "skipped 1 damaged chunks" in caplog.text and "LW-left/1/5" in caplog.text


def test_a_good_copy_replaces_a_damaged_chunk(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    chunks = leg_chunks("left", 20)
    with SqliteSampleStore(path) as s:
        s.write_chunks(chunks)
        flip_byte(path, 5)
        s.write_chunks(chunks[5:6])  # e.g. fetched again from the sensor's flash
        got = s.read_samples("kid", "left", 0.0, 2e9)
        assert got.damaged == 0 and s.conflicts() == []
    time, accel = expected(chunks)
    assert np.array_equal(got.time, time) and np.array_equal(got.accel, accel)


def test_other_contents_under_a_stored_key_are_kept_apart_as_a_conflict(
    store: SqliteSampleStore, caplog: pytest.LogCaptureFixture,
) -> None:
    chunks = leg_chunks("left", 10)
    store.write_chunks(chunks)
    # A restarted sensor reused seq 3 for other samples; seq 4 comes again, timed differently.
    other = replace(chunks[3], counts=chunks[3].counts[::-1].copy())
    retimed = replace(chunks[4], t0=chunks[4].t0 + 0.01)
    store.write_chunks([other, retimed])
    store.write_chunks([other])  # the same conflicting contents again: still one conflict
    (kept,) = store.conflicts()
    assert (kept.device, kept.session, kept.seq) == ("LW-left", 1, 3)
    assert np.array_equal(kept.counts, other.counts) and kept.t0 == other.t0
    assert "other contents" in caplog.text and "LW-left/1/3" in caplog.text
    got = store.read_samples("kid", "left", 0.0, 2e9)  # the stored chunks, unchanged
    time, accel = expected(chunks)
    assert np.array_equal(got.time, time) and np.array_equal(got.accel, accel)
    assert n_rows(store.path) == 10


def test_chunks_stamped_wrongly_live_read_back_on_the_stored_clock_model(tmp_path: Path) -> None:
    """A sensor 40 ppm fast whose live fit was off by 2.5-3 s and ignored the drift: once its
    session's model is stored, reads follow the model from the chunks' raw ticks."""
    b = 1 / (TICK_HZ * (1 + 40e-6))  # s per tick
    ticks0 = 2**32 - 10 * TICK_HZ  # unwrapped ticks go past the u32 wrap 10 s in
    a = T0 - b * ticks0
    per_chunk, rate = 39, 50
    good = leg_chunks("left", 300, per_chunk=per_chunk)
    ticks = [ticks0 + i * per_chunk * TICK_HZ // rate for i in range(len(good))]
    live = [replace(c, t0=c.t0 + 2.5 + 0.002 * i, ticks=t, rate_hz=rate)
            for i, (c, t) in enumerate(zip(good, ticks, strict=True))]
    jumped = replace(live[-1], session=2, seq=0, t0=T0 + 900, ticks=5, counts=live[0].counts)
    no_ticks = leg_chunks("left", 1, t0=T0 + 1000, device="old")[0]
    path = tmp_path / "store.db"
    with SqliteSampleStore(path) as s:
        s.write_chunks([*live, jumped, no_ticks])
        window = (T0, T0 + 60)  # by the live times, the first 2.5 s are missing
        before = s.read_samples("kid", "left", *window)
        assert before.time[0] == pytest.approx(T0 + 2.5)
        s.put_clock_models({
            ("LW-left", 1): ClockModel((ClockSegment(0, a, b),)),
            ("LW-left", 2): ClockModel((ClockSegment(0, T0 + 950.0, b),)),
        })
        got = s.read_samples("kid", "left", T0 - 10, T0 + 2000)
        packets = s.read_chunks("LW-left")  # the chunks themselves, in (session, seq) order
        assert s.clock_model("LW-left", 1) == ClockModel((ClockSegment(0, a, b),))
        assert s.clock_model("LW-left", 3) is None
        first = s.read_samples("kid", "left", *window)
    true_t0 = np.array([a + b * t for t in ticks])
    k = np.arange(per_chunk)
    want = (true_t0[:, None] + k * b * TICK_HZ / rate).ravel()
    n = len(want)
    assert np.allclose(got.time[:n], want, rtol=0, atol=1e-6)
    # the jumped session's chunk on its own model, the chunk without ticks as stamped live
    assert got.time[n] == pytest.approx(T0 + 950.0 + 5 * b)
    assert got.time[n + per_chunk] == pytest.approx(no_ticks.t0)
    assert got.time.size == n + 2 * per_chunk and got.fs == 50.0
    assert [(c.session, c.seq) for c in packets] == [(1, i) for i in range(300)] + [(2, 0)]
    assert np.allclose([c.t0 for c in packets[:300]], true_t0, rtol=0, atol=1e-6)
    assert packets[0].dt == pytest.approx(b * TICK_HZ / rate) and packets[0].ticks == ticks0
    # A window by the corrected times: its last 2.6 s were stored live beyond its end.
    assert first.time[0] == pytest.approx(T0, abs=0.02)
    assert first.time[-1] == pytest.approx(T0 + 60, abs=0.03)


def test_a_damaged_clock_model_leaves_the_live_times(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "store.db"
    chunks = [replace(c, ticks=i * 1000, rate_hz=50) for i, c in enumerate(leg_chunks("left", 5))]
    with SqliteSampleStore(path) as s:
        s.write_chunks(chunks)
        s.put_clock_models({("LW-left", 1): ClockModel((ClockSegment(0, T0 + 99, 1e-4),))})
        with closing(sqlite3.connect(path)) as other, other:
            other.execute("UPDATE clock_models SET model = '{\"segments\": 3'")
        got = s.read_samples("kid", "left", 0.0, 2e9)
    assert np.array_equal(got.time, expected(chunks)[0])
    assert "clock model of LW-left/1 is damaged" in caplog.text
