"""API benchmark: a store of 30 nights for 3 children, `limbwatch serve` in its own process,
`wrk` (Debian's) on loopback with 50 connections for a bounded time per endpoint: requests/s
and p50/p99 for the morning report, a night's events and a 2000-point signal window (the report
and the window also as gzip, asked for as browsers do), with one server process and with two.

Samples: 8 h per night at 25 Hz per leg (two legs), noise around 1 g, in 250-sample chunks.
Reports and events: one simulated hour analysed for real, stored for each of the 30 nights
(the API serves stored text, so their content does not change the cost)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
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
from limbwatch.report import iso_ms
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


def build(path: Path) -> tuple[str, int, float]:
    """The store; (an admin token, a night id, its start in Unix s)."""
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
    chosen = records.nights("child-1")[3]
    samples.close()
    records.close()
    return secret, chosen.id, chosen.start


def wrk(url: str, token: str, seconds: int, gzip: bool = False) -> dict[str, float]:
    """wrk's figures for `url`; with `gzip`, asking for it as browsers do."""
    extra = ["-H", "Accept-Encoding: gzip"] if gzip else []
    out = subprocess.run(
        ["wrk", "-t2", "-c50", f"-d{seconds}s", "--latency", "-H",
         f"Authorization: Bearer {token}", *extra, url],
        capture_output=True, text=True, check=True).stdout
    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": ms("50%"), "p99_ms": ms("99%"),
            "non_2xx": float(errors.group(1)) if errors else 0.0,
            "bytes": float(answer_size(url, token, gzip))}


def answer_size(url: str, token: str, gzip: bool) -> int:
    """The body's size in bytes as sent (compressed if the answer was)."""
    headers = {"Authorization": f"Bearer {token}", **({"Accept-Encoding": "gzip"} if gzip else {})}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as answer:
        return len(answer.read())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=int, default=10, help="per endpoint (default 10)")
    p.add_argument("--workers", default="1,2",
                   help="server processes (`serve --workers`), a run for each (default 1,2)")
    args = p.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_api: needs wrk (apt-get install wrk)")
    folder = Path(tempfile.mkdtemp(prefix="limbwatch-bench-api-"))
    started = time.perf_counter()
    token, night, night_start = build(folder / "limbwatch.db")
    print(f"store: 3 children x 10 nights x {HOURS:g} h x 2 legs at {FS:g} Hz, built in "
          f"{time.perf_counter() - started:.0f} s")
    # one hour from 1.5 h into the night: 90,000 samples per leg into 2000 buckets
    start, end = iso_ms(night_start + 5400), iso_ms(night_start + 9000)
    try:
        for workers in (int(w) for w in args.workers.split(",")):
            with served(folder / "limbwatch.db", workers=workers) as base:
                print(f"serve --workers {workers} (load average {os.getloadavg()[0]:.1f}):")
                for name, url, gzip in (
                    ("report", f"{base}/api/v1/nights/{night}/report", False),
                    ("report, gzip", f"{base}/api/v1/nights/{night}/report", True),
                    ("events", f"{base}/api/v1/nights/{night}/events", False),
                    *[(f"signal 2000 pts{', gzip' if gzip else ''}",
                       f"{base}/api/v1/nights/{night}/signal?side=left&points=2000"
                       f"&start={start}&end={end}", gzip) for gzip in (False, True)],
                ):
                    r = wrk(url, token, args.seconds, gzip)
                    print(f"  {name:21} {r['rps']:6.0f} req/s  p50 {r['p50_ms']:6.1f} ms  "
                          f"p99 {r['p99_ms']:6.1f} ms  {r['bytes'] / 1000:6.1f} kB  "
                          f"non-2xx {r['non_2xx']:.0f}")
    finally:
        shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
