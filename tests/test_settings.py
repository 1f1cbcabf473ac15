"""Issue 11, configuration in one place: one settings file, environment overrides, options over
both; every bad value reported at once, one line each, exit 2; no secrets in the file; the
gateway files keep loading as they did; `limbwatch config check`; every key documented in the
README. And the logs: one set-up, JSON lines with the night's id as correlation id."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from test_config import GOOD
from test_store import SIDES, sim_chunks

from firmware_sim.night import simulate_night
from firmware_sim.scenario import load_scenario
from ingest.gateway import main as ingest_main
from limbwatch.config import GatewayConfig, load_config
from limbwatch.logs import JsonFormatter, setup_logging
from limbwatch.settings import Settings, SettingsError, env_name, keys, load_settings
from limbwatch.store.nights import refresh_nights
from limbwatch.store.records import SensorStatus, Subject
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore

ROOT = Path(__file__).resolve().parent.parent

FILE = """
[store]
path = "data/limbwatch.db"
[api]
port = 8100
[worker]
quiet_min = 45
poll_s = 5
[analysis]
rules = "aasm"
[logging]
format = "json"
"""


def clean_env(**extra: str) -> dict[str, str]:
    """The process environment without any LIMBWATCH_ setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIMBWATCH_")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def write(tmp_path: Path, text: str, name: str = "limbwatch.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_without_any_file_or_environment() -> None:
    s = load_settings(None, env={}).settings
    assert s.store.url == "sqlite:limbwatch.db"
    assert (s.api.host, s.api.port, s.api.worker) == ("127.0.0.1", 8000, True)
    assert (s.worker.quiet_min, s.worker.poll_s, s.worker.metrics_port) == (30.0, 10.0, None)
    assert (s.analysis.rules, s.logging.level, s.logging.format) == ("wasm2016", "INFO", "text")


def test_option_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    path = write(tmp_path, FILE)
    env = {"LIMBWATCH_WORKER_QUIET_MIN": "20", "LIMBWATCH_API_PORT": "8200",
           "LIMBWATCH_API_WORKER": "false"}
    loaded = load_settings(path, env=env, options={"worker.quiet_min": ("--quiet-min", 10.0),
                                                   "api.host": ("--host", None)})
    s = loaded.settings
    assert s.worker.quiet_min == 10.0 and loaded.source("worker.quiet_min") == "option --quiet-min"
    assert s.api.port == 8200 and loaded.source("api.port") == "env LIMBWATCH_API_PORT"
    assert s.api.worker is False
    assert s.worker.poll_s == 5 and loaded.source("worker.poll_s") == str(path)
    assert s.analysis.rules == "aasm" and s.logging.format == "json"
    assert s.api.host == "127.0.0.1" and loaded.source("api.host") == "default"  # None: not given
    # the file's path is relative to the file; a URL from the environment replaces it
    assert s.store.url == f"sqlite:{tmp_path / 'data/limbwatch.db'}"
    other = load_settings(path, env={"LIMBWATCH_STORE_URL": "sqlite:/elsewhere.db"}).settings
    assert other.store.url == "sqlite:/elsewhere.db"
    # the file named by LIMBWATCH_CONFIG when there is no --config
    assert load_settings(None, env={"LIMBWATCH_CONFIG": str(path)}).settings.api.port == 8100


