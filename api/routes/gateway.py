"""`/api/v1/gateway/`: where a home gateway writes what it collects (`limbwatch.store.remote`
is its client). Only a gateway token given the subject (or an admin's) may: samples, clock
models, device events and live status, each checked against the subjects the token was given
and the sensors assigned to them, so one home cannot write another's data or take over its
sensors' serials."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, Field

from api.auth import Ctx, Principal, SubjectId, Who
from api.models import SensorOut, SubjectOut
from limbwatch.clockmodel import ClockModel
from limbwatch.errors import BadInput, NotFound, Refused
from limbwatch.recording import Side
from limbwatch.store.records import DeviceEvent, SensorAssignment, SensorStatus, Subject
from limbwatch.store.remote import chunk_from_json, seq_ranges

router = APIRouter(prefix="/api/v1/gateway", tags=["gateway"])

MAX_BATCH = 2000  # items in one request (the spool hands over 500 chunks at a time)
Name = Annotated[str, Field(min_length=1, max_length=100)]
Scalar = float | int | str | bool | None


class ChunkIn(BaseModel):
    subject: Name
    side: Side
    device: Name
    session: int = Field(ge=0, lt=2**32)
    seq: int = Field(ge=0, lt=2**32)
    t0: float = Field(ge=0, le=2**33)
    dt: float = Field(gt=0, le=60)
    counts_per_g: int = Field(gt=0, le=2**15)
    ticks: int | None = Field(default=None, ge=-(2**62), le=2**62)
    rate_hz: int | None = Field(default=None, gt=0, le=10_000)
    counts: str = Field(min_length=8, max_length=1 << 20,
                        description="base64 of the int16 counts, little-endian, n x 3")


class ClockModelIn(BaseModel):
    device: Name
    session: int = Field(ge=0, lt=2**32)
    model: dict[str, Any] = Field(description="`limbwatch.clockmodel.ClockModel` JSON")


class DeviceEventIn(BaseModel):
    subject: Name
    side: Side | None
    time: float
    kind: Name
    detail: dict[str, Scalar] = Field(max_length=50)


class StatusIn(BaseModel):
    serial: Name
    subject_id: Name
    side: Side
    time: float
    connected: bool
    battery_pct: float | None = Field(ge=0, le=100)
    last_packet: float | None
    on_ankle: bool | None
    last_movement: float | None


class StoredSeqs(BaseModel):
    ranges: list[tuple[int, int]] = Field(description="[first, last] runs of stored seqs")


class Stored(BaseModel):
    stored: int


class StatusStored(BaseModel):
    last_id: int


def _allowed(who: Principal, subject_id: str) -> None:
    if not who.may_ingest(subject_id):
        raise Refused(f"this token may not write subject {subject_id!r} (a gateway token "
                      "writes only the subjects it was given)")


def _owners(ctx: Ctx) -> dict[str, str]:
    """Sensor serial -> the subject it is assigned to."""
    return {s.serial: subject.id for subject in ctx.records.subjects() for s in subject.sensors}


def _device_allowed(who: Principal, owners: dict[str, str], device: str,
                    subject_id: str | None = None) -> None:
    """Refused unless `device` is assigned to a subject the token may write (to `subject_id`
    when given)."""
    owner = owners.get(device)
    if owner is None or (subject_id is not None and owner != subject_id):
        raise Refused(f"sensor {device!r} is not assigned to "
                      f"{'a subject of this token' if subject_id is None else repr(subject_id)}"
                      " (the gateway assigns its sensors first)")
    _allowed(who, owner)


def _subject(ctx: Ctx, who: Principal, subject_id: str) -> Subject:
    _allowed(who, subject_id)
    subject = ctx.records.subject(subject_id)
    if subject is None:
        raise NotFound(f"no subject {subject_id!r} on this server (its admin adds it: "
                       "`limbwatch subject`)")
    return subject


@router.get("/subjects/{subject_id}", response_model=SubjectOut)
def subject(ctx: Ctx, who: Who, subject_id: SubjectId) -> SubjectOut:
    """The subject as the gateway registers its sensors against it."""
    s = _subject(ctx, who, subject_id)
    return SubjectOut(id=s.id, name=s.name, birth_date=s.birth_date, time_zone=s.time_zone,
                      sensors=[SensorOut(serial=a.serial, side=a.side) for a in s.sensors])


@router.put("/subjects/{subject_id}/sensors", status_code=204)
def assign_sensors(ctx: Ctx, who: Who, subject_id: SubjectId,
                   sensors: Annotated[list[SensorOut], Body(max_length=8)]) -> Response:
    """Which sensor is on which leg (at most one per leg); a serial assigned to a subject this
    token may not write is refused."""
    s = _subject(ctx, who, subject_id)
    if len({a.side for a in sensors}) < len(sensors):
        raise BadInput("one sensor per leg")
    owners = _owners(ctx)
    for a in sensors:
        owner = owners.get(a.serial)
        if owner is not None and owner != subject_id:
            _allowed(who, owner)
    assigned = tuple(SensorAssignment(a.serial, a.side) for a in sensors)
    if set(assigned) != set(s.sensors):
        ctx.records.put_subject(Subject(s.id, s.name, s.birth_date, s.time_zone, assigned))
    return Response(status_code=204)


@router.get("/stored-seqs", response_model=StoredSeqs)
def stored_seqs(ctx: Ctx, who: Who, device: Annotated[str, Query(min_length=1, max_length=100)],
                session: Annotated[int, Query(ge=0, lt=2**32)]) -> StoredSeqs:
    """The seqs of a sensor session the store has (the gateway resumes from them)."""
    _device_allowed(who, _owners(ctx), device)
    runs = seq_ranges(ctx.samples.stored_seqs(device, session))
    return StoredSeqs(ranges=[(a, b) for a, b in runs])


@router.post("/chunks", response_model=Stored)
def write_chunks(ctx: Ctx, who: Who,
                 chunks: Annotated[list[ChunkIn], Body(max_length=MAX_BATCH)]) -> Stored:
    """Store chunks, all or none (again: skipped; other contents under a stored key: kept
    apart as a conflict)."""
    owners = _owners(ctx)
    for c in chunks:
        _allowed(who, c.subject)
        _device_allowed(who, owners, c.device, c.subject)
    ctx.samples.write_chunks([chunk_from_json(c.model_dump()) for c in chunks])
    return Stored(stored=len(chunks))


@router.put("/clock-models", status_code=204)
def put_clock_models(ctx: Ctx, who: Who, models: Annotated[list[ClockModelIn], Body(
        max_length=MAX_BATCH)]) -> Response:
    """The newest clock model of each sensor session."""
    owners = _owners(ctx)
    parsed: dict[tuple[str, int], ClockModel] = {}
    for m in models:
        _device_allowed(who, owners, m.device)
        try:
            parsed[(m.device, m.session)] = ClockModel.from_json(json.dumps(m.model))
        except ValueError as exc:
            raise BadInput(f"clock model of {m.device} session {m.session}: {exc}") from None
    ctx.samples.put_clock_models(parsed)
    return Response(status_code=204)


@router.post("/device-events", response_model=Stored)
def write_device_events(ctx: Ctx, who: Who, events: Annotated[list[DeviceEventIn], Body(
        max_length=MAX_BATCH)]) -> Stored:
    """Gaps, drops, reconnections... of the token's subjects."""
    for e in events:
        _allowed(who, e.subject)
    ctx.records.write_device_events([DeviceEvent(e.subject, e.side, e.time, e.kind, e.detail)
                                     for e in events])
    return Stored(stored=len(events))


@router.post("/status", response_model=StatusStored)
def put_status(ctx: Ctx, who: Who, statuses: Annotated[list[StatusIn], Body(
        max_length=MAX_BATCH)]) -> StatusStored:
    """Live-status snapshots of the token's subjects' sensors (`GET /api/v1/live` sends
    them)."""
    owners = _owners(ctx)
    for st in statuses:
        _device_allowed(who, owners, st.serial, st.subject_id)
    return StatusStored(last_id=ctx.records.put_status(
        [SensorStatus(**st.model_dump()) for st in statuses]))
