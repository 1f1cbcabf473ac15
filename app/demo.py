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
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from firmware_sim.rig import load_rig
from firmware_sim.scenario import load_scenario
from ingest.gateway import open_gateway
from limbwatch.config import SensorEntry, gateway_toml, load_config
from limbwatch.errors import BadInput
from limbwatch.recording import read_recording_csv
from limbwatch.simclock import SimClock
from limbwatch.store.open import is_influx, open_records, open_samples
from limbwatch.store.records import SensorAssignment, Subject
from limbwatch.store.samples import Chunk

NIGHT_START = 1795203000.0  # 2026-11-20T19:30:00Z, a fixed evening so runs are comparable
SUBJECT = "demo-child"
TIME_ZONE = "Europe/London"  # the demo night starts 19:30 local
LEAD_IN_S = 5.0  # real seconds between starting the simulator and the night's first sample
SETTLE_S = 120.0  # simulated seconds after the night before checking everything arrived
# The collection's deadline, real s: the night (and SETTLE_S) at the simulator's speed, times
# DEADLINE_FACTOR for a loaded machine, plus DEADLINE_SLACK_S for start-up and the morning sync.
DEADLINE_FACTOR = 1.5
DEADLINE_SLACK_S = 90.0
# Everything a run writes into its directory, removed before the next run starts.
OUTPUTS = ("limbwatch.db*", "spool.db*", "spool-clock.*", "left.csv", "right.csv",
           "gateway.toml", "report.json", "night.png")
VALUE_TOLERANCE_G = 2e-6  # the truth CSV has 6 decimals of g, read as float32


def default_rig() -> Path:
    return Path(__file__).resolve().parents[1] / "firmware_sim" / "rigs" / "demo.toml"


def run_demo(out_dir: Path, rig: Path, speed: float, store_url: str | None = None
             ) -> tuple[str, float]:
    """Run steps 1 and 2 into `store_url` (default: a new SQLite file in `out_dir`); return
    the store URL and the subject's age in months. An InfluxDB store must hold no demo data
    yet (the night would be stored twice at other live times): give it a new bucket."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for pattern in OUTPUTS:
        for path in out_dir.glob(pattern):
            path.unlink()
    sensors = load_rig(rig, night_start=NIGHT_START)
    age = load_scenario(sensors[0].scenario).age_months
    url = store_url or f"sqlite:{(out_dir / 'limbwatch.db').resolve()}"
    if is_influx(url):
        with open_samples(url) as samples:
            if samples.extent(SUBJECT) is not None:
                raise BadInput(f"{url}: already holds a demo night; give the demo a new bucket "
                               "(`limbwatch store init --store URL`)")
    with open_records(url) as records:
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
            store=url, spool="spool.db", transport=f"tcp-client:{endpoint}",
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
        sim.terminate()  # it writes the truth CSV files as it ends
        try:
            sim.wait(timeout=60)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
    return url, age


def _birth_date(age_months: float) -> date:
    """A birth date that makes the demo child `age_months` old on the demo night."""
    return (datetime.fromtimestamp(NIGHT_START, UTC)
            - timedelta(days=age_months * 30.4375)).date()


async def _collect(config_path: Path, night_end: float) -> None:
    """Collect until the night is over and everything arrived, or until the deadline (which
    scales with 1 / speed): then say what did not arrive. The night is over when every sensor's
    morning sync is complete (it stopped sampling and all it took is stored), not when the
    gateway's clock passes its end: a simulator starved of CPU runs behind that clock."""
    config = load_config(config_path)
    clock = config.clock
    deadline = time.monotonic() + DEADLINE_SLACK_S + DEADLINE_FACTOR * max(
        0.0, night_end + SETTLE_S - clock.now()) / clock.speed
    stop = asyncio.Event()
    async with open_gateway(config) as ingester:
        task = asyncio.create_task(ingester.run(stop))
        last_print = 0.0
        while True:
            await asyncio.sleep(0.5)
            status = ingester.status()
            now = clock.now()
            if time.monotonic() - last_print > 10:
                last_print = time.monotonic()
                when = ("before the night" if now < NIGHT_START
                        else f"night {(now - NIGHT_START) / 3600:+5.1f} h")
                print(f"  {when}: " + "; ".join(
                    f"{s.side} {'connected' if s.connected else 'away'} {s.packets} packets "
                    f"({s.backfilled} backfilled, {s.gaps_open} missing)" for s in status),
                    flush=True)
            done = now > night_end + SETTLE_S and all(s.synced for s in status)
            if done or task.done():
                break
            if time.monotonic() > deadline:
                print("  deadline reached; not arrived: " + "; ".join(
                    f"{s.side}: {'connected' if s.connected else 'not connected'}, "
                    f"{s.gaps_open} packets still missing, newest sample "
                    + ("none" if s.last_packet_time is None else
                       f"{(night_end - s.last_packet_time) / 60:.1f} min before the night's end")
                    + ("" if s.synced else ", still sampling or sending") for s in status)
                    + f"; {len(ingester.spool)} chunks still in the spool", flush=True)
                break
        stop.set()
        await task


