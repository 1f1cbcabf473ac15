"""The `limbwatch` command: analyze (contract section 2), nights, worker, serve, config, token,
backup, restore, simulate, demo, sim, ingest.

Errors end with one line on standard error and an exit status that says what kind of error it
was (`limbwatch.errors`: each kind carries its exit status); never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from limbwatch.errors import BadInput, LimbwatchError, NotFound, Unavailable

if TYPE_CHECKING:
    import socket

    from analysis.plm import Rules
    from limbwatch.settings import LiveSettings, Settings
    from limbwatch.store.records import NightRecord, RecordStore
    from limbwatch.store.samples import SampleStore
    from limbwatch.store.sqlite_base import Synchronous
    from worker.service import AnalysisService

def exit_code(exc: Exception) -> int | None:
    """The exit status for an error a user can act on (a `LimbwatchError` carries its own,
    `limbwatch.errors`; other file and value errors are bad input, 2), None for a bug."""
    if isinstance(exc, LimbwatchError):
        return exc.exit_status
    if isinstance(exc, ValueError | OSError):  # file contents, scenario files, unreadable paths
        return 2
    return None


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
    except Exception as exc:
        code = exit_code(exc)
        if code is None:
            raise
        for line in str(exc).splitlines() or [""]:  # settings: one line per bad value
            print(f"limbwatch: {line}", file=sys.stderr)
        return code


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
    a.add_argument("--store", metavar="URL",
                   help="read the night from this store instead (sqlite:PATH, a path, or "
                   "influxdb://HOST:PORT/BUCKET?api=v1|v2&org=ORG&records=PATH); "
                   "the report is stored there too")
    a.add_argument("--subject", metavar="ID", help="with --store: whose night")
    which = a.add_mutually_exclusive_group()
    which.add_argument("--night", type=int, metavar="ID",
                       help="with --store: the night's id as `limbwatch nights` lists it "
                       "(default: the latest)")
    which.add_argument("--date", type=_date, metavar="YYYY-MM-DD",
                       help="with --store: the night of this local evening date")
    a.add_argument("--age-months", type=float, help="the child's age, for age-aware thresholds")
    a.add_argument("--lights-out", type=_instant, action="append", default=[], metavar="TIME",
                   help="bedtime, ISO 8601 with a zone (2026-11-20T19:45:00+01:00), repeatable: "
                        "sleep-onset latency counts from the last before sleep (with --store, "
                        "the journal's lights_out notes do)")
    a.add_argument("--fs", type=float, help="sample rate, Hz (default: inferred from the times)")
    a.add_argument("--rules", choices=["wasm2016", "aasm"], default="wasm2016")
    a.add_argument("-o", "--output", type=Path, help="report file (default: standard output)")
    a.set_defaults(run=_analyze)

    n = sub.add_parser("nights", help="list a subject's nights in a store")
    n.add_argument("--store", metavar="URL", required=True)
    n.add_argument("--subject", metavar="ID", required=True)
    n.set_defaults(run=_nights)

    su = sub.add_parser("subject", help="add or change a subject (a child) in a store")
    su.add_argument("--store", metavar="URL", required=True)
    su.add_argument("--id", required=True, help="short id used by the gateway and the API")
    su.add_argument("--name", help="display name (default: the id)")
    su.add_argument("--birth-date", type=_date, metavar="YYYY-MM-DD")
    su.add_argument("--time-zone", default="UTC", help="IANA time zone, e.g. Europe/Berlin")
    su.set_defaults(run=_subject)

    w = sub.add_parser("worker", help="the analysis service: analyse nights once they end",
                       description=_SETTINGS_HELP)
    _settings_options(w)
    w.add_argument("--store", metavar="URL", help="the store ([store] url)")
    w.add_argument("--quiet-min", type=float,
                   help="minutes without new data after which a night is over ([worker] "
                   "quiet_min, default 30)")
    w.add_argument("--poll-s", type=float, help="seconds between rounds ([worker] poll_s, "
                   "default 10)")
    w.add_argument("--rules", choices=["wasm2016", "aasm"],
                   help="scoring rules ([analysis] rules, default wasm2016)")
    w.add_argument("--once", action="store_true", help="one round, then exit")
    w.add_argument("--metrics-port", type=int, metavar="P",
                   help="serve the analysis metrics (Prometheus text) at http://HOST:P/metrics "
                   "([worker] metrics_port; default: not served)")
    w.add_argument("--metrics-host", metavar="H",
                   help="address of the metrics server ([worker] metrics_host, default "
                   "127.0.0.1)")
    w.set_defaults(run=_worker)

    im = sub.add_parser("import", help="a recording from CSV files into a store, analysed")
    im.add_argument("--store", metavar="URL", required=True)
    im.add_argument("--subject", metavar="ID", required=True)
    im.add_argument("--left", type=Path, help="left ankle CSV (time,x,y,z)")
    im.add_argument("--right", type=Path, help="right ankle CSV (time,x,y,z)")
    im.add_argument("--fs", type=float, help="sample rate, Hz (default: inferred from the times)")
    im.set_defaults(run=_import)

    sv = sub.add_parser("serve", help="the HTTP API (and the analysis service beside it)",
                        description=_SETTINGS_HELP)
    _settings_options(sv)
    sv.add_argument("--store", metavar="URL",
                    help="sqlite:PATH, a path or influxdb://... ([store] url, default "
                    "sqlite:limbwatch.db)")
    sv.add_argument("--host", help="[api] host (default 127.0.0.1)")
    sv.add_argument("--port", type=int, help="[api] port (default 8000; 0: any free port)")
    sv.add_argument("--workers", type=int, metavar="N",
                    help="[api] workers: server processes sharing the port (default 1; see "
                    "README Benchmarks for 2 on 2 cores)")
    sv.add_argument("--no-worker", action="store_true",
                    help="do not run the analysis service inside (run `limbwatch worker`; "
                    "[api] worker = false)")
    sv.add_argument("--quiet-min", type=float,
                    help="the analysis service's quiet period, minutes (see worker)")
    sv.set_defaults(run=_serve)

    cf = sub.add_parser("config", help="check the settings (file, environment) and print "
                        "them, secrets masked", description=_SETTINGS_HELP)
    cf_sub = cf.add_subparsers(required=True, metavar="ACTION")
    cc = cf_sub.add_parser("check", help="validate the settings and print the effective ones")
    cc.add_argument("--config", type=Path, metavar="FILE",
                    help="settings file (TOML; default $LIMBWATCH_CONFIG, or none)")
    cc.set_defaults(run=_config_check)

    t = sub.add_parser("token", help="API tokens: create (printed once), revoke, list")
    t.add_argument("action", choices=["create", "revoke", "list"])
    t.add_argument("--store", metavar="URL", default="limbwatch.db")
    t.add_argument("--name", help="the token's unique name (create, revoke)")
    t.add_argument("--role", choices=["caregiver", "clinician", "admin", "gateway"])
    t.add_argument("--subject", metavar="ID", action="append",
                   help="a caregiver's child; for a home gateway, each subject it may write "
                   "(repeat)")
    t.set_defaults(run=_token)

    b = sub.add_parser("backup", help="copy the store's SQLite file while it is in use, checked")
    b.add_argument("--store", metavar="URL", required=True,
                   help="sqlite:PATH or a path (samples and records), or an InfluxDB URL "
                   "(its records file; back InfluxDB up with `influx backup`)")
    b.add_argument("-o", "--output", type=Path, required=True, help="the backup file")
    b.add_argument("--force", action="store_true", help="overwrite a non-empty output file")
    b.set_defaults(run=_backup)

    r = sub.add_parser("restore", help="put a checked backup in place as the store's file")
    r.add_argument("--store", metavar="URL", required=True, help="the store to restore into")
    r.add_argument("backup", type=Path, help="a file written by `limbwatch backup`")
    r.add_argument("--force", action="store_true",
                   help="overwrite an existing store (never one that a process has open)")
    r.set_defaults(run=_restore)

    st = sub.add_parser("store", help="set up a store (init), or copy samples between stores "
                        "(migrate)")
    st_sub = st.add_subparsers(required=True, metavar="ACTION")
    si = st_sub.add_parser("init", help="create the store: an SQLite file, or the InfluxDB "
                           "databases/buckets")
    si.add_argument("--store", metavar="URL", required=True)
    si.add_argument("--retention-days", type=float,
                    help="InfluxDB: keep raw samples this long (default forever)")
    si.set_defaults(run=_store_init)
    sm = st_sub.add_parser("migrate", help="copy samples between stores, resumable, verified")
    sm.add_argument("--from", dest="source", metavar="URL", required=True)
    sm.add_argument("--to", dest="target", metavar="URL", required=True)
    sm.add_argument("--subject", metavar="ID", help="only this subject's samples")
    sm.set_defaults(run=_store_migrate)

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
    d.add_argument("--store", metavar="URL",
                   help="where the night goes (default: sqlite:OUT_DIR/limbwatch.db); an "
                   "influxdb://... URL needs a bucket without demo data")
    d.add_argument("--no-serve", action="store_true", help="stop after the report")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, default=8000, help="0 takes a free port (default 8000)")
    d.set_defaults(run=_demo)
    return p


_SETTINGS_HELP = ("Settings (README, Configuration): an option here > its environment variable "
                  "LIMBWATCH_<SECTION>_<KEY> > the --config file ($LIMBWATCH_CONFIG) > the "
                  "default.")


def _settings_options(p: argparse.ArgumentParser) -> None:
    """The options of every service command: the settings file and the logs."""
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="settings file (TOML, limbwatch.toml; default $LIMBWATCH_CONFIG)")
    p.add_argument("--log-format", choices=["text", "json"],
                   help="log lines as text or JSON lines ([logging] format, default text)")
    p.add_argument("--log-level", metavar="LEVEL",
                   help="DEBUG, INFO, WARNING or ERROR ([logging] level, default INFO)")


def _service_settings(args: argparse.Namespace, options: dict[str, tuple[str, object]]
                      ) -> Settings:
    """A service's settings (its options over the environment over the file), every bad value
    reported at once (SettingsError); logging set up from them."""
    from limbwatch.logs import setup_logging
    from limbwatch.settings import load_settings

    loaded = load_settings(args.config, options={
        **options, "logging.format": ("--log-format", args.log_format),
        "logging.level": ("--log-level", args.log_level)})
    setup_logging(loaded.settings.logging.level, loaded.settings.logging.format)
    return loaded.settings


def _config_check(args: argparse.Namespace) -> int:
    from limbwatch.settings import describe, load_settings

    loaded = load_settings(args.config)
    for line in describe(loaded):
        print(line)
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from analysis.night import analyze_night
    from limbwatch.recording import Side, read_recording_csv

    if args.store is not None:
        return _analyze_store(args)
    if args.subject is not None or args.night is not None or args.date is not None:
        raise BadInput("--subject, --night and --date go with --store")
    if args.left is None and args.right is None:
        raise BadInput("give --left, --right or both (or --store and --subject)")
    legs: tuple[tuple[Side, Path | None], ...] = (("left", args.left), ("right", args.right))
    recs = [read_recording_csv(path, side, fs=args.fs) for side, path in legs if path is not None]
    result = analyze_night(recs, age_months=args.age_months, rules=args.rules,
                           lights_out=args.lights_out)
    _emit(result.to_report().model_dump_json(indent=2), args.output)
    return 0


def _analyze_store(args: argparse.Namespace) -> int:
    """analyze --store: the chosen night from the store, analysed; the report stored too."""
    from worker.service import AnalysisService

    if args.left is not None or args.right is not None:
        raise BadInput("give --left/--right or --store, not both")
    if args.lights_out:
        raise BadInput("--lights-out goes with --left/--right; for a stored night, add a "
                       "lights_out note to the journal (dashboard or POST .../journal)")
    if args.subject is None:
        raise BadInput("--store needs --subject")
    with _stores(args.store) as (samples, records):
        service = AnalysisService(samples, records, now=time.time)
        night = _pick_night(service, args)
        service.analyse(night, age_months=args.age_months, rules=args.rules, fs=args.fs)
        stored = records.report(night.id)
        night = records.night(night.id) or night
    if stored is None:
        raise BadInput(f"night {night.id} could not be analysed: {night.failure}")
    _emit(stored[1], args.output)
    return 0


def _pick_night(service: AnalysisService, args: argparse.Namespace) -> NightRecord:
    """The night that --night or --date names (default: the latest), or NotFound."""
    from limbwatch.store.nights import refresh_nights

    subject = service.records.subject(args.subject)
    if subject is None:
        raise NotFound(f"{args.store}: no subject {args.subject!r} (see `limbwatch subject`)")
    refresh_nights(service.samples, service.records, subject, service.now())
    nights = service.records.nights(subject.id)
    where = f"{args.store}: subject {args.subject!r}"
    if not nights:
        raise NotFound(f"{where} has no data")
    for night in nights:
        if (args.night is None and args.date is None) or night.id == args.night \
                or night.date == args.date:
            return night
    which = f"night {args.night}" if args.date is None else f"night of {args.date}"
    raise NotFound(f"{where} has no {which} (see `limbwatch nights`)")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-20") from None


def _instant(text: str) -> float:
    """Unix s of an ISO 8601 time that names its zone."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time with a zone like 2026-11-20T19:45:00+01:00")
    return when.timestamp()


