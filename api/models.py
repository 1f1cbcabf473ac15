"""The API's response and request bodies (contract section 4), as pydantic models."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from limbwatch.events import EventKind, EventSide
from limbwatch.recording import Side
from limbwatch.report import NightReport
from limbwatch.store.records import NightStatus, NoteKind, Role

IsoTime = str  # ISO 8601 UTC with milliseconds, "2026-11-20T19:30:00.020Z"
TimeQuery = Annotated[AwareDatetime | None, Query(description="ISO 8601 with a zone")]


class Problem(BaseModel):
    detail: str


class Health(BaseModel):
    status: Literal["ok"]
    checks: dict[str, str] = Field(
        default_factory=dict,
        description='each part of the store and "ok" (in the 503 answer: why not)')


class SensorOut(BaseModel):
    serial: str
    side: Side


class SubjectOut(BaseModel):
    id: str
    name: str
    birth_date: date | None
    time_zone: str
    sensors: list[SensorOut]


class NightSummary(BaseModel):
    id: int
    subject_id: str
    date: date
    start: IsoTime
    end: IsoTime
    status: NightStatus
    coverage: float | None
    total_sleep_min: float | None
    plm_index: float | None
    flags: list[str]
    algorithm_version: str | None


class NightsPage(BaseModel):
    nights: list[NightSummary]
    next_cursor: str | None


class ReportOut(NightReport):
    """The stored night report of contract section 3, with the version that made it."""

    algorithm_version: str


class EventOut(BaseModel):
    """One event; the kind's own figures (count, frequency_hz, in_sleep, ...) are extra fields."""

    model_config = ConfigDict(extra="allow")
    type: EventKind
    start: IsoTime
    end: IsoTime
    side: EventSide | None


class SignalOut(BaseModel):
    side: Side
    time: list[IsoTime]  # start of each bucket
    min: list[list[float]]  # [x, y, z] g per bucket
    max: list[list[float]]


class Accepted(BaseModel):
    night_id: int
    status: NightStatus


class TrendRow(BaseModel):
    night_id: int
    date: date
    plm_index: float | None
    periodicity_index: float | None
    total_sleep_min: float | None
    efficiency: float | None
    waso_min: float | None
    awakenings: int | None
    tremor_min: float | None
    nonwear_min: float | None
    coverage: float | None


class NoteIn(BaseModel):
    time: AwareDatetime | None = None  # default: now
    kind: NoteKind
    text: str = Field("", max_length=2000)


class NoteOut(BaseModel):
    id: int
    time: IsoTime
    kind: NoteKind
    text: str


class ShareIn(BaseModel):
    token_name: str = Field(min_length=1, max_length=200)


class ShareOut(BaseModel):
    subject_id: str
    token_name: str


class SessionIn(BaseModel):
    token: str = Field(min_length=1, max_length=500)


class SessionOut(BaseModel):
    name: str
    role: Role
    subject_id: str | None


class ImportOut(BaseModel):
    night_id: int  # the night with the most data
    night_ids: list[int]  # every night the import touched (a recording over 24 h: several)
    device: str  # the pseudo-device the samples are stored under
    warnings: list[str]
