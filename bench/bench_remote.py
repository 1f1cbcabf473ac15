"""A home gateway's night into a central server (issue 11, many homes): a 10-h two-leg 50 Hz
night's chunks (94,736 packets) through `RemoteStore` in the spool's batches of 500 into
`limbwatch serve` on loopback (its own process, SQLite store with synchronous=FULL, plain HTTP:
TLS is not included), against the same chunks written straight into an SQLite store in the same
run. The server's CPU time per night says how many nights a day one server takes in. Then the
live night's small requests: a gateway posts its sensors' status every 2 s and hands over a few
packets at a time; their CPU cost on the server says how many homes one server keeps live.

    python bench/bench_remote.py [--hours 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench_store import BATCH, SIDES, T0, batches, synthetic_night
from serving import free_port, wait_for_port

from limbwatch.store.records import SensorAssignment, SensorStatus, Subject
from limbwatch.store.remote import RemoteSettings, RemoteStore
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore

LIVE_REQUESTS = 500  # pairs: a status post and a hand-over of 3 packets


def cli(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True,
                          text=True, check=True).stdout.strip()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hours", type=float, default=10.0)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    chunks = synthetic_night(args.hours, 50.0)
    print(f"{len(chunks)} chunks ({args.hours:g} h, two legs at 50 Hz), batches of {BATCH}")
    live = [replace(c, session=2) for c in chunks[: 3 * LIVE_REQUESTS]]
    direct, remote, server_cpu, live_cpu = [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for run in range(args.repeat):
            t = time.perf_counter()
            with SqliteSampleStore(tmp / f"direct-{run}.db", synchronous="FULL") as store:
                for batch in batches(chunks, BATCH):
                    store.write_chunks(batch)
            direct.append(time.perf_counter() - t)

            db = tmp / f"central-{run}.db"
            with SqliteRecordStore(db) as records:
                records.put_subject(Subject("kid", "kid", None, "UTC", tuple(
                    SensorAssignment(f"LW-{side}", side) for side in SIDES)))
            token = cli("token", "create", "--store", str(db), "--role", "gateway", "--name",
                        "home", "--subject", "kid")
            port = free_port()
            server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--store",
                                       str(db), "--port", str(port), "--no-worker"])
            try:
                wait_for_port(port)
                before = cpu_s(server.pid)
                settings = RemoteSettings.from_url(f"http://127.0.0.1:{port}",
                                                   env={"LIMBWATCH_GATEWAY_TOKEN": token})
                t = time.perf_counter()
                with RemoteStore(settings) as home:
                    for batch in batches(chunks, BATCH):
                        home.write_chunks(batch)
                    remote.append(time.perf_counter() - t)
                    server_cpu.append(cpu_s(server.pid) - before)
                    before = cpu_s(server.pid)
                    for k in range(LIVE_REQUESTS):
                        home.put_status([SensorStatus(f"LW-{side}", "kid", side, T0 + k, True,
                                                      90.0, T0 + k, None, None)
                                         for side in SIDES])
                        home.write_chunks(live[3 * k: 3 * k + 3])
                    live_cpu.append((cpu_s(server.pid) - before) / (2 * LIVE_REQUESTS))
            finally:
                server.terminate()
                server.wait(10)
            with SqliteSampleStore(db, create=False) as store:
                assert sum(len(store.stored_seqs(f"LW-{s}", 1)) for s in SIDES) == len(chunks)
    d, r, c, q = (statistics.median(x) for x in (direct, remote, server_cpu, live_cpu))
    print(f"direct into SQLite (FULL): {d:.2f} s")
    print(f"through the server: {r:.2f} s ({len(chunks) / r:,.0f} packets/s, ratio {r / d:.1f}); "
          f"server CPU {c:.2f} s per night")
    print(f"one server core, writes only: {86400 / c:,.0f} nights a day")
    per_home = q * (1 / 2.0 + 1.0)  # a status every 2 s, about a packet hand-over a second
    print(f"live: server CPU {q * 1e3:.1f} ms per small request; a home's live night "
          f"{per_home * 1e3:.1f} ms/s: {1 / per_home:,.0f} homes live per server core")


if __name__ == "__main__":
    main()
