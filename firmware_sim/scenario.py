"""Scenario files: load and validate ``firmware_sim/scenarios/*.toml`` into frozen dataclasses.

A scenario is data, not code. Every key is checked (type, range, unknown keys are refused) and a
bad file raises :class:`ScenarioError` naming the file and the dotted key. Ranges are written as
two-element arrays ``[low, high]``; a single number is accepted where a range is expected and
means ``[x, x]``. Units are in the key names (``_s``, ``_min``, ``_h``, ``_hz``, ``_mg``, ``_g``).
The layout of a file, section by section (optional sections may be left out):

* top level: ``description``, ``age_months``, ``duration_h``.
* ``[sensor]``: defaults for every fitted leg (``fs_hz``, ``noise_mg``, ``counts_per_g``,
  ``range_g``, ``packet_samples``, ``packet_loss``, ``time_jitter_ms``, ``disconnections``,
  ``disconnection_min``); each fitted leg has a sub-table ``[sensor.left]`` / ``[sensor.right]``
  that may override any of them.
* ``[sleep]``: architecture (onset latency, wake bouts, final awakening, calm stretches,
  posture-shift interval).
* ``[wake]`` (optional): voluntary movement while awake.
* ``[plm]`` (optional): periodic LM series in sleep.
* ``[isolated]`` (optional): isolated, long and weak LMs in sleep.
* ``[jerks]`` (optional): brief jerks / startles in sleep.
* ``[clusters]`` (optional): clusters of brief jerks in sleep (benign-sleep-myoclonus-like).
* ``[settling]`` (optional): awake before sleep onset, fussing and kicking rhythmically.
* ``[tremor]`` (optional): random jitteriness bouts and ``[[tremor.episodes]]``.
* ``[[nonwear]]`` (optional): sensor taken off the ankle.
* ``[boundary]`` (optional): scoring-rule boundary cases.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
SIDES = ("left", "right")
TREMOR_SIDES = ("left", "right", "bilateral")

Range = tuple[float, float]
IntRange = tuple[int, int]


class ScenarioError(ValueError):
    """A scenario file cannot be read or does not validate."""


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """One ankle sensor."""

    side: str
    fs: float  # nominal sample rate, Hz
    noise_g: float  # per-axis white-noise sigma, g
    counts_per_g: int
    range_g: float  # full scale, +-g
    packet_samples: int  # samples per radio packet
    packet_loss: float  # probability that a packet is lost
    time_jitter_s: float  # sigma of timestamp jitter, s
    disconnections: IntRange  # number of disconnections per night
    disconnection_min: Range  # duration of one disconnection, min


@dataclass(frozen=True, slots=True)
class SleepSpec:
    """Sleep architecture."""

    onset_latency_min: Range
    wake_bouts: IntRange  # count per night (scaled with the night's length)
    wake_bout_min: Range
    final_wake_min: Range
    calm_stretches: IntRange  # long motionless stretches in sleep, count per night
    calm_stretch_min: Range
    posture_interval_min: Range  # time between posture shifts in sleep


@dataclass(frozen=True, slots=True)
class WakeSpec:
    """Voluntary movement while awake."""

    duration_median_s: float = 4.0
    duration_s: Range = (1.0, 30.0)
    amplitude_g: Range = (0.08, 0.6)
    gap_mean_s: float = 10.0  # mean of the exponential quiet gap between movements
    quiet_max_s: float = 60.0  # longest quiet gap inside a wake period
    posture_p: float = 0.15  # probability that a wake movement leaves a new posture
    both_legs_p: float = 0.5


@dataclass(frozen=True, slots=True)
class PlmSpec:
    """Periodic limb movement series in sleep."""

    series_per_hour: float  # per hour of sleep
    lms_per_series: IntRange
    imi_median_s: float  # onset-to-onset interval, lognormal median
    imi_sigma: float = 0.35  # lognormal shape
    imi_s: Range = (10.0, 90.0)  # clip range of the ordinary IMIs
    short_imi_p: float = 0.0  # share of IMIs drawn from short_imi_s instead
    short_imi_s: Range = (6.0, 9.0)
    long_imi_p: float = 0.0  # share of IMIs drawn from long_imi_s instead
    long_imi_s: Range = (95.0, 120.0)
    duration_s: Range = (1.0, 5.0)  # log-uniform
    left_p: float = 0.3  # laterality weights of each LM (normalised)
    right_p: float = 0.3
    bilateral_p: float = 0.3
    alternating_p: float = 0.1
    weak_p: float = 0.05


@dataclass(frozen=True, slots=True)
class IsolatedSpec:
    """Isolated LMs in sleep."""

    per_hour: float
    duration_s: Range = (0.5, 10.0)  # log-uniform
    bilateral_p: float = 0.2
    long_per_hour: float = 0.0  # LMs longer than 10 s (non-candidate)
    long_duration_s: Range = (10.5, 30.0)
    weak_per_hour: float = 0.0  # isolated LMs near the noise floor


@dataclass(frozen=True, slots=True)
class JerkSpec:
    """Brief jerks / startles (< 0.5 s) in sleep."""

    per_hour: float
    both_legs_p: float = 0.6
    duration_s: Range = (0.12, 0.4)
    amplitude_g: Range = (0.1, 0.8)


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """Clusters of brief jerks in sleep: repetitive myoclonic jerks over seconds to minutes.

    science.md section 5 (benign neonatal sleep myoclonus): clusters of jerks lasting seconds,
    episodes of seconds to minutes, sleep only, bilateral, mostly distal; a myoclonic jerk lasts
    < 100 ms (MedLink), so jerks here are brief enough to leave rest between them.
    """

    per_hour: float  # clusters per hour of sleep
    jerks: IntRange = (12, 60)  # jerks per cluster
    interval_s: Range = (0.4, 2.5)  # onset to onset of consecutive jerks (uniform)
    duration_s: Range = (0.05, 0.2)
    amplitude_g: Range = (0.1, 0.6)
    both_legs_p: float = 0.7


@dataclass(frozen=True, slots=True)
class SettlingSpec:
    """Awake before sleep onset (the whole onset latency): fussing and rhythmic kicking.

    The RLS-like picture of the issue: lying awake, kicking or cycling every 14-30 s, with
    irregular fussing movements in between. Kicks are LMs (source ``settling``), fussing movements
    ordinary wake movements (source ``wake``). ``after_wake_p`` gives the same to the last minutes
    of a wake bout (the return to sleep after an awakening).
    """

    kick_interval_s: Range = (14.0, 30.0)  # onset to onset (uniform per kick)
    kick_duration_s: Range = (1.0, 4.0)  # log-uniform
    kick_amplitude_g: Range = (0.08, 0.5)  # log-uniform
    both_legs_p: float = 0.6
    fuss_gap_mean_s: float = 45.0  # mean quiet time between fussing movements (exponential)
    pause_p: float = 0.1  # chance that a kick is followed by a pause instead
    pause_s: Range = (40.0, 80.0)
    after_wake_p: float = 0.0  # share of wake bouts whose last part is settling too
    after_wake_min: Range = (3.0, 8.0)


@dataclass(frozen=True, slots=True)
class TremorEpisodeSpec:
    """One scheduled tremor episode."""

    at_h: float | None  # hours from start (in the scenario's own duration); None = random
    duration_s: Range
    frequency_hz: Range
    side: str  # "left" | "right" | "bilateral"


@dataclass(frozen=True, slots=True)
class TremorSpec:
    """Tremor / jitteriness."""

    episodes: tuple[TremorEpisodeSpec, ...] = ()
    bouts_per_hour: float = 0.0  # short random bouts, per hour of recording
    bout_s: Range = (3.0, 60.0)
    bout_frequency_hz: Range = (5.0, 10.0)
    bout_bilateral_p: float = 0.3
    wake_bouts_per_hour: float = 0.0  # more bouts, per hour awake (jitteriness when handled)


@dataclass(frozen=True, slots=True)
class NonwearSpec:
    """One off-ankle episode."""

    side: str
    at_h: float | None  # hours from start (in the scenario's own duration); None = random
    duration_min: Range


@dataclass(frozen=True, slots=True)
class BoundarySpec:
    """Scoring-rule boundary cases."""

    lm_durations_s: tuple[float, ...] = ()
    lm_repeats: int = 1
    series_imis_s: tuple[float, ...] = ()
    series_repeats: int = 1
    series_lms: int = 5
    bilateral_gaps_s: tuple[float, ...] = ()  # offset of one leg's LM to onset of the other's
    bilateral_repeats: int = 1


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole night's recipe."""

    name: str
    path: Path
    description: str
    age_months: float
    duration_h: float
    sensors: tuple[SensorSpec, ...]
    sleep: SleepSpec
    wake: WakeSpec
    plm: PlmSpec | None
    isolated: IsolatedSpec | None
    jerks: JerkSpec | None
    clusters: ClusterSpec | None
    settling: SettlingSpec | None
    tremor: TremorSpec
    nonwear: tuple[NonwearSpec, ...]
    boundary: BoundarySpec | None

    @property
    def sides(self) -> tuple[str, ...]:
        """Sides with a sensor, in ``left``, ``right`` order."""
        return tuple(s.side for s in self.sensors)


