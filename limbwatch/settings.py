"""The settings of every limbwatch service in one place: one TOML file (`limbwatch.toml`), the
environment, and command-line options.

Precedence, for each key: a command-line option > the environment variable
`LIMBWATCH_<SECTION>_<KEY>` (e.g. `LIMBWATCH_STORE_URL`, `LIMBWATCH_WORKER_QUIET_MIN`) > the
file > the default. The file is `--config FILE`, else `$LIMBWATCH_CONFIG`, else none (defaults
and the environment only).

    [store]
    url = "sqlite:limbwatch.db"        # a store URL (limbwatch.store.open), or instead
    # path = "limbwatch.db"            # an SQLite file, relative to this file
    [api]                              # limbwatch serve
    host = "127.0.0.1"
    port = 8000                        # 0: any free port
    workers = 1                        # server processes sharing the port
    worker = true                      # run the analysis service inside
    [worker]                           # limbwatch worker (and the one inside serve)
    quiet_min = 30.0                   # minutes without new data: the night is over
    poll_s = 10.0                      # seconds between rounds
    # metrics_port = 9100              # serve Prometheus metrics (default: not served)
    metrics_host = "127.0.0.1"
    [live]                             # the live view's device alerts (limbwatch serve)
    lost_after_min = 2.0               # a sensor not heard from this long is lost
    confirm_s = 30.0                   # a condition holds this long before it alerts
    low_battery_pct = 20.0
    [analysis]
    rules = "wasm2016"                 # or "aasm"; age thresholds from each subject's birth date
    # default_age_months = 48          # for subjects without one (default: unknown, child)
    [logging]
    level = "INFO"                     # DEBUG, INFO, WARNING, ERROR
    format = "text"                    # or "json": one JSON object a line
    # the gateway (limbwatch ingest): the keys of a gateway file (limbwatch/config.py)
    [spool]
    path = "spool.db"                  # relative to this file
    [ble]
    # transport = "tcp-client:127.0.0.1:5555"   # default: the platform backend (BlueZ)
    sync_interval_s = 300.0
    # [clock] start, speed, anchor: simulated time (all three)
    # [[sensor]] subject, side, name, serial: one per sensor

A gateway file (`limbwatch.config.load_config`) is a valid settings file as it is.

Secrets are never read from the file: the InfluxDB token comes from `$LIMBWATCH_INFLUX_TOKEN` or
the store URL's `token_file=PATH`; a `token` (or `*_token`, `password`) key is refused.

Validation collects every bad value and reports each on one line, naming where it came from
(the file, the environment variable or the option), the key, what is wrong and what is expected
(`SettingsError`, exit status 2).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from limbwatch.config import ConfigError, GatewayConfig, SensorEntry
from limbwatch.errors import BadInput
from limbwatch.simclock import SimClock

CONFIG_ENV = "LIMBWATCH_CONFIG"
ENV_PREFIX = "LIMBWATCH_"
TOKEN_ENV = "LIMBWATCH_INFLUX_TOKEN"  # limbwatch.store.influx_http reads it
_SECRET_KEYS = ("token", "password", "secret")

NonEmpty = Annotated[str, Field(min_length=1)]


class SettingsError(ConfigError):
    """Settings that cannot be used: one problem a line (str() joins them)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Section):
    url: NonEmpty = "sqlite:limbwatch.db"

    @field_validator("url")
    @classmethod
    def _a_store_url(cls, url: str) -> str:
        from limbwatch.store.influx_http import InfluxSettings
        from limbwatch.store.open import is_influx, sqlite_path
        from limbwatch.store.remote import RemoteSettings, is_remote

        try:  # tokens are checked where they are used
            if is_influx(url):
                InfluxSettings.from_url(url, env={})
            elif is_remote(url):
                RemoteSettings.from_url(url, env={}, need_token=False)
            else:
                sqlite_path(url)
        except BadInput as exc:
            raise ValueError(f"{exc} (expected sqlite:PATH, a path, "
                             "influxdb://HOST:PORT/BUCKET?api=v1|v2&org=ORG&records=PATH or, "
                             "for a gateway, https://SERVER?token_file=PATH)") from None
        return url


