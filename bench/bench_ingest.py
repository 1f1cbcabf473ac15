"""BLE ingest over the emulated stack (Bumble LocalLink, LE data length 251, ATT MTU 247).

1. Morning sync: two sensors have each recorded a night (default 10 h at 50 Hz) into flash with
   no central around; the ingester connects and backfills everything into the SQLite store.
   Prints the wall time from start to the last sample stored, packets/s, and as a baseline the
   time to decode and store the same packets without BLE (same run).
2. Live ingest CPU: the simulator runs in its own process (`limbwatch sim`) at `--speed`, the
   ingester in this one; prints the ingester's CPU seconds per simulated hour per 50 Hz sensor
   and that as a share of one core in real time.

    python bench/bench_ingest.py [--hours 10] [--live-seconds 30] [--speed 60]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from firmware_sim.sensor import Sensor, SensorConfig
from firmware_sim.simulator import on_air
from ingest.bumble_backend import BumbleTransport, bumble_backend, close_adapter
from ingest.central import Backend, Ingester, SensorTarget
from ingest.spool import Spool
from limbwatch import wire
from limbwatch.config import SensorEntry, gateway_toml, load_config
from limbwatch.recording import Side
from limbwatch.simclock import SimClock
from limbwatch.store.samples import Chunk
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore

SERIALS: tuple[tuple[Side, str], ...] = (("left", "LW0100L"), ("right", "LW0100R"))


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def morning_sync(hours: float, tmp: Path) -> tuple[float, int, int, float]:
    """(seconds, packets, samples, baseline seconds) for backfilling a recorded night."""
    now = time.time()
    configs = [SensorConfig(serial=serial, side=side, scenario="healthy_child", seed=11,
                            night_start=now - hours * 3600 - 60, duration_h=hours)
               for side, serial in SERIALS]
    clock = SimClock(start=now, speed=1.0)
    async with on_air(configs, clock) as air:
        await air.sampling  # the sensors catch up: the whole night is in flash
        expected = sum(s.truth_samples()[0].size for s in air.sensors)
        store = SqliteSampleStore(tmp / "sync.db", synchronous="FULL")
        spool = Spool(tmp / "sync-spool.db")
        scanner, client = bumble_backend(
            BumbleTransport(controller=air.radio.central_controller()))
        ingester = Ingester([SensorTarget("kid", side, serial, serial) for side, serial in SERIALS],
                            backend=Backend(scanner, client), clock=clock, spool=spool,
                            store=store, records=SqliteRecordStore(tmp / "sync.db"),
                            state_path=tmp / "sync-clock.json")
        stop = asyncio.Event()
        t = time.perf_counter()
        task = asyncio.create_task(ingester.run(stop))
        last = time.monotonic()
        while (got := _stored(store)) < expected:
            await asyncio.sleep(1.0)
            if time.monotonic() - last > 10:
                last = time.monotonic()
                print(f"  {got:,} of {expected:,} samples stored; " + "; ".join(
                    f"{s.side}: {s.packets} packets, {s.gaps_open} missing"
                    for s in ingester.status()), flush=True)
        seconds = time.perf_counter() - t
        packets = sum(s.packets for s in ingester.status())
        stop.set()
        await task
        await close_adapter()
        baseline = _decode_and_store(air.sensors, tmp / "baseline.db")
        spool.close()
        store.close()
    return seconds, packets, expected, baseline


def _stored(store: SqliteSampleStore) -> int:
    return sum(int(store.read_samples("kid", side, 0, 4e9).time.size) for side, _ in SERIALS)


def _decode_and_store(sensors: list[Sensor], db: Path) -> float:
    """Baseline: encode the same samples as packets, decode them, and store them; no BLE."""
    chunks_in: list[bytes] = []
    for sensor in sensors:
        _, g = sensor.truth_samples()
        counts = np.round(g * sensor.counts_per_g).astype(np.int16)
        per = wire.max_samples(247)
        chunks_in += [wire.encode_packet(i, i * per * 655, counts[k:k + per])
                      for i, k in enumerate(range(0, len(counts), per))]
    t = time.perf_counter()
    with SqliteSampleStore(db, synchronous="FULL") as store:
        batch = []
        for i, data in enumerate(chunks_in):
            p = wire.decode_packet(data)
            batch.append(Chunk("kid", "left", "base", i // 100000, i, i * 0.76, 0.02, p.counts,
                               4096))
            if len(batch) == 500:
                store.write_chunks(batch)
                batch = []
        store.write_chunks(batch)
    return time.perf_counter() - t


def live_cpu(seconds: float, speed: float, tmp: Path) -> tuple[float, float]:
    """Ingester CPU seconds and simulated seconds collected, simulator in its own process."""
    rig = tmp / "rig.toml"
    rig.write_text('scenario = "healthy_child"\nseed = 5\nduration_h = 10\n' + "".join(
        f'[[sensors]]\nserial = "{serial}"\nside = "{side}"\n' for side, serial in SERIALS))
    anchor = time.time() + 3
    start = 1795203000.0
    sim = subprocess.Popen([sys.executable, "-m", "app.cli", "sim", "--rig", str(rig),
                            "--speed", str(speed), "--start", str(start), "--anchor", str(anchor)],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert sim.stdout is not None
        endpoint = sim.stdout.readline().strip().removeprefix("HCI tcp://")
        cfg = tmp / "gateway.toml"
        cfg.write_text(gateway_toml(
            store="live.db", spool="live-spool.db", transport=f"tcp-client:{endpoint}",
            clock=SimClock(start=start, speed=speed, anchor=anchor),
            sensors=[SensorEntry("kid", side, serial, serial) for side, serial in SERIALS]))
        return asyncio.run(_measure_live(cfg, seconds))
    finally:
        sim.terminate()
        sim.wait(60)


async def _measure_live(cfg: Path, seconds: float) -> tuple[float, float]:
    from ingest.gateway import open_gateway

    config = load_config(cfg)
    stop = asyncio.Event()
    async with open_gateway(config) as ingester:
        task = asyncio.create_task(ingester.run(stop))
        while not all(s.connected and s.packets > 0 for s in ingester.status()):
            await asyncio.sleep(0.1)
        c0, s0 = cpu_s(), config.clock.now()
        await asyncio.sleep(seconds)
        cpu, sim_s = cpu_s() - c0, config.clock.now() - s0
        stop.set()
        await task
    return cpu, sim_s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hours", type=float, default=10.0)
    ap.add_argument("--live-seconds", type=float, default=30.0)
    ap.add_argument("--speed", type=float, default=60.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        seconds, packets, samples, baseline = asyncio.run(morning_sync(args.hours, tmp))
        print(f"morning sync, 2 sensors x {args.hours:g} h at 50 Hz: {samples:,} samples in "
              f"{packets:,} packets, {seconds:.1f} s ({packets / seconds:,.0f} packets/s); "
              f"baseline decode+store without BLE {baseline:.1f} s; ratio {seconds / baseline:.1f}")
        cpu, sim_s = live_cpu(args.live_seconds, args.speed, tmp)
        per_sensor_h = cpu / (sim_s / 3600) / len(SERIALS)
        print(f"live ingest at {args.speed:g}x for {args.live_seconds:g} s: {cpu:.2f} CPU-s for "
              f"{sim_s / 60:.0f} simulated min x {len(SERIALS)} sensors = {per_sensor_h:.1f} "
              f"CPU-s per sensor-hour = {per_sensor_h / 36:.3f} % of a core per 50 Hz sensor")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
