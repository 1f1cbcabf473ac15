"""Issue 11 soak: 3 children x 2 sensors for a compressed week of nights through the whole stack.

Every service is a process of its own on loopback, as docker-compose runs them: one gateway
(`limbwatch ingest`) per home, one shared store (a real influxd 1.6.7 started here, records in
SQLite; `--store sqlite` for the embedded store), one analysis worker (`limbwatch worker`) and
one API (`limbwatch serve --no-worker`). The gateways, the worker and the API stay up for the
whole week; each child's simulated sensors (`limbwatch sim`, one process per child and night)
are switched on `--lead-s` real seconds before bedtime and switched off once their gateway has
had the night (connected, no packet missing) or after `--morning-s`.

Time: one simulated clock (start, speed, anchor) for the week, in every gateway's [clock] and
every night's `sim --start BEDTIME --anchor WALL` (the wall time at which that clock reads the
bedtime), so the long-running gateways need no change between nights. Bedtime is 19:30 local on
`--nights` successive evenings from 2026-11-20; the children live in London, New York and
Tokyo, so their nights (of `--hours` each) do not overlap and the week's load is one home at a
time. The week lies in the host clock's past: the worker ends a night after `--quiet-min` real
minutes without new data (its clock is the host's).

While it runs: every `--sample-s` s the RSS (VmRSS) of every process and each gateway's spool
backlog (`ingest.spool.Spool` rows); every 5 s each child's nights over the API (admin token),
and for a night that became ready its report, events and one leg's signal (a morning view).

At the end: per service the RSS at the start of the second half and at the end (medians over a
window of 5 % of the run), growth, the least-squares slope over the second half (MB per
simulated day) and the max; each gateway's backlog; each child's nights (count, status ready,
the expected local dates); the analyses per night (the worker's "night N (...) analysed" lines,
checked against its `limbwatch_nights_analysed_total`). Exits 1 if a service's RSS grew more
than `--max-growth-pct` (default 10 %) over the second half, a backlog is not 0, a night is
missing, not ready or not analysed exactly once, a service died, or the deadline passed.

    python bench/soak.py [--nights 7] [--hours 3] [--speed 600] [--store influx|sqlite]
                         [-o DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import httpx
from serving import free_port, influxd, wait_for_port

from firmware_sim.scenario import load_scenario
from ingest.spool import Spool
from limbwatch.config import SensorEntry, gateway_toml
from limbwatch.simclock import SimClock

ROOT = Path(__file__).resolve().parents[1]
FIRST_EVENING = date(2026, 11, 20)  # fixed dates, so runs are comparable
BEDTIME = day_time(19, 30)
STARTUP_S = 15.0  # real s from starting the services to the simulated clock's start
API_EVERY_S = 5.0
WORKER_POLL_S = 10.0  # worker.service.POLL_S
# Thresholds. Over the first half a service warms up (imports done, the first night analysed,
# SQLite's page cache and the HTTP pools filled); after that nothing is kept per night, so RSS
# should stay within allocator noise (a few %). 10 % of these 100-300 MB services is 10-30 MB:
# about what keeping one 3-h night's samples would add (540 k samples a leg, float64 time and
# 3 float32 axes: 11 MB a leg), so a per-night leak shows within the second half's 3-4 nights.
MAX_GROWTH_PCT = 10.0
STATUS = re.compile(r"(\S+) (left|right): (connected|not connected), (\d+) packets, "
                    r"(\d+) gaps open")
ANALYSED = re.compile(r"night (\d+) \((\S+) (\d{4}-\d\d-\d\d)\) analysed")


@dataclass(frozen=True, slots=True)
class Child:
    id: str
    name: str
    time_zone: str
    scenario: str
    serial: str  # sensors serial+"L", serial+"R"


CHILDREN = (
    Child("soak-london", "Amy", "Europe/London", "mild_plms", "LW11"),
    Child("soak-newyork", "Ben", "America/New_York", "healthy_child", "LW12"),
    Child("soak-tokyo", "Chie", "Asia/Tokyo", "fragmented_sleep", "LW13"),
)
FAULTS = ('[{ kind = "drop", at_s = 3600.0 }, { kind = "lose", value = 0.01 }, '
          '{ kind = "duplicate", value = 0.002 }, { kind = "reorder", value = 0.002 }, '
          '{ kind = "corrupt", value = 0.001 }]')


@dataclass
class Night:
    child: Child
    index: int  # 0-based
    evening: date
    bedtime: float  # sim UTC
    end: float  # sim UTC
    proc: subprocess.Popen[bytes] | None = None
    started: float | None = None  # wall
    stopping: float | None = None  # wall, SIGTERM sent
    complete: bool = False  # the gateway had every packet when the sensors were switched off
    done: bool = False


@dataclass
class Proc:
    """A service's process (or influxd's, started by `serving.influxd`: no Popen here)."""

    name: str
    pid: int
    log: Path
    popen: subprocess.Popen[Any] | None = None
    judged: bool = True  # its memory is part of the verdict
    rss: list[tuple[float, float]] = field(default_factory=list)  # (wall, MB)

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return os.path.exists(f"/proc/{self.pid}")


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cli(*args: str, out: IO[Any] | int | None = None, err: IO[Any] | int | None = None,
        ) -> subprocess.Popen[Any]:
    return subprocess.Popen([sys.executable, "-m", "app.cli", *args], stdout=out, stderr=err,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)


def run_cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"limbwatch {args[0]} failed ({done.returncode}): {done.stderr}")
    return done.stdout.strip()


def plan_nights(nights: int, hours: float) -> list[Night]:
    plan = []
    for child in CHILDREN:
        zone = ZoneInfo(child.time_zone)
        for k in range(nights):
            evening = FIRST_EVENING + timedelta(days=k)
            bedtime = datetime.combine(evening, BEDTIME, zone).timestamp()
            plan.append(Night(child, k, evening, bedtime, bedtime + hours * 3600))
    return sorted(plan, key=lambda n: n.bedtime)


def rig(child: Child, night: Night, hours: float) -> str:
    sensors = "".join(
        f'\n[[sensors]]\nserial = "{child.serial}{side[0].upper()}"\nside = "{side}"\n'
        f"drift_ppm = {drift}\nfaults = {FAULTS}\n"
        for side, drift in (("left", 30.0), ("right", -25.0)))
    # a new seed each night: another night, and a new sensor session (seq from 0)
    seed = 1000 * (CHILDREN.index(child) + 1) + night.index
    return f'scenario = "{child.scenario}"\nseed = {seed}\nduration_h = {hours!r}\n{sensors}'


class Soak:
    def __init__(self, args: argparse.Namespace, out: Path, url: str,
                 influx_pid: int | None) -> None:
        self.args, self.out, self.url = args, out, url
        self.procs: dict[str, Proc] = {}
        self.nights = plan_nights(args.nights, args.hours)
        self.clock = SimClock()  # set in set_up
        self.ports = {c.id: free_port() for c in CHILDREN}
        self.backlog: dict[str, list[tuple[float, int]]] = {c.id: [] for c in CHILDREN}
        self.status: dict[tuple[str, str], tuple[float, bool, int]] = {}
        self.sim_rss: dict[str, float] = {}
        self.ready: dict[int, dict[str, Any]] = {}
        self.failures: list[str] = []
        self.api_errors = 0
        self._read_at: dict[str, int] = {}
        self.spools_from = math.inf  # wall time from which the gateways' spools exist
        if influx_pid is not None:
            self.procs["influxd"] = Proc("influxd", influx_pid, out / "influxd" / "influxd.conf",
                                         judged=False)

    def wall(self, sim_t: float) -> float:
        """Host wall time at which the shared simulated clock reads `sim_t`."""
        return self.clock.anchor + (sim_t - self.clock.start) / self.clock.speed

    # -- set-up --------------------------------------------------------------------------------

    def set_up(self) -> str:
        """The store, the children, the admin token (returned) and the gateways' files; the
        week's clock starts STARTUP_S + lead_s from the end of this."""
        run_cli("store", "init", "--store", self.url)
        for child in CHILDREN:
            age = load_scenario(child.scenario).age_months
            birth = FIRST_EVENING - timedelta(days=round(age * 30.4375))
            run_cli("subject", "--store", self.url, "--id", child.id, "--name", child.name,
                    "--birth-date", birth.isoformat(), "--time-zone", child.time_zone)
        token = run_cli("token", "create", "--store", self.url, "--role", "admin", "--name",
                        "soak")
        self.clock = SimClock(start=self.nights[0].bedtime, speed=self.args.speed,
                              anchor=time.time() + STARTUP_S + self.args.lead_s)
        for child in CHILDREN:
            home = self.out / child.id
            home.mkdir()
            (home / "gateway.toml").write_text(gateway_toml(
                store=self.url, spool="spool.db", transport=f"tcp-client:127.0.0.1:"
                f"{self.ports[child.id]}", clock=self.clock,
                sensors=[SensorEntry(child.id, side, f"{child.serial}{side[0].upper()}",
                                     f"{child.serial}{side[0].upper()}")
                         for side in ("left", "right")]))
        return token

    def start(self, name: str, *args: str, judged: bool = True) -> Proc:
        log = self.out / f"{name}.log"
        with log.open("ab") as f:
            proc = cli(*args, out=f, err=subprocess.STDOUT)
        self.procs[name] = Proc(name, proc.pid, log, proc, judged)
        return self.procs[name]

    def start_services(self) -> str:
        self.metrics_port = free_port()
        self.start("worker", "worker", "--store", self.url, "--quiet-min",
                   str(self.args.quiet_min), "--metrics-port", str(self.metrics_port))
        api_port = free_port()
        self.start("api", "serve", "--store", self.url, "--no-worker", "--port", str(api_port))
        for child in CHILDREN:
            self.start(f"gateway {child.id}", "ingest", "--config",
                       str(self.out / child.id / "gateway.toml"), "--log-every", "2")
        self.spools_from = time.time() + 10.0
        wait_for_port(api_port, tries=300)
        return f"http://127.0.0.1:{api_port}"

    # -- the week ------------------------------------------------------------------------------

    def switch_sensors(self, now: float) -> None:
        """Each night's sensors on `lead_s` before bedtime; off once the gateway has the night
        (status logged after the night's end + 2 s: both connected, none missing) or after
        `morning_s`."""
        for night in self.nights:
            if night.done:
                continue
            home = self.out / night.child.id
            if night.proc is None and now >= self.wall(night.bedtime) - self.args.lead_s:
                rig_path = home / f"night-{night.index + 1}.toml"
                rig_path.write_text(rig(night.child, night, self.args.hours))
                with (home / "sim.log").open("ab") as f:
                    night.proc = cli(
                        "sim", "--rig", str(rig_path), "--speed", repr(self.args.speed),
                        "--start", repr(night.bedtime), "--anchor", repr(self.wall(night.bedtime)),
                        "--port", str(self.ports[night.child.id]), out=f, err=subprocess.STDOUT)
                night.started = now
            elif night.proc is not None and night.stopping is None:
                if night.proc.poll() is not None:
                    raise RuntimeError(f"the sensors of {night.child.id} night "
                                       f"{night.index + 1} exited ({night.proc.returncode}): "
                                       f"see {home / 'sim.log'}")
                rss = rss_mb(night.proc.pid)
                if rss is not None:
                    self.sim_rss[night.child.id] = max(self.sim_rss.get(night.child.id, 0), rss)
                settled = self.wall(night.end) + 2.0
                have = [self.status.get((night.child.id, side)) for side in ("left", "right")]
                complete = now > settled and all(
                    s is not None and s[0] > settled and s[1] and s[2] == 0 for s in have)
                if complete or now > self.wall(night.end) + self.args.morning_s:
                    night.complete = complete
                    night.proc.send_signal(signal.SIGTERM)
                    night.stopping = now
            elif night.proc is not None and night.stopping is not None:
                if night.proc.poll() is not None:
                    night.done = True
                elif now > night.stopping + 60:
                    night.proc.kill()

    def read_logs(self, now: float) -> None:
        """New gateway status lines: (wall time read, connected, gaps open) per sensor."""
        for child in CHILDREN:
            proc = self.procs[f"gateway {child.id}"]
            with proc.log.open("rb") as f:
                f.seek(self._read_at.get(proc.name, 0))
                text = f.read()
            end = text.rfind(b"\n") + 1
            self._read_at[proc.name] = self._read_at.get(proc.name, 0) + end
            for m in STATUS.finditer(text[:end].decode(errors="replace")):
                self.status[(m[1], m[2])] = (now, m[3] == "connected", int(m[5]))

    def sample(self, now: float) -> None:
        for p in self.procs.values():
            mb = rss_mb(p.pid)
            if mb is not None and p.alive():
                p.rss.append((now, mb))
        for child in CHILDREN:
            path = self.out / child.id / "spool.db"
            if now > self.spools_from and path.exists():  # made by its gateway
                with Spool(path) as spool:
                    self.backlog[child.id].append((now, len(spool)))

    def poll_api(self, api: httpx.Client) -> None:
        for child in CHILDREN:
            try:
                got = api.get(f"/api/v1/subjects/{child.id}/nights", params={"limit": 100})
                got.raise_for_status()
                for n in got.json()["nights"]:
                    if n["status"] == "ready" and n["id"] not in self.ready:
                        self.morning_view(api, n["id"])
                        self.ready[n["id"]] = n
            except httpx.HTTPError:
                self.api_errors += 1

    @staticmethod
    def morning_view(api: httpx.Client, night_id: int) -> None:
        for path, params in ((f"/api/v1/nights/{night_id}/report", {}),
                             (f"/api/v1/nights/{night_id}/events", {}),
                             (f"/api/v1/nights/{night_id}/signal", {"side": "left"})):
            api.get(path, params=params).raise_for_status()

    def week(self, api: httpx.Client) -> float:
        """Run until every night is ready and every backlog 0, then two worker polls more;
        the wall time it ended (or raise at the deadline)."""
        last_end = self.wall(max(n.end for n in self.nights))
        deadline = last_end + self.args.morning_s + self.args.quiet_min * 60 + 300
        next_sample = next_api = finished = 0.0
        while True:
            now = time.time()
            self.read_logs(now)
            self.switch_sensors(now)
            for p in self.procs.values():
                if not p.alive():
                    raise RuntimeError(f"{p.name} exited: see {p.log}")
            if now >= next_sample:
                self.sample(now)
                next_sample = now + self.args.sample_s
            if now >= next_api:
                self.poll_api(api)
                next_api = now + API_EVERY_S
            all_in = (all(n.done for n in self.nights)
                      and len(self.ready) == len(self.nights)
                      and all(b and b[-1][1] == 0 for b in self.backlog.values()))
            if all_in and not finished:
                finished = now
            if finished and now > finished + 2.5 * WORKER_POLL_S:
                self.sample(now)
                return now
            if now > deadline:
                self.failures.append(f"deadline passed: {len(self.ready)} of "
                                     f"{len(self.nights)} nights ready")
                return now
            time.sleep(0.5)

    def stop_all(self) -> None:
        procs = [p.popen for p in self.procs.values() if p.popen is not None] + [
            n.proc for n in self.nights if n.proc is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def window_median(points: list[tuple[float, float]], a: float, b: float) -> float:
    inside = [mb for t, mb in points if a <= t <= b]
    return statistics.median(inside) if inside else math.nan


def slope_mb_per_day(points: list[tuple[float, float]], a: float, speed: float) -> float:
    """Least-squares slope of RSS over wall time from `a`, in MB per simulated day (a night
    and the day after it)."""
    pts = [(t, mb) for t, mb in points if t >= a]
    if len(pts) < 3:
        return math.nan
    tm = statistics.fmean(t for t, _ in pts)
    mm = statistics.fmean(mb for _, mb in pts)
    var = sum((t - tm) ** 2 for t, _ in pts)
    per_s = sum((t - tm) * (mb - mm) for t, mb in pts) / var if var else math.nan
    return per_s * 86400 / speed


def analyses_per_night(worker_log: Path) -> Counter[int]:
    return Counter(int(m[1]) for m in ANALYSED.finditer(worker_log.read_text(errors="replace")))


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def report(soak: Soak, api: httpx.Client, began: float, ended: float) -> list[str]:
    """Print the summary; return the failures."""
    args, failures = soak.args, soak.failures
    # the run from the clock's start (the first night) to the end
    t0, t1 = soak.clock.anchor, ended
    mid, w = (t0 + t1) / 2, max(3 * args.sample_s, 0.05 * (t1 - t0))
    print(f"\nsoak: {len(CHILDREN)} children x 2 sensors x {args.nights} nights of "
          f"{args.hours:g} h at {args.speed:g}x, store {args.store}; wall {ended - began:.0f} s "
          f"({(ended - t0) / 60:.1f} min from the first night's clock start)")
    print(f"\n{'service':<22} {'RSS mid MB':>10} {'end MB':>8} {'growth':>8} "
          f"{'MB/day':>8} {'max MB':>8}")
    procs = list(soak.procs.values())
    for p in procs:
        if not p.rss:
            continue
        at_mid, at_end = window_median(p.rss, mid, mid + w), window_median(p.rss, t1 - w, t1)
        growth = (at_end - at_mid) / at_mid * 100
        slope = slope_mb_per_day(p.rss, mid, args.speed)
        mark = "" if p.judged else "  (not judged: not a limbwatch service)"
        print(f"{p.name:<22} {at_mid:10.1f} {at_end:8.1f} {growth:+7.1f}% {slope:+8.1f} "
              f"{max(mb for _, mb in p.rss):8.1f}{mark}")
        if p.judged and not growth <= args.max_growth_pct:
            failures.append(f"{p.name}: RSS grew {growth:+.1f} % over the second half "
                            f"(limit {args.max_growth_pct:g} %)")
    for child_id, mb in soak.sim_rss.items():
        print(f"{'sim ' + child_id:<22} {'':>10} {'':>8} {'':>8} {'':>8} {mb:8.1f}"
              "  (one process a night)")
    print(f"\n{'gateway':<16} {'backlog end':>11} {'max':>7} {'nights complete':>16}")
    for child in CHILDREN:
        samples = soak.backlog[child.id]
        final = samples[-1][1] if samples else -1
        complete = sum(n.complete for n in soak.nights if n.child is child)
        print(f"{child.id:<16} {final:11d} {max((b for _, b in samples), default=-1):7d} "
              f"{complete:>9d} of {args.nights}")
        if final != 0:
            failures.append(f"gateway {child.id}: {final} chunks left in the spool")
        if complete < args.nights:
            failures.append(f"gateway {child.id}: the sensors were switched off with packets "
                            f"missing on {args.nights - complete} nights")
    counts = analyses_per_night(soak.procs["worker"].log)
    metrics = httpx.get(f"http://127.0.0.1:{soak.metrics_port}/metrics", timeout=10).text
    total = metric(metrics, "limbwatch_nights_analysed_total")
    print(f"\n{'child':<14} {'nights':>6} {'ready':>6} {'dates ok':>8} {'analyses per night':>20}"
          f" {'coverage min':>13}")
    for child in CHILDREN:
        nights = api.get(f"/api/v1/subjects/{child.id}/nights",
                         params={"limit": 100}).json()["nights"]
        expected = {(FIRST_EVENING + timedelta(days=k)).isoformat() for k in range(args.nights)}
        dates_ok = {n["date"] for n in nights} == expected and len(nights) == args.nights
        ready = sum(n["status"] == "ready" for n in nights)
        per_night = [counts.get(n["id"], 0) for n in sorted(nights, key=lambda n: n["date"])]
        coverage = min((n["coverage"] or 0 for n in nights), default=0)
        print(f"{child.id:<14} {len(nights):6d} {ready:6d} {'yes' if dates_ok else 'NO':>8} "
              f"{' '.join(map(str, per_night)):>20} {coverage:13.2f}")
        if not dates_ok:
            failures.append(f"{child.id}: nights on {sorted(n['date'] for n in nights)}, "
                            f"expected {sorted(expected)}")
        if ready != len(nights):
            failures.append(f"{child.id}: {len(nights) - ready} nights not ready")
        if any(c != 1 for c in per_night):
            failures.append(f"{child.id}: analyses per night {per_night} (each must be 1)")
    print(f"worker: limbwatch_nights_analysed_total {total}, analysed lines {sum(counts.values())}"
          f", failures {metric(metrics, 'limbwatch_analysis_failures_total')}; API errors "
          f"during the week: {soak.api_errors}")
    if total != sum(counts.values()):
        failures.append(f"the worker's metric says {total} analyses, its log "
                        f"{sum(counts.values())}")
    return failures


def write_samples(soak: Soak) -> None:
    """The RSS and backlog series, for plots (soak.json in the output folder)."""
    (soak.out / "soak.json").write_text(json.dumps({
        "clock": {"start": soak.clock.start, "speed": soak.clock.speed,
                  "anchor": soak.clock.anchor},
        "rss_mb": {p.name: p.rss for p in soak.procs.values()},
        "backlog": soak.backlog,
        "nights": [{"child": n.child.id, "evening": n.evening.isoformat(),
                    "bedtime_wall": soak.wall(n.bedtime), "end_wall": soak.wall(n.end),
                    "complete": n.complete} for n in soak.nights],
    }))


@contextmanager
def store(kind: str, out: Path) -> Iterator[tuple[str, int | None]]:
    """The store URL and, for InfluxDB, the server's pid."""
    if kind == "sqlite":
        yield f"sqlite:{out / 'store.db'}", None
        return
    (out / "influxd").mkdir()
    with influxd(out / "influxd") as server:
        yield server.store_url("soak", out / "records.db"), server.pid


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nights", type=int, default=7)
    p.add_argument("--hours", type=float, default=3.0, help="each night's length (simulated)")
    p.add_argument("--speed", type=float, default=600.0, help="simulated s per real s")
    p.add_argument("--store", choices=["influx", "sqlite"], default="influx")
    p.add_argument("--quiet-min", type=float, default=0.5,
                   help="the worker's quiet period, real minutes (default 0.5)")
    p.add_argument("--lead-s", type=float, default=25.0,
                   help="real s the sensors are on before bedtime (the gateway's reconnect "
                        "backoff reaches 15 s while they are off)")
    p.add_argument("--morning-s", type=float, default=60.0,
                   help="real s after a night's end before its sensors are switched off anyway")
    p.add_argument("--sample-s", type=float, default=2.0, help="RSS and backlog period, s")
    p.add_argument("--max-growth-pct", type=float, default=MAX_GROWTH_PCT)
    p.add_argument("-o", "--out", type=Path,
                   help="output folder, new (default: a temporary one, whose store is removed at "
                        "the end): logs, gateway files, rigs, soak.json, the store")
    args = p.parse_args()
    if len(CHILDREN) * args.nights > 100:
        raise SystemExit("at most 33 nights (the API pages 100 nights)")
    plan = plan_nights(args.nights, args.hours)
    if plan[-1].end > time.time() - args.quiet_min * 60 - 3600:
        raise SystemExit("the simulated week must lie in the host clock's past")
    out = args.out or Path(tempfile.mkdtemp(prefix="limbwatch-soak-"))
    out.mkdir(parents=True, exist_ok=args.out is None)
    minutes = ((plan[-1].end - plan[0].bedtime) / args.speed + STARTUP_S + args.lead_s) / 60
    print(f"soak in {out}: {len(plan)} nights, the last one ends in about {minutes:.1f} min",
          flush=True)
    began = time.time()
    with ExitStack() as stack:
        url, influx_pid = stack.enter_context(store(args.store, out))
        soak = Soak(args, out, url, influx_pid)
        token = soak.set_up()
        stack.callback(soak.stop_all)
        base = soak.start_services()
        api = stack.enter_context(httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60))
        try:
            ended = soak.week(api)
        finally:
            write_samples(soak)
        failures = report(soak, api, began, ended)
    if args.out is None:  # a temporary folder: keep the logs and series, not the week's data
        shutil.rmtree(out / "influxd", ignore_errors=True)
        for path in out.glob("store.db*"):
            path.unlink()
    print(f"\nlogs and series in {out}")
    for failure in failures:
        print(f"FAIL {failure}")
    print("soak passed" if not failures else f"soak failed ({len(failures)})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
