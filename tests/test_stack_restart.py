"""Issue 11 acceptance: the services as separate processes on loopback, as docker-compose runs
them (simulated sensors, the gateway, the analysis worker, the API without a worker), on a real
influxd 1.6.7 with the records in SQLite; during the night each service in turn is killed
(SIGKILL) and started again. No sample may be lost or duplicated, the night is analysed once,
and the report over HTTP is the analysis of the stored night (what an undisturbed run serves:
tests/test_service_e2e.py), but for the few ms that the clock model moves after it."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from conftest import Influxd, free_port
from reports_equal import assert_same_report
from test_ingest_restart import RIG, SPEED, START, gateway
from test_service_e2e import wait_until_ready

from analysis.night import analyze_night
from limbwatch.recording import read_recording_csv
from limbwatch.store.nights import night_recordings
from limbwatch.store.open import open_records, open_samples

QUIET_MIN = 0.1
STARTED = "analysing the nights of"  # the worker's first line
POLL_S = 1.0  # the worker's rounds (default 10 s)


class Stack:
    """The services' processes, each started again by name; logs in one file each."""

    def __init__(self, root: Path, commands: dict[str, list[str]]) -> None:
        self.root = root
        self.commands = commands
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def start(self, name: str) -> subprocess.Popen[str]:
        log = (self.root / f"{name}.log").open("a")
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", *self.commands[name]],
                                stdout=subprocess.PIPE if name == "api" else log, stderr=log,
                                text=True)
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text()


def gateway_metrics(port: int) -> dict[str, float]:
    """The gateway's Prometheus metrics: `name{labels}` -> value (labels in sorted order)."""
    text = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def api_url(stack: Stack) -> str:
    out = stack.procs["api"].stdout
    assert out is not None
    return out.readline().split()[1]


def test_killing_each_service_in_turn_loses_and_repeats_nothing(influxd: Influxd,
                                                                tmp_path: Path) -> None:
    url = influxd.store_url(tmp_path / "records.db")
    (tmp_path / "rig.toml").write_text(RIG)
    token = subprocess.run(
        [sys.executable, "-m", "app.cli", "token", "create", "--store", url, "--role", "admin",
         "--name", "ops"], capture_output=True, text=True, check=True).stdout.strip()
    anchor = time.time() + 3.0
    sim = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "sim", "--rig", str(tmp_path / "rig.toml"), "--speed",
         str(SPEED), "--start", str(START), "--anchor", str(anchor), "--truth-dir",
         str(tmp_path / "truth")], stdout=subprocess.PIPE, text=True)
    metrics_port = free_port()
    stack = Stack(tmp_path, {
        "gateway": ["ingest", "--config", str(tmp_path / "gateway.toml"), "--metrics-port",
                    str(metrics_port)],
        "worker": ["worker", "--store", url, "--quiet-min", str(QUIET_MIN), "--poll-s",
                   str(POLL_S)],
        "api": ["serve", "--store", url, "--no-worker", "--port", "0"],
    })
    night_end = anchor + 1800 / SPEED
    try:
        assert sim.stdout is not None
        endpoint = sim.stdout.readline().strip().removeprefix("HCI tcp://")
        (tmp_path / "gateway.toml").write_text(gateway(endpoint, anchor).replace(
            'path = "store.db"', f"url = {json.dumps(url)}"))
        for name in ("api", "worker", "gateway"):  # any order: each waits for what it needs
            stack.start(name)
        base = api_url(stack)

        def at(fraction: float, action: Callable[[], None]) -> None:
            time.sleep(max(0.0, anchor + fraction * 1800 / SPEED - time.time()))
            action()

        time.sleep(max(0.0, anchor + 0.25 * 1800 / SPEED - time.time()))
        scraped = gateway_metrics(metrics_port)
        at(0.3, lambda: stack.kill("gateway"))
        at(0.35, lambda: stack.start("gateway"))
        at(0.5, lambda: stack.kill("worker"))
        at(0.55, lambda: stack.start("worker"))
        at(0.7, lambda: stack.kill("api"))
        stack.start("api")
        base = api_url(stack)
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"},
                           timeout=10)
        night = wait_until_ready(api, "kid", night_end + 150)
        assert night is not None and night["status"] == "ready", (night, stack.log("worker"))
        stack.kill("worker")  # once more after the report: a restart repeats no finished work
        stack.start("worker")
        deadline = time.time() + 60
        while stack.log("worker").count(STARTED) < 3 and time.time() < deadline:
            time.sleep(0.2)  # the third start (the first round follows at once)
        assert stack.log("worker").count(STARTED) == 3, stack.log("worker")[-3000:]
        time.sleep(3 * POLL_S)  # a few rounds of the restarted worker
        served = api.get(f"/api/v1/nights/{night['id']}/report").json()
    finally:
        stack.stop_all()
        sim.send_signal(signal.SIGTERM)
        sim.wait(60)
    assert stack.log("worker").count(" analysed") == 1, stack.log("worker")[-3000:]
    # the gateway's metrics a quarter into the night: both sensors streaming, writes ok
    for serial in ("LW0009L", "LW0009R"):
        labels = f'{{serial="{serial}",side="{"left" if serial[-1] == "L" else "right"}",' \
            'subject="kid"}'
        assert scraped[f"limbwatch_gateway_packets_total{labels}"] > 0
        assert scraped[f"limbwatch_gateway_connected{labels}"] == 1
    assert scraped['limbwatch_gateway_store_write_seconds_count{outcome="ok"}'] > 0
    assert "limbwatch_gateway_spool_backlog_chunks" in scraped
    with open_samples(url) as samples, open_records(url) as records:
        stored = records.night(night["id"])
        assert stored is not None
        for side in ("left", "right"):  # every sample, once
            truth = read_recording_csv(tmp_path / "truth" / f"{side}.csv", side)
            got = samples.read_samples("kid", side, START - 60, START + 7200)
            assert got.time.size == truth.time.size and got.damaged == 0, side
            assert np.allclose(got.accel, truth.accel, rtol=0, atol=1e-6)
            assert (np.diff(got.time) > 0).all()
        direct = analyze_night(night_recordings(samples, stored))
        # the gateway said when each sensor's morning sync was complete, after its last sample
        synced = [e for e in records.device_events("kid", stored.end, math.inf)
                  if e.kind == "synced"]
        assert {e.side for e in synced} == {"left", "right"}
    expected = json.loads(direct.to_report().model_dump_json())
    assert served.pop("algorithm_version") == stored.algorithm_version
    assert_same_report(served, expected)

