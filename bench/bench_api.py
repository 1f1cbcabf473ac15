"""API benchmark: a store of 30 nights for 3 children, `limbwatch serve` in its own process,
`wrk` (Debian's) on loopback with 50 connections for a bounded time per endpoint: requests/s
and p50/p99 for the morning report, a night's events and a 2000-point signal window.

Samples: 8 h per night at 25 Hz per leg (two legs), noise around 1 g, in 250-sample chunks.
Reports and events: one simulated hour analysed for real, stored for each of the 30 nights
(the API serves stored text, so their content does not change the cost)."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from serving import served

from analysis import ALGORITHM_VERSION
from analysis.night import analyze_night
from api.auth import make_token
from firmware_sim.night import simulate_night
from firmware_sim.scenario import load_scenario
from limbwatch.recording import Side, recording_from_arrays
from limbwatch.store.nights import refresh_nights
from limbwatch.store.records import Subject
from limbwatch.store.samples import Chunk
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore

T0 = 1795203000.0  # 2026-11-20 19:30 UTC
FS = 25.0
HOURS = 8.0
CHUNK = 250
SIDES: tuple[Side, Side] = ("left", "right")


def build(path: Path) -> tuple[str, int]:
    """The store; (an admin token, a night id)."""
    samples, records = SqliteSampleStore(path), SqliteRecordStore(path)
    sim = simulate_night(load_scenario("mild_plms"), 4, duration_h=1.0)
    recs = [recording_from_arrays(sim.legs[side].time, sim.legs[side].accel, side,
                                  fs=sim.legs[side].fs) for side in SIDES]
    result = analyze_night(recs, age_months=None)
    report = result.to_report()
    rng = np.random.default_rng(0)
    n = int(HOURS * 3600 * FS)
    for child in range(3):
        subject = Subject(f"child-{child}", f"Child {child}", None, "UTC")
        records.put_subject(subject)
        for night in range(10):
            t0 = T0 + night * 86400
            for side in SIDES:
                counts = rng.normal(0, 20, (n, 3)).astype(np.int16)
                counts[:, 2] += 2048
                samples.write_chunks([
                    Chunk(subject.id, side, f"{subject.id}-{side}", night, i, t0 + i / FS,
                          1 / FS, counts[i : i + CHUNK], 2048)
                    for i in range(0, n, CHUNK)])
        for rec in refresh_nights(samples, records, subject, time.time()):
            records.put_report(rec.id, ALGORITHM_VERSION, report.model_dump_json(),
                               asdict(result.figures()), [f.code for f in report.flags],
                               time.time(), result.events())
    secret, token = make_token("bench", "admin", None, time.time())
    records.put_token(token)
    night_id = records.nights("child-1")[3].id
    samples.close()
    records.close()
    return secret, night_id


def wrk(url: str, token: str, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", "-c50", f"-d{seconds}s", "--latency", "-H",
         f"Authorization: Bearer {token}", url], capture_output=True, text=True, check=True).stdout
    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": ms("50%"), "p99_ms": ms("99%"),
            "non_2xx": float(errors.group(1)) if errors else 0.0}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=int, default=10, help="per endpoint (default 10)")
    args = p.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_api: needs wrk (apt-get install wrk)")
    folder = Path(tempfile.mkdtemp(prefix="limbwatch-bench-api-"))
    started = time.perf_counter()
    token, night = build(folder / "limbwatch.db")
    print(f"store: 3 children x 10 nights x {HOURS:g} h x 2 legs at {FS:g} Hz, built in "
          f"{time.perf_counter() - started:.0f} s")
    try:
        with served(folder / "limbwatch.db") as base:
            start = "2026-11-23T21:00:00Z"
            end = "2026-11-23T22:00:00Z"  # one hour: 90,000 samples per leg into 2000 buckets
            for name, url in (
                ("report", f"{base}/api/v1/nights/{night}/report"),
                ("events", f"{base}/api/v1/nights/{night}/events"),
                ("signal 2000 pts", f"{base}/api/v1/nights/{night}/signal?side=left&points=2000"
                                    f"&start={start}&end={end}"),
            ):
                r = wrk(url, token, args.seconds)
                print(f"{name:16} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:7.1f} ms  "
                      f"p99 {r['p99_ms']:7.1f} ms  non-2xx {r['non_2xx']:.0f}")
    finally:
        shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