@dataclass(frozen=True, slots=True)
class TruthCheck:
    """One sensor's stored samples against what it measured, by sample index: packet seqs
    start at 0 with the night, so a packet's samples follow those of all packets before it."""

    taken: int  # samples the sensor took
    stored: int  # samples stored
    matched: int  # stored at their index with the sensor's values
    missing: tuple[tuple[int, int], ...]  # runs of packet seqs not stored
    unplaced: int  # stored samples whose index is unknown (after a missing packet)
    worst_error_s: float  # largest |stored time - true time| at the same index (nan: none)

    def line(self, name: str) -> str:
        parts = [f"{name}: {self.stored} of {self.taken} samples stored",
                 f"{self.matched} at their sample index with the sensor's values"]
        if self.missing:
            runs = ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in self.missing[:10])
            parts.append(f"packets not stored: {runs}{' ...' if len(self.missing) > 10 else ''}")
        if self.matched < self.taken:
            parts.append(f"{self.taken - self.matched} samples missing or wrong")
        if self.unplaced:
            parts.append(f"{self.unplaced} stored after a missing packet, not checked")
        if not math.isnan(self.worst_error_s):
            parts.append(f"worst timestamp error {self.worst_error_s * 1000:.1f} ms")
        return ", ".join(parts)


def compare_with_truth(chunks: list[Chunk], truth_time: np.ndarray,
                       truth_accel: np.ndarray) -> TruthCheck:
    """Check one sensor's chunks (one session, seq order, as `read_chunks` gives them) against
    its truth (time, g per sample index)."""
    taken = len(truth_time)
    missing: list[tuple[int, int]] = []
    k = next_seq = matched = unplaced = stored = 0
    worst = math.nan
    for chunk in chunks:
        n = len(chunk.counts)
        stored += n
        if chunk.seq != next_seq:
            missing.append((next_seq, chunk.seq - 1))
        next_seq = chunk.seq + 1
        if missing or k + n > taken:
            unplaced += n
            continue
        at = slice(k, k + n)
        g = chunk.counts.astype(np.float64) / chunk.counts_per_g
        matched += int((np.abs(g - truth_accel[at]) <= VALUE_TOLERANCE_G).all(axis=1).sum())
        error = float(np.max(np.abs(chunk.t0 + np.arange(n) * chunk.dt - truth_time[at])))
        worst = error if math.isnan(worst) else max(worst, error)
        k += n
    return TruthCheck(taken, stored, matched, tuple(missing), unplaced, worst)


def check_against_truth(store_url: str, out_dir: Path) -> list[str]:
    """One line per sensor: the samples it took against those stored, matched by (sensor,
    sample index), and the worst timestamp error (`TruthCheck`)."""
    lines = []
    sensors = load_config(out_dir / "gateway.toml").sensors
    with open_samples(store_url, create=False) as store:
        for sensor in sensors:
            truth_path = out_dir / f"{sensor.side}.csv"
            if not truth_path.exists():
                lines.append(f"{sensor.side}: no {truth_path} (the simulator did not finish)")
                continue
            truth = read_recording_csv(truth_path, sensor.side)
            chunks = store.read_chunks(sensor.serial)
            sessions = {c.session for c in chunks}
            if len(sessions) > 1:
                lines.append(f"{sensor.side}: chunks of {len(sessions)} sensor sessions stored; "
                             "only the first is checked")
            first = [c for c in chunks if c.session == min(sessions, default=0)]
            check = compare_with_truth(first, truth.time, truth.accel)
            lines.append(check.line(sensor.side))
    return lines
