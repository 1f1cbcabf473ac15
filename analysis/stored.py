"""A stored night analysed: the one way the analysis service, the exports and the command line
turn a night of the sample store into a `NightResult`, so that they all agree."""

from __future__ import annotations

from analysis.night import analyze_night
from analysis.plm import Rules
from analysis.result import NightResult
from limbwatch.store.nights import night_recordings
from limbwatch.store.records import NightRecord, RecordStore
from limbwatch.store.samples import SampleStore


def analyse_stored_night(samples: SampleStore, records: RecordStore, night: NightRecord, *,
                         age_months: float | None = None, rules: Rules = "wasm2016",
                         fs: float | None = None) -> NightResult:
    """The night's legs from the sample store, analysed; `age_months` defaults to the
    subject's age at the night's start (from the birth date), `fs` to the stored rate. The
    subject's journal notes of kind `lights_out` during the night may start its first
    settling (sleep-onset latency)."""
    recs = night_recordings(samples, night, fs=fs)
    subject = records.subject(night.subject_id)
    if age_months is None and subject is not None:
        age_months = subject.age_months(night.start)
    notes = records.notes(night.subject_id, night.start, night.end + 1.0)
    return analyze_night(recs, age_months=age_months, rules=rules,
                         lights_out=[n.time for n in notes if n.kind == "lights_out"])
