"""The README's main command end to end: `limbwatch demo` (what `make demo` runs) collects a
simulated night over BLE with radio faults, analyses it, prints the dashboard's address and a
token on lines of their own, serves the night with that token, and ends cleanly on Ctrl-C.

A half-hour night at 600x keeps it to about half a minute; the full 9-h night is `make demo`."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

RIG = """
scenario = "mild_plms"
seed = 7
duration_h = 0.5

[[sensors]]
serial = "LW0001L"
side = "left"
drift_ppm = 35.0
faults = [
    { kind = "drop", at_s = 600.0 },
    { kind = "out_of_range", at_s = 900.0, until_s = 1000.0 },
    { kind = "lose", value = 0.01 },
    { kind = "duplicate", value = 0.002 },
    { kind = "reorder", value = 0.002 },
    { kind = "corrupt", value = 0.001 },
]

[[sensors]]
serial = "LW0002R"
side = "right"
drift_ppm = -20.0
faults = [{ kind = "drop", at_s = 1200.0 }, { kind = "lose", value = 0.01 }]
"""
SAMPLES = 90_000  # 0.5 h at 50 Hz per leg
START_S = 240.0  # until the token is printed (about 30 s on an idle 2-core machine)


def lines_of(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    out: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    return out


def until_token(out: queue.Queue[str], proc: subprocess.Popen[str]) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + START_S
    while not any(line.startswith("Token: ") for line in seen):
        try:
            seen.append(out.get(timeout=max(0.1, deadline - time.monotonic())))
        except queue.Empty:
            raise AssertionError(f"no token within {START_S} s (exit {proc.poll()}):\n"
                                 + "\n".join(seen)) from None
    return seen


def test_demo_collects_analyses_and_serves_the_night_with_the_printed_token(
        tmp_path: Path) -> None:
    rig = tmp_path / "rig.toml"
    rig.write_text(RIG)
    out_dir = tmp_path / "demo"
    log = (tmp_path / "stderr.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "demo", "--rig", str(rig), "--port", "0",
         "-o", str(out_dir)], stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        printed = until_token(lines_of(proc), proc)
        for side in ("left", "right"):
            assert any(line.strip().startswith(f"{side}: {SAMPLES} of {SAMPLES} samples stored")
                       for line in printed), printed
        assert any("ready, algorithm" in line for line in printed), printed
        url = next(line for line in printed if line.startswith("Dashboard: ")).split()[1]
        token = printed[-1].split()[1]

        assert httpx.get(f"{url}healthz").status_code == 200
        answer = httpx.get(f"{url}api/v1/nights/1/report",
                           headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        report = answer.json()
        written = json.loads((out_dir / "report.json").read_text())
        assert report.pop("algorithm_version") and report == written
        assert httpx.get(f"{url}api/v1/nights/1/report").status_code == 401
        page = httpx.get(url)
        assert page.status_code == 303 and "login" in page.headers["location"]

        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
