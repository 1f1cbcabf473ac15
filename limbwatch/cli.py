"""The `limbwatch` command: analyze (contract section 2), simulate, demo.

Bad input ends with one line on standard error and exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ValueError, OSError) as exc:  # RecordingError and scenario errors are ValueErrors
        print(f"limbwatch: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="limbwatch", description=__doc__)
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    a = sub.add_parser("analyze", help="analyse one night from CSV files into a JSON report")
    a.add_argument("--left", type=Path, help="left ankle CSV (time,x,y,z)")
    a.add_argument("--right", type=Path, help="right ankle CSV (time,x,y,z)")
    a.add_argument("--age-months", type=float, help="the child's age, for age-aware thresholds")
    a.add_argument("--fs", type=float, help="sample rate, Hz (default: inferred from the times)")
    a.add_argument("--rules", choices=["wasm2016", "aasm"], default="wasm2016")
    a.add_argument("-o", "--output", type=Path, help="report file (default: standard output)")
    a.set_defaults(run=_analyze)

    s = sub.add_parser("simulate", help="simulate a night with ground truth into CSV files")
    s.add_argument("scenario", help="scenario name (see --list) or path to a .toml file")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--hours", type=float, help="override the scenario's duration")
    s.add_argument("-o", "--out-dir", type=Path, default=Path("out/sim"))
    s.set_defaults(run=_simulate)

    d = sub.add_parser("demo", help="simulate a night, analyse it, write report and picture")
    d.add_argument("--scenario", default="mild_plms")
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--hours", type=float, help="override the scenario's duration")
    d.add_argument("-o", "--out-dir", type=Path, default=Path("out/demo"))
    d.set_defaults(run=_demo)
    return p


def _analyze(args: argparse.Namespace) -> int:
    from analysis.night import analyze_night
    from limbwatch.recording import Side, read_recording_csv

    if args.left is None and args.right is None:
        raise ValueError("give --left, --right or both")
    legs: tuple[tuple[Side, Path | None], ...] = (("left", args.left), ("right", args.right))
    recs = [read_recording_csv(path, side, fs=args.fs) for side, path in legs if path is not None]
    report = analyze_night(recs, age_months=args.age_months, rules=args.rules)
    text = report.model_dump_json(indent=2)
    if args.output is None:
        print(text)
    else:
        args.output.write_text(text + "\n")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from firmware_sim.export import write_night
    from firmware_sim.night import simulate_night
    from firmware_sim.scenario import load_scenario

    night = simulate_night(load_scenario(args.scenario), args.seed, duration_h=args.hours)
    for name, path in write_night(night, args.out_dir).items():
        print(f"{name}: {path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from analysis.figure import draw_night
    from analysis.summary import text_summary
    from firmware_sim.export import write_night
    from firmware_sim.night import simulate_night
    from firmware_sim.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    night = simulate_night(scenario, args.seed, duration_h=args.hours)
    files = write_night(night, args.out_dir)
    report_path = args.out_dir / "report.json"
    analyze_args = ["analyze", "-o", str(report_path), "--age-months",
                    str(night.truth.age_months)]
    for side in ("left", "right"):
        if side in files:
            analyze_args += [f"--{side}", str(files[side])]
    status = main(analyze_args)
    if status:
        return status
    from limbwatch.report import NightReport

    report = NightReport.model_validate_json(report_path.read_text())
    picture = draw_night(report, args.out_dir / "night.png")
    print(f"Scenario {args.scenario} (seed {args.seed}), simulated into {args.out_dir}/")
    print(text_summary(report))
    print(f"Report: {report_path}\nPicture: {picture}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
