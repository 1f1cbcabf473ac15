"""Issue 11, many homes on one server: a home gateway writes to a central `limbwatch serve` over
HTTPS with its own gateway token, which may write only the subjects given it; the spool carries
the night while the server is not up; the server analyses the night as if it had been
collected locally."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import free_port
from test_ingest_restart import RIG, START
from test_service_e2e import wait_until_ready
from tls import make_certificates

from limbwatch.clockmodel import ClockModel, ClockSegment
from limbwatch.config import SensorEntry, gateway_toml
from limbwatch.errors import BadInput
from limbwatch.simclock import SimClock
from limbwatch.store.http_status import StoreRefused
from limbwatch.store.records import DeviceEvent, SensorAssignment, SensorStatus, Subject
from limbwatch.store.remote import RemoteSettings, RemoteStore
from limbwatch.store.samples import Chunk, StoreUnavailable
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore

SPEED = 240.0  # the 30-min night of RIG in 7.5 real s
QUIET_MIN = 0.1


def cli(*args: str) -> str:
    """Run a command to its end; its standard output."""
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True,
                          text=True, check=True).stdout.strip()


@dataclass
class Central:
    """A central server's store with subjects kid-a and kid-b and their tokens, and how to
    start `limbwatch serve` on it over HTTPS."""

    folder: Path
    port: int
    ca: Path
    tokens: dict[str, str]  # name -> secret

    @property
    def store(self) -> str:
        return f"sqlite:{self.folder / 'central.db'}"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def serve(self, log: Path) -> subprocess.Popen[str]:
        cert, key = self.folder / "server.pem", self.folder / "server.key"
        env = {**os.environ, "LIMBWATCH_API_TLS_CERT": str(cert),
               "LIMBWATCH_API_TLS_KEY": str(key), "LIMBWATCH_WORKER_POLL_S": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--store", self.store, "--port",
             str(self.port), "--quiet-min", str(QUIET_MIN)], env=env, text=True,
            stdout=subprocess.PIPE, stderr=log.open("a"))
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(f"Serving {self.url}/")
        return proc

    def remote(self, token: str, **options: str) -> RemoteStore:
        query = "&".join(f"{k}={v}" for k, v in {"ca_file": str(self.ca), **options}.items())
        return RemoteStore(RemoteSettings.from_url(f"{self.url}?{query}",
                                                   env={"LIMBWATCH_GATEWAY_TOKEN": token}))


def make_central(folder: Path) -> Central:
    ca, _, _ = make_certificates(folder)
    central = Central(folder, free_port(), ca, {})
    for kid in ("kid-a", "kid-b"):
        cli("subject", "--store", central.store, "--id", kid, "--time-zone", "Europe/London")
    with SqliteRecordStore(folder / "central.db") as records:  # another home's sensor
        kid_b = records.subject("kid-b")
        assert kid_b is not None
        records.put_subject(replace(kid_b, sensors=(SensorAssignment("LW0020L", "left"),)))
    for name, role, kids in (("home-a", "gateway", ["kid-a"]), ("home-b", "gateway", ["kid-b"]),
                             ("parent-a", "caregiver", ["kid-a"]), ("gone", "gateway",
                                                                    ["kid-a"])):
        central.tokens[name] = cli("token", "create", "--store", central.store, "--role", role,
                                   "--name", name, *[a for k in kids for a in ("--subject", k)])
    cli("token", "revoke", "--store", central.store, "--name", "gone")
    return central


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    central = make_central(tmp_path_factory.mktemp("central"))
    proc = central.serve(central.folder / "serve.log")
    try:
        yield central
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def chunk(subject: str, device: str, seq: int) -> Chunk:
    counts = np.arange(38 * 3, dtype=np.int16).reshape(38, 3) + seq
    return Chunk(subject=subject, side="left", device=device, session=7, seq=seq,
                 t0=START + seq * 0.76, dt=0.02, counts=counts, counts_per_g=4096,
                 ticks=1000 + seq * 24903, rate_hz=50)


def test_a_gateway_token_writes_its_own_subject_over_https(served: Central) -> None:
    model = ClockModel((ClockSegment(0, START - 1000 / 32768, 1 / 32768),))
    with served.remote(served.tokens["home-a"]) as home:
        known = home.subject("kid-a")
        assert known is not None and known.time_zone == "Europe/London"
        home.put_subject(Subject("kid-a", "ignored", None, "UTC",
                                 (SensorAssignment("LW0009L", "left"),
                                  SensorAssignment("LW0009R", "right"))))
        home.put_clock_models({("LW0009L", 7): model})
        home.write_chunks([chunk("kid-a", "LW0009L", q) for q in (0, 1, 2, 5)])
        home.write_chunks([chunk("kid-a", "LW0009L", 1)])  # again: stored once
        assert home.stored_seqs("LW0009L", 7) == [0, 1, 2, 5]
        home.write_device_events([DeviceEvent("kid-a", "left", START, "gap", {"packets": 2})])
        assert home.put_status([SensorStatus("LW0009L", "kid-a", "left", START, True, 80.0,
                                             START, None, None)]) > 0
    with SqliteSampleStore(served.folder / "central.db", create=False) as samples, \
            SqliteRecordStore(served.folder / "central.db") as records:
        stored = samples.read_chunks("LW0009L")
        assert [c.seq for c in stored] == [0, 1, 2, 5] and samples.conflicts() == []
        assert np.array_equal(stored[2].counts, chunk("kid-a", "LW0009L", 2).counts)
        assert stored[0].t0 == pytest.approx(START)  # re-stamped by the model sent
        assert samples.clock_model("LW0009L", 7) == model
        subject = records.subject("kid-a")
        assert subject is not None and subject.name == "kid-a" and subject.time_zone == (
            "Europe/London") and len(subject.sensors) == 2  # only the sensors changed
        assert [e.kind for e in records.device_events("kid-a", START - 1, START + 1)] == ["gap"]
        assert [s.serial for _, s in records.statuses_since(0)] == ["LW0009L"]


def test_a_gateway_token_cannot_write_or_read_anything_else(served: Central) -> None:
    with served.remote(served.tokens["home-a"]) as home:
        with pytest.raises(StoreRefused, match="kid-b"):
            home.write_chunks([chunk("kid-b", "LW0020L", 0)])
        with pytest.raises(StoreRefused, match="LW0020L"):  # another home's sensor
            home.write_chunks([chunk("kid-a", "LW0020L", 0)])
        with pytest.raises(StoreRefused):
            home.stored_seqs("LW0020L", 7)
        with pytest.raises(StoreRefused):  # taking another home's sensor over
            home.put_subject(Subject("kid-a", "kid-a", None, "UTC",
                                     (SensorAssignment("LW0020L", "left"),)))
        with pytest.raises(StoreRefused):
            home.write_device_events([DeviceEvent("kid-b", None, START, "gap", {})])
        with pytest.raises(StoreRefused):
            home.subject("kid-b")
    for name in ("parent-a", "gone"):  # a caregiver's token, a revoked one
        with served.remote(served.tokens[name]) as other, pytest.raises(StoreRefused):
            other.write_chunks([chunk("kid-a", "LW0009L", 9)])
    with served.remote(served.tokens["home-b"]) as home_b, pytest.raises(StoreRefused):
        home_b.put_subject(Subject("kid-c", "kid-c", None, "UTC", ()))  # only the admin adds
    # a gateway token reads no reports, nights or live status
    api = httpx.Client(base_url=served.url, verify=str(served.ca),
                       headers={"Authorization": f"Bearer {served.tokens['home-a']}"})
    assert api.get("/api/v1/subjects/kid-a/nights").status_code == 403
    assert api.get("/api/v1/subjects").json() == []
    with SqliteSampleStore(served.folder / "central.db", create=False) as samples:
        assert samples.stored_seqs("LW0020L", 7) == [] and 9 not in samples.stored_seqs(
            "LW0009L", 7)


def test_remote_urls_are_checked(served: Central) -> None:
    with pytest.raises(BadInput, match="https"):
        RemoteSettings.from_url("http://192.0.2.1:8000", env={"LIMBWATCH_GATEWAY_TOKEN": "t"})
    with pytest.raises(BadInput, match="LIMBWATCH_GATEWAY_TOKEN"):
        RemoteSettings.from_url(served.url, env={})
    # the system's CAs do not know the test CA: not this server, as far as the gateway knows
    with RemoteStore(RemoteSettings.from_url(served.url, env={
            "LIMBWATCH_GATEWAY_TOKEN": served.tokens["home-a"]})) as untrusted, \
            pytest.raises(StoreUnavailable, match="certificate"):
        untrusted.stored_seqs("LW0009L", 7)


def test_a_home_night_reaches_the_central_server_started_later(tmp_path: Path) -> None:
    """The gateway starts before the server (it waits, collecting into its spool), the night
    arrives once the server is up, and the server's worker analyses it."""
    central = make_central(tmp_path)
    (tmp_path / "rig.toml").write_text(RIG)
    (tmp_path / "home.token").write_text(central.tokens["home-a"])
    anchor = time.time() + 3.0
    log = tmp_path / "services.log"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "app.cli", "sim", "--rig", str(tmp_path / "rig.toml"),
         "--speed", str(SPEED), "--start", str(START), "--anchor", str(anchor)], text=True,
        stdout=subprocess.PIPE)]
    try:
        assert procs[0].stdout is not None
        endpoint = procs[0].stdout.readline().strip().removeprefix("HCI tcp://")
        url = f"{central.url}?ca_file={central.ca}&token_file={tmp_path / 'home.token'}"
        config = tmp_path / "gateway.toml"
        config.write_text(gateway_toml(
            store=url, spool=str(tmp_path / "spool.db"), transport=f"tcp-client:{endpoint}",
            sync_interval_s=60, clock=SimClock(start=START, speed=SPEED, anchor=anchor),
            sensors=[SensorEntry("kid-a", side, serial, serial)
                     for side, serial in (("left", "LW0009L"), ("right", "LW0009R"))]))
        procs.append(subprocess.Popen([sys.executable, "-m", "app.cli", "ingest", "--config",
                                       str(config)], stdout=log.open("a"),
                                      stderr=subprocess.STDOUT))
        time.sleep(max(0.0, anchor + 900 / SPEED - time.time()))  # half the night, offline
        assert procs[1].poll() is None, log.read_text()[-3000:]
        procs.append(central.serve(log))
        api = httpx.Client(base_url=central.url, verify=str(central.ca), timeout=10,
                           headers={"Authorization": f"Bearer {central.tokens['parent-a']}"})
        night = wait_until_ready(api, "kid-a", anchor + 1800 / SPEED + 120)
        assert night is not None and night["status"] == "ready", (night, log.read_text()[-3000:])
        assert api.get(f"/api/v1/nights/{night['id']}/report").status_code == 200
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    text = log.read_text()
    assert "cannot register the sensors yet" in text and "sensors registered" in text
    with SqliteSampleStore(tmp_path / "central.db", create=False) as samples:
        expected = 2 * 1800 * 50
        got = sum(samples.read_samples("kid-a", side, START - 60, START + 3600).time.size
                  for side in ("left", "right"))
        assert got == expected, text[-3000:]
    assert central.tokens["home-a"] not in (tmp_path / "gateway.toml").read_text()
