"""Issue 3 acceptance, end to end over the emulated BLE stack: two simulated sensors, a compressed
night with connection drops, out-of-range, lost / duplicated / reordered / corrupted
notifications and a store that is down for a while. Every sample the sensors took must be in
the store exactly once, on UTC within 20 ms of the truth, and the night's report from the store
must match the report from the sensors' own CSV export."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from analysis.night import analyze_night
from firmware_sim.sensor import Fault, Sensor, SensorConfig
from firmware_sim.simulator import on_air
from ingest.bumble_backend import BumbleTransport, bumble_backend, close_adapter
from ingest.central import Backend, Ingester, SensorTarget
from ingest.spool import Spool
from limbwatch.recording import read_recording_csv, recording_from_arrays
from limbwatch.report import NightReport, parse_iso
from limbwatch.simclock import SimClock
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore
from limbwatch.wire import TICK_HZ

SPEED = 15.0  # a quarter hour in a real minute: emulated-link latency x speed stays small
NIGHT_H = 0.25
START = 1795203000.0
FAULTS = (
    Fault("drop", at_s=120), Fault("drop", at_s=300), Fault("drop", at_s=780),
    Fault("out_of_range", at_s=420, until_s=720),  # 5 minutes
    Fault("lose", value=0.01), Fault("duplicate", value=0.01), Fault("reorder", value=0.01),
    Fault("corrupt", value=0.005),
)


def configs(faults: tuple[Fault, ...]) -> list[SensorConfig]:
    return [
        SensorConfig(serial="LW0001L", side="left", scenario="mild_plms", seed=5,
                     night_start=START, duration_h=NIGHT_H, drift_ppm=45.0, faults=faults),
        SensorConfig(serial="LW0001R", side="right", scenario="mild_plms", seed=5,
                     night_start=START, duration_h=NIGHT_H, drift_ppm=-30.0,
                     faults=faults[1:]),
    ]


def complete(store: SqliteSampleStore, sensors: list[Sensor]) -> bool:
    if not all(s.finished for s in sensors):
        return False
    for s in sensors:
        truth_t, _ = s.truth_samples()
        got = store.read_samples("kid", s.config.side, truth_t[0] - 5, truth_t[-1] + 5)
        if got.time.size < truth_t.size:
            return False
    return True


async def hold_store_lock(db: Path, clock: SimClock, at: float, real_s: float) -> None:
    """Make the store really unavailable: another connection holds its write lock."""
    await clock.sleep_until(at)
    other = sqlite3.connect(db, timeout=30)
    other.execute("BEGIN EXCLUSIVE")
    await asyncio.sleep(real_s)
    other.rollback()
    other.close()


async def collect_night(
    tmp_path: Path,
) -> tuple[SqliteSampleStore, list[Sensor], dict[str, object]]:
    clock = SimClock(start=START - 5, speed=SPEED)
    db = tmp_path / "limbwatch.db"
    store = SqliteSampleStore(db, synchronous="FULL")
    spool = Spool(tmp_path / "spool.db")
    async with on_air(configs(FAULTS), clock) as air:
        sensors = air.sensors
        scanner, client = bumble_backend(
            BumbleTransport(controller=air.radio.central_controller()))
        ingester = Ingester(
            [SensorTarget("kid", s.config.side, s.config.name, s.config.serial) for s in sensors],
            backend=Backend(scanner, client), clock=clock, spool=spool, store=store,
            records=SqliteRecordStore(db), state_path=tmp_path / "clock.json",
            sync_interval_s=60.0,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(ingester.run(stop))
        # Down for 8 real s (2 simulated minutes), longer than the store's 5-s busy timeout.
        outage = asyncio.create_task(hold_store_lock(db, clock, START + 330, 8.0))
        deadline = time.monotonic() + NIGHT_H * 3600 / SPEED + 120
        while not complete(store, sensors) and time.monotonic() < deadline:
            await asyncio.sleep(1.0)
        stop.set()
        await asyncio.wait_for(task, 30)
        await outage
        await close_adapter()
        status = {f"{s.side}": s for s in ingester.status()}
    spool.close()
    return store, sensors, status


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteSampleStore, list[Sensor], dict[
        str, object], Path]:
    tmp = tmp_path_factory.mktemp("e2e")
    store, sensors, status = asyncio.run(collect_night(tmp))
    return store, sensors, status, tmp


def test_every_sample_stored_exactly_once_within_20_ms(night: tuple) -> None:  # type: ignore[type-arg]
    store, sensors, status, _ = night
    for s in sensors:
        truth_t, truth_g = s.truth_samples()
        got = store.read_samples("kid", s.config.side, truth_t[0] - 5, truth_t[-1] + 5)
        assert got.time.size == truth_t.size, status[s.config.side]
        assert np.array_equal(got.accel, truth_g)
        assert np.max(np.abs(got.time - truth_t)) < 0.020
        # the times above are the gateway's last clock model applied to the chunks' raw ticks
        assert store.clock_model(s.config.serial, s.session) is not None and got.damaged == 0
        # ... and those are the sensor's readings (its sample k at ticks0 + k * TICK_HZ // rate),
        # not ticks worked back from a live stamp, which would keep the live fit's error
        chunks = store.read_chunks(s.config.serial)
        first = np.cumsum([0] + [len(c.counts) for c in chunks[:-1]])
        ticks = np.array([c.ticks for c in chunks], dtype=np.int64)
        assert np.array_equal(ticks - ticks[0], first * TICK_HZ // chunks[0].rate_hz)
    # The faults really happened and were dealt with.
    left = status["left"]
    assert left.connects >= 5  # type: ignore[attr-defined]
    assert left.duplicates > 0 and left.bad_packets > 0 and left.backfilled > 0  # type: ignore[attr-defined]
    assert left.gaps_lost == 0  # type: ignore[attr-defined]
    # The drift is known as well as a 15-min span of syncs with compressed-time latency allows:
    # its error, accumulated over the night, stays within the 20-ms timestamp bound (a fixed
    # +-5 ppm failed in CI at 64.8 ppm while every timestamp was within 20 ms).
    drift_error_s = abs(left.drift_ppm - 45) * 1e-6 * NIGHT_H * 3600  # type: ignore[attr-defined]
    assert drift_error_s < 0.020, left.drift_ppm  # type: ignore[attr-defined]


def test_report_from_store_matches_report_from_csv_export(night: tuple) -> None:  # type: ignore[type-arg]
    store, sensors, _, tmp = night
    from_csv, from_store = [], []
    for s in sensors:
        path = s.write_truth_csv(tmp / f"{s.config.side}.csv")
        from_csv.append(read_recording_csv(path, s.config.side))
        truth_t, _ = s.truth_samples()
        got = store.read_samples("kid", s.config.side, truth_t[0] - 5, truth_t[-1] + 5)
        from_store.append(recording_from_arrays(got.time, got.accel, s.config.side, fs=got.fs))
    a = analyze_night(from_csv, age_months=96).to_report()
    b = analyze_night(from_store, age_months=96).to_report()
    assert_same_report(a, b)


def assert_same_report(a: NightReport, b: NightReport) -> None:
    """Equal but for timestamps, which may differ by the clock alignment's error (< 20 ms): so
    a recording whose length is within that of a whole number of epochs may end one epoch
    later, an epoch of no data."""
    n = min(len(a.sleep.epochs), len(b.sleep.epochs))
    assert a.sleep.epochs[:n] == b.sleep.epochs[:n]
    assert set(a.sleep.epochs[n:] + b.sleep.epochs[n:]) <= {"N"} and abs(
        len(a.sleep.epochs) - len(b.sleep.epochs)) <= 1
    assert (a.plm.count, a.plm.index, a.brief_jerks) == (b.plm.count, b.plm.index, b.brief_jerks)
    assert [f.code for f in a.flags] == [f.code for f in b.flags]
    assert len(a.leg_movements) == len(b.leg_movements)
    # Per leg: the two legs' LMs that start within the alignment error may swap places.
    by_leg = [sorted(r.leg_movements, key=lambda m: (m.side, m.start)) for r in (a, b)]
    for x, y in zip(*by_leg, strict=True):
        assert (x.side, x.periodic, x.in_sleep, x.candidate) == (
            y.side, y.periodic, y.in_sleep, y.candidate)
        assert abs(parse_iso(x.start) - parse_iso(y.start)) < 0.05
        assert abs(parse_iso(x.end) - parse_iso(y.end)) < 0.05