@contextmanager
def _stores(url: str, *, create: bool = False, synchronous: Synchronous = "NORMAL"
            ) -> Iterator[tuple[SampleStore, RecordStore]]:
    """The sample and record stores of a store URL (which must exist unless `create`)."""
    from limbwatch.store.open import open_records, open_samples

    with open_samples(url, create=create, synchronous=synchronous) as samples, \
            open_records(url, create=create) as records:
        yield samples, records


def _nights(args: argparse.Namespace) -> int:
    """List a subject's nights, newest first: id, date, start, end, hours, status."""
    from limbwatch.report import iso_ms
    from limbwatch.store.nights import refresh_nights

    with _stores(args.store) as (samples, records):
        subject = records.subject(args.subject)
        if subject is None:
            raise NotFound(f"{args.store}: no subject {args.subject!r}")
        refresh_nights(samples, records, subject, time.time())
        nights = records.nights(subject.id)
    if not nights:
        raise NotFound(f"{args.store}: subject {args.subject!r} has no data")
    print(f"{'id':<5} {'date':<11} {'start':<25} {'end':<25} {'hours':>6}  status")
    for night in nights:
        hours = (night.end - night.start) / 3600
        print(f"{night.id:<5} {night.date.isoformat():<11} {iso_ms(night.start):<25} "
              f"{iso_ms(night.end):<25} {hours:>6.2f}  {night.status}")
    return 0


