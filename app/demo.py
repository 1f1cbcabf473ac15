"""The demo: the whole path on one machine, with no Bluetooth hardware.

1. `limbwatch sim` runs in its own process: two simulated ankle sensors (a rig file) on an
   emulated BLE radio, a night compressed `speed` times, with faults (drops, out of range, lost,
   duplicated, reordered and corrupted notifications).
2. The gateway (bleak + bleak-retry-connector over the simulator's radio, the spool, the SQLite
   store) collects the night live and backfills whatever the faults cost.
3. Once the morning sync is complete the night is marked over, and the analysis service
   analyses it from the store; the report, a picture and a summary are written, and the stored
   samples are checked against the sensors' own record of what they measured.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from firmware_sim.rig import load_rig
from firmware_sim.scenario import load_scenario
from ingest.gateway import open_gateway
from limbwatch.config import SensorEntry, gateway_toml, load_config
from limbwatch.recording import read_recording_csv
from limbwatch.simclock import SimClock
from limbwatch.store.records import SensorAssignment, Subject
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore

NIGHT_START = 1795203000.0  # 2026-11-20T19:30:00Z, a fixed evening so runs are comparable
SUBJECT = "demo-child"
TIME_ZONE = "Europe/London"  # the demo night starts 19:30 local
LEAD_IN_S = 5.0  # real seconds between starting the simulator and the night's first sample
SETTLE_S = 120.0  # simulated seconds after the night before checking everything arrived


def default_rig() -> Path:
    return Path(__file__).resolve().parents[1] / "firmware_sim" / "rigs" / "demo.toml"


def run_demo(out_dir: Path, rig: Path, speed: float) -> tuple[Path, float]:
    """Run steps 1 and 2; return the store's path and the subject's age in months."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("limbwatch.db", "spool.db", "spool-clock.json", "left.csv", "right.csv"):
        for path in out_dir.glob(name + "*"):
            path.unlink()
    sensors = load_rig(rig, night_start=NIGHT_START)
    age = load_scenario(sensors[0].scenario).age_months
    with SqliteRecordStore(out_dir / "limbwatch.db") as records:
        records.put_subject(Subject(
            SUBJECT, "Demo child", _birth_date(age), TIME_ZONE,
            tuple(SensorAssignment(s.serial, s.side) for s in sensors)))
    anchor = time.time() + LEAD_IN_S
    sim = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "sim", "--rig", str(rig), "--speed", str(speed),
         "--start", str(NIGHT_START), "--anchor", str(anchor), "--truth-dir", str(out_dir)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert sim.stdout is not None
        line = sim.stdout.readline().strip()
        if not line.startswith("HCI tcp://"):
            raise RuntimeError(f"the simulator did not start (it said {line!r})")
        endpoint = line.removeprefix("HCI tcp://")
        config_path = out_dir / "gateway.toml"
        config_path.write_text(gateway_toml(
            store="limbwatch.db", spool="spool.db", transport=f"tcp-client:{endpoint}",
            clock=SimClock(start=NIGHT_START, speed=speed, anchor=anchor),
            sensors=[SensorEntry(SUBJECT, s.side, s.name, s.serial) for s in sensors],
        ))
        durations = [load_scenario(s.scenario).duration_h if s.duration_h is None
                     else s.duration_h for s in sensors]
        night_end = NIGHT_START + max(durations) * 3600
        print(f"Simulator on {endpoint}: {len(sensors)} sensors, a {max(durations):g}-h night "
              f"at {speed:g}x (about {max(durations) * 3600 / speed:.0f} s)")
        asyncio.run(_collect(config_path, night_end))
    finally:
        sim.terminate()
        sim.wait(timeout=60)
    return out_dir / "limbwatch.db", age


def _birth_date(age_months: float) -> date:
    """A birth date that makes the demo child `age_months` old on the demo night."""
    return (datetime.fromtimestamp(NIGHT_START, UTC)
            - timedelta(days=age_months * 30.4375)).date()


async def _collect(config_path: Path, night_end: float) -> None:
    config = load_config(config_path)
    stop = asyncio.Event()
    async with open_gateway(config) as ingester:
        task = asyncio.create_task(ingester.run(stop))
        last_print = 0.0
        while True:
            await asyncio.sleep(0.5)
            status = ingester.status()
            now = config.clock.now()
            if time.monotonic() - last_print > 10:
                last_print = time.monotonic()
                print(f"  night {(now - NIGHT_START) / 3600:+5.1f} h: " + "; ".join(
                    f"{s.side} {'connected' if s.connected else 'away'} {s.packets} packets "
                    f"({s.backfilled} backfilled, {s.gaps_open} missing)" for s in status),
                    flush=True)
            done = now > night_end + SETTLE_S and all(
                s.connected and s.gaps_open == 0 for s in status) and len(ingester.spool) == 0
            if done or task.done():
                break
        stop.set()
        await task


def check_against_truth(store_path: Path, out_dir: Path) -> list[str]:
    """One line per leg: samples the sensor took vs stored, and the worst timestamp error."""
    lines = []
    with SqliteSampleStore(store_path, create=False) as store:
        for side in ("left", "right"):
            truth_path = out_dir / f"{side}.csv"
            if not truth_path.exists():
                continue
            truth = read_recording_csv(truth_path, side)
            got = store.read_samples(SUBJECT, side, truth.time[0] - 5, truth.time[-1] + 5)
            same = got.time.size == truth.time.size
            err = float(np.max(np.abs(got.time - truth.time))) * 1000 if same else float("nan")
            lines.append(f"{side}: {got.time.size} of {truth.time.size} samples stored"
                         + (f", worst timestamp error {err:.1f} ms" if same else ""))
    return lines
