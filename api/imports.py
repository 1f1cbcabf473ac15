"""Recordings imported as CSV files (contract section 1): samples as chunks under a
pseudo-device, the plausibility warnings that go with them, and the import into the stores
(used by `POST /api/v1/imports` and `limbwatch import`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

from limbwatch.errors import Conflict
from limbwatch.recording import G_MS2, Recording, check_overlap
from limbwatch.report import iso_ms
from limbwatch.store.nights import refresh_nights
from limbwatch.store.records import RecordStore, Subject
from limbwatch.store.samples import Chunk, SampleStore

COUNTS_PER_G = 2048  # int16 holds +/-16 g, the reader's limit (limbwatch.recording.MAX_ABS_G)
CHUNK_SAMPLES = 256
OLD_TIME_S = 946_684_800.0  # 2000-01-01: earlier starts are times counted from zero


def recording_chunks(rec: Recording, subject_id: str, device: str) -> list[Chunk]:
    """The recording as chunks of consecutive samples: a new chunk at every gap or jitter of
    more than half a sample period, and every CHUNK_SAMPLES samples; dt is each chunk's mean."""
    period = 1.0 / rec.fs
    steps = np.diff(rec.time)
    breaks = np.flatnonzero(np.abs(steps - period) > period / 2) + 1
    counts = np.clip(np.round(rec.accel * COUNTS_PER_G), -32768, 32767).astype(np.int16)
    chunks = []
    for run in np.split(np.arange(len(rec.time)), breaks):
        for i in range(0, len(run), CHUNK_SAMPLES):
            part = run[i : i + CHUNK_SAMPLES]
            a, b = int(part[0]), int(part[-1])
            dt = (rec.time[b] - rec.time[a]) / (b - a) if b > a else period
            chunks.append(Chunk(subject_id, rec.side, device, 1, a, float(rec.time[a]),
                                float(dt), counts[a : b + 1], COUNTS_PER_G))
    return chunks


def plausibility_warnings(recs: list[Recording], same_file: bool) -> list[str]:
    """What looks wrong with an import that the reader accepts: m/s^2 instead of g, times
    from zero instead of Unix time, one file for both legs, more than 24 h."""
    warnings = []
    for rec in recs:
        magnitude = float(np.median(np.linalg.norm(rec.accel, axis=1)))
        if abs(magnitude - G_MS2) < 1.5:
            warnings.append(
                f"{rec.source}: the median |a| is {magnitude:.1f}, near 9.8: the values look "
                "like m/s^2, not g; divide them by 9.80665 and import again")
        if rec.time[0] < OLD_TIME_S:
            warnings.append(
                f"{rec.source}: the recording starts {iso_ms(float(rec.time[0]))}: the times look "
                "like seconds from the start, not Unix time; the night's date is wrong")
    if same_file:
        warnings.append("the same file was given for both legs: the two legs are identical, so "
                        "bilateral and asymmetry findings mean nothing")
    start = min(float(r.time[0]) for r in recs)
    end = max(float(r.time[-1]) for r in recs)
    if end - start > 24 * 3600:
        warnings.append(
            f"the recording covers {(end - start) / 3600:.1f} h ({iso_ms(start)} to "
            f"{iso_ms(end)}), more than 24 h: it is analysed as one night per local evening, "
            "noon to noon (see night_ids)")
    return warnings


@dataclass(frozen=True, slots=True)
class Imported:
    night_id: int  # the night holding most of the recording
    night_ids: list[int]  # every night it touches (one per local evening, noon to noon)
    device: str  # the pseudo-device its samples are stored under
    warnings: list[str]


def import_recordings(samples: SampleStore, records: RecordStore, subject: Subject,
                      recs: list[Recording], *, same_file: bool, now: float) -> Imported:
    """Store one or two legs' recordings as the subject's samples, mark the nights they touch
    over (so the analysis service analyses them) and keep the plausibility warnings with those
    nights (they go into their reports)."""
    if len(recs) == 2:
        check_overlap(*recs)
    device = f"import-{uuid.uuid4().hex}"
    samples.write_chunks([c for rec in recs for c in recording_chunks(rec, subject.id, device)])
    first = min(float(r.time[0]) for r in recs)
    last = max(float(r.time[-1]) for r in recs)
    touched = [n for n in refresh_nights(samples, records, subject, now, since=first)
               if n.end >= first and n.start <= last]
    if not touched:
        raise Conflict(f"no night of {subject.id!r} holds the imported samples")
    warnings = plausibility_warnings(recs, same_file)
    for night in touched:
        records.add_warnings(night.id, warnings)
        records.mark_ended(night.id)
        records.set_status(night.id, "waiting")
    main = max(touched, key=lambda n: n.end - n.start)
    return Imported(main.id, [n.id for n in touched], device, warnings)