def _import(args: argparse.Namespace) -> int:
    """Store CSV recordings as the subject's nights, analyse them, list them and any warnings."""
    from api.imports import import_recordings
    from limbwatch.recording import Side, read_recording_csv

    legs: tuple[tuple[Side, Path | None], ...] = (("left", args.left), ("right", args.right))
    given = [(side, path) for side, path in legs if path is not None]
    if not given:
        raise BadInput("give --left, --right or both")
    recs = [read_recording_csv(path, side, fs=args.fs) for side, path in given]
    same = len(given) == 2 and given[0][1].read_bytes() == given[1][1].read_bytes()
    with _stores(args.store, create=True) as (samples, records):
        subject = records.subject(args.subject)
        if subject is None:
            raise NotFound(f"{args.store}: no subject {args.subject!r} (add it with "
                           "`limbwatch subject`)")
        done = import_recordings(samples, records, subject, recs, same_file=same,
                                 now=time.time())
        service = _analysis_service(samples, records, None)
        for night_id in done.night_ids:
            night = records.night(night_id)
            assert night is not None
            service.analyse(night)
            night = records.night(night_id) or night
            print(f"night {night.id} ({night.date}): {night.status}"
                  + (f": {night.failure}" if night.failure else ""))
    for warning in done.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _subject(args: argparse.Namespace) -> int:
    from zoneinfo import available_timezones

    from limbwatch.store.open import open_records
    from limbwatch.store.records import Subject

    if args.time_zone not in available_timezones():
        raise BadInput(f"--time-zone {args.time_zone!r} is not an IANA time zone "
                       "like Europe/Berlin")
    with open_records(args.store) as records:
        old = records.subject(args.id)
        records.put_subject(Subject(args.id, args.name or args.id, args.birth_date,
                                    args.time_zone, () if old is None else old.sensors))
    print(f"subject {args.id}: {'updated' if old else 'added'}")
    return 0


