"""Nights: list, summary, report, events, signal, re-analysis, trends and night-ended."""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import date, timedelta
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime
from starlette.concurrency import run_in_threadpool

from api import paging
from api.auth import Ctx, ReadNight, ReadSubject, WriteNight, WriteSubject
from api.encoding import accepts_gzip, gzip_bytes, json_bytes
from api.models import (
    Accepted,
    EventOut,
    NightsPage,
    NightSummary,
    Problem,
    ReportOut,
    SignalOut,
    TimeQuery,
    TrendRow,
)
from api.signal import iso_ms_array, min_max_buckets, window_json
from limbwatch.errors import BadInput, Conflict
from limbwatch.events import EventKind
from limbwatch.recording import Side
from limbwatch.report import iso_ms
from limbwatch.store.nights import refresh_nights
from limbwatch.store.records import NightRecord, night_date, night_window

router = APIRouter(prefix="/api/v1", tags=["nights"])
MAX_RANGE_DAYS = 100
TREND_FIELDS = ("plm_index", "periodicity_index", "total_sleep_min", "efficiency", "waso_min",
                "awakenings", "tremor_min", "nonwear_min", "coverage")


def summary(night: NightRecord) -> NightSummary:
    f = night.figures
    return NightSummary(
        id=night.id, subject_id=night.subject_id, date=night.date, start=iso_ms(night.start),
        end=iso_ms(night.end), status=night.status, coverage=_num(f.get("coverage")),
        total_sleep_min=_num(f.get("total_sleep_min")), plm_index=_num(f.get("plm_index")),
        flags=list(night.flags), algorithm_version=night.algorithm_version,
    )


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _span(start: AwareDatetime | None, end: AwareDatetime | None, lo: float,
          hi: float) -> tuple[float, float]:
    """[start, end) in Unix s, defaulting to [lo, hi); BadInput if start is after end."""
    a = lo if start is None else start.timestamp()
    b = hi if end is None else end.timestamp()
    if a > b:
        raise BadInput(f"start ({iso_ms(a)}) is after end ({iso_ms(b)})")
    return a, b


def _dates(first: date | None, last: date | None) -> None:
    if first is not None and last is not None:
        if first > last:
            raise BadInput(f"from ({first}) is after to ({last})")
        if (last - first).days >= MAX_RANGE_DAYS:
            raise BadInput(f"from {first} to {last} is over {MAX_RANGE_DAYS} days; ask for less")


