"""Issue 6 acceptance: faults a home night brings, with real `limbwatch sim` and `limbwatch
ingest` processes in compressed time (120x). Each run ends by matching every stored sample with
what the sensor measured, by (sensor, sample index) (`app.demo.compare_with_truth`).

- The simulator (the sensors and their radio) is SIGKILLed mid-night and restarted 25 s later
  (the gateway's link backoff of 1, 2, 4, 8, 15 s finds it again 30 s, an hour of the night,
  after the kill, or 15 s later on a loaded machine);
  after the night it is frozen (SIGSTOP) for 12 s, so that requests get no reply at all (a
  frozen adapter or a hung sensor), and thawed. The gateway stays
  up, logs the outage as device events, and loses nothing the sensors' flash holds. (A restarted
  simulator renders the same flash: the same seqs hold the same samples as long as the first
  run formed no packet before an MTU exchange, hence the lead-in and no drop before the kill;
  a stored conflict would show that this did not hold.)
- The ingester's files may not grow past 1 MiB (RLIMIT_FSIZE, set in the child), so the spool
  and the store fail with the disk "full"; then the limit is lifted (prlimit on the running
  process). Meanwhile a second ingester on the same spool is refused with status 5. At the end
  one stored chunk is damaged on disk, and reading detects and skips it.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from app.demo import TruthCheck, compare_with_truth
from limbwatch.config import SensorEntry, gateway_toml
from limbwatch.recording import read_recording_csv
from limbwatch.simclock import SimClock
from limbwatch.store.sqlite import SqliteSampleStore

SPEED = 120.0
START = 1795203000.0
ROOT = str(Path(__file__).parent.parent)
ENV = {**os.environ, "PYTHONPATH": ROOT}
SENSORS = (("left", "LW0011L"), ("right", "LW0011R"))
# Real s from the simulator's SIGKILL to its restart: up (a few s) before the gateway's attempt
# 30 s after the kill, which a restart after 30 s misses (the next is 15 s later)
RESTART_AFTER_S = 25.0


def rig(hours: float) -> str:
    return f"""
scenario = "healthy_child"
seed = 4
duration_h = {hours}

[[sensors]]
serial = "LW0011L"
side = "left"
drift_ppm = 25.0

[[sensors]]
serial = "LW0011R"
side = "right"
drift_ppm = -35.0
"""


class Night:
    """A simulator and gateways on one rig, in `tmp`, sharing the simulator's clock."""

    def __init__(self, tmp: Path, hours: float, lead_in_s: float) -> None:
        self.tmp, self.hours = tmp, hours
        (tmp / "rig.toml").write_text(rig(hours))
        with socket.socket() as s:  # a fixed port, so that a restarted simulator has it too
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.anchor = time.time() + lead_in_s
        self.config = tmp / "gateway.toml"
        self.config.write_text(gateway_toml(
            store="store.db", spool="spool.db", transport=f"tcp-client:127.0.0.1:{self.port}",
            sync_interval_s=60, clock=SimClock(start=START, speed=SPEED, anchor=self.anchor),
            sensors=[SensorEntry("kid", side, serial, serial) for side, serial in SENSORS]))
        self.log = tmp / "ingest.log"
        self.end = self.anchor + hours * 3600 / SPEED  # real time of the night's end

    def sim(self) -> subprocess.Popen[str]:
        sim = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "sim", "--rig", str(self.tmp / "rig.toml"),
             "--speed", str(SPEED), "--start", str(START), "--anchor", str(self.anchor),
             "--port", str(self.port), "--truth-dir", str(self.tmp / "truth")],
            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True)
        assert sim.stdout is not None and sim.stdout.readline().startswith("HCI tcp://")
        return sim

    def ingest(self, max_file_bytes: int | None = None) -> subprocess.Popen[bytes]:
        """`limbwatch ingest`, its output copied into `log` by this process (a file-size limit
        of the child must not cut its log)."""
        def limit() -> None:
            if max_file_bytes is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, resource.RLIM_INFINITY))

        child = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "ingest", "--config", str(self.config),
             "--log-every", "5"],
            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            preexec_fn=limit)
        assert child.stdout is not None
        out = child.stdout

        def copy() -> None:
            with self.log.open("ab") as log:
                for line in out:
                    log.write(line)
                    log.flush()

        threading.Thread(target=copy, daemon=True).start()
        return child

    def stored(self) -> int:
        db = self.tmp / "store.db"
        if not db.exists():
            return 0
        with SqliteSampleStore(db, create=False) as store:
            return sum(store.read_samples("kid", side, START - 600, START + 86400).time.size
                       for side, _ in SENSORS)

    def wait_complete(self, deadline_s: float) -> None:
        """Until the night is over and every sample taken is stored (or the deadline)."""
        expected = 2 * round(self.hours * 3600 * 50)
        while time.time() < self.end + deadline_s:
            if time.time() > self.end + 2 and self.stored() >= expected:
                return
            time.sleep(1.0)

    def checks(self) -> dict[str, TruthCheck]:
        with SqliteSampleStore(self.tmp / "store.db", create=False) as store:
            assert store.conflicts() == []  # the restarted simulator reproduced the flash
            return {side: compare_with_truth(store.read_chunks(serial), truth.time, truth.accel)
                    for side, serial in SENSORS
                    for truth in [read_recording_csv(self.tmp / "truth" / f"{side}.csv", side)]}

    def events(self) -> list[tuple[str, str, float, dict[str, object]]]:
        with closing(sqlite3.connect(self.tmp / "store.db")) as db:
            return [(side, kind, t, json.loads(detail)) for side, kind, t, detail in db.execute(
                "SELECT side, kind, time, detail FROM device_events ORDER BY id")]