class ApiSettings(_Section):
    host: NonEmpty = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    worker: bool = True
    # HTTPS (for gateways and browsers reaching it over a network): PEM certificate chain and
    # its key; both or neither
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> ApiSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("api.tls_cert and api.tls_key go together (HTTPS needs both)")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not path.is_file():
                raise ValueError(f"{path}: no such file (api.tls_cert / api.tls_key)")
        return self


class WorkerSettings(_Section):
    quiet_min: float = Field(default=30.0, gt=0)
    poll_s: float = Field(default=10.0, gt=0)
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: NonEmpty = "127.0.0.1"


class LiveSettings(_Section):
    lost_after_min: float = Field(default=2.0, gt=0)
    confirm_s: float = Field(default=30.0, ge=0)
    low_battery_pct: float = Field(default=20.0, ge=0, le=100)


class AnalysisSettings(_Section):
    rules: Literal["wasm2016", "aasm"] = "wasm2016"
    # the age assumed for a subject without a birth date; None: unknown (the child thresholds)
    default_age_months: float | None = Field(default=None, ge=0, le=1500)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class SpoolSettings(_Section):
    path: Path = Path("spool.db")


class BleSettings(_Section):
    transport: NonEmpty | None = None
    sync_interval_s: float = Field(default=300.0, gt=0)


class ClockSettings(_Section):
    start: float
    speed: float = Field(gt=0)
    anchor: float


class SensorSettings(_Section):
    subject: NonEmpty
    side: Literal["left", "right"]
    name: NonEmpty
    serial: NonEmpty


class Settings(_Section):
    store: StoreSettings = StoreSettings()
    api: ApiSettings = ApiSettings()
    worker: WorkerSettings = WorkerSettings()
    live: LiveSettings = LiveSettings()
    analysis: AnalysisSettings = AnalysisSettings()
    logging: LoggingSettings = LoggingSettings()
    spool: SpoolSettings = SpoolSettings()
    ble: BleSettings = BleSettings()
    clock: ClockSettings | None = None
    sensor: tuple[SensorSettings, ...] = ()


# the sections whose keys the environment and options may set, each key once
_SCALAR: dict[str, type[_Section]] = {
    "store": StoreSettings, "api": ApiSettings, "worker": WorkerSettings, "live": LiveSettings,
    "analysis": AnalysisSettings, "logging": LoggingSettings, "spool": SpoolSettings,
    "ble": BleSettings, "clock": ClockSettings,
}


def env_name(key: str) -> str:
    """The environment variable of a dotted key: worker.quiet_min -> LIMBWATCH_WORKER_QUIET_MIN."""
    return ENV_PREFIX + key.replace(".", "_").upper()


def keys() -> Iterator[tuple[str, Any]]:
    """Every settable dotted key with its default (`...` when required, None when unset)."""
    for section, model in _SCALAR.items():
        for name, info in model.model_fields.items():
            yield f"{section}.{name}", (... if info.is_required() else info.default)


@dataclass(frozen=True)
class Loaded:
    """Settings, where each came from ("default", the file, "env NAME" or "option --X"), and
    the file they were read from (if any)."""

    settings: Settings
    sources: dict[str, str] = field(default_factory=dict)
    file: Path | None = None

    def source(self, key: str) -> str:
        return self.sources.get(key, "default")

    def gateway_config(self) -> GatewayConfig:
        """The gateway's part, for `limbwatch ingest`; SettingsError without any [[sensor]]."""
        s = self.settings
        if not s.sensor:
            where = str(self.file) if self.file is not None else "settings"
            raise SettingsError([f"{where}: sensor: no [[sensor]] entries (expected one "
                                 "table per ankle sensor: subject, side, name, serial)"])
        clock = s.clock
        return GatewayConfig(
            store_url=s.store.url, spool_path=s.spool.path, transport=s.ble.transport,
            sync_interval_s=s.ble.sync_interval_s,
            clock=SimClock(start=clock.start, speed=clock.speed, anchor=clock.anchor)
            if clock is not None else SimClock(),
            sensors=tuple(SensorEntry(e.subject, e.side, e.name, e.serial) for e in s.sensor),
        )


