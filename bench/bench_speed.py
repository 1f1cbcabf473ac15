"""Speed and memory of the night analysis on one core.

A simulated 10-hour night, two legs at 100 Hz (7.2 M samples), analysed `--repeat` times; prints
the median compute time, samples/s, peak traced memory, and the same figures for a plain
reference pipeline (band-pass, magnitude, moving RMS, threshold; what any LM detector must at
least do) measured in the same run, with the ratio between them.

    python bench/bench_speed.py [--hours 10] [--fs 100] [--repeat 3]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, before numpy loads

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
from scipy import signal  # noqa: E402

from analysis.night import analyze_night  # noqa: E402
from firmware_sim.night import simulate_night  # noqa: E402
from firmware_sim.scenario import load_scenario  # noqa: E402
from limbwatch.recording import Recording, recording_from_arrays  # noqa: E402


def reference_pipeline(recs: list[Recording]) -> int:
    """Band-pass 0.5-10 Hz, magnitude, 0.25-s moving RMS, fixed threshold: count crossings."""
    found = 0
    for rec in recs:
        sos = signal.butter(2, (0.5, 10.0), "bandpass", fs=rec.fs, output="sos")
        bp = signal.sosfilt(sos, rec.accel, axis=0)
        power = np.einsum("ij,ij->i", bp, bp)
        w = round(0.25 * rec.fs)
        c = np.cumsum(power)
        rms = np.sqrt(np.maximum(c[w:] - c[:-w], 0) / w)
        above = rms > 0.01
        found += int(np.count_nonzero(above[1:] & ~above[:-1]))
    return found


def measure(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall seconds over `repeat` runs, and peak traced memory (MB) of one more run."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return statistics.median(times), peak


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hours", type=float, default=10.0)
    ap.add_argument("--fs", type=float, default=100.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    scenario = load_scenario("noisy_100hz" if args.fs == 100 else "healthy_child")
    night = simulate_night(scenario, 7, duration_h=args.hours)
    recs = [
        recording_from_arrays(leg.time, leg.accel, leg.side, fs=leg.fs, source=leg.side)
        for _, leg in sorted(night.legs.items())
    ]
    n = sum(r.time.size for r in recs)
    print(f"night: {args.hours:g} h, {len(recs)} legs at {recs[0].fs:g} Hz, {n / 1e6:.2f} M "
          f"samples; median of {args.repeat}, one thread")
    ref_s, ref_mb = measure(lambda: reference_pipeline(recs), args.repeat)
    lw_s, lw_mb = measure(lambda: analyze_night(recs, age_months=72).to_report(), args.repeat)
    print(f"{'pipeline':<34} {'seconds':>8} {'M samples/s':>12} {'peak MB':>8}")
    print(f"{'reference (band-pass/RMS/threshold)':<34} {ref_s:>8.3f} {n / ref_s / 1e6:>12.1f} "
          f"{ref_mb:>8.0f}")
    print(f"{'limbwatch analyze_night':<34} {lw_s:>8.3f} {n / lw_s / 1e6:>12.1f} {lw_mb:>8.0f}")
    print(f"ratio limbwatch / reference time: {lw_s / ref_s:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