def stop(process: subprocess.Popen[bytes], log: Path) -> float:
    """SIGTERM; the real seconds until it exited (with status 0)."""
    t = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0, log.read_text()[-3000:]
    return time.monotonic() - t


def assert_every_sample_stored_once(checks: dict[str, TruthCheck], log: Path) -> None:
    for side, check in checks.items():
        assert check.taken > 0 and check.stored == check.matched == check.taken, (
            side, check.line(side), log.read_text()[-3000:])
        assert not check.missing and not check.unplaced
        # Timing is checked to 20 ms in test_ingest_e2e (one process, 15x); across processes at
        # 120x the emulated link's real latency times the speed biases the clock fit.
        assert check.worst_error_s < 2.0, check.line(side)


def test_simulator_killed_restarted_and_frozen_loses_nothing(tmp_path: Path) -> None:
    night = Night(tmp_path, hours=1.75, lead_in_s=8.0)  # 52.5 s of real time
    sim = night.sim()
    ingest = night.ingest()
    try:
        time.sleep(max(0.0, night.anchor + 16 - time.time()))  # 32 min into the night
        before = night.stored()
        sim.send_signal(signal.SIGKILL)  # the sensors and their radio vanish
        sim.wait(10)
        killed_at = time.time()
        time.sleep(RESTART_AFTER_S)
        assert ingest.poll() is None, night.log.read_text()[-3000:]  # the gateway stays up
        sim = night.sim()  # 25 s (50 min of the night) later
        night.wait_complete(deadline_s=60)
        sim.send_signal(signal.SIGSTOP)  # alive but silent: no reply to anything
        time.sleep(12)
        sim.send_signal(signal.SIGCONT)
        deadline = time.time() + 40
        while time.time() < deadline and [k for _, k, _, _ in night.events()].count(
                "reconnected") < 4:
            time.sleep(0.25)
        assert ingest.poll() is None
        stopped_in = stop(ingest, night.log)
    finally:
        if ingest.poll() is None:
            ingest.kill()
        sim.send_signal(signal.SIGCONT)
        sim.send_signal(signal.SIGTERM)
        sim.wait(60)
    assert before > 0 and stopped_in < 5.0
    assert_every_sample_stored_once(night.checks(), night.log)
    log = night.log.read_text()
    assert "cannot open the Bumble transport" in log  # the radio was gone, and retried
    assert "no answer to" in log  # the frozen simulator: requests failed within 5 s
    events = night.events()
    for side, _ in SENSORS:
        # the link's story (a "synced" may come in it: the night is complete before the freeze)
        kinds = [(kind, t, detail) for s, kind, t, detail in events
                 if s == side and kind != "synced"]
        assert [k for k, _, _ in kinds] == [  # killed, frozen, stopped
            "connected", "disconnected", "reconnected", "disconnected", "reconnected",
            "disconnected"]
        (_, lost, why), (_, back, gap) = kinds[1], kinds[2]
        assert abs(lost - (START + (killed_at - night.anchor) * SPEED)) < 60, why
        assert gap["gap_s"] == pytest.approx(back - lost)
        assert float(gap["gap_s"]) > RESTART_AFTER_S * SPEED
        assert int(gap["missing"]) > 0  # what the outage cost, backfilled from flash


def test_full_spool_disk_then_freed_second_gateway_refused_damaged_chunk_skipped(
    tmp_path: Path,
) -> None:
    night = Night(tmp_path, hours=0.75, lead_in_s=4.0)  # 22.5 s of real time
    sim = night.sim()
    ingest = night.ingest(max_file_bytes=1 << 20)
    try:
        time.sleep(max(0.0, night.anchor + 8 - time.time()))
        second = subprocess.run(
            [sys.executable, "-m", "app.cli", "ingest", "--config", str(night.config)],
            cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60, check=False)
        time.sleep(max(0.0, night.anchor + 14 - time.time()))
        kept = night.stored()
        resource.prlimit(ingest.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))  # space again
        night.wait_complete(deadline_s=60)
        assert ingest.poll() is None
        stop(ingest, night.log)
    finally:
        if ingest.poll() is None:
            ingest.kill()
        sim.send_signal(signal.SIGTERM)
        sim.wait(60)
    log = night.log.read_text()
    assert "holding" in log and "retrying" in log and "writable again" in log  # spool full
    assert kept > 0  # it kept what fitted meanwhile
    assert second.returncode == 5, second.stderr
    assert f"in use by another gateway (pid {ingest.pid}" in second.stderr
    checks = night.checks()
    assert_every_sample_stored_once(checks, night.log)

    db = tmp_path / "store.db"  # a stored chunk damaged on disk, one byte flipped
    with closing(sqlite3.connect(db)) as other, other:
        (seq, blob) = other.execute(
            "SELECT seq, counts FROM chunks WHERE device = 'LW0011L' ORDER BY seq "
            "LIMIT 1 OFFSET 100").fetchone()
        other.execute("UPDATE chunks SET counts = ? WHERE device = 'LW0011L' AND seq = ?",
                      (bytes([blob[0] ^ 1]) + blob[1:], seq))
    with SqliteSampleStore(db, create=False) as store:
        got = store.read_samples("kid", "left", START - 600, START + 86400)
        assert got.damaged == 1 and got.time.size == checks["left"].taken - len(blob) // 6
        assert [c.seq for c in store.read_chunks("LW0011L")].count(seq) == 0
