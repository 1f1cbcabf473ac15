"""Servers in their own processes for the benchmarks: `limbwatch serve` on a free loopback
port, and Debian's influxd 1.6.7 with a data folder of its own."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, tries: int = 100) -> None:
    """Return once 127.0.0.1:`port` accepts connections (or after `tries` x 0.1 s)."""
    for _ in range(tries):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return
        except OSError:
            time.sleep(0.1)


@contextmanager
def served(store: Path, workers: int = 1) -> Iterator[str]:
    """The base URL of `limbwatch serve --no-worker --workers N` on `store`, once it answers
    (up to 30 s); the server is stopped on leaving."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--store", str(store), "--port", str(port),
         "--no-worker", "--workers", str(workers)], env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        wait_for_port(port, tries=300)
        time.sleep(1.0)  # the other processes start beside the first
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


@dataclass(frozen=True, slots=True)
class InfluxServer:
    port: int  # its HTTP port on 127.0.0.1
    pid: int

    def store_url(self, bucket: str, records: Path) -> str:
        """The limbwatch store URL of `bucket` on this server (v1 API), records in SQLite."""
        return f"influxdb://127.0.0.1:{self.port}/{bucket}?api=v1&records={records}"


@contextmanager
def influxd(root: Path) -> Iterator[InfluxServer]:
    """An influxd of its own on a free port, data in `root`, stopped on leaving."""
    binary = shutil.which("influxd")
    if binary is None:
        raise SystemExit("needs Debian's influxdb (apt-get install influxdb)")
    ports = [free_port(), free_port()]
    (root / "influxd.conf").write_text(
        f'reporting-disabled = true\nbind-address = "127.0.0.1:{ports[1]}"\n'
        f'[meta]\n  dir = "{root}/meta"\n[data]\n  dir = "{root}/data"\n'
        f'  wal-dir = "{root}/wal"\n  query-log-enabled = false\n'
        f'[http]\n  bind-address = "127.0.0.1:{ports[0]}"\n  log-enabled = false\n'
        '[monitor]\n  store-enabled = false\n')
    proc = subprocess.Popen([binary, "-config", str(root / "influxd.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(ports[0], tries=300)
        yield InfluxServer(ports[0], proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
