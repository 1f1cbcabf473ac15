"""Time of each export for a simulated 10-hour two-leg night, on one core.

Prints the median over `--repeat` runs of the EDF+ export, its Luna sidecar, both CSVs, the
PDF report and the Open mHealth JSON, with the output sizes and the EDF's peak traced memory.

    python bench/bench_exports.py [--hours 10] [--fs 100] [--repeat 3]
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
from datetime import date  # noqa: E402

from analysis import ALGORITHM_VERSION  # noqa: E402
from analysis.night import analyze_night  # noqa: E402
from api.exports.edf import luna_annot, night_edf  # noqa: E402
from api.exports.omh import sleep_episode_json  # noqa: E402
from api.exports.printable import night_report_pdf  # noqa: E402
from api.exports.tables import epochs_csv, events_csv  # noqa: E402
from firmware_sim.night import simulate_night  # noqa: E402
from firmware_sim.scenario import load_scenario  # noqa: E402
from limbwatch.recording import recording_from_arrays  # noqa: E402
from limbwatch.store.records import Subject  # noqa: E402
from limbwatch.store.samples import Samples  # noqa: E402

SUBJECT = Subject("bench", "Bench Child", date(2019, 5, 1), "Europe/Berlin")


def median_s(fn: Callable[[], bytes | str], repeat: int) -> tuple[float, int]:
    """Median wall seconds over `repeat` runs, and the output's size in bytes."""
    times, size = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        size = len(out.encode() if isinstance(out, str) else out)
    return statistics.median(times), size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hours", type=float, default=10.0)
    ap.add_argument("--fs", type=float, default=100.0, help="100 (noisy_100hz) or 50 (mild_plms)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sim = simulate_night(load_scenario("noisy_100hz" if args.fs == 100 else "mild_plms"), 7,
                         duration_h=args.hours)
    legs = {leg.side: Samples(leg.time, leg.accel, leg.fs) for leg in sim.legs.values()}
    result = analyze_night([recording_from_arrays(s.time, s.accel, side, fs=s.fs, source=side)
                            for side, s in sorted(legs.items())])
    full_scale = max(leg.range_g for leg in sim.legs.values())
    n = sum(s.time.size for s in legs.values())
    print(f"night: {args.hours:g} h, {len(legs)} legs at {args.fs:g} Hz, {n / 1e6:.2f} M samples, "
          f"{len(result.events())} events; median of {args.repeat}, one thread")

    def edf() -> bytes:
        return night_edf(result, legs, full_scale_g=full_scale, subject=SUBJECT,
                         algorithm_version=ALGORITHM_VERSION)

    runs: list[tuple[str, Callable[[], bytes | str]]] = [
        ("EDF+ (night_edf)", edf),
        ("Luna .annot (luna_annot)", lambda: luna_annot(result, legs)),
        ("events.csv", lambda: events_csv(result, subject=SUBJECT,
                                          algorithm_version=ALGORITHM_VERSION)),
        ("epochs.csv", lambda: epochs_csv(result, subject=SUBJECT,
                                          algorithm_version=ALGORITHM_VERSION)),
        ("report.pdf, A4 (night_report_pdf)",
         lambda: night_report_pdf([result], subject=SUBJECT,
                                  algorithm_version=ALGORITHM_VERSION)),
        ("sleep-episode.json", lambda: sleep_episode_json(
            result, subject=SUBJECT, algorithm_version=ALGORITHM_VERSION, created=result.end)),
    ]
    print(f"{'export':<36} {'seconds':>8} {'MB':>8}")
    for name, fn in runs:
        seconds, size = median_s(fn, args.repeat)
        print(f"{name:<36} {seconds:>8.3f} {size / 1e6:>8.2f}")
    tracemalloc.start()
    edf()
    print(f"EDF+ peak traced memory: {tracemalloc.get_traced_memory()[1] / 1e6:.0f} MB")
    tracemalloc.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
