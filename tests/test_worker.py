"""The analysis service on a real store file: notices ended nights, analyses each once."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path

import pytest
from test_store import SIDES, T0, leg_chunks, sim_chunks

from analysis import ALGORITHM_VERSION
from analysis.night import analyze_night
from firmware_sim.night import simulate_night
from firmware_sim.scenario import load_scenario
from limbwatch.store.nights import night_recordings
from limbwatch.store.records import DeviceEvent, Subject
from limbwatch.store.samples import Chunk
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore
from worker.service import AnalysisService

KID = Subject("kid", "Kid", None, "UTC")
QUIET_S = 1800.0


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def night_chunks() -> dict[str, list[Chunk]]:
    night = simulate_night(load_scenario("mild_plms"), 4, duration_h=1.0)
    return {side: sim_chunks(night.legs[side], side) for side in SIDES}


def service_on(path: Path, clock: Clock) -> AnalysisService:
    return AnalysisService(SqliteSampleStore(path), SqliteRecordStore(path), now=clock,
                           quiet_s=QUIET_S)


def test_a_night_is_analysed_once_after_the_quiet_period_and_not_again_after_a_restart(
    tmp_path: Path, night_chunks: dict[str, list[Chunk]],
) -> None:
    path = tmp_path / "limbwatch.db"
    clock = Clock(0.0)
    service = service_on(path, clock)
    service.records.put_subject(KID)
    half = {side: len(c) // 2 for side, c in night_chunks.items()}
    for side, chunks in night_chunks.items():
        service.samples.write_chunks(chunks[: half[side]])
    last = max(c.t0 for chunks in night_chunks.values() for c in chunks)
    clock.t = last
    assert service.poll() == []  # still recording
    (night,) = service.records.nights("kid")
    assert night.status == "recording"
    for side, chunks in night_chunks.items():
        service.samples.write_chunks(chunks[half[side]:])
    clock.t = last + QUIET_S - 60
    assert service.poll() == []  # data just grew: not quiet yet
    clock.t = last + 2 * QUIET_S
    assert service.poll() == [night.id]
    ready = service.records.night(night.id)
    assert ready is not None and ready.status == "ready"
    assert ready.algorithm_version == ALGORITHM_VERSION
    assert service.poll() == []  # analysed once
    again = service_on(path, clock)  # a restarted service repeats no finished work
    assert again.poll() == []
    stored = again.records.report(night.id)
    assert stored is not None
    direct = analyze_night(night_recordings(again.samples, ready), age_months=None)
    assert stored[1] == direct.to_report().model_dump_json()
    assert ready.figures["plm_index"] == direct.figures().plm_index
    assert list(ready.flags) == [f.code for f in direct.to_report().flags]
    assert again.records.night_events(night.id) == direct.events()


def test_caregiver_ending_the_night_and_reanalysis(
    tmp_path: Path, night_chunks: dict[str, list[Chunk]],
) -> None:
    path = tmp_path / "limbwatch.db"
    clock = Clock(T0)  # the store's clock: right after the data, far from quiet
    service = service_on(path, clock)
    service.records.put_subject(KID)
    service.samples.write_chunks(night_chunks["left"])
    assert service.poll() == []
    (night,) = service.records.nights("kid")
    service.records.mark_ended(night.id)
    assert service.poll() == [night.id]
    first = service.records.report(night.id)
    service.records.request_reanalysis(night.id)
    assert service.records.report(night.id) == first  # the old report stays until the new one
    assert service.poll() == [night.id]
    assert service.poll() == []
    ready = service.records.night(night.id)
    assert ready is not None and ready.status == "ready" and not ready.reanalyse


def test_late_data_reopens_a_ready_night(
    tmp_path: Path, night_chunks: dict[str, list[Chunk]],
) -> None:
    path = tmp_path / "limbwatch.db"
    clock = Clock(0.0)
    service = service_on(path, clock)
    service.records.put_subject(KID)
    service.samples.write_chunks(night_chunks["left"])
    clock.t = T0 + 10 * 3600
    assert service.poll() == []  # first seen now: new data, so not quiet yet
    clock.t += QUIET_S
    (night_id,) = service.poll()
    service.samples.write_chunks(night_chunks["right"])  # a late morning sync of the other leg
    assert service.poll() == []
    reopened = service.records.night(night_id)
    assert reopened is not None and reopened.status == "recording"
    clock.t += QUIET_S
    assert service.poll() == [night_id]  # analysed again, with both legs
    stored = service.records.report(night_id)
    assert stored is not None and '"side":"right"' in stored[1]


def test_a_failed_night_is_recorded_with_its_reason_and_the_service_goes_on(
    tmp_path: Path, night_chunks: dict[str, list[Chunk]], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="worker.service")
    path = tmp_path / "limbwatch.db"
    clock = Clock(T0 + 30 * 86400)
    service = service_on(path, clock)
    service.records.put_subject(KID)
    service.records.put_subject(Subject("other", "Other", None, "UTC"))
    service.quiet_s = 0.0
    service.samples.write_chunks(leg_chunks("left", 1))  # 0.78 s of data cannot be analysed
    other = [Chunk("other", c.side, "LW-other", 1, c.seq, c.t0, c.dt, c.counts, c.counts_per_g)
             for c in night_chunks["left"]]
    service.samples.write_chunks(other)
    done = service.poll()
    assert len(done) == 2
    (bad,) = service.records.nights("kid")
    (good,) = service.records.nights("other")
    assert bad.status == "failed" and bad.failure
    assert good.status == "ready"
    assert service.poll() == []  # not retried until new data or a request
    # each log line about a night carries its id and subject (the JSON logs' correlation id)
    about = {(r.levelname, getattr(r, "night", None), getattr(r, "subject", None))
             for r in caplog.records if r.name == "worker.service"}
    assert about == {("WARNING", bad.id, "kid"), ("INFO", good.id, "other")}


def test_a_subject_without_a_birth_date_is_analysed_at_the_default_age(
    tmp_path: Path, night_chunks: dict[str, list[Chunk]],
) -> None:
    """`[analysis] default_age_months` for a child whose birth date is unknown; a known birth
    date wins."""
    path = tmp_path / "limbwatch.db"
    clock = Clock(T0 + 30 * 86400)
    service = service_on(path, clock)
    service.default_age_months = 8.0
    service.quiet_s = 0.0
    service.records.put_subject(KID)  # no birth date
    born = Subject("born", "Born", date(2020, 11, 20), "UTC")
    service.records.put_subject(born)
    for subject in ("kid", "born"):
        service.samples.write_chunks(
            [Chunk(subject, c.side, f"LW-{subject}-{c.side}", 1, c.seq, c.t0, c.dt, c.counts,
                   c.counts_per_g) for side in SIDES for c in night_chunks[side]])
    assert len(service.poll()) == 2
    ages = {}
    for subject in ("kid", "born"):
        (night,) = service.records.nights(subject)
        stored = service.records.report(night.id)
        assert stored is not None
        ages[subject] = json.loads(stored[1])["age_months"]
    assert ages["kid"] == 8.0
    assert 71 < ages["born"] < 73  # six years old, from the birth date


def test_a_night_is_over_once_every_leg_has_synced_after_its_last_sample(
    tmp_path: Path, night_chunks: dict[str, list[Chunk]],
) -> None:
    path = tmp_path / "limbwatch.db"
    clock = Clock(0.0)
    service = service_on(path, clock)
    service.records.put_subject(KID)
    for chunks in night_chunks.values():
        service.samples.write_chunks(chunks)
    last = max(c.t0 for chunks in night_chunks.values() for c in chunks)
    clock.t = last + 60  # well within the quiet period
    synced = [DeviceEvent("kid", "left", last - 600, "synced", {}),  # the morning before
              DeviceEvent("kid", "left", last + 30, "synced", {})]
    service.records.write_device_events(synced)
    assert service.poll() == []  # the right leg's sync is not complete
    (night,) = service.records.nights("kid")
    assert night.status == "recording"
    service.records.write_device_events([DeviceEvent("kid", "right", last + 40, "synced", {})])
    assert service.poll() == [night.id]
    ready = service.records.night(night.id)
    assert ready is not None and ready.status == "ready"