def _worker(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from worker.service import run_service

    settings = _service_settings(args, {
        "store.url": ("--store", args.store), "worker.quiet_min": ("--quiet-min", args.quiet_min),
        "worker.poll_s": ("--poll-s", args.poll_s), "analysis.rules": ("--rules", args.rules),
        "worker.metrics_port": ("--metrics-port", args.metrics_port),
        "worker.metrics_host": ("--metrics-host", args.metrics_host)})
    w = settings.worker
    log = logging.getLogger("worker")
    with _stores(settings.store.url) as (samples, records):
        service = _analysis_service(samples, records, w.quiet_min, settings.analysis.rules,
                                    settings.analysis.default_age_months)
        if args.once:
            service.poll()
            return 0
        if w.metrics_port is not None:
            from prometheus_client import start_http_server

            try:
                start_http_server(w.metrics_port, addr=w.metrics_host)
            except OSError as exc:
                raise Unavailable(f"cannot serve metrics on {w.metrics_host}:"
                                  f"{w.metrics_port}: {exc.strerror}") from None

        async def run() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            log.info("analysing the nights of %s once %g min quiet (%s rules)",
                     settings.store.url, w.quiet_min, settings.analysis.rules)
            await run_service(service, stop, poll_s=w.poll_s)

        asyncio.run(run())
    return 0


def _serve(args: argparse.Namespace) -> int:
    """`limbwatch serve`: with `api.workers` > 1, that many processes share one listening socket
    (each with its own store connections, opened after the fork); this one runs the analysis
    service (unless not `api.worker`), prints the banner and stops the others when it stops."""
    import os
    import signal

    settings = _service_settings(args, {
        "store.url": ("--store", args.store), "api.host": ("--host", args.host),
        "api.port": ("--port", args.port), "api.workers": ("--workers", args.workers),
        "api.worker": ("--no-worker", False if args.no_worker else None),
        "worker.quiet_min": ("--quiet-min", args.quiet_min)})
    api = settings.api
    tls = None if api.tls_cert is None or api.tls_key is None else (api.tls_cert, api.tls_key)
    with _stores(settings.store.url, create=True):
        pass  # created (or checked) once, before any process opens it
    # FULL: a home gateway forgets the chunks the server took (and an import its file), so
    # an SQLite commit must survive a power cut
    sock = _listen(api.host, api.port)
    children, parent = [], os.getpid()
    for _ in range(api.workers - 1):
        pid = os.fork()
        if pid == 0:  # a child: serve only, until SIGTERM (from us) or SIGINT (Ctrl-C)
            code = 1
            try:
                _end_with_parent(parent)
                with _stores(settings.store.url, synchronous="FULL") as (samples, records):
                    _serve_stores(samples, records, api.host, api.port, worker=False,
                                  banner=lambda url: [], sock=sock, tls=tls,
                                  live=settings.live)
                code = 0
            except BaseException as exc:  # one line, as main() would say it, then gone
                print(f"limbwatch serve: a server process stopped: {exc}", file=sys.stderr)
            finally:
                os._exit(code)
        children.append(pid)
    try:
        with _stores(settings.store.url, synchronous="FULL") as (samples, records):
            _serve_stores(samples, records, api.host, api.port,
                          worker=api.worker, quiet_min=settings.worker.quiet_min,
                          poll_s=settings.worker.poll_s, rules=settings.analysis.rules,
                          default_age_months=settings.analysis.default_age_months,
                          banner=lambda url: [f"Serving {url} (docs at {url}docs)"], sock=sock,
                          tls=tls, live=settings.live)
    finally:
        for pid in children:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            os.waitpid(pid, 0)
    return 0


def _end_with_parent(parent: int) -> None:
    """Have this (forked) process get SIGTERM when its parent ends however it ends (Linux's
    PR_SET_PDEATHSIG), so that no server process is left behind holding the port."""
    import ctypes
    import os
    import signal

    with suppress(OSError, AttributeError):  # not Linux: the parent's SIGTERM on its way out
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it ended before that took effect
        os._exit(0)


def _listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (0: any free port), for uvicorn to listen on."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP said, not left 0: asyncio sets TCP_NODELAY only on sockets that say it, and
    # without it an answer's header and body segments wait for the client's delayed ACK (40 ms)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise Unavailable(f"cannot listen on {host}:{port} ({exc.strerror}; is the port in "
                          "use?)") from None
    sock.set_inheritable(True)
    return sock


