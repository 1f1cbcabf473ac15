"""The `limbwatch` command: analyze (contract section 2), nights, simulate, demo, sim, ingest.

Bad input ends with one line on standard error and exit status 2; a store that cannot be used
now (locked, read-only, disk full) with one line and exit status 3 (try again later); no traceback.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from limbwatch.recording import Recording
    from limbwatch.store import Night, Store

EXIT_BAD_INPUT = 2
EXIT_STORE_UNAVAILABLE = 3


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("sim", "ingest"):  # services with their own options
        if argv[0] == "sim":
            from firmware_sim.simulator import main as service
        else:
            from ingest.gateway import main as service
        return service(argv[1:])
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ValueError, OSError) as exc:  # RecordingError and scenario errors are ValueErrors
        print(f"limbwatch: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RuntimeError as exc:
        from limbwatch.store import StoreUnavailable

        if not isinstance(exc, StoreUnavailable):
            raise
        print(f"limbwatch: {exc}", file=sys.stderr)
        return EXIT_STORE_UNAVAILABLE


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="limbwatch", description=__doc__)
    sub = p.add_subparsers(required=True, metavar="COMMAND")
    sub.add_parser("sim", add_help=False,
                   help="run simulated sensors on an emulated BLE radio (see: sim --help)")
    sub.add_parser("ingest", add_help=False,
                   help="collect sensors over BLE into the store (see: ingest --help)")

    a = sub.add_parser(
        "analyze", help="analyse one night from CSV files or a store into a JSON report"
    )
    a.add_argument("--left", type=Path, help="left ankle CSV (time,x,y,z)")
    a.add_argument("--right", type=Path, help="right ankle CSV (time,x,y,z)")
    a.add_argument("--store", type=Path, metavar="DB",
                   help="read both legs from this store instead (the report is stored too)")
    a.add_argument("--subject", metavar="NAME", help="with --store: whose night")
    which = a.add_mutually_exclusive_group()
    which.add_argument("--night", type=int, metavar="N",
                       help="with --store: night index as `limbwatch nights` lists it, "
                       "negative from the latest (default: the latest)")
    which.add_argument("--night-start", metavar="ISO",
                       help="with --store: the night containing this time, e.g. its start")
    a.add_argument("--age-months", type=float, help="the child's age, for age-aware thresholds")
    a.add_argument("--fs", type=float, help="sample rate, Hz (default: inferred from the times)")
    a.add_argument("--rules", choices=["wasm2016", "aasm"], default="wasm2016")
    a.add_argument("-o", "--output", type=Path, help="report file (default: standard output)")
    a.set_defaults(run=_analyze)

    n = sub.add_parser("nights", help="list a subject's nights in a store")
    n.add_argument("--store", type=Path, metavar="DB", required=True)
    n.add_argument("--subject", metavar="NAME", required=True)
    n.set_defaults(run=_nights)

    s = sub.add_parser("simulate", help="simulate a night with ground truth into CSV files")
    s.add_argument("scenario", help="scenario name (see --list) or path to a .toml file")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--hours", type=float, help="override the scenario's duration")
    s.add_argument("-o", "--out-dir", type=Path, default=Path("out/sim"))
    s.set_defaults(run=_simulate)

    d = sub.add_parser("demo", help="simulated sensors -> BLE -> ingest -> store -> analysis")
    d.add_argument("--rig", type=Path,
                   help="rig file of the simulated sensors (default firmware_sim/rigs/demo.toml)")
    d.add_argument("--speed", type=float, default=600.0,
                   help="how much faster than real time the night runs (default 600)")
    d.add_argument("-o", "--out-dir", type=Path, default=Path("out/demo"))
    d.set_defaults(run=_demo)
    return p


def _analyze(args: argparse.Namespace) -> int:
    from analysis.night import analyze_night
    from limbwatch.recording import Side, read_recording_csv

    if args.store is not None:
        return _analyze_store(args)
    if args.subject is not None or args.night is not None or args.night_start is not None:
        raise ValueError("--subject, --night and --night-start go with --store")
    if args.left is None and args.right is None:
        raise ValueError("give --left, --right or both (or --store and --subject)")
    legs: tuple[tuple[Side, Path | None], ...] = (("left", args.left), ("right", args.right))
    recs = [read_recording_csv(path, side, fs=args.fs) for side, path in legs if path is not None]
    report = analyze_night(recs, age_months=args.age_months, rules=args.rules)
    _emit(report.model_dump_json(indent=2), args.output)
    return 0


def _analyze_store(args: argparse.Namespace) -> int:
    """analyze --store: read the chosen night's legs from the store, report, store the report."""
    from analysis.night import analyze_night
    from limbwatch.sqlite_store import SqliteStore

    if args.left is not None or args.right is not None:
        raise ValueError("give --left/--right or --store, not both")
    if args.subject is None:
        raise ValueError("--store needs --subject")
    with SqliteStore(args.store, create=False) as store:
        night = _pick_night(store, args)
        recs = _night_recordings(store, night, args)
        report = analyze_night(recs, age_months=args.age_months, rules=args.rules)
        text = report.model_dump_json(indent=2)
        store.write_report(args.subject, night.start, text)
    _emit(text, args.output)
    return 0


