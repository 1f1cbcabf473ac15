"""Exports of a night for the specialist (contract section 4): EDF+, events and epochs CSV,
a printable PDF and Open mHealth JSON. The night is analysed again from the stored samples
(`analysis.stored`), which gives the stored report exactly while its algorithm version is the
running one; a report made by another version must be re-analysed first (409)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from analysis import ALGORITHM_VERSION
from analysis.result import NightResult
from analysis.stored import analyse_stored_night
from api.auth import Ctx, ReadNight
from api.context import Context
from api.exports import edf, omh, printable, tables
from api.models import Problem
from limbwatch.errors import Conflict
from limbwatch.recording import MAX_ABS_G
from limbwatch.store.records import NightRecord, Note, Subject

router = APIRouter(prefix="/api/v1", tags=["exports"])
PROBLEMS: dict[int | str, dict[str, object]] = {404: {"model": Problem},
                                                409: {"model": Problem}}
EDF, CSV, PDF, JSON = "application/edf", "text/csv; charset=utf-8", "application/pdf", \
    "application/json"


def _answers(media: str, what: str) -> dict[int | str, dict[str, object]]:
    """The OpenAPI answers of an export: the file as `media`, or a problem."""
    schema = ({"type": "object"} if media == JSON else {"type": "string"}
              if media.startswith("text/") else {"type": "string", "format": "binary"})
    return {200: {"description": f"{what} (an attachment)",
                  "content": {media.split(";")[0]: {"schema": schema}}}, **PROBLEMS}


def _analysed(ctx: Context, night: NightRecord) -> tuple[Subject, NightResult, list[Note]]:
    if night.algorithm_version is None:
        raise Conflict(f"night {night.id} has no report yet (status {night.status})")
    if night.algorithm_version != ALGORITHM_VERSION:
        raise Conflict(f"night {night.id}'s report was made by algorithm "
                       f"{night.algorithm_version}, this service runs {ALGORITHM_VERSION}: "
                       "ask for a re-analysis (POST .../reanalyze) first")
    subject = ctx.records.subject(night.subject_id)
    assert subject is not None  # a night's subject is never deleted
    result = analyse_stored_night(ctx.samples, ctx.records, night)
    notes = ctx.records.notes(subject.id, night.start - 3600, night.end + 3600)
    return subject, result, notes


def _file(body: bytes | str, media: str, night: NightRecord, suffix: str) -> Response:
    name = f"limbwatch-{night.subject_id}-{night.date}{suffix}"
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/nights/{night_id}/export.edf", response_class=Response,
            responses=_answers(EDF, "EDF+C file"))
def export_edf(ctx: Ctx, night: ReadNight) -> Response:
    """EDF+C of the night: each leg's x, y, z in g (physical range +-16 g, the largest any
    stored sample can hold), events and journal notes as annotations."""
    subject, result, notes = _analysed(ctx, night)
    legs = {leg.side: ctx.samples.read_samples(night.subject_id, leg.side, night.start,
                                               math.nextafter(night.end, math.inf))
            for leg in result.legs}
    body = edf.night_edf(result, legs, full_scale_g=MAX_ABS_G, subject=subject, notes=notes,
                         algorithm_version=ALGORITHM_VERSION)
    return _file(body, EDF, night, ".edf")


@router.get("/nights/{night_id}/events.csv", response_class=Response,
            responses=_answers(CSV, "the night's events, a CSV table"))
def export_events(ctx: Ctx, night: ReadNight) -> Response:
    subject, result, notes = _analysed(ctx, night)
    body = tables.events_csv(result, notes=notes, subject=subject,
                             algorithm_version=ALGORITHM_VERSION)
    return _file(body, CSV, night, "-events.csv")


@router.get("/nights/{night_id}/epochs.csv", response_class=Response,
            responses=_answers(CSV, "the night's 30-s epochs, a CSV table"))
def export_epochs(ctx: Ctx, night: ReadNight) -> Response:
    subject, result, _ = _analysed(ctx, night)
    body = tables.epochs_csv(result, subject=subject, algorithm_version=ALGORITHM_VERSION)
    return _file(body, CSV, night, "-epochs.csv")


@router.get("/nights/{night_id}/report.pdf", response_class=Response,
            responses=_answers(PDF, "the printable report"))
def export_pdf(ctx: Ctx, night: ReadNight,
               page: Annotated[Literal["a4", "letter"], Query()] = "a4") -> Response:
    """A printable report of the night (A4 or US Letter)."""
    subject, result, notes = _analysed(ctx, night)
    body = printable.night_report_pdf([result], subject=subject, notes=notes,
                                      algorithm_version=ALGORITHM_VERSION, page_size=page)
    return _file(body, PDF, night, ".pdf")


@router.get("/nights/{night_id}/sleep-episode.json", response_class=Response,
            responses=_answers(JSON, "an Open mHealth omh:sleep-episode data point"))
def export_omh(ctx: Ctx, night: ReadNight) -> Response:
    """The night's main sleep as an Open mHealth omh:sleep-episode 1.1 data point."""
    subject, result, _ = _analysed(ctx, night)
    body = omh.sleep_episode_json(result, subject=subject, algorithm_version=ALGORITHM_VERSION,
                                  created=ctx.now())
    return _file(body, JSON, night, "-sleep-episode.json")
