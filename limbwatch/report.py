"""The night report, schema_version 1, exactly as `contracts/night-report.md` section 3 says.

Fields may be added; none of the contract's may be renamed, dropped or change meaning without
bumping `SCHEMA_VERSION`. Additions beyond the contract are marked "(addition)".
All times are ISO 8601 UTC strings with milliseconds, e.g. ``2026-11-20T19:30:00.020Z``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SCHEMA_VERSION: Final = 1
EPOCH_S: Final = 30

_ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def iso_ms(unix_s: float) -> str:
    """Unix seconds -> ISO 8601 UTC with milliseconds and a ``Z``."""
    ms = round(unix_s * 1000.0)
    stamp = datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ms % 1000:03d}Z"


def parse_iso(stamp: str) -> float:
    """ISO 8601 string with a zone -> Unix seconds."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _check_iso(value: str) -> str:
    if not _ISO_MS.match(value):
        raise ValueError(f"not an ISO 8601 UTC time with milliseconds: {value!r}")
    return value


IsoTime = Annotated[str, AfterValidator(_check_iso)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Interval(_Model):
    start: IsoTime
    end: IsoTime


class RecordingSpan(_Model):
    start: IsoTime
    end: IsoTime


class Sensor(_Model):
    side: Literal["left", "right"]
    sample_rate_hz: float
    coverage: Fraction
    nonwear: list[Interval]


class Sleep(_Model):
    epoch_s: Literal[30] = EPOCH_S
    epochs: Annotated[str, Field(pattern=r"^[SWN]*$")]
    onset: IsoTime | None
    offset: IsoTime | None
    total_sleep_min: float
    efficiency: Fraction
    waso_min: float
    awakenings: int
    method: str  # (addition) how sleep/wake was scored


class LegMovementOut(_Model):
    start: IsoTime
    end: IsoTime
    side: Literal["left", "right"]
    in_sleep: bool
    periodic: bool
    bilateral_group: int | None
    candidate: bool  # (addition) candidate LM (CLM) under the scoring rules
    # (addition) peak and mean dynamic acceleration over the LM, g (high-passed vector
    # magnitude: orientation does not matter); null in reports made before 1.2.0
    peak_g: float | None = None
    mean_g: float | None = None


class Series(_Model):
    start: IsoTime
    end: IsoTime
    count: int


class ImiHistogram(_Model):
    edges_s: list[float]
    counts: list[int]


class Plm(_Model):
    count: int
    index: float
    periodicity_index: Fraction | None
    series: list[Series]
    imi_histogram: ImiHistogram
    rules: Literal["wasm2016", "aasm"]  # (addition)
    lm_index: float  # (addition) candidate LMs per hour of sleep
    # (addition) periodic LMs with onset in wake per hour of wake (PLMW index, MATPLM)
    plmw_index: float | None = None


class TremorEpisode(_Model):
    start: IsoTime
    end: IsoTime
    side: Literal["left", "right", "bilateral"]
    frequency_hz: float
    # (additions) the sleep/wake state most of the episode was in, and its intensity (g):
    # peak and mean dynamic acceleration and the amplitude (sqrt 2 x RMS, a sinusoid's peak)
    state: Literal["awake", "asleep"] | None = None
    peak_g: float | None = None
    mean_g: float | None = None
    amplitude_g: float | None = None


class TremorByState(_Model):
    """(addition) Minutes of tremor awake and asleep (a bilateral episode counts once)."""

    awake_min: float
    asleep_min: float
    episodes_awake: int
    episodes_asleep: int


class Distribution(_Model):
    """(addition) How a figure is spread over the night's events; null values when none."""

    count: int
    median: float | None
    p90: float | None
    max: float | None


class Intensity(_Model):
    """(addition) How strongly the legs moved: distributions of dynamic acceleration, g."""

    lm_peak_g: Distribution  # every LM entry (one per leg), whole night
    lm_sleep_peak_g: Distribution  # LM entries with onset in sleep
    plm_peak_g: Distribution  # periodic LM entries with onset in sleep
    tremor_amplitude_g: Distribution  # tremor episodes


class SettlingPeriodOut(_Model):
    """(addition) Wake before a sleep onset: at the start of the night or after an awakening."""

    start: IsoTime
    end: IsoTime  # sleep (re)onset
    minutes: float
    lms: int  # candidate LMs (bilateral LM once) with onset in this wake
    plm_series: int  # PLM-like series starting in this wake
    periodic_lms: int
    plmw_index: float  # periodic LMs per hour of this wake
    kicking_min: float  # minutes of rhythmic kicking (PLM-like series, close ones joined)
    kicking: list[Interval]


class Settling(_Model):
    """(addition) Settling to sleep at the start of the night and after each awakening."""

    lights_out: IsoTime | None  # the "lights out" note the latency counts from
    latency_from: Literal["lights_out", "first_worn_epoch"]
    sleep_onset_latency_min: float | None  # null if no sleep
    first: SettlingPeriodOut | None  # null if no sleep
    returns: list[SettlingPeriodOut]  # each awakening's return to sleep, in time order


class JerkClusterOut(_Model):
    """(addition) A cluster of brief jerks (>= 5 startles, onsets <= 5 s apart)."""

    start: IsoTime
    end: IsoTime
    count: int  # startles (both legs' jerks < 0.5 s apart once)
    duration_s: float
    rate_per_min: float
    side: Literal["left", "right", "bilateral"]
    sleep_share: Fraction  # share of the episode in sleep epochs


Severity = Literal["info", "warning", "urgent"]


class Flag(_Model):
    code: str
    severity: Severity
    message: str
    evidence: dict[str, float | int | str | None]


class NightReport(_Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    recording: RecordingSpan
    sensors: list[Sensor]
    sleep: Sleep
    leg_movements: list[LegMovementOut]
    plm: Plm
    tremor_episodes: list[TremorEpisode]
    brief_jerks: int
    flags: list[Flag]
    age_months: float | None  # (addition) as given by the caller
    disclaimer: str  # (addition)
    # (addition) what looks wrong with imported data that the reader accepted (m/s^2 instead
    # of g, times near 1970, one file for both legs, over 24 h); empty for the gateway's data
    warnings: list[str] = []
    # (additions, algorithm 1.2.0; absent from older stored reports, so defaults)
    intensity: Intensity | None = None
    settling: Settling | None = None
    tremor_by_state: TremorByState | None = None
    jerk_clusters: list[JerkClusterOut] = []
    isolated_jerks: int | None = None  # brief jerks in sleep outside jerk clusters
