"""Issue 3 acceptance: the ingester process is killed (SIGKILL) mid-night and restarted. Real
processes: `limbwatch sim` serves two sensors over its emulated radio, `limbwatch ingest`
collects them through bleak. Nothing may be lost and nothing duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from limbwatch.config import SensorEntry, gateway_toml
from limbwatch.recording import read_recording_csv
from limbwatch.simclock import SimClock
from limbwatch.store.sqlite import SqliteSampleStore

SPEED = 60.0
START = 1795203000.0
RIG = """
scenario = "healthy_child"
seed = 3
duration_h = 0.5

[[sensors]]
serial = "LW0009L"
side = "left"
drift_ppm = 20.0
faults = [{ kind = "lose", value = 0.01 }]

[[sensors]]
serial = "LW0009R"
side = "right"
drift_ppm = -40.0
"""


def gateway(endpoint: str, anchor: float) -> str:
    return gateway_toml(
        store="store.db", spool="spool.db", transport=f"tcp-client:{endpoint}",
        sync_interval_s=60, clock=SimClock(start=START, speed=SPEED, anchor=anchor),
        sensors=[SensorEntry("kid", side, serial, serial)
                 for side, serial in (("left", "LW0009L"), ("right", "LW0009R"))],
    )


def start_ingest(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "app.cli", "ingest", "--config",
                             str(config), "--log-every", "2"],
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def stored(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    with SqliteSampleStore(db, create=False) as store:
        return {side: store.read_samples("kid", side, START - 60, START + 7200).time.size
                for side in ("left", "right")}


def test_killed_ingester_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    (tmp_path / "rig.toml").write_text(RIG)
    anchor = time.time() + 3.0
    sim = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "sim", "--rig", str(tmp_path / "rig.toml"),
         "--speed", str(SPEED), "--start", str(START), "--anchor", str(anchor),
         "--truth-dir", str(tmp_path / "truth")],
        stdout=subprocess.PIPE, text=True)
    ingest = None
    try:
        assert sim.stdout is not None
        endpoint = sim.stdout.readline().strip().removeprefix("HCI tcp://")
        config = tmp_path / "gateway.toml"
        config.write_text(gateway(endpoint, anchor))
        log = tmp_path / "ingest.log"
        ingest = start_ingest(config, log)
        time.sleep(3.0 + 0.4 * 1800 / SPEED)  # 40 % into the night
        before = stored(tmp_path / "store.db")
        ingest.send_signal(signal.SIGKILL)
        ingest.wait(10)
        time.sleep(3.0)  # the sensors go on sampling into flash meanwhile
        ingest = start_ingest(config, log)
        night_end = anchor + 1800 / SPEED
        deadline = night_end + 90
        expected = 1800 * 50
        while time.time() < deadline and not (
                time.time() > night_end + 5
                and all(n >= expected for n in stored(tmp_path / "store.db").values())):
            time.sleep(1.0)
        ingest.send_signal(signal.SIGTERM)
        assert ingest.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if ingest is not None and ingest.poll() is None:
            ingest.kill()
        sim.send_signal(signal.SIGTERM)
        sim.wait(60)
    assert before and all(n > 0 for n in before.values())  # it was killed mid-stream
    with SqliteSampleStore(tmp_path / "store.db", create=False) as store:
        for side in ("left", "right"):
            truth = read_recording_csv(tmp_path / "truth" / f"{side}.csv", side)
            got = store.read_samples("kid", side, START - 60, START + 7200)
            assert got.time.size == truth.time.size, (side, log.read_text()[-3000:])
            assert np.allclose(got.accel, truth.accel, rtol=0, atol=1e-6)  # CSV: 6 decimals
            # Timing is checked to 20 ms in test_ingest_e2e (one process). Here the TIME_SYNC
            # reply crosses TCP and queues behind data in the simulator process; that real
            # latency of a few ms, times the 60x speed, biases the clock fit by a few tenths of
            # a simulated second (README, limitations). Only order and plausibility here.
            assert (np.diff(got.time) > 0).all()
            assert np.max(np.abs(got.time - truth.time)) < 1.0
    assert os.path.exists(tmp_path / "spool-clock.json")
