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


class TremorEpisode(_Model):
    start: IsoTime
    end: IsoTime
    side: Literal["left", "right", "bilateral"]
    frequency_hz: float


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
