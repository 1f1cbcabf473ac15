"""`POST /api/v1/imports`: a night from CSV files (contract section 1)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from api.auth import Ctx, Who, check_subject
from api.errors import TooLarge
from api.imports import import_recordings
from api.models import ImportOut, Problem
from limbwatch.errors import BadInput
from limbwatch.recording import Recording, RecordingError, Side, read_recording_csv

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
    """Store one or two legs' CSV files as a night of the subject and have it analysed: for
    its caregiver, a clinician it is shared with (recordings from elsewhere) or the admin. The
    201 body lists plausibility warnings (m/s^2 instead of g, times near 1970, one file for
    both legs, over 24 h)."""
    subject = check_subject(ctx, who, subject_id, "import")
    legs: tuple[tuple[Side, UploadFile | None], ...] = (("left", left), ("right", right))
    uploads = [(side, f) for side, f in legs if f is not None]
    if not uploads:
        raise BadInput("give a left or right CSV file (or both)")
    with tempfile.TemporaryDirectory(prefix="limbwatch-import-") as folder:
        read = [_read(f, side, Path(folder), ctx.settings.max_upload_bytes)
                for side, f in uploads]
    same = len(read) == 2 and read[0][1] == read[1][1]
    done = import_recordings(ctx.samples, ctx.records, subject, [rec for rec, _ in read],
                             same_file=same, now=ctx.now())
    return ImportOut(night_id=done.night_id, night_ids=done.night_ids, device=done.device,
                     warnings=done.warnings)
