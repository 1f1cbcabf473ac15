"""Subjects, their journal and their shares."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api import paging
from api.auth import Ctx, ReadSubject, Who, WriteSubject
from api.models import NoteIn, NoteOut, Problem, SensorOut, ShareIn, ShareOut, SubjectOut, TimeQuery
from limbwatch.errors import BadInput, NotFound
from limbwatch.report import iso_ms
from limbwatch.store.records import Note, night_date

router = APIRouter(prefix="/api/v1/subjects", tags=["subjects"])


@router.get("", response_model=list[SubjectOut])
def subjects(ctx: Ctx, who: Who) -> list[SubjectOut]:
    """The subjects this token may see."""
    return [
        SubjectOut(id=s.id, name=s.name, birth_date=s.birth_date, time_zone=s.time_zone,
                   sensors=[SensorOut(serial=x.serial, side=x.side) for x in s.sensors])
        for s in ctx.records.subjects() if who.may_read(s.id)
    ]


def _note(note: Note) -> NoteOut:
    return NoteOut(id=note.id, time=iso_ms(note.time), kind=note.kind, text=note.text)


@router.get("/{subject_id}/journal", response_model=list[NoteOut])
def journal(request: Request, response: Response, ctx: Ctx, subject: ReadSubject,
            start: TimeQuery = None, end: TimeQuery = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 200,
            cursor: Annotated[str | None, Query(max_length=200)] = None) -> list[NoteOut]:
    """The journal's notes with start <= time < end, oldest first, `limit` at a time: the next
    page's address is in the `Link` header while there are more (`api.paging`)."""
    lo = -math.inf if start is None else start.timestamp()
    hi = math.inf if end is None else end.timestamp()
    if lo > hi:
        raise BadInput(f"start ({start}) is after end ({end})")
    after = paging.decode(cursor)
    if after is not None:  # from the cursor's time: the notes given there, then limit more
        lo = max(lo, after[0])
    fetched = ctx.records.notes(subject.id, lo, hi, limit + 1 + (after[1] if after else 0))
    notes, more = paging.page(fetched, lambda n: n.time, limit, after)
    paging.link_next(request, response, more)
    return [_note(n) for n in notes]


@router.post("/{subject_id}/journal", status_code=201, response_model=NoteOut)
def add_note(ctx: Ctx, subject: WriteSubject, note: NoteIn) -> NoteOut:
    """Add a note; its time defaults to now. A `lights_out` note asks for a new analysis of
    the night it falls in, if that night has a report: its sleep-onset latency may count from
    the note now."""
    when = ctx.now() if note.time is None else note.time.timestamp()
    saved = ctx.records.add_note(subject.id, when, note.kind, note.text)
    if note.kind == "lights_out":
        day = night_date(when, subject.time_zone)
        for night in ctx.records.nights(subject.id, first=day, last=day):
            if night.algorithm_version is not None:
                ctx.records.request_reanalysis(night.id)
    return _note(saved)


@router.post("/{subject_id}/shares", status_code=201, response_model=ShareOut,
             responses={404: {"model": Problem}})
def share(ctx: Ctx, subject: WriteSubject, body: ShareIn) -> ShareOut:
    """Let a clinician's token read this subject."""
    token = ctx.records.token(body.token_name)
    if token is None or token.revoked is not None:
        raise NotFound(f"no valid token named {body.token_name!r}")
    if token.role != "clinician":
        raise BadInput(f"{body.token_name!r} is a {token.role} token; share with a clinician's")
    ctx.records.put_share(subject.id, token.name)
    return ShareOut(subject_id=subject.id, token_name=token.name)


@router.get("/{subject_id}/shares", response_model=list[ShareOut])
def shares(ctx: Ctx, subject: WriteSubject) -> list[ShareOut]:
    """The clinicians' tokens that may read this subject (for those who may change that)."""
    return [ShareOut(subject_id=subject.id, token_name=t.name) for t in ctx.records.tokens()
            if t.role == "clinician" and t.revoked is None
            and subject.id in ctx.records.shared_subjects(t.name)]


@router.delete("/{subject_id}/shares/{token_name}", status_code=204,
               responses={404: {"model": Problem}})
def unshare(ctx: Ctx, subject: WriteSubject, token_name: str) -> Response:
    """Stop sharing this subject with the token."""
    ctx.records.delete_share(subject.id, token_name)
    return Response(status_code=204)
