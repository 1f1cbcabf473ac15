"""Rig files: the simulated sensors of one subject and their faults, from TOML.

Layout (see ``firmware_sim/rigs/demo.toml``)::

    scenario = "mild_plms"        # bundled scenario name or path to a scenario TOML
    seed = 7
    night_start = 1795203000.0    # optional, Unix s (default firmware_sim.night.DEFAULT_START)
    duration_h = 9.0              # optional, overrides the scenario's

    [[sensors]]                   # one table per sensor, at most one per side
    serial = "LW0001L"
    side = "left"
    drift_ppm = 35.0              # optional: range_g, drift_ppm, flash_hours, battery_pct,
                                  #           battery_hours (defaults of SensorConfig)
    faults = [{ kind = "drop", at_s = 1800 }, { kind = "lose", value = 0.01 }]

Fault tables take ``kind``, ``at_s``, ``until_s``, ``value`` (see :class:`Fault`; times in s
since night start). Any problem raises :class:`RigError` naming the file and the dotted key.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from firmware_sim.night import DEFAULT_START
from firmware_sim.scenario import ScenarioError, load_scenario
from firmware_sim.sensor import ConfigError, Fault, SensorConfig
from limbwatch.recording import as_side

_TOP_KEYS = ("scenario", "seed", "night_start", "duration_h", "sensors")
_NUMBER_KEYS = ("drift_ppm", "flash_hours", "battery_pct", "battery_hours")
_SENSOR_KEYS = ("serial", "side", "range_g", *_NUMBER_KEYS, "faults")
_FAULT_KEYS = ("kind", "at_s", "until_s", "value")


class RigError(ValueError):
    """A rig file that cannot be read or does not validate."""


class _Reader:
    """Typed access to one TOML table; errors name the file and the dotted key."""

    def __init__(self, data: dict[str, Any], path: Path, prefix: str, keys: tuple[str, ...]):
        self.data, self.path, self.prefix = data, path, prefix
        unknown = sorted(set(data) - set(keys))
        if unknown:
            raise self.error(unknown[0], f"unknown key (known: {', '.join(keys)})")

    def error(self, key: str, problem: str) -> RigError:
        return RigError(f"rig file {self.path}: key '{self.prefix}{key}': {problem}")

    def required(self, key: str) -> Any:
        if key not in self.data:
            raise self.error(key, "missing")
        return self.data[key]

    def text(self, key: str) -> str:
        value = self.required(key)
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {value!r}")
        return value

    def integer(self, key: str) -> int:
        value = self.required(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {value!r}")
        return value

    def number(self, key: str) -> float:
        value = self.required(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value
        ):
            raise self.error(key, f"expected a finite number, got {value!r}")
        return float(value)

    def optional_number(self, key: str) -> float | None:
        return self.number(key) if key in self.data else None

    def tables(self, key: str, keys: tuple[str, ...], *, required: bool) -> list[_Reader]:
        value = self.required(key) if required else self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(key, "expected an array of tables")
        if required and not value:
            raise self.error(key, "needs at least one entry")
        return [_Reader(v, self.path, f"{self.prefix}{key}[{i}].", keys)
                for i, v in enumerate(value)]


def load_rig(path: Path | str, *, night_start: float | None = None) -> list[SensorConfig]:
    """Sensor configurations of a rig file; ``night_start`` (Unix s) overrides the file's."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RigError(f"rig file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RigError(f"rig file {path} cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RigError(f"rig file {path}: invalid TOML: {exc}") from None
    return parse_rig(data, path, night_start=night_start)


def parse_rig(
    data: dict[str, Any], path: Path, *, night_start: float | None = None
) -> list[SensorConfig]:
    """Validate a decoded rig document; ``path`` names the file in errors."""
    top = _Reader(data, path, "", _TOP_KEYS)
    scenario = top.text("scenario")
    try:
        sides = load_scenario(scenario).sides
    except ScenarioError as exc:
        raise top.error("scenario", str(exc)) from None
    common = {
        "scenario": scenario,
        "seed": top.integer("seed"),
        "night_start": night_start if night_start is not None else (
            top.number("night_start") if "night_start" in data else DEFAULT_START),
        "duration_h": top.optional_number("duration_h"),
    }
    configs: list[SensorConfig] = []
    for sensor in top.tables("sensors", _SENSOR_KEYS, required=True):
        config = _sensor(sensor, top, common)
        if config.side not in sides:
            raise sensor.error("side", f"scenario {scenario!r} has no {config.side} leg")
        clash = next((c for c in configs if config.side == c.side or config.serial == c.serial),
                     None)
        if clash is not None:
            raise sensor.error("side" if clash.side == config.side else "serial",
                               f"already used by sensor {clash.serial}")
        configs.append(config)
    return configs


def _sensor(t: _Reader, top: _Reader, common: dict[str, Any]) -> SensorConfig:
    """One ``[[sensors]]`` table with the rig-wide settings; errors name the right table."""
    faults = tuple(_fault(f) for f in t.tables("faults", _FAULT_KEYS, required=False))
    options: dict[str, Any] = {key: t.number(key) for key in _NUMBER_KEYS if key in t.data}
    if "range_g" in t.data:
        options["range_g"] = t.integer("range_g")
    try:
        side = as_side(t.text("side"))
    except ValueError as exc:
        raise t.error("side", str(exc)) from None
    try:
        return SensorConfig(serial=t.text("serial"), side=side, faults=faults, **common, **options)
    except ConfigError as exc:
        raise (top if exc.key in common else t).error(exc.key, exc.problem) from None


def _fault(t: _Reader) -> Fault:
    options: dict[str, Any] = {key: t.number(key) for key in _FAULT_KEYS[1:] if key in t.data}
    try:
        return Fault(kind=t.text("kind"), **options)
    except ConfigError as exc:
        raise t.error(exc.key, exc.problem) from None