def _cursor(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(base64.urlsafe_b64decode(text.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadInput("cursor is not one this service gave out; start again without it") from None


@router.get("/subjects/{subject_id}/nights", response_model=NightsPage)
def nights(ctx: Ctx, subject: ReadSubject,
           first: Annotated[date | None, Query(alias="from")] = None,
           last: Annotated[date | None, Query(alias="to")] = None,
           limit: Annotated[int, Query(ge=1, le=100)] = 30,
           cursor: Annotated[str | None, Query(max_length=100)] = None) -> NightsPage:
    """The subject's nights, newest first, `limit` at a time; pass `next_cursor` for more."""
    if first is not None and last is not None and first > last:
        raise BadInput(f"from ({first}) is after to ({last})")
    found = ctx.records.nights(subject.id, first=first, last=last, limit=limit + 1,
                               before=_cursor(cursor))
    more = len(found) > limit
    page = found[:limit]
    token = base64.urlsafe_b64encode(page[-1].date.isoformat().encode()).decode() if more else None
    return NightsPage(nights=[summary(n) for n in page], next_cursor=token)


@router.get("/nights/{night_id}", response_model=NightSummary,
            responses={404: {"model": Problem}})
def night(night: ReadNight) -> NightSummary:
    return summary(night)


@router.get("/nights/{night_id}/report", response_class=Response,
            responses={200: {"model": ReportOut, "content": {"application/json": {}}},
                       404: {"model": Problem}, 409: {"model": Problem}})
async def report(request: Request, ctx: Ctx, night: ReadNight) -> Response:
    """The stored report exactly as the analysis wrote it, with `algorithm_version`; 409 before
    the first report. Its bytes (and their gzip) are made once per stored report."""
    stored = ctx.records.report(night.id)
    if stored is None:
        raise Conflict(f"night {night.id} has no report yet (status {night.status})")
    gzipped = accepts_gzip(request)
    body = ctx.bodies.get(("report", night.id), stored, gzipped)
    if body is None:
        version, text = stored
        body = ('{"algorithm_version":' + json.dumps(version) + "," + text.lstrip()[1:]).encode()
        if gzipped:
            body = gzip_bytes(body)
        ctx.bodies.put(("report", night.id), stored, gzipped, body)
    return json_bytes(body, gzipped)


@router.get("/nights/{night_id}/events", response_model=list[EventOut])
async def events(request: Request, ctx: Ctx, night: ReadNight,
                 type: Annotated[list[EventKind] | None, Query()] = None,
                 start: TimeQuery = None, end: TimeQuery = None,
                 limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
                 cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    """The night's events by start; `type` (repeatable) keeps only those kinds; journal notes
    of the night (noon to noon local) are events of type `journal`. With `limit`, that many at
    a time, the next page's address in the `Link` header (`api.paging`). The whole answer is
    made once (in a worker thread) while the records do not change; a kept one is served from
    the event loop without a thread hop."""
    a, b = _span(start, end, -math.inf, math.inf)
    kinds = None if type is None else sorted(set(type))
    gzipped = accepts_gzip(request)
    if limit is not None or cursor is not None:
        after = paging.decode(cursor)
        found, more = await run_in_threadpool(
            lambda: paging.page(_events(ctx, night, kinds, a, b), lambda e: e["_t"], limit,
                                after))
        return paging.link_next(request, JSONResponse(_untimed(found)), more)
    key = ("events", night.id, None if kinds is None else tuple(kinds), a, b)
    changes = ctx.records.changes()
    body = ctx.bodies.get(key, changes, gzipped)
    if body is None:
        def make() -> bytes:
            made = JSONResponse(None).render(_untimed(_events(ctx, night, kinds, a, b)))
            return gzip_bytes(made) if gzipped else made
        body = await run_in_threadpool(make)
        ctx.bodies.put(key, changes, gzipped, body)
    return json_bytes(body, gzipped)


def _events(ctx: Ctx, night: NightRecord, kinds: list[EventKind] | None, a: float,
            b: float) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {"type": e.kind, "start": iso_ms(e.start), "end": iso_ms(e.end), "side": e.side,
         **e.detail, "_t": e.start}
        for e in ctx.records.night_events(night.id, kinds=kinds, start=None if a == -math.inf
                                          else a, end=None if b == math.inf else b)
    ]
    if kinds is None or "journal" in kinds:
        subject = ctx.records.subject(night.subject_id)
        lo, hi = night_window(night.date, subject.time_zone if subject else "UTC")
        for note in ctx.records.notes(night.subject_id, max(lo, a), min(hi, b)):
            found.append({"type": "journal", "start": iso_ms(note.time), "end": iso_ms(note.time),
                          "side": None, "note_id": note.id, "kind": note.kind,
                          "text": note.text, "_t": note.time})
        found.sort(key=lambda e: e["_t"])
    return found  # each with "_t", its start in Unix s


def _untimed(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events as answered: without their "_t"."""
    for e in found:
        del e["_t"]
    return found


@router.get("/nights/{night_id}/signal", response_model=SignalOut)
async def signal(request: Request, ctx: Ctx, night: ReadNight, side: Side,
                 start: TimeQuery = None, end: TimeQuery = None,
                 points: Annotated[int, Query(ge=1, description="at most the service's cap "
                                              "(5000); more is served as the cap")] = 1000
                 ) -> Response:
    """One leg's acceleration over [start, end) (default: the whole night), min/max per bucket
    in at most `points` equal time buckets; empty buckets are left out. Answers are kept a
    while (`api.signal.WindowCache`) while the night's data does not change."""
    a, b = _span(start, end, night.start, math.nextafter(night.end, math.inf))
    a, b = max(a, night.start), min(b, math.nextafter(night.end, math.inf))
    points = min(points, ctx.settings.max_points)
    key = (night.id, night.data_changed, side, a, b, points)

    def make() -> bytes:
        got = ctx.samples.read_samples(night.subject_id, side, a, b) if a < b else None
        t, lows, highs = (min_max_buckets(got.time, got.accel, a, b, points) if got is not None
                          else min_max_buckets(np.empty(0), np.empty((0, 3), np.float32), a, b,
                                               1))
        return window_json(side, iso_ms_array(t), lows, highs)

    gzipped = accepts_gzip(request)
    wanted = (*key, "gzip") if gzipped else key
    body = ctx.windows.get(wanted)  # kept: served from the event loop, no thread hop
    if body is None:
        def made() -> bytes:
            if not gzipped:
                return ctx.windows.made(key, make)
            return ctx.windows.made(wanted, lambda: gzip_bytes(ctx.windows.made(key, make)))
        body = await run_in_threadpool(made)  # reading and decimating: not in the loop
    return json_bytes(body, gzipped)


@router.post("/nights/{night_id}/reanalyze", status_code=202, response_model=Accepted)
def reanalyze(ctx: Ctx, night: WriteNight) -> Accepted:
    """Ask for a new analysis; the old report is served until the new one is stored."""
    ctx.records.request_reanalysis(night.id)
    return Accepted(night_id=night.id, status=night.status)


@router.post("/subjects/{subject_id}/night-ended", status_code=202, response_model=Accepted,
             responses={409: {"model": Problem}})
def night_ended(ctx: Ctx, subject: WriteSubject) -> Accepted:
    """A caregiver says the night is over: the latest night is analysed once its data is in."""
    refresh_nights(ctx.samples, ctx.records, subject, ctx.now())
    latest = ctx.records.nights(subject.id, limit=1)
    if not latest:
        raise Conflict(f"subject {subject.id!r} has no night recorded yet")
    ctx.records.mark_ended(latest[0].id)
    return Accepted(night_id=latest[0].id, status=latest[0].status)


@router.get("/subjects/{subject_id}/trends", response_model=list[TrendRow])
def trends(ctx: Ctx, subject: ReadSubject,
           first: Annotated[date | None, Query(alias="from")] = None,
           last: Annotated[date | None, Query(alias="to")] = None) -> list[TrendRow]:
    """One row per analysed night, oldest first, over at most 100 days (default: the 30
    nights up to the latest evening)."""
    last = last or night_date(ctx.now(), subject.time_zone)
    try:
        first = first or last - timedelta(days=29)
    except OverflowError:
        raise BadInput(f"to ({last}) is too early; give from as well") from None
    _dates(first, last)
    rows = []
    for n in reversed(ctx.records.nights(subject.id, first=first, last=last)):
        if n.figures:
            figures = {k: n.figures.get(k) for k in TREND_FIELDS}
            rows.append(TrendRow(night_id=n.id, date=n.date, **figures))  # type: ignore[arg-type]
    return rows