def _analysis_service(samples: SampleStore, records: RecordStore,
                      quiet_min: float | None, rules: Rules = "wasm2016",
                      default_age_months: float | None = None) -> AnalysisService:
    """The analysis service on the stores, on the host's clock; its default quiet period unless
    `quiet_min` is given."""
    from worker.service import QUIET_S, AnalysisService

    quiet_s = QUIET_S if quiet_min is None else quiet_min * 60
    return AnalysisService(samples, records, now=time.time, quiet_s=quiet_s, rules=rules,
                           default_age_months=default_age_months)


def _serve_stores(samples: SampleStore, records: RecordStore, host: str, port: int, *,
                  worker: bool, banner: Callable[[str], list[str]],
                  quiet_min: float | None = None, poll_s: float | None = None,
                  rules: Rules = "wasm2016", default_age_months: float | None = None,
                  sock: socket.socket | None = None,
                  tls: tuple[Path, Path] | None = None,
                  live: LiveSettings | None = None) -> None:
    """Serve the API (and the analysis service beside it, unless not `worker`) until SIGINT or
    SIGTERM (then exit 0) on `sock`, else on host:port (0 takes a free one), over HTTPS with
    `tls` (certificate, key), its live alerts timed by `live` (default: the defaults); once it
    listens, print `banner(url)` line by line."""
    import asyncio
    import logging
    import signal
    import threading

    import uvicorn

    from api.app import create_app
    from limbwatch.logs import setup_logging
    from worker.service import POLL_S, run_service

    if not any(getattr(h, "_limbwatch", False) for h in logging.getLogger().handlers):
        setup_logging()  # the demo: text logs (the services set theirs from the settings)
    from api.context import Settings as ApiSettings
    from limbwatch.settings import LiveSettings

    live = live or LiveSettings()
    app = create_app(samples, records, now=time.time, settings=ApiSettings(
        lost_after_s=live.lost_after_min * 60, confirm_s=live.confirm_s,
        low_battery_pct=live.low_battery_pct))
    listening = _listen(host, port) if sock is None else sock

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            """Signals are run()'s: uvicorn's own handling would raise SIGTERM again once
            shut down, and the process would end killed by it instead of with status 0."""
            yield

    # log_config=None: uvicorn's records go through the one set-up (text or JSON lines)
    cert, key = (None, None) if tls is None else tls
    server = Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                   access_log=False, log_config=None, ssl_certfile=cert,
                                   ssl_keyfile=key))

    def on_signal(signum: int) -> None:
        if server.should_exit and signum == signal.SIGINT:
            server.force_exit = True  # a second Ctrl-C: stop waiting for open connections
        server.should_exit = True

    async def run() -> None:
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():  # signals reach only it
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, on_signal, signum)
        stop = asyncio.Event()
        service = _analysis_service(samples, records, quiet_min, rules, default_age_months)
        tasks = [asyncio.create_task(server.serve(sockets=[listening]))]
        if worker:
            tasks.append(asyncio.create_task(
                run_service(service, stop, poll_s=POLL_S if poll_s is None else poll_s)))
        while not server.started and not tasks[0].done():
            await asyncio.sleep(0.05)
        if server.started:
            bound = listening.getsockname()[1]
            for line in banner(f"{'http' if tls is None else 'https'}://{host}:{bound}/"):
                print(line, flush=True)
        try:
            await tasks[0]
        finally:
            stop.set()
            await asyncio.gather(*tasks[1:])
        if not server.started:
            raise Unavailable(f"cannot listen on {host}:{port} (is the port in use?)")

    # asyncio's own loop, not uvloop (which uvicorn[standard] installs): with uvloop the same
    # requests/s, but p99 often 3-5x (README Benchmarks, 2026-12-02)
    asyncio.run(run())


