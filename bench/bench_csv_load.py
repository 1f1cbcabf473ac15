"""Time read_recording_csv on a synthetic night, with numpy.loadtxt as the baseline.

    python bench/bench_csv_load.py [--hours 10 --fs 100]

Writes a CSV of that size (Unix-seconds times, 4-decimal g values) to a temporary directory, reads
it three times with read_recording_csv (median reported), and reads a 10x smaller file with
numpy.loadtxt, scaled up by 10, as the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from limbwatch.recording import read_recording_csv

START_S = 1_795_203_000.0  # 2026-11-20T19:30:00Z


def write_synthetic_csv(path: Path, n_rows: int, fs: float) -> None:
    """Write `n_rows` rows of time,x,y,z at `fs` Hz: noise around gravity, rounded like a device."""
    rng = np.random.default_rng(0)
    accel = rng.normal([0.02, -0.44, 0.89], 0.05, size=(n_rows, 3)).round(4)
    table = pa.table(
        {
            "time": np.round(START_S + np.arange(n_rows) / fs, 3),
            "x": accel[:, 0],
            "y": accel[:, 1],
            "z": accel[:, 2],
        }
    )
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="none"))


def seconds(action: Callable[[], object]) -> float:
    """Wall-clock seconds taken by calling `action`."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=10.0, help="recording length, h")
    parser.add_argument("--fs", type=float, default=100.0, help="sample rate, Hz")
    args = parser.parse_args()
    n_rows = round(args.hours * 3600 * args.fs)

    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "night.csv"
        slice_ = Path(tmp) / "slice.csv"
        write_synthetic_csv(full, n_rows, args.fs)
        write_synthetic_csv(slice_, n_rows // 10, args.fs)
        size_mb = full.stat().st_size / 1e6

        runs = [seconds(lambda: read_recording_csv(full, "left")) for _ in range(3)]
        median_s = statistics.median(runs)
        loadtxt_s = 10 * seconds(lambda: np.loadtxt(slice_, delimiter=",", skiprows=1))

    print(f"file: {n_rows:,} rows, {size_mb:.0f} MB ({args.hours:g} h at {args.fs:g} Hz)")
    print(f"read_recording_csv: median {median_s:.3f} s of 3, {n_rows / median_s:,.0f} rows/s")
    print(f"numpy.loadtxt (1/10 slice x 10): {loadtxt_s:.3f} s, {n_rows / loadtxt_s:,.0f} rows/s")
    print(f"speed-up over loadtxt: {loadtxt_s / median_s:.1f}x")


if __name__ == "__main__":
    main()
