"""Nights from samples: which local evening dates a subject has data for, and their legs.

Shared by the analysis service, the command line and the API. A night is (subject, local
evening date), noon to noon local (`limbwatch.store.records.night_window`).
"""

from __future__ import annotations

import math
from datetime import date, timedelta

from limbwatch.recording import Recording, recording_from_arrays
from limbwatch.store.records import (
    NightRecord,
    RecordStore,
    Subject,
    night_date,
    night_window,
)
from limbwatch.store.samples import SampleStore

LOOKBACK_DAYS = 7  # late data is looked for this far before the newest night (a sensor's
# flash holds a night or two; an import names its night with `since`)


def refresh_nights(samples: SampleStore, records: RecordStore, subject: Subject,
                   now: float, *, since: float | None = None) -> list[NightRecord]:
    """Create or widen the subject's nights from the samples stored, oldest first.

    Looks from the newest night already recorded (late backfill can widen it), or from the
    night of Unix time `since` (an import of an older night), to the newest data; and when the
    subject's chunks outnumber its nights' (late backfill into an older night, after the next
    one began), at the LOOKBACK_DAYS nights before the newest too. `now` (Unix s, the store's
    clock) is when a night's data was last seen to grow.
    """
    whole = samples.extent(subject.id)
    if whole is None:
        return []
    known = records.nights(subject.id, limit=1)
    first = night_date(whole.first, subject.time_zone)
    day = first
    if since is not None:
        day = max(day, night_date(since, subject.time_zone))
    elif known:
        day = max(day, known[0].date)
    found = _refresh(samples, records, subject, day, night_date(whole.last, subject.time_zone),
                     now)
    if since is None and known and whole.chunks != records.night_chunks(subject.id):
        found = _refresh(samples, records, subject,
                         max(first, day - timedelta(days=LOOKBACK_DAYS)),
                         day - timedelta(days=1), now) + found
    return found


def _refresh(samples: SampleStore, records: RecordStore, subject: Subject, day: date,
             last: date, now: float) -> list[NightRecord]:
    """Create or widen the subject's nights of local evening dates `day` to `last`."""
    found = []
    while day <= last:
        start, end = night_window(day, subject.time_zone)
        extent = samples.extent(subject.id, start, end)
        if extent is not None:
            found.append(records.upsert_night(subject.id, day, extent.first, extent.last,
                                              extent.chunks, now))
        day += timedelta(days=1)
    return found


def night_recordings(samples: SampleStore, night: NightRecord, *,
                     fs: float | None = None) -> list[Recording]:
    """Each leg of `night` read from the sample store as a validated Recording."""
    recs = []
    extent = samples.extent(night.subject_id, night.start, math.nextafter(night.end, math.inf))
    for side in () if extent is None else extent.sides:
        got = samples.read_samples(night.subject_id, side, night.start,
                                   math.nextafter(night.end, math.inf))
        recs.append(recording_from_arrays(
            got.time, got.accel, side, fs=got.fs if fs is None else fs,
            source=f"night {night.id} ({night.subject_id} {night.date}) {side}"))
    return recs
