"""Configuration of a limbwatch gateway, from a TOML file.

    [store]
    path = "limbwatch.db"              # SQLite file (the embedded default store), or
    # url = "influxdb://HOST:8086/limbwatch?api=v2&org=ORG&records=/var/lib/limbwatch/records.db"
    #                                  # samples on InfluxDB (token: $LIMBWATCH_INFLUX_TOKEN)

    [spool]
    path = "spool.db"                  # durable hand-off between BLE and the store

    [ble]
    transport = "tcp-client:127.0.0.1:5555"   # a simulator's radio; omit for the platform
                                              # backend (BlueZ on Linux)
    sync_interval_s = 300              # clock syncs with each sensor

    [clock]                            # optional: simulated time (tests and the demo)
    start = 1795203000.0               # sim UTC at `anchor`
    speed = 300.0
    anchor = 1763712000.0              # host wall time

    [[sensor]]
    subject = "child-1"
    side = "left"
    name = "LW0001L"                   # advertised name
    serial = "LW0001L"                 # Device Information serial

Relative paths are relative to the file. Errors name the file and the key.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limbwatch.errors import BadInput
from limbwatch.recording import Side, as_side
from limbwatch.simclock import SimClock


class ConfigError(BadInput):
    """A configuration file that cannot be used; its str() names the file and the key."""


@dataclass(frozen=True, slots=True)
class SensorEntry:
    subject: str
    side: Side
    name: str
    serial: str


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    store_url: str  # a store URL (`limbwatch.store.open`): sqlite:PATH or influxdb://...
    spool_path: Path
    transport: str | None  # None: bleak's platform backend
    sync_interval_s: float
    clock: SimClock
    sensors: tuple[SensorEntry, ...]

    @property
    def state_path(self) -> Path:
        """Clock syncs, kept beside the spool."""
        return self.spool_path.with_name(self.spool_path.stem + "-clock.json")


def gateway_toml(*, store: str, spool: str, sensors: Sequence[SensorEntry],
                 transport: str | None = None, sync_interval_s: float = 300.0,
                 clock: SimClock | None = None) -> str:
    """A gateway file that `load_config` reads back (paths relative to where it is written)."""
    key = "url" if store.startswith("sqlite:") or "://" in store else "path"  # URL or file
    lines = [f"[store]\n{key} = {json.dumps(store)}", f"[spool]\npath = {json.dumps(spool)}"]
    ble = f"[ble]\nsync_interval_s = {sync_interval_s!r}"
    lines.append(ble if transport is None else f"{ble}\ntransport = {json.dumps(transport)}")
    if clock is not None:
        lines.append(f"[clock]\nstart = {clock.start!r}\nspeed = {clock.speed!r}\n"
                     f"anchor = {clock.anchor!r}")
    lines += [
        f"[[sensor]]\nsubject = {json.dumps(s.subject)}\nside = {json.dumps(s.side)}\n"
        f"name = {json.dumps(s.name)}\nserial = {json.dumps(s.serial)}"
        for s in sensors
    ]
    return "\n".join(lines) + "\n"


def load_config(path: Path) -> GatewayConfig:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    get = _Getter(path)
    base = path.parent
    sensors = []
    for i, entry in enumerate(get.list(data, "sensor")):
        where = f"sensor[{i}]"
        side = get.text(entry, "side", where)
        try:
            side_ok = as_side(side)
        except ValueError as exc:
            raise ConfigError(f"{path}: {where}.side: {exc}") from None
        sensors.append(SensorEntry(
            subject=get.text(entry, "subject", where), side=side_ok,
            name=get.text(entry, "name", where), serial=get.text(entry, "serial", where),
        ))
    if not sensors:
        raise ConfigError(f"{path}: no [[sensor]] entries")
    ble = get.table(data, "ble", required=False)
    clock = get.table(data, "clock", required=False)
    return GatewayConfig(
        store_url=_store_url(get, get.table(data, "store"), base),
        spool_path=base / get.text(get.table(data, "spool"), "path", "spool"),
        transport=get.text(ble, "transport", "ble") if "transport" in ble else None,
        sync_interval_s=get.number(ble, "sync_interval_s", "ble", 300.0),
        clock=SimClock(
            start=get.number(clock, "start", "clock"), speed=get.number(clock, "speed", "clock"),
            anchor=get.number(clock, "anchor", "clock"),
        ) if clock else SimClock(),
        sensors=tuple(sensors),
    )


def _store_url(get: _Getter, store: dict[str, Any], base: Path) -> str:
    """[store]: `path` (SQLite, relative to the file) or `url` (any store URL), not both."""
    if ("path" in store) == ("url" in store):
        raise ConfigError(f"{get.path}: [store] needs path = \"FILE\" (SQLite) or url = "
                          "\"influxdb://...\", one of them")
    if "url" in store:
        return get.text(store, "url", "store")
    return f"sqlite:{base / get.text(store, 'path', 'store')}"


@dataclass(frozen=True, slots=True)
class _Getter:
    path: Path

    def table(self, data: dict[str, Any], key: str, required: bool = True) -> dict[str, Any]:
        value = data.get(key)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{self.path}: [{key}] is missing or not a table")
        return value

    def list(self, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(f"{self.path}: {key} must be a list of tables ([[{key}]])")
        return value

    def text(self, data: dict[str, Any], key: str, where: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self.path}: {where}.{key} must be a non-empty string")
        return value

    def number(self, data: dict[str, Any], key: str, where: str,
               default: float | None = None) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self.path}: {where}.{key} must be a number")
        return float(value)
