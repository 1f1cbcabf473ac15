"""`limbwatch analyze` end to end on a night of CSV files: wall time split and peak memory.

Simulates a night (default: 10 h, two legs, 50 Hz, `healthy_child`), writes the two CSV files
with `limbwatch simulate`, then
- runs `limbwatch analyze --left --right -o` in a fresh process `--repeat` times: wall time and
  peak RSS (the child's ru_maxrss), median;
- runs the same steps in a fresh process with a clock and the peak RSS after each: interpreter
  start-up, imports, reading each CSV file, the analysis, the report JSON, writing it.

    python bench/bench_cli.py [--hours 10] [--scenario healthy_child] [--repeat 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = r"""
import json, resource, sys, time
t = [time.perf_counter()]
rss = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]
def mark():
    t.append(time.perf_counter())
    rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
import app.cli  # noqa: F401  (what `limbwatch` imports first)
from analysis.night import analyze_night
from limbwatch.recording import read_recording_csv
mark()
left = read_recording_csv(sys.argv[1], "left"); mark()
right = read_recording_csv(sys.argv[2], "right"); mark()
result = analyze_night([left, right]); mark()
text = result.to_report().model_dump_json(indent=2); mark()
open(sys.argv[3], "w").write(text); mark()
print(json.dumps({"t": [b - a for a, b in zip(t, t[1:])], "rss": rss}))
"""
NAMES = ("imports", "read left CSV", "read right CSV", "analyze_night", "report JSON", "write")


# Runs its arguments as a child and prints that child's peak RSS (MB): the wrapper is a fresh
# process, so RUSAGE_CHILDREN is that one child's.
WRAP = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")


def child_run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds (with the wrapper's own start-up, about 0.04 s) and peak RSS (MB) of one
    fresh child process, and its standard output (less the wrapper's last line)."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", WRAP, *cmd], env=env, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()
    return time.perf_counter() - t, float(out[-1]), "\n".join(out[:-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hours", type=float, default=10.0)
    ap.add_argument("--scenario", default="healthy_child")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, help="keep the CSV files here (default: a temporary one)")
    args = ap.parse_args()
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench_cli_"))
    left, right = work / "left.csv", work / "right.csv"
    if not (left.exists() and right.exists()):
        subprocess.run([sys.executable, "-m", "app.cli", "simulate", args.scenario, "--seed", "1",
                        "--hours", str(args.hours), "-o", str(work)], env=env, check=True,
                       capture_output=True)
    mb = (left.stat().st_size + right.stat().st_size) / 1e6
    print(f"night: {args.scenario}, {args.hours:g} h, two legs, CSV {mb:.0f} MB; "
          f"median of {args.repeat} fresh processes")
    out = work / "report.json"
    cli = [sys.executable, "-m", "app.cli", "analyze", "--left", str(left), "--right", str(right),
           "-o", str(out)]
    runs = [child_run(cli, env) for _ in range(args.repeat)]
    start_up = statistics.median(
        time_s for time_s, _, _ in (child_run([sys.executable, "-c", "pass"], env)
                                    for _ in range(args.repeat)))
    walls, peaks = [r[0] for r in runs], [r[1] for r in runs]
    print(f"limbwatch analyze: {statistics.median(walls):.2f} s wall, peak RSS "
          f"{statistics.median(peaks):.0f} MB (max {max(peaks):.0f})")
    splits = []
    for _ in range(args.repeat):
        _, _, text = child_run([sys.executable, "-c", STEPS, str(left), str(right), str(out)], env)
        splits.append(json.loads(text.strip().splitlines()[-1]))
    print(f"{'step':<16} {'seconds':>8} {'peak RSS after, MB':>19}")
    print(f"{'python start-up':<16} {start_up:>8.2f}   (a bare interpreter, with the wrapper)")
    for k, name in enumerate(NAMES):
        sec = statistics.median(s["t"][k] for s in splits)
        rss = statistics.median(s["rss"][k + 1] for s in splits)
        print(f"{name:<16} {sec:>8.2f} {rss:>19.0f}")
    total = start_up + sum(statistics.median(s["t"][k] for s in splits) for k in range(len(NAMES)))
    print(f"{'total':<16} {total:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
