"""The analysis service's upkeep of live status on a real store file: a gateway gone silent
leaves its sensors reported away (so an open live stream alerts `lost`), and old snapshots
are pruned, each sensor's newest kept."""

from __future__ import annotations

from pathlib import Path

from test_store import T0

from api.context import Settings
from api.live import AlertTracker
from limbwatch.report import iso_ms
from limbwatch.store.records import SensorStatus
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore
from worker.live_status import GIVE_UP_S, KEEP_S, SILENT_AFTER_S
from worker.service import AnalysisService


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def snapshot(serial: str, t: float, *, packet: float | None = None) -> SensorStatus:
    return SensorStatus(serial, "kid", "left", t, True, 80.0, t if packet is None else packet,
                        None, None)


def service_on(path: Path, clock: Clock) -> AnalysisService:
    return AnalysisService(SqliteSampleStore(path), SqliteRecordStore(path), now=clock)


def test_a_silent_gateways_sensors_are_reported_away_and_an_open_stream_alerts(
        tmp_path: Path) -> None:
    clock = Clock(T0)
    service = service_on(tmp_path / "limbwatch.db", clock)
    records = service.records
    records.put_status([snapshot("LW-1", T0), snapshot("LW-gone", T0, packet=T0 - GIVE_UP_S)])
    tracker = AlertTracker(Settings(lost_after_s=120.0, confirm_s=30.0))
    events = [e for i, s in records.statuses_since(0) for e in tracker.feed(i, s)]
    after = records.statuses_since(0)[-1][0]

    def round_at(t: float) -> list[SensorStatus]:
        """The snapshots the round at `t` added, fed to the open stream's tracker."""
        nonlocal after
        clock.t = t
        service.poll()
        new = records.statuses_since(after)
        after = new[-1][0] if new else after
        events.extend(e for i, s in new for e in tracker.feed(i, s))
        return [s for _, s in new]

    assert round_at(T0) == []  # silence counts from when the service first saw a snapshot
    assert round_at(T0 + SILENT_AFTER_S - 1) == []
    assert round_at(T0 + SILENT_AFTER_S) == [
        SensorStatus("LW-1", "kid", "left", T0 + SILENT_AFTER_S, False, 80.0, T0, None, None)]
    assert round_at(T0 + 1.5 * SILENT_AFTER_S) == []
    assert [s.time for s in round_at(T0 + 2 * SILENT_AFTER_S)] == [T0 + 2 * SILENT_AFTER_S]
    alerts = [e.data for e in events if e.event == "alert"]
    assert [(a["alert"], a["serial"]) for a in alerts] == [("lost", "LW-gone"), ("lost", "LW-1")]
    assert alerts[1]["time"] == iso_ms(T0 + 2 * SILENT_AFTER_S)  # unheard for lost_after_s
    ids = [e.id for e in events]
    assert ids == sorted(ids)

    records.put_status([snapshot("LW-1", T0 + 130)])  # the gateway is back
    assert round_at(T0 + 150) == [snapshot("LW-1", T0 + 130)]
    assert round_at(T0 + 150 + SILENT_AFTER_S - 1) == []  # silent again only from now


def test_each_round_prunes_old_snapshots_once_an_hour_keeping_each_sensors_newest(
        tmp_path: Path) -> None:
    clock = Clock(T0)
    service = service_on(tmp_path / "limbwatch.db", clock)
    records = service.records
    records.put_status([snapshot("LW-gone", T0 - 2 * KEEP_S), snapshot("LW-1", T0 - KEEP_S - 1)])
    records.put_status([snapshot("LW-1", T0 - KEEP_S + 1)])
    service.poll()
    assert [(s.serial, s.time) for _, s in records.statuses_since(0)] == [
        ("LW-gone", T0 - 2 * KEEP_S), ("LW-1", T0 - KEEP_S + 1)]
    records.put_status([snapshot("LW-1", T0)])
    clock.t = T0 + 1800  # within the hour: no pruning yet
    service.poll()
    assert len(records.statuses_since(0)) == 3
    records.put_status([snapshot("LW-1", T0 + 3600)])  # (a live gateway: none reported away)
    clock.t = T0 + 3600
    service.poll()
    assert [(s.serial, s.time) for _, s in records.statuses_since(0)] == [
        ("LW-gone", T0 - 2 * KEEP_S), ("LW-1", T0), ("LW-1", T0 + 3600)]