def config_path(given: Path | None, env: Mapping[str, str] | None = None) -> Path | None:
    """`--config FILE`, else $LIMBWATCH_CONFIG, else None."""
    env = os.environ if env is None else env
    if given is not None:
        return given
    named = env.get(CONFIG_ENV)
    return Path(named) if named else None


def load_settings(path: Path | None = None, *, env: Mapping[str, str] | None = None,
                  options: Mapping[str, tuple[str, Any]] | None = None) -> Loaded:
    """The settings from the file at `path` (None: `$LIMBWATCH_CONFIG`, or none), the
    environment and `options` ({dotted key: (option name, value)}; None values are not given).

    SettingsError lists every problem found, one a line."""
    env = os.environ if env is None else env
    path = config_path(path, env)
    problems: list[str] = []
    raw: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if path is not None:
        raw = _read_file(path, problems, sources)
    _overlay_env(raw, env, problems, sources)
    for key, (option, value) in (options or {}).items():
        if value is None:
            continue
        section, name = key.split(".")
        if not isinstance(raw.get(section), dict):
            raw[section] = {}
        if key == "store.path":  # a path option stands for sqlite:PATH
            key, name, value = "store.url", "url", f"sqlite:{value}"
        raw[section][name] = value
        sources[key] = f"option {option}"
    settings = None
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems += [_problem(error, sources, path) for error in exc.errors()]
    if problems or settings is None:
        raise SettingsError(problems)
    return Loaded(settings, sources, path)


