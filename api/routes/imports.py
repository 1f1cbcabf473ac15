"""`POST /api/v1/imports`: a night from CSV files (contract section 1)."""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from api.auth import Ctx, Who, check_subject
from api.errors import TooLarge
from api.imports import plausibility_warnings, recording_chunks
from api.models import ImportOut, Problem
from limbwatch.errors import BadInput, Conflict
from limbwatch.recording import Recording, RecordingError, Side, check_overlap, read_recording_csv
from limbwatch.store.nights import refresh_nights

router = APIRouter(prefix="/api/v1", tags=["imports"])


def _read(upload: UploadFile, side: Side, folder: Path, limit: int) -> tuple[Recording, str]:
    """The upload read as the command line reads a file (same one-line errors, naming the
    upload's file name), and the SHA-256 of its bytes."""
    name = Path(upload.filename or f"{side}.csv").name or f"{side}.csv"
    path = folder / side / name
    path.parent.mkdir()
    sha, size = hashlib.sha256(), 0
    with path.open("wb") as out:
        while block := upload.file.read(1 << 20):
            size += len(block)
            if size > limit:
                raise TooLarge(f"{name}: over the {limit / 2**20:g} MB upload limit")
            sha.update(block)
            out.write(block)
    try:
        rec = read_recording_csv(path, side)
    except RecordingError as exc:
        raise RecordingError(name, exc.problem, exc.line) from None
    return Recording(rec.side, rec.time, rec.accel, rec.fs, name), sha.hexdigest()


@router.post("/imports", status_code=201, response_model=ImportOut,
             responses={400: {"model": Problem}, 413: {"model": Problem}})
def import_night(ctx: Ctx, who: Who, subject_id: Annotated[str, Form(min_length=1,
                                                                     max_length=100)],
                 left: Annotated[UploadFile | None, File()] = None,
                 right: Annotated[UploadFile | None, File()] = None) -> ImportOut:
    """Store one or two legs' CSV files as a night of the subject and have it analysed. The
    201 body lists plausibility warnings (m/s^2 instead of g, times near 1970, one file for
    both legs, over 24 h)."""
    subject = check_subject(ctx, who, subject_id, write=True)
    legs: tuple[tuple[Side, UploadFile | None], ...] = (("left", left), ("right", right))
    uploads = [(side, f) for side, f in legs if f is not None]
    if not uploads:
        raise BadInput("give a left or right CSV file (or both)")
    with tempfile.TemporaryDirectory(prefix="limbwatch-import-") as folder:
        read = [_read(f, side, Path(folder), ctx.settings.max_upload_bytes)
                for side, f in uploads]
    recs = [rec for rec, _ in read]
    if len(recs) == 2:
        check_overlap(*recs)
    device = f"import-{uuid.uuid4().hex}"
    ctx.samples.write_chunks([c for rec in recs for c in recording_chunks(rec, subject.id,
                                                                          device)])
    first = min(float(r.time[0]) for r in recs)
    last = max(float(r.time[-1]) for r in recs)
    touched = [n for n in refresh_nights(ctx.samples, ctx.records, subject, ctx.now(),
                                         since=first) if n.end >= first and n.start <= last]
    if not touched:
        raise Conflict(f"no night of {subject.id!r} holds the imported samples")
    for night in touched:
        ctx.records.mark_ended(night.id)
        ctx.records.set_status(night.id, "waiting")
    main = max(touched, key=lambda n: n.end - n.start)
    same = len(read) == 2 and read[0][1] == read[1][1]
    return ImportOut(night_id=main.id, night_ids=[n.id for n in touched], device=device,
                     warnings=plausibility_warnings(recs, same))
