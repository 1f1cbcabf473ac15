"""The sample store contract (`limbwatch.store.samples.SampleStore`), run against the embedded
SQLite store and against a real InfluxDB 1.6.7 server: both must give the same samples, times,
extents and seqs for the same writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import Influxd

from limbwatch.clockmodel import ClockModel, ClockSegment
from limbwatch.store.open import open_samples
from limbwatch.store.samples import Chunk, SampleStore

T0 = 1795203000.0
DT = 1 / 50 * (1 + 30e-6)  # 50 Hz, a sensor clock 30 ppm slow
N = 38  # samples a packet
TICKS_PER_PACKET = round(N * 32768 / 50)


def packets(device: str = "LW0001L", side: str = "left", *, first_seq: int = 0,
            count: int = 300, session: int = 7, subject: str = "kid", seed: int = 1,
            offset_s: float = 0.0) -> list[Chunk]:
    rng = np.random.default_rng(seed)
    return [Chunk(subject, side, device, session, seq,  # type: ignore[arg-type]
                  T0 + offset_s + seq * N * DT, DT,
                  rng.integers(-3000, 3000, (N, 3)).astype(np.int16), 4096,
                  1_000_000 + seq * TICKS_PER_PACKET, 50)
            for seq in range(first_seq, first_seq + count)]


@pytest.fixture(params=["sqlite", "influx"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SampleStore]:
    if request.param == "sqlite":
        url = f"sqlite:{tmp_path / 'store.db'}"
    else:
        server: Influxd = request.getfixturevalue("influxd")
        url = server.store_url(tmp_path / "records.db")
    with open_samples(url) as opened:
        yield opened


def test_samples_read_back_in_time_order_with_their_values(store: SampleStore) -> None:
    chunks = packets() + packets("LW0001R", "right", seed=2)
    store.write_chunks(chunks[::-1])  # order of writing does not matter
    got = store.read_samples("kid", "left", T0 - 1, T0 + 3600)
    left = chunks[:300]
    expected_t = np.concatenate([c.t0 + np.arange(N) * c.dt for c in left])
    expected_g = np.concatenate([c.counts for c in left]).astype(np.float32) / 4096
    assert got.time.size == 300 * N and got.fs == 50.0 and got.damaged == 0
    assert np.abs(got.time - expected_t).max() < 2e-6  # InfluxDB keeps microseconds
    assert np.array_equal(got.accel, expected_g)
    part = store.read_samples("kid", "left", T0 + 10, T0 + 20)
    assert part.time.min() >= T0 + 10 and part.time.max() < T0 + 20
    assert part.time.size == pytest.approx(500, abs=2)


def test_writing_a_chunk_again_stores_it_once(store: SampleStore) -> None:
    chunks = packets(count=100)
    store.write_chunks(chunks)
    store.write_chunks(chunks[40:60])  # a replay after a crash
    extent = store.extent("kid")
    assert extent is not None and extent.chunks == 100 and extent.sides == ("left",)
    assert store.read_samples("kid", "left", T0 - 1, T0 + 3600).time.size == 100 * N
    assert store.stored_seqs("LW0001L", 7) == list(range(100))
    assert store.stored_seqs("LW0001L", 8) == []


def test_extent_devices_and_chunks_of_a_sensor(store: SampleStore) -> None:
    assert store.extent("kid") is None and store.devices() == []
    left, right = packets(count=50), packets("LW0001R", "right", count=20, seed=2)
    store.write_chunks(left + right + packets("LW0002L", subject="other", count=5))
    extent = store.extent("kid")
    assert extent is not None and extent.sides == ("left", "right") and extent.chunks == 70
    assert extent.first == pytest.approx(T0, abs=1e-6)
    assert extent.last == pytest.approx(left[-1].t0 + (N - 1) * DT, abs=1e-5)
    later = store.extent("kid", T0 + 10 * N * DT + 1e-3)
    assert later is not None and later.chunks == 39 + 9
    assert store.extent("kid", T0 + 3600) is None
    assert store.devices() == ["LW0001L", "LW0001R", "LW0002L"]
    assert store.devices("kid") == ["LW0001L", "LW0001R"]
    back = store.read_chunks("LW0001R")
    assert [c.seq for c in back] == list(range(20))
    assert all(np.array_equal(a.counts, b.counts) for a, b in zip(back, right, strict=True))


def test_reads_restamp_from_ticks_with_the_newest_clock_model(store: SampleStore) -> None:
    chunks = packets(count=100)
    store.write_chunks(chunks)
    # a better fit of the night: the clock 0.25 s later than stamped live
    b = DT * 50 / 32768
    model = ClockModel((ClockSegment(0, T0 + 0.25 - 1_000_000 * b, b),))
    store.put_clock_models({("LW0001L", 7): model})
    got = store.read_samples("kid", "left", T0 - 10, T0 + 3600)
    assert got.time[0] == pytest.approx(T0 + 0.25, abs=2e-6)
    assert got.time.size == 100 * N
    assert store.clock_model("LW0001L", 7) == model
    moved = ClockModel((ClockSegment(0, T0 - 1_000_000 * b, b),))
    store.put_clock_models({("LW0001L", 7): moved})  # a newer model replaces it
    assert store.read_samples("kid", "left", T0 - 10, T0 + 3600).time[0] == \
        pytest.approx(T0, abs=2e-6)
    assert store.read_chunks("LW0001L")[0].t0 == pytest.approx(T0, abs=2e-6)


def test_a_reused_key_with_other_contents_is_kept_apart(store: SampleStore) -> None:
    first = packets(count=10)
    store.write_chunks(first)
    # the sensor restarted and reused session 7 for other samples, an hour later
    store.write_chunks(packets(count=3, seed=9, offset_s=3600))
    conflicts = store.conflicts()
    assert sorted(c.seq for c in conflicts) == [0, 1, 2]
    got = store.read_samples("kid", "left", T0 - 1, T0 + 7200)
    assert got.time.size == 10 * N  # the first copies only
    assert np.array_equal(got.accel[:N], first[0].counts.astype(np.float32) / 4096)


def test_a_malformed_chunk_stores_nothing(store: SampleStore) -> None:
    bad = packets(count=2)
    bad[1] = Chunk("kid", "left", "LW0001L", 7, 1, T0, DT, np.zeros((3, 2), np.int16), 4096)
    with pytest.raises(ValueError, match="int16 of shape"):
        store.write_chunks(bad)
    assert store.extent("kid") is None


def test_the_same_writes_give_the_same_samples_in_both_stores(influxd: Influxd,
                                                             tmp_path: Path) -> None:
    """Overlapping packets (live stamps off by more than a packet), two sensor sessions and a
    clock model for one of them: SQLite and InfluxDB read back the same."""
    chunks = packets(count=80) + packets(first_seq=80, count=40, offset_s=-0.5, seed=3) + \
        packets(session=8, count=30, offset_s=2000, seed=4)
    b = DT * 50 / 32768
    models = {("LW0001L", 7): ClockModel((ClockSegment(0, T0 + 0.1 - 1_000_000 * b, b),
                                          ClockSegment(90, T0 + 0.3 - 1_000_000 * b, b)))}
    reads = []
    for url in (f"sqlite:{tmp_path / 'a.db'}", influxd.store_url(tmp_path / "r.db")):
        with open_samples(url) as s:
            s.write_chunks(chunks)
            s.put_clock_models(models)
            reads.append(s.read_samples("kid", "left", T0 + 5, T0 + 3000))
    a, b_ = reads
    assert a.time.size == b_.time.size > 0 and a.fs == b_.fs
    assert np.abs(a.time - b_.time).max() < 2e-6
    assert np.array_equal(a.accel, b_.accel)