def _token(args: argparse.Namespace) -> int:
    from api.auth import make_token
    from limbwatch.store.open import open_records

    with open_records(args.store, create=args.action == "create") as records:
        if args.action == "list":
            for t in records.tokens():
                state = "valid" if t.revoked is None else "revoked"
                print(f"{t.name}\t{t.role}\t{t.subject_id or '-'}\t{state}")
            return 0
        if not args.name:
            raise BadInput(f"token {args.action} needs --name")
        if args.action == "revoke":
            records.revoke_token(args.name, time.time())
            print(f"token {args.name}: revoked", file=sys.stderr)
            return 0
        if args.role is None:
            raise BadInput("token create needs --role caregiver, clinician, admin or gateway")
        subjects = args.subject or []
        if args.role in ("clinician", "admin") and subjects:
            raise BadInput(f"--subject does not go with --role {args.role} (a caregiver "
                           "shares a subject with a clinician)")
        if args.role == "caregiver" and len(subjects) != 1:
            raise BadInput("--role caregiver needs one --subject: the child")
        if args.role == "gateway" and not subjects:
            raise BadInput("--role gateway needs --subject for each subject it may write")
        for subject_id in subjects:
            if records.subject(subject_id) is None:
                raise NotFound(f"no subject {subject_id!r} (add it first: `limbwatch subject "
                               f"--id {subject_id}`)")
        secret, token = make_token(args.name, args.role,
                                   subjects[0] if args.role == "caregiver" else None,
                                   time.time())
        records.put_token(token)
        if args.role == "gateway":
            for subject_id in subjects:
                records.put_share(subject_id, token.name)
    print(secret)
    return 0