def test_every_bad_value_is_one_line_naming_where_it_came_from(tmp_path: Path) -> None:
    path = write(tmp_path, """
[store]
url = "influxdb://db:8086/b?api=v2"
[api]
port = 70000
[worker]
quiet_min = 0
poll = 3
[logging]
format = "yaml"
[[sensor]]
subject = "kid"
side = "middle"
name = "LW1L"
serial = "LW1L"
""")
    env = clean_env(LIMBWATCH_WORKER_POLL_S="soon", LIMBWATCH_WORKER_QUIETMIN="3")
    done = cli("worker", "--config", str(path), "--once", "--metrics-port", "0", env=env,
               cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr and all(x.startswith("limbwatch: ") for x in lines)
    expected = [  # (where, key, what is expected)
        (str(path), "store.url", "org=ORG"),
        (str(path), "api.port", "less than or equal to 65535"),
        (str(path), "worker.quiet_min", "greater than 0"),
        (str(path), "worker.poll", "unknown key"),
        (str(path), "logging.format", "'text' or 'json'"),
        (str(path), "sensor[0].side", "'left' or 'right'"),
        ("env LIMBWATCH_WORKER_POLL_S", "worker.poll_s", "a valid number"),
        ("env LIMBWATCH_WORKER_QUIETMIN", "unknown setting", "LIMBWATCH_WORKER_QUIET_MIN"),
        ("option --metrics-port", "worker.metrics_port", "greater than or equal to 1"),
    ]
    assert len(lines) == len(expected), lines
    for where, key, wanted in expected:
        (line,) = [x for x in lines if x.startswith(f"limbwatch: {where}: {key}")]
        assert wanted in line, line
    assert not (tmp_path / "limbwatch.db").exists()  # nothing was started


def test_a_secret_in_the_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nurl = "influxdb://db:8086/b?api=v1&records=r.db"\n'
                 'token = "s3cret"\n[influx]\nadmin_token = "x"\n')
    with pytest.raises(SettingsError) as caught:
        load_settings(path, env={})
    problems = caught.value.problems
    assert any("store.token" in p and "LIMBWATCH_INFLUX_TOKEN" in p for p in problems)
    assert any("influx.admin_token" in p and "secret" in p for p in problems)
    assert "s3cret" not in str(caught.value)


