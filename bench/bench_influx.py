"""Samples in SQLite and in InfluxDB side by side, in one run: write and full-night read of a
synthetic night (default 10 h, two legs at 50 Hz, chunks of 39 samples: `bench_store`), points/s
and MB on disk, and the night analysed from each store.

Starts its own Debian influxd 1.6.7 (v1 API, gzip level 1 writes) on a free loopback port with
a data folder in a temporary directory. Each of `--repeat` runs writes the night into a new
SQLite file and a new InfluxDB database (in batches of 500 chunks, as the gateway's drain does),
reads both legs back (`read_samples`), and times `analyze_night` on what each store read.
Prints medians and the ratios InfluxDB / SQLite. InfluxDB's size is its data and WAL folders
right after the writes (before compaction, which shrinks it later).

    python bench/bench_influx.py [--hours 10] [--fs 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

from bench_store import BATCH, SIDES, T0, batches, mb_on_disk, synthetic_night
from serving import influxd

from analysis.night import analyze_night
from limbwatch.recording import recording_from_arrays
from limbwatch.store.influx import init_store
from limbwatch.store.influx_http import InfluxSettings
from limbwatch.store.open import open_samples
from limbwatch.store.samples import Chunk, SampleStore


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def write(store: SampleStore, chunks: list[Chunk]) -> None:
    for batch in batches(chunks, BATCH):
        store.write_chunks(batch)


def read_legs(store: SampleStore, end: float) -> list[float]:
    """Seconds to read each leg; the samples read are checked for their number."""
    seconds = []
    for side in SIDES:
        t = time.perf_counter()
        got = store.read_samples("kid", side, T0 - 1, end)
        seconds.append(time.perf_counter() - t)
        assert got.damaged == 0 and got.time.size > 0
    return seconds


def analyse(store: SampleStore, end: float, fs: float) -> None:
    recs = []
    for side in SIDES:
        got = store.read_samples("kid", side, T0 - 1, end)
        recs.append(recording_from_arrays(got.time, got.accel, side, fs=fs))
    analyze_night(recs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--hours", type=float, default=10.0)
    p.add_argument("--fs", type=float, default=50.0)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    chunks = synthetic_night(args.hours, args.fs)
    points = sum(len(c.counts) for c in chunks)
    end = T0 + args.hours * 3600 + 60
    figures: dict[str, dict[str, list[float]]] = {"sqlite": {}, "influx": {}}

    def add(store: str, key: str, value: float) -> None:
        figures[store].setdefault(key, []).append(value)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "influxd").mkdir()
        with influxd(tmp / "influxd") as server:
            for run in range(args.repeat):
                db = tmp / f"night-{run}.db"
                name = f"bench_{uuid.uuid4().hex[:8]}"
                urls = {"sqlite": f"sqlite:{db}",
                        "influx": server.store_url(name, tmp / "records.db")}
                init_store(InfluxSettings.from_url(urls["influx"]))
                for kind, url in urls.items():
                    before = folder_mb(tmp / "influxd")
                    with open_samples(url) as store:
                        add(kind, "write_s", timed(partial(write, store, chunks)))
                        size = mb_on_disk(db) if kind == "sqlite" else \
                            folder_mb(tmp / "influxd") - before
                        add(kind, "mb", size)
                        left, right = read_legs(store, end)
                        add(kind, "read_leg_s", left)
                        add(kind, "read_leg_s", right)
                        add(kind, "analyse_s", timed(partial(analyse, store, end, args.fs)))
    med = {kind: {k: statistics.median(v) for k, v in f.items()} for kind, f in figures.items()}
    print(f"night: {args.hours:g} h, 2 legs at {args.fs:g} Hz = {points:,} points in "
          f"{len(chunks):,} chunks; medians of {args.repeat} runs")
    print(f"{'store':<8} {'write s':>8} {'points/s':>10} {'MB':>7} {'read/leg s':>11} "
          f"{'rows/s':>10} {'analyse s':>10}")
    for kind in ("sqlite", "influx"):
        m = med[kind]
        print(f"{kind:<8} {m['write_s']:8.2f} {points / m['write_s']:10,.0f} {m['mb']:7.1f} "
              f"{m['read_leg_s']:11.2f} {points / 2 / m['read_leg_s']:10,.0f} "
              f"{m['analyse_s']:10.2f}")
    i, s = med["influx"], med["sqlite"]
    print(f"InfluxDB / SQLite: write {i['write_s'] / s['write_s']:.1f}x, read "
          f"{i['read_leg_s'] / s['read_leg_s']:.1f}x, analyse (read + analysis) "
          f"{i['analyse_s'] / s['analyse_s']:.2f}x, size {i['mb'] / s['mb']:.1f}x")


if __name__ == "__main__":
    main()
