"""Real servers for the tests, started on free loopback ports with their own data folders and
stopped at the end: Debian's `influxdb` (InfluxDB 1.6.7, the v1 API) and `victoria-metrics`
(which accepts `/api/v2/write` from influxdb-client). `make test` installs both; without them the
tests that need them are skipped, saying so."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from limbwatch.store.influx import init_store
from limbwatch.store.influx_http import InfluxSettings

INFLUXD = shutil.which("influxd")
VICTORIA = shutil.which("victoria-metrics")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Influxd:
    """A throwaway influxd 1.6.7; `stop` and `start` again keep its data (fault tests)."""

    root: Path
    port: int
    auth: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = self.root / "influxd.conf"
        config.write_text(f"""reporting-disabled = true
bind-address = "127.0.0.1:{free_port()}"
[meta]
  dir = "{self.root}/meta"
[data]
  dir = "{self.root}/data"
  wal-dir = "{self.root}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
  auth-enabled = {"true" if self.auth else "false"}
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
""")
        assert INFLUXD is not None
        self.proc = subprocess.Popen([INFLUXD, "-config", str(config)],
                                     stdout=(self.root / "influxd.log").open("ab"),
                                     stderr=subprocess.STDOUT)
        _wait_until_up(f"{self.url}/ping", self.proc, self.root / "influxd.log")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def store_url(self, records: Path, **options: str) -> str:
        """A new database (created) on this server, as a store URL with `records` and
        `options`."""
        name = f"lw_{uuid.uuid4().hex[:10]}"
        query = "&".join(f"{k}={v}" for k, v in {"api": "v1", "records": str(records),
                                                  **options}.items())
        url = f"influxdb://127.0.0.1:{self.port}/{name}?{query}"
        init_store(InfluxSettings.from_url(url))
        return url


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server ended: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 300:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url}: the server did not come up in 30 s")


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    """InfluxDB 1.6.7 for the whole session (each test takes a new database)."""
    if INFLUXD is None:
        pytest.skip("Debian's influxdb (influxd 1.6.7) is not installed: `make test` installs it")
    server = Influxd(tmp_path_factory.mktemp("influxd"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_influxd(tmp_path: Path) -> Iterator[Influxd]:
    """An influxd of the test's own, to stop and start (fault tests)."""
    if INFLUXD is None:
        pytest.skip("Debian's influxdb (influxd 1.6.7) is not installed: `make test` installs it")
    server = Influxd(tmp_path / "influxd", free_port())
    server.root.mkdir()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """VictoriaMetrics: a real server that takes `/api/v2/write`; its base URL."""
    if VICTORIA is None:
        pytest.skip("Debian's victoria-metrics is not installed: `make test` installs it")
    root = tmp_path_factory.mktemp("victoria")
    port = free_port()
    log = root / "victoria.log"
    proc = subprocess.Popen([VICTORIA, f"-storageDataPath={root}/data",
                             f"-httpListenAddr=127.0.0.1:{port}", "-influxTrimTimestamp=1ms"],
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)
    _wait_until_up(f"http://127.0.0.1:{port}/health", proc, log)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(20)