def _backup(args: argparse.Namespace) -> int:
    from limbwatch.store.backup import backup, store_file

    summary = backup(args.store, args.output, force=args.force)
    print(f"backup {args.output}: {summary}")
    if not store_file(args.store)[1]:
        print("limbwatch: the samples are in InfluxDB: back them up with `influx backup` "
              "(README)", file=sys.stderr)
    return 0


def _restore(args: argparse.Namespace) -> int:
    from limbwatch.store.backup import restore, store_file

    summary = restore(args.store, args.backup, force=args.force)
    path, with_samples = store_file(args.store)
    print(f"restored {path} from {args.backup}: {summary}")
    if not with_samples:
        print("limbwatch: the samples are in InfluxDB: restore them with `influx restore` "
              "(README)", file=sys.stderr)
    return 0


def _store_init(args: argparse.Namespace) -> int:
    from limbwatch.store.influx import init_store
    from limbwatch.store.influx_http import InfluxSettings
    from limbwatch.store.open import is_influx

    if is_influx(args.store):
        for line in init_store(InfluxSettings.from_url(args.store),
                               retention_days=args.retention_days):
            print(line)
    elif args.retention_days is not None:
        raise BadInput("--retention-days is for InfluxDB stores")
    with _stores(args.store, create=True):
        print(f"store {args.store}: ready")
    return 0