class _Table:
    """A TOML table being read: typed getters, dotted key names in errors, unknown keys refused."""

    def __init__(self, data: dict[str, Any], path: Path, prefix: str = "") -> None:
        self._data = data
        self._path = path
        self._prefix = prefix
        self._used: set[str] = set()

    def error(self, key: str, problem: str) -> ScenarioError:
        return ScenarioError(f"scenario file {self._path}: key '{self._prefix}{key}': {problem}")

    def has(self, key: str) -> bool:
        return key in self._data

    def _get(self, key: str, default: Any) -> Any:
        self._used.add(key)
        if key in self._data:
            return self._data[key]
        if default is _REQUIRED:
            raise self.error(key, "missing")
        return default

    def number(
        self, key: str, default: float | None = None, *, lo: float = 0.0, hi: float = math.inf
    ) -> float:
        value = self._get(key, _REQUIRED if default is None else default)
        return self._check_number(key, value, lo, hi)

    def optional_number(self, key: str, *, lo: float = 0.0, hi: float = math.inf) -> float | None:
        value = self._get(key, None)
        return None if value is None else self._check_number(key, value, lo, hi)

    def integer(self, key: str, default: int | None = None, *, lo: int = 0) -> int:
        value = self._get(key, _REQUIRED if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {value!r}")
        if value < lo:
            raise self.error(key, f"must be >= {lo}, got {value}")
        return value

    def text(self, key: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        value = self._get(key, _REQUIRED if default is None else default)
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {value!r}")
        if choices and value not in choices:
            raise self.error(key, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def range(
        self, key: str, default: Range | None = None, *, lo: float = 0.0, hi: float = math.inf
    ) -> Range:
        value = self._get(key, _REQUIRED if default is None else default)
        if not isinstance(value, list | tuple):
            value = [value, value]
        if len(value) != 2:
            raise self.error(key, f"expected [low, high], got {value!r}")
        low = self._check_number(key, value[0], lo, hi)
        high = self._check_number(key, value[1], lo, hi)
        if low > high:
            raise self.error(key, f"low {low} is above high {high}")
        return (low, high)

    def int_range(self, key: str, default: IntRange | None = None) -> IntRange:
        value = self._get(key, _REQUIRED if default is None else default)
        if not isinstance(value, list | tuple):
            value = [value, value]
        if len(value) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
        ):
            raise self.error(key, f"expected [low, high] of integers >= 0, got {value!r}")
        if value[0] > value[1]:
            raise self.error(key, f"low {value[0]} is above high {value[1]}")
        return (value[0], value[1])

    def numbers(self, key: str, *, lo: float = 0.0) -> tuple[float, ...]:
        value = self._get(key, [])
        if not isinstance(value, list):
            raise self.error(key, f"expected an array of numbers, got {value!r}")
        return tuple(self._check_number(key, v, lo, math.inf) for v in value)

    def table(self, key: str) -> _Table:
        value = self._get(key, _REQUIRED)
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table, got {value!r}")
        return _Table(value, self._path, f"{self._prefix}{key}.")

    def tables(self, key: str) -> list[_Table]:
        value = self._get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(key, "expected an array of tables ([[...]])")
        return [_Table(v, self._path, f"{self._prefix}{key}[{i}].") for i, v in enumerate(value)]

    def mark_used(self, *keys: str) -> None:
        """Accept these keys even if they were never read."""
        self._used.update(keys)

    def finish(self) -> None:
        """Refuse keys that were never read (typos)."""
        unknown = sorted(set(self._data) - self._used)
        if unknown:
            raise self.error(unknown[0], "unknown key")

    def _check_number(self, key: str, value: Any, lo: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {value!r}")
        if not lo <= value <= hi or not math.isfinite(value):
            raise self.error(key, f"must be within [{lo}, {hi}], got {value}")
        return float(value)


_REQUIRED = object()
_SENSOR_KEYS = (
    "fs_hz",
    "noise_mg",
    "counts_per_g",
    "range_g",
    "packet_samples",
    "packet_loss",
    "time_jitter_ms",
    "disconnections",
    "disconnection_min",
)


def list_scenarios() -> list[str]:
    """Names of the bundled scenarios (file stems in ``firmware_sim/scenarios``), sorted."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a scenario by bundled name (``"mild_plms"``) or by path to a TOML file."""
    text = str(name_or_path)
    is_path = text.endswith(".toml") or "/" in text or "\\" in text
    path = Path(text) if is_path else SCENARIO_DIR / f"{text}.toml"
    if not path.is_file():
        known = ", ".join(list_scenarios())
        raise ScenarioError(f"scenario file {path} not found (bundled scenarios: {known})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"scenario file {path}: invalid TOML: {exc}") from exc
    return parse_scenario(data, path)


def parse_scenario(data: dict[str, Any], path: Path) -> Scenario:
    """Validate a decoded TOML document; ``path`` names the file in errors."""
    top = _Table(data, path)
    scenario = Scenario(
        name=path.stem,
        path=path,
        description=top.text("description"),
        age_months=top.number("age_months", hi=1200.0),
        duration_h=top.number("duration_h", lo=0.1, hi=48.0),
        sensors=_sensors(top.table("sensor")),
        sleep=_sleep(top.table("sleep")),
        wake=_wake(top.table("wake")) if top.has("wake") else WakeSpec(),
        plm=_plm(top.table("plm")) if top.has("plm") else None,
        isolated=_isolated(top.table("isolated")) if top.has("isolated") else None,
        jerks=_jerks(top.table("jerks")) if top.has("jerks") else None,
        clusters=_clusters(top.table("clusters")) if top.has("clusters") else None,
        settling=_settling(top.table("settling")) if top.has("settling") else None,
        tremor=_tremor(top.table("tremor")) if top.has("tremor") else TremorSpec(),
        nonwear=tuple(_nonwear(t) for t in top.tables("nonwear")),
        boundary=_boundary(top.table("boundary")) if top.has("boundary") else None,
    )
    top.finish()
    _cross_check(scenario, top)
    return scenario


def _sensors(table: _Table) -> tuple[SensorSpec, ...]:
    legs = [side for side in SIDES if table.has(side)]
    if not legs:
        raise table.error("left", "at least one of [sensor.left] / [sensor.right] is required")
    sensors = []
    for side in legs:
        leg = table.table(side)
        sensors.append(_sensor(side, leg, table))
        leg.finish()
    table.mark_used(*_SENSOR_KEYS)  # a default that every leg overrides is not an error
    table.finish()
    return tuple(sensors)


def _sensor(side: str, leg: _Table, defaults: _Table) -> SensorSpec:
    def pick(key: str) -> _Table:
        return leg if leg.has(key) else defaults

    fs = pick("fs_hz").number("fs_hz", lo=1.0, hi=10_000.0)
    counts = pick("counts_per_g").integer("counts_per_g", lo=1)
    return SensorSpec(
        side=side,
        fs=fs,
        noise_g=pick("noise_mg").number("noise_mg", hi=1000.0) / 1000.0,
        counts_per_g=counts,
        range_g=pick("range_g").number("range_g", lo=1.0 / counts, hi=1000.0),
        packet_samples=pick("packet_samples").integer("packet_samples", 10, lo=1),
        packet_loss=pick("packet_loss").number("packet_loss", 0.0, hi=0.5),
        time_jitter_s=pick("time_jitter_ms").number("time_jitter_ms", 0.0, hi=1000.0) / 1000.0,
        disconnections=pick("disconnections").int_range("disconnections", (0, 0)),
        disconnection_min=pick("disconnection_min").range(
            "disconnection_min", (2.0, 15.0), lo=0.01
        ),
    )


def _sleep(t: _Table) -> SleepSpec:
    spec = SleepSpec(
        onset_latency_min=t.range("onset_latency_min"),
        wake_bouts=t.int_range("wake_bouts"),
        wake_bout_min=t.range("wake_bout_min", lo=0.5),
        final_wake_min=t.range("final_wake_min"),
        calm_stretches=t.int_range("calm_stretches", (0, 0)),
        calm_stretch_min=t.range("calm_stretch_min", (30.0, 70.0), lo=1.0),
        posture_interval_min=t.range("posture_interval_min", (20.0, 60.0), lo=1.0),
    )
    t.finish()
    return spec


def _wake(t: _Table) -> WakeSpec:
    d = WakeSpec()
    spec = WakeSpec(
        duration_median_s=t.number("duration_median_s", d.duration_median_s, lo=0.5),
        duration_s=t.range("duration_s", d.duration_s, lo=0.5),
        amplitude_g=t.range("amplitude_g", d.amplitude_g, lo=1e-4, hi=10.0),
        gap_mean_s=t.number("gap_mean_s", d.gap_mean_s, lo=0.1),
        quiet_max_s=t.number("quiet_max_s", d.quiet_max_s, lo=1.5),
        posture_p=t.number("posture_p", d.posture_p, hi=1.0),
        both_legs_p=t.number("both_legs_p", d.both_legs_p, hi=1.0),
    )
    t.finish()
    return spec


def _plm(t: _Table) -> PlmSpec:
    d = PlmSpec(0.0, (4, 4), 25.0)
    spec = PlmSpec(
        series_per_hour=t.number("series_per_hour", hi=60.0),
        lms_per_series=t.int_range("lms_per_series"),
        imi_median_s=t.number("imi_median_s", lo=1.0),
        imi_sigma=t.number("imi_sigma", d.imi_sigma, hi=3.0),
        imi_s=t.range("imi_s", d.imi_s, lo=1.0),
        short_imi_p=t.number("short_imi_p", d.short_imi_p, hi=1.0),
        short_imi_s=t.range("short_imi_s", d.short_imi_s, lo=1.0),
        long_imi_p=t.number("long_imi_p", d.long_imi_p, hi=1.0),
        long_imi_s=t.range("long_imi_s", d.long_imi_s, lo=1.0),
        duration_s=t.range("duration_s", d.duration_s, lo=0.5, hi=15.0),
        left_p=t.number("left_p", d.left_p),
        right_p=t.number("right_p", d.right_p),
        bilateral_p=t.number("bilateral_p", d.bilateral_p),
        alternating_p=t.number("alternating_p", d.alternating_p),
        weak_p=t.number("weak_p", d.weak_p, hi=1.0),
    )
    if spec.left_p + spec.right_p + spec.bilateral_p + spec.alternating_p <= 0:
        raise t.error("left_p", "the laterality weights must not all be zero")
    if spec.lms_per_series[0] < 1:
        raise t.error("lms_per_series", "a series needs at least one LM")
    t.finish()
    return spec


def _isolated(t: _Table) -> IsolatedSpec:
    d = IsolatedSpec(0.0)
    spec = IsolatedSpec(
        per_hour=t.number("per_hour", hi=600.0),
        duration_s=t.range("duration_s", d.duration_s, lo=0.5, hi=10.0),
        bilateral_p=t.number("bilateral_p", d.bilateral_p, hi=1.0),
        long_per_hour=t.number("long_per_hour", d.long_per_hour, hi=60.0),
        long_duration_s=t.range("long_duration_s", d.long_duration_s, lo=10.0, hi=120.0),
        weak_per_hour=t.number("weak_per_hour", d.weak_per_hour, hi=600.0),
    )
    t.finish()
    return spec


def _jerks(t: _Table) -> JerkSpec:
    d = JerkSpec(0.0)
    spec = JerkSpec(
        per_hour=t.number("per_hour", hi=1200.0),
        both_legs_p=t.number("both_legs_p", d.both_legs_p, hi=1.0),
        duration_s=t.range("duration_s", d.duration_s, lo=0.02, hi=0.499),
        amplitude_g=t.range("amplitude_g", d.amplitude_g, lo=1e-3, hi=10.0),
    )
    t.finish()
    return spec


def _clusters(t: _Table) -> ClusterSpec:
    d = ClusterSpec(0.0)
    spec = ClusterSpec(
        per_hour=t.number("per_hour", hi=60.0),
        jerks=t.int_range("jerks", d.jerks),
        interval_s=t.range("interval_s", d.interval_s, lo=0.3, hi=10.0),
        duration_s=t.range("duration_s", d.duration_s, lo=0.02, hi=0.3),
        amplitude_g=t.range("amplitude_g", d.amplitude_g, lo=1e-3, hi=10.0),
        both_legs_p=t.number("both_legs_p", d.both_legs_p, hi=1.0),
    )
    if spec.jerks[0] < 2:
        raise t.error("jerks", "a cluster needs at least two jerks")
    if spec.duration_s[1] + 0.1 > spec.interval_s[0]:
        raise t.error("interval_s", "must leave >= 0.1 s between jerks of one leg")
    t.finish()
    return spec


def _settling(t: _Table) -> SettlingSpec:
    d = SettlingSpec()
    spec = SettlingSpec(
        kick_interval_s=t.range("kick_interval_s", d.kick_interval_s, lo=3.0, hi=120.0),
        kick_duration_s=t.range("kick_duration_s", d.kick_duration_s, lo=0.5, hi=10.0),
        kick_amplitude_g=t.range("kick_amplitude_g", d.kick_amplitude_g, lo=1e-3, hi=10.0),
        both_legs_p=t.number("both_legs_p", d.both_legs_p, hi=1.0),
        fuss_gap_mean_s=t.number("fuss_gap_mean_s", d.fuss_gap_mean_s, lo=1.0),
        pause_p=t.number("pause_p", d.pause_p, hi=1.0),
        pause_s=t.range("pause_s", d.pause_s, lo=1.0),
        after_wake_p=t.number("after_wake_p", d.after_wake_p, hi=1.0),
        after_wake_min=t.range("after_wake_min", d.after_wake_min, lo=0.5),
    )
    if spec.kick_duration_s[1] + 1.5 > spec.kick_interval_s[0]:
        raise t.error("kick_interval_s", "must leave >= 1.5 s of rest after the longest kick")
    t.finish()
    return spec


def _tremor(t: _Table) -> TremorSpec:
    d = TremorSpec()
    episodes = []
    for e in t.tables("episodes"):
        episodes.append(
            TremorEpisodeSpec(
                at_h=e.optional_number("at_h", hi=48.0),
                duration_s=e.range("duration_s", lo=1.5),
                frequency_hz=e.range("frequency_hz", lo=0.5, hi=50.0),
                side=e.text("side", choices=TREMOR_SIDES),
            )
        )
        e.finish()
    spec = TremorSpec(
        episodes=tuple(episodes),
        bouts_per_hour=t.number("bouts_per_hour", d.bouts_per_hour, hi=600.0),
        bout_s=t.range("bout_s", d.bout_s, lo=1.5),
        bout_frequency_hz=t.range("bout_frequency_hz", d.bout_frequency_hz, lo=0.5, hi=50.0),
        bout_bilateral_p=t.number("bout_bilateral_p", d.bout_bilateral_p, hi=1.0),
        wake_bouts_per_hour=t.number("wake_bouts_per_hour", d.wake_bouts_per_hour, hi=600.0),
    )
    t.finish()
    return spec


def _nonwear(t: _Table) -> NonwearSpec:
    spec = NonwearSpec(
        side=t.text("side", choices=SIDES),
        at_h=t.optional_number("at_h", hi=48.0),
        duration_min=t.range("duration_min", lo=1.0),
    )
    t.finish()
    return spec


def _boundary(t: _Table) -> BoundarySpec:
    spec = BoundarySpec(
        lm_durations_s=t.numbers("lm_durations_s", lo=0.05),
        lm_repeats=t.integer("lm_repeats", 1, lo=1),
        series_imis_s=t.numbers("series_imis_s", lo=3.0),
        series_repeats=t.integer("series_repeats", 1, lo=1),
        series_lms=t.integer("series_lms", 5, lo=2),
        bilateral_gaps_s=t.numbers("bilateral_gaps_s"),
        bilateral_repeats=t.integer("bilateral_repeats", 1, lo=1),
    )
    t.finish()
    return spec


def _cross_check(scenario: Scenario, top: _Table) -> None:
    """Checks that involve more than one section."""
    nyquist = min(s.fs for s in scenario.sensors) / 2.0
    for i, ep in enumerate(scenario.tremor.episodes):
        if ep.frequency_hz[1] >= nyquist:
            raise top.error(
                f"tremor.episodes[{i}].frequency_hz",
                f"must stay below the Nyquist frequency {nyquist} Hz of the slowest sensor",
            )
    if scenario.tremor.bouts_per_hour > 0 and scenario.tremor.bout_frequency_hz[1] >= nyquist:
        raise top.error(
            "tremor.bout_frequency_hz",
            f"must stay below the Nyquist frequency {nyquist} Hz of the slowest sensor",
        )
    for i, nw in enumerate(scenario.nonwear):
        if nw.side not in scenario.sides:
            raise top.error(f"nonwear[{i}].side", f"no sensor on the {nw.side} leg")
    for i, ep in enumerate(scenario.tremor.episodes):
        if ep.side != "bilateral" and ep.side not in scenario.sides:
            raise top.error(f"tremor.episodes[{i}].side", f"no sensor on the {ep.side} leg")
