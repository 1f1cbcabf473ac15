"""Gateway configuration files: a good one loads, bad ones name the file and the key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from limbwatch.config import ConfigError, GatewayConfig, gateway_toml, load_config

GOOD = """
[store]
path = "data/limbwatch.db"
[spool]
path = "data/spool.db"
[ble]
transport = "tcp-client:127.0.0.1:5555"
sync_interval_s = 120
[clock]
start = 1795203000.0
speed = 300
anchor = 1763712000.0
[[sensor]]
subject = "child-1"
side = "left"
name = "LW0001L"
serial = "LW0001L"
"""


def test_a_good_file_loads_with_paths_relative_to_it(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(GOOD)
    config = load_config(path)
    assert config.store_url == f"sqlite:{tmp_path / 'data/limbwatch.db'}"
    assert config.state_path == tmp_path / "data/spool-clock.json"
    assert config.transport == "tcp-client:127.0.0.1:5555" and config.sync_interval_s == 120
    assert config.clock.speed == 300 and config.clock.start == 1795203000.0
    assert [(s.subject, s.side, s.serial) for s in config.sensors] == [
        ("child-1", "left", "LW0001L")]


def test_written_files_read_back(tmp_path: Path) -> None:
    written = load_config_text(tmp_path, GOOD)
    path = tmp_path / "again.toml"
    path.write_text(gateway_toml(
        store="data/limbwatch.db", spool="data/spool.db", transport=written.transport,
        sync_interval_s=written.sync_interval_s, clock=written.clock,
        sensors=list(written.sensors)))
    assert load_config(path) == written


def load_config_text(tmp_path: Path, text: str) -> GatewayConfig:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return load_config(path)


def test_without_ble_and_clock_sections_the_platform_backend_and_host_time_are_used(
        tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(GOOD.split("[ble]")[0] + GOOD[GOOD.index("[[sensor]]"):])
    config = load_config(path)
    assert config.transport is None and config.clock.speed == 1.0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace('side = "left"', 'side = "middle"'), "sensor[0].side"),
        (lambda s: s.replace('serial = "LW0001L"', "serial = 7"), "sensor[0].serial"),
        (lambda s: s.replace("speed = 300", 'speed = "fast"'), "clock.speed"),
        (lambda s: s[: s.index("[[sensor]]")], "no [[sensor]]"),
        (lambda s: s.replace("[store]", "[stor]"), "[store]"),
        (lambda s: s + "\n[[[", "not valid TOML"),
    ],
)
def test_bad_files_name_the_key(tmp_path: Path, edit: Callable[[str], str], message: str) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(edit(GOOD))
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")) as info:
        load_config(path)
    assert str(path) in str(info.value)