def _store_migrate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from limbwatch.store.migrate import migrate
    from limbwatch.store.open import open_samples

    bars: dict[str, tqdm] = {}

    def progress(device: str, done: int, total: int) -> None:
        bar = bars.get(device)
        if bar is None:
            bar = bars[device] = tqdm(total=total, desc=device, unit="chunk", file=sys.stderr)
        bar.update(done - bar.n)

    with open_samples(args.source, create=False) as source, open_samples(args.target) as target:
        try:
            copied = migrate(source, target, subject=args.subject, progress=progress)
        finally:
            for bar in bars.values():
                bar.close()
    for c in copied:
        print(f"{c.device}: {c.chunks} chunks ({c.written} copied now), checksum "
              f"{c.checksum:08x} verified in the target")
    if not copied:
        print("nothing to copy: the source has no samples"
              + (f" of {args.subject!r}" if args.subject else ""))
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
    from analysis.stored import analyse_stored_night
    from api.auth import make_token
    from app.demo import SUBJECT, check_against_truth, default_rig, run_demo
    from limbwatch.store.nights import refresh_nights
    from worker.service import AnalysisService

    url, _ = run_demo(args.out_dir, args.rig or default_rig(), args.speed, args.store)
    with _stores(url) as (samples, records):
        service = AnalysisService(samples, records, now=time.time)
        subject = records.subject(SUBJECT)
        assert subject is not None
        (night, *_) = refresh_nights(samples, records, subject, time.time())
        # the analysis service's own round: every leg's morning sync is complete, so it finds
        # the night over and analyses it; else (the demo's deadline came first) the demo says
        # the night is over, as a caregiver would
        ended_by = "the morning sync complete"
        if night.id not in service.poll():
            records.mark_ended(night.id)
            ended_by = "the demo (its deadline came before the morning sync was complete)"
            service.poll()
        night = records.night(night.id) or night
        stored = records.report(night.id)
        if stored is None:
            raise BadInput(f"the demo night was not analysed: {night.failure}")
        result = analyse_stored_night(samples, records, night)  # the report's, for its picture
        report_path = args.out_dir / "report.json"
        report_path.write_text(stored[1] + "\n")
        picture = draw_night(result, args.out_dir / "night.png")
        print("Collected over BLE into the store; checked against what the sensors measured:")
        for line in check_against_truth(url, args.out_dir):
            print(f"  {line}")
        print(result.summary())
        print(f"Night {night.id} ({night.date}): {night.status}, "
              f"algorithm {night.algorithm_version}; over by {ended_by}")
        print(f"Store: {url}\nReport: {report_path}\nPicture: {picture}")
        if args.no_serve:
            return 0
        name = f"demo-caregiver-{int(time.time())}"
        secret, token = make_token(name, "caregiver", SUBJECT, time.time())
        records.put_token(token)
        _serve_stores(samples, records, args.host, args.port, worker=True,
                      banner=lambda address: [f"Dashboard: {address}", f"Token: {secret}",
                                              "Serving until Ctrl-C."])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