def test_config_check_prints_the_effective_settings_with_the_token_masked(
        tmp_path: Path) -> None:
    path = write(tmp_path, FILE)
    url = "influxdb://db:8086/samples?api=v2&org=home&records=/data/records.db"
    env = clean_env(LIMBWATCH_CONFIG=str(path), LIMBWATCH_STORE_URL=url,
                    LIMBWATCH_INFLUX_TOKEN="tok-very-secret", LIMBWATCH_LOGGING_LEVEL="debug")
    done = cli("config", "check", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "tok-very-secret" not in out and "LIMBWATCH_INFLUX_TOKEN (********)" in out
    assert f'url = "{url}"  # env LIMBWATCH_STORE_URL' in out
    assert f"quiet_min = 45.0  # {path}" in out and 'level = "DEBUG"' in out
    assert "port = 8100" in out and "# metrics_port: not set (default)" in out
    bad = cli("config", "check", "--config", str(tmp_path / "nope.toml"), env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "nope.toml: cannot read" in bad.stderr


@pytest.mark.parametrize("name", ["gateway.toml", "gateway-sim.toml"])
def test_gateway_files_give_the_same_gateway_through_the_settings(name: str) -> None:
    path = ROOT / "deploy" / name
    assert same_gateway(load_settings(path, env={}).gateway_config(), load_config(path))


def same_gateway(a: GatewayConfig, b: GatewayConfig) -> bool:
    """Equal, but for the host clock's start (SimClock() reads the time when made)."""
    if a.clock.speed == b.clock.speed == 1.0:
        return replace(a, clock=b.clock) == b
    return a == b


def test_the_gateway_of_test_config_reads_the_same(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, "gateway.toml")
    assert same_gateway(load_settings(path, env={}).gateway_config(), load_config(path))
    loaded = load_settings(path, env={"LIMBWATCH_BLE_SYNC_INTERVAL_S": "60",
                                      "LIMBWATCH_STORE_PATH": "/x/store.db"})
    gateway = loaded.gateway_config()
    assert gateway.sync_interval_s == 60 and gateway.store_url == "sqlite:/x/store.db"


def test_ingest_reports_every_bad_value_before_any_ble(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(tmp_path, GOOD.replace("speed = 300", 'speed = "fast"'), "gateway.toml")
    monkeypatch.setenv("LIMBWATCH_BLE_SYNC_INTERVAL_S", "-5")
    assert ingest_main(["--config", str(path), "--log-format", "json"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2, lines
    assert any(f"{path}: clock.speed" in x for x in lines)
    assert any("env LIMBWATCH_BLE_SYNC_INTERVAL_S: ble.sync_interval_s" in x for x in lines)
    assert not (tmp_path / "data").exists()
    monkeypatch.delenv("LIMBWATCH_BLE_SYNC_INTERVAL_S")
    monkeypatch.delenv("LIMBWATCH_CONFIG", raising=False)
    assert ingest_main([]) == 2
    assert "give --config FILE or set $LIMBWATCH_CONFIG" in capsys.readouterr().err


def test_every_key_and_its_default_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z_.]+)` \|.*$", section,
                                                         re.MULTILINE)}
    for key, default in keys():
        assert key in rows, f"README Configuration lacks {key}"
        assert f"`{env_name(key)}`" in rows[key], key
        if default is not ... and default is not None:
            shown = str(default).lower() if isinstance(default, bool) else str(default)
            assert shown in rows[key], (key, default)


def test_json_lines_carry_time_level_logger_message_and_context() -> None:
    stream = io.StringIO()
    handler = setup_logging("INFO", "json", stream=stream)
    try:
        log = logging.getLogger("limbwatch.test")
        log.info("night %d analysed", 7, extra={"night": 7, "subject": "kid"})
        log.debug("not shown")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("failed", extra={"sensor": "LW1L"})
    finally:
        logging.getLogger().removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"])
    assert first == {**first, "level": "INFO", "logger": "limbwatch.test",
                     "message": "night 7 analysed", "night": 7, "subject": "kid"}
    assert "sensor" not in first
    assert second["sensor"] == "LW1L" and "RuntimeError: boom" in second["exc"]
    assert isinstance(handler.formatter, JsonFormatter)


def test_worker_once_logs_json_lines_with_the_night_id(tmp_path: Path) -> None:
    """The worker on a store with a night to analyse (its data long past), its settings from a
    file (quiet period), the environment (store, log format): every line on standard error is
    JSON, and the "analysed" line names the night."""
    store = tmp_path / "limbwatch.db"
    night = simulate_night(load_scenario("mild_plms"), 4, duration_h=1.0)
    with SqliteSampleStore(store) as samples, SqliteRecordStore(store) as records:
        kid = Subject("kid", "Kid", None, "UTC")
        records.put_subject(kid)
        for side in SIDES:
            samples.write_chunks(sim_chunks(night.legs[side], side))
        (found,) = refresh_nights(samples, records, kid, time.time())
        records.mark_ended(found.id)  # the caregiver said the night is over
    path = write(tmp_path, "[worker]\nquiet_min = 5\n[analysis]\ndefault_age_months = 8\n")
    env = clean_env(LIMBWATCH_STORE_URL=f"sqlite:{store}", LIMBWATCH_LOGGING_FORMAT="json")
    done = cli("worker", "--config", str(path), "--once", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    with SqliteRecordStore(store, create=False) as records:
        (stored,) = records.nights("kid")
        assert stored.status == "ready"
        report = records.report(stored.id)
        assert report is not None and json.loads(report[1])["age_months"] == 8.0  # the file's
    (analysed,) = [x for x in lines if "analysed" in x["message"]]
    assert analysed["night"] == stored.id and analysed["subject"] == "kid"
    assert analysed["level"] == "INFO" and analysed["logger"] == "worker.service"
    assert analysed["time"].endswith("Z")
    # text, by the option over the environment: the same line, its context in brackets
    records_file = SqliteRecordStore(store, create=False)
    with records_file as records:
        records.set_status(stored.id, "waiting")  # as if it were still to be analysed
    again = cli("worker", "--config", str(path), "--once", "--log-format", "text", env=env,
                cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"analysed (wasm2016 rules) [night={stored.id} subject=kid]" in again.stderr


def test_the_example_file_states_every_default() -> None:
    """deploy/limbwatch.toml, the documented example, is valid and sets each key to its
    default (but the spool's path, which it makes relative to itself)."""
    path = ROOT / "deploy" / "limbwatch.toml"
    loaded = load_settings(path, env={})
    assert loaded.settings.model_copy(update={"spool": Settings().spool}) == Settings()
    assert loaded.settings.spool.path == ROOT / "deploy" / "spool.db"
    text = path.read_text()
    for key, _ in keys():
        section, name = key.split(".")
        assert f"[{section}]" in text and re.search(rf"^#? ?{name} = ", text, re.MULTILINE), key


def test_serve_takes_its_store_and_port_from_the_settings(tmp_path: Path) -> None:
    """`serve` with no options: the store from the environment, port 0 (any free one) from the
    file; it serves there and stops on SIGTERM with status 0."""
    import signal

    import httpx

    store = tmp_path / "from-env.db"
    path = write(tmp_path, "[api]\nport = 0\nworker = false\n[logging]\nformat = \"json\"\n")
    env = clean_env(LIMBWATCH_CONFIG=str(path), LIMBWATCH_STORE_URL=f"sqlite:{store}")
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[1]
        assert not url.endswith(":8000/")
        assert httpx.get(f"{url}healthz", timeout=10).json()["status"] == "ok"
        assert store.exists() and not (tmp_path / "limbwatch.db").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert all(json.loads(line) for line in err.splitlines())


@pytest.mark.parametrize("lost_after_min, lost", [(2.0, True), (15.0, False)])
def test_serve_times_the_live_alerts_by_the_settings(tmp_path: Path, lost_after_min: float,
                                                     lost: bool) -> None:
    """A sensor last heard from 10 min ago is lost with `live.lost_after_min` 2, not with 15."""
    import signal

    import httpx

    store = tmp_path / "limbwatch.db"
    with SqliteRecordStore(store) as records:
        records.put_subject(Subject("kid", "Kid", None, "UTC"))
        then = time.time() - 600
        records.put_status([SensorStatus("LW1", "kid", "left", then, True, 80.0, then, True,
                                         None)])
    env = clean_env(LIMBWATCH_STORE_URL=f"sqlite:{store}")
    token = cli("token", "create", "--role", "admin", "--name", "a", env=env, cwd=tmp_path)
    assert token.returncode == 0, token.stderr
    path = write(tmp_path, f"[api]\nport = 0\nworker = false\n[live]\n"
                           f"lost_after_min = {lost_after_min}\n")
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"],
                            env={**env, "LIMBWATCH_CONFIG": str(path)}, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[1]
        events = httpx.get(f"{url}api/v1/live?once=1", timeout=10, headers={
            "Authorization": f"Bearer {token.stdout.strip()}"}).text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert "event: status" in events
    assert ('"alert": "lost"' in events) == lost, events


def test_the_gateways_lines_about_a_sensor_name_it(caplog: pytest.LogCaptureFixture) -> None:
    """A bad notification from a sensor is logged with the sensor's name and its subject, and
    a JSON line carries both."""
    from typing import Any, cast

    from ingest.central import SensorLink, SensorTarget
    from limbwatch.simclock import SimClock

    unused = cast(Any, None)  # the link never gets as far as its spool or store here
    link = SensorLink(SensorTarget("kid", "left", "LW0001L", "LW0001L"), backend=unused,
                      clock=SimClock(), spool=unused, writer=unused, store=unused, state=unused,
                      models=unused)
    caplog.set_level(logging.INFO, logger="ingest.central")
    link._on_data(None, bytearray(b"\x01\x02"))
    (record,) = [r for r in caplog.records if "bad notification" in r.getMessage()]
    line = json.loads(JsonFormatter().format(record))
    assert (line["sensor"], line["subject"], line["logger"]) == ("LW0001L", "kid", "ingest.central")
    assert link.status.bad_packets == 1