def _pick_night(store: Store, args: argparse.Namespace) -> Night:
    """The night that --night or --night-start names (default: the latest), or ValueError."""
    nights = store.nights(args.subject)
    where = f"{args.store}: subject {args.subject!r}"
    if not nights:
        raise ValueError(f"{where} has no data")
    if args.night_start is not None:
        t = _parse_time(args.night_start, "--night-start")
        for night in nights:
            if night.start - 0.001 <= t <= night.end:  # 1 ms: starts are listed rounded to ms
                return night
        raise ValueError(f"{where} has no night at {args.night_start} (see `limbwatch nights`)")
    index = -1 if args.night is None else args.night
    if not -len(nights) <= index < len(nights):
        raise ValueError(
            f"{where} has no night {index}; its nights are 0-{len(nights) - 1} "
            "(see `limbwatch nights`)"
        )
    return nights[index]


def _night_recordings(store: Store, night: Night, args: argparse.Namespace) -> list[Recording]:
    """Each leg of `night` read from the store as a validated Recording."""
    from limbwatch.recording import recording_from_arrays

    recs = []
    for side in night.sides:
        samples = store.read_samples(args.subject, side, night.start,
                                     math.nextafter(night.end, math.inf))
        fs = samples.fs if args.fs is None else args.fs
        source = f"{args.store}:{args.subject}/{side}"
        recs.append(recording_from_arrays(samples.time, samples.accel, side, fs=fs,
                                          source=source))
    return recs


def _parse_time(text: str, option: str) -> float:
    """An ISO 8601 time with a zone as Unix s, or ValueError naming `option`."""
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{option} {text!r} is not an ISO 8601 time like 2026-11-20T19:30:00Z"
        ) from None
    if stamp.tzinfo is None:
        raise ValueError(f"{option} {text!r} has no zone; add Z (UTC) or an offset like +01:00")
    return stamp.timestamp()


def _nights(args: argparse.Namespace) -> int:
    """List a subject's nights: index, start, end, hours, sides."""
    from limbwatch.report import iso_ms
    from limbwatch.sqlite_store import SqliteStore

    with SqliteStore(args.store, create=False) as store:
        nights = store.nights(args.subject)
    if not nights:
        raise ValueError(f"{args.store}: subject {args.subject!r} has no data")
    print(f"{'night':<6} {'start':<25} {'end':<25} {'hours':>6}  sides")
    for i, night in enumerate(nights):
        hours = (night.end - night.start) / 3600
        print(f"{i:<6} {iso_ms(night.start):<25} {iso_ms(night.end):<25} {hours:>6.2f}  "
              f"{','.join(night.sides)}")
    return 0


def _emit(text: str, output: Path | None) -> None:
    """The report to `output`, or to standard output when None."""
    if output is None:
        print(text)
    else:
        output.write_text(text + "\n")


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
    from limbwatch.demo import SUBJECT, check_against_truth, default_rig, run_demo
    from limbwatch.report import NightReport

    store_path, age = run_demo(args.out_dir, args.rig or default_rig(), args.speed)
    report_path = args.out_dir / "report.json"
    status = main(["analyze", "--store", str(store_path), "--subject", SUBJECT,
                   "--age-months", f"{age:g}", "-o", str(report_path)])
    if status:
        return status
    report = NightReport.model_validate_json(report_path.read_text())
    picture = draw_night(report, args.out_dir / "night.png")
    print("Collected over BLE into the store; checked against what the sensors measured:")
    for line in check_against_truth(store_path, args.out_dir):
        print(f"  {line}")
    print(text_summary(report))
    print(f"Store: {store_path}\nReport: {report_path}\nPicture: {picture}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