def _read_file(path: Path, problems: list[str], sources: dict[str, str]) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise SettingsError([f"{path}: cannot read: {exc.strerror} (expected a TOML file; "
                             f"--config FILE or ${CONFIG_ENV})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError([f"{path}: not valid TOML: {exc}"]) from None
    for where, key in _secret_keys(data):
        problems.append(f"{path}: {where}: a secret is never read from the configuration file "
                        f"(expected it in ${TOKEN_ENV}, or token_file=PATH in the store URL); "
                        f"remove {key!r}")
        table = data
        for part in where.split(".")[:-1]:
            table = table[part]
        del table[key]
    base = path.parent
    store = data.get("store")
    if isinstance(store, dict) and "path" in store:
        if "url" in store:
            problems.append(f"{path}: store: both path and url (expected one of them: path = "
                            "\"FILE\" for SQLite, or url = \"a store URL\")")
            del store["path"]
        elif isinstance(store["path"], str) and store["path"]:
            store["url"] = f"sqlite:{base / store.pop('path')}"
        else:
            problems.append(f"{path}: store.path = {store.pop('path')!r}: expected a non-empty "
                            "string (an SQLite file, relative to this file)")
    spool = data.get("spool")
    if isinstance(spool, dict) and isinstance(spool.get("path"), str) and spool["path"]:
        spool["path"] = str(base / spool["path"])
    for section, table in data.items():
        if section in _SCALAR and isinstance(table, dict):
            for name in table:
                sources[f"{section}.{name}"] = str(path)
        elif section == "sensor" and isinstance(table, list):
            sources["sensor"] = str(path)
        else:
            sources[section] = str(path)
    return data


def _secret_keys(data: dict[str, Any], where: str = "") -> Iterator[tuple[str, str]]:
    """(dotted place, key) of every key in the file that names a secret."""
    for key, value in list(data.items()):
        place = f"{where}.{key}" if where else key
        if key.lower() in _SECRET_KEYS or key.lower().endswith(tuple(f"_{s}" for s in
                                                                     _SECRET_KEYS)):
            yield place, key
        elif isinstance(value, dict):
            yield from _secret_keys(value, place)


def _overlay_env(raw: dict[str, Any], env: Mapping[str, str], problems: list[str],
                 sources: dict[str, str]) -> None:
    known = {env_name(key): key for key, _ in keys()}
    known[ENV_PREFIX + "STORE_PATH"] = "store.path"
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or value == "":
            continue  # empty: as if unset (compose's ${X:-})
        key = known.get(name)
        if key is None:
            section = name.removeprefix(ENV_PREFIX).split("_", 1)[0].lower()
            if section in _SCALAR:
                same = sorted(n for n in known if n.startswith(f"{ENV_PREFIX}{section.upper()}_"))
                problems.append(f"env {name}: unknown setting (expected one of "
                                f"{', '.join(same)})")
            continue
        section, key_name = key.split(".")
        if not isinstance(raw.get(section), dict):
            raw[section] = {}
        if key == "store.path":
            if env.get(env_name("store.url")):
                problems.append(f"env {name}: set together with {env_name('store.url')} "
                                "(expected one of them)")
                continue
            key, key_name, value = "store.url", "url", f"sqlite:{value}"
        raw[section][key_name] = value
        sources[key] = f"env {name}"


def _problem(error: Any, sources: dict[str, str], path: Path | None) -> str:
    loc = [str(part) for part in error["loc"]]
    dotted = ".".join(loc)
    if loc and loc[0] == "sensor":
        dotted = "sensor" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc[1:])
    where = sources.get(".".join(loc[:2]), sources.get(loc[0] if loc else "",
                                                       str(path) if path else "default"))
    kind = error["type"]
    if kind == "extra_forbidden":
        section = loc[0] if len(loc) > 1 else None
        model = _SCALAR.get(section) if section else None
        if section is None:
            known = ", ".join(f"[{s}]" for s in _SCALAR) + ", [[sensor]]"
        elif model is not None:
            known = ", ".join(model.model_fields)
        else:
            known = ", ".join(SensorSettings.model_fields)
        return f"{where}: {dotted}: unknown key (expected one of: {known})"
    if kind == "missing":
        return f"{where}: {dotted}: missing (expected a value)"
    message = str(error["msg"]).removeprefix("Value error, ")
    message = message.replace("Input should be ", "expected ")
    for comparison in ("greater", "less"):
        message = message.replace(f"expected {comparison}", f"expected a number {comparison}")
    return f"{where}: {dotted} = {error.get('input')!r}: {message}"


def masked_token(env: Mapping[str, str] | None = None) -> str:
    """How the InfluxDB token is given, never the token itself."""
    env = os.environ if env is None else env
    return f"set in ${TOKEN_ENV} (********)" if env.get(TOKEN_ENV) else f"${TOKEN_ENV} not set"


def describe(loaded: Loaded, env: Mapping[str, str] | None = None) -> list[str]:
    """The effective settings as TOML lines, each key with where its value came from; secrets
    masked (`limbwatch config check`)."""
    import json

    from limbwatch.store.open import is_influx

    def toml(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        return json.dumps(str(value))

    s = loaded.settings
    lines = [f"# settings: {loaded.file}" if loaded.file is not None else
             "# settings: no file (defaults and the environment)"]
    for section in _SCALAR:
        table = getattr(s, section)
        if table is None:
            continue
        lines.append(f"[{section}]")
        for name, value in table.model_dump().items():
            source = loaded.source(f"{section}.{name}")
            if value is None:
                lines.append(f"# {name}: not set ({source})")
            else:
                lines.append(f"{name} = {toml(value)}  # {source}")
        if section == "store" and is_influx(s.store.url):
            given = "token_file in the URL" if "token_file=" in s.store.url else \
                masked_token(env)
            lines.append(f"# InfluxDB token: {given}")
    for entry in s.sensor:
        lines.append(f"[[sensor]]  # {loaded.source('sensor')}")
        lines += [f"{name} = {toml(value)}" for name, value in entry.model_dump().items()]
    lines.append(f"# gateway: {len(s.sensor)} sensor(s)" if s.sensor else
                 "# gateway: no [[sensor]] (limbwatch ingest needs one per sensor)")
    return lines
