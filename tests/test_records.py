"""SqliteRecordStore on real SQLite files, and nights keyed by the local evening date."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import date
from pathlib import Path

import pytest
from test_store import T0, leg_chunks

from limbwatch.errors import Conflict, NotFound
from limbwatch.events import NightEvent
from limbwatch.store import schema
from limbwatch.store.nights import refresh_nights
from limbwatch.store.records import (
    DeviceEvent,
    SensorAssignment,
    SensorStatus,
    Subject,
    Token,
    night_date,
    night_window,
)
from limbwatch.store.samples import StoreUnavailable
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore

HOUR = 3600.0
KID = Subject("kid", "Kid", date(2020, 3, 1), "Europe/London",
              (SensorAssignment("LW-left", "left"), SensorAssignment("LW-right", "right")))


@pytest.fixture
def stores(tmp_path: Path) -> tuple[SqliteSampleStore, SqliteRecordStore]:
    path = tmp_path / "limbwatch.db"
    return SqliteSampleStore(path), SqliteRecordStore(path)


def test_night_runs_noon_to_noon_local_time() -> None:
    # T0 is 2026-11-20 19:30 UTC = 19:30 in London (GMT) = 14:30 in New York
    assert night_date(T0, "Europe/London") == date(2026, 11, 20)
    assert night_date(T0 + 10 * HOUR, "Europe/London") == date(2026, 11, 20)  # 05:30 next day
    assert night_date(T0 - 8 * HOUR, "Europe/London") == date(2026, 11, 19)  # 11:30 that day
    assert night_date(T0 - 8 * HOUR, "Asia/Tokyo") == date(2026, 11, 20)  # 20:30 in Tokyo
    start, end = night_window(date(2026, 11, 20), "Europe/London")
    assert start == T0 - 7.5 * HOUR and end == start + 24 * HOUR
    # the night the clocks go back (2026-10-25 in Europe) is 25 h long
    start, end = night_window(date(2026, 10, 24), "Europe/London")
    assert end - start == 25 * HOUR


def test_subjects_round_trip_and_replace_their_sensors(
    stores: tuple[SqliteSampleStore, SqliteRecordStore],
) -> None:
    _, records = stores
    records.put_subject(KID)
    records.put_subject(Subject("baby", "Baby", None, "UTC"))
    assert records.subjects() == [Subject("baby", "Baby", None, "UTC"), KID]
    moved = Subject("kid", "Kid", KID.birth_date, "Europe/London",
                    (SensorAssignment("LW-left", "right"),))
    records.put_subject(moved)
    assert records.subject("kid") == moved
    assert records.subject("nobody") is None
    assert KID.age_months(T0) == pytest.approx(80.6, abs=0.1)


def test_night_keeps_its_id_when_late_backfill_extends_or_fills_it(
    stores: tuple[SqliteSampleStore, SqliteRecordStore],
) -> None:
    samples, records = stores
    records.put_subject(KID)
    chunks = leg_chunks("left", 200)
    samples.write_chunks(chunks[:50] + chunks[100:150])  # a gap in the middle
    (night,) = refresh_nights(samples, records, KID, now=1.0)
    assert night.date == date(2026, 11, 20) and night.status == "recording"
    assert night.data_changed == 1.0
    (same,) = refresh_nights(samples, records, KID, now=2.0)
    assert same == night  # nothing new: data_changed stays
    samples.write_chunks(chunks[50:100])  # the backfill fills the gap
    (filled,) = refresh_nights(samples, records, KID, now=3.0)
    assert filled.id == night.id and filled.data_changed == 3.0 and filled.end == night.end
    samples.write_chunks(chunks[150:])  # and extends it
    (longer,) = refresh_nights(samples, records, KID, now=4.0)
    assert longer.id == night.id and longer.end > night.end
    samples.write_chunks(leg_chunks("left", 5, t0=T0 + 24 * HOUR, session=2))
    found = refresh_nights(samples, records, KID, now=5.0)
    assert [n.date for n in found] == [date(2026, 11, 20), date(2026, 11, 21)]
    assert found[0].id == night.id and found[1].id == night.id + 1  # ids are sequential
    assert [n.id for n in records.nights("kid")] == [found[1].id, night.id]  # newest first
    assert [n.id for n in records.nights("kid", last=date(2026, 11, 20))] == [night.id]
    # the other leg's night backfilled into the older night, after the newer one began
    samples.write_chunks(leg_chunks("right", 20, t0=T0 + HOUR, session=3))
    chunks = records.night_chunks("kid")
    older, newer = refresh_nights(samples, records, KID, now=6.0)
    assert older.id == night.id and older.data_changed == 6.0 and newer == found[1]
    assert records.night_chunks("kid") == chunks + 20
    assert refresh_nights(samples, records, KID, now=7.0) == [newer]  # no look back needed


def test_report_replaces_the_old_one_in_one_step_and_readies_the_night(
    stores: tuple[SqliteSampleStore, SqliteRecordStore],
) -> None:
    samples, records = stores
    records.put_subject(KID)
    samples.write_chunks(leg_chunks("left", 10))
    (night,) = refresh_nights(samples, records, KID, now=1.0)
    assert records.report(night.id) is None
    records.put_report(night.id, "1.0.0", '{"a": 1}', {"plm_index": 3.5}, ["NONWEAR"], now=2.0)
    records.request_reanalysis(night.id)
    stored = records.night(night.id)
    assert stored is not None and stored.reanalyse and stored.status == "ready"
    assert records.report(night.id) == ("1.0.0", '{"a": 1}')  # kept until the new one
    records.put_report(night.id, "1.1.0", '{"a": 2}', {"plm_index": 4.0}, [], now=3.0)
    stored = records.night(night.id)
    assert stored is not None and not stored.reanalyse
    assert (stored.algorithm_version, stored.figures, stored.flags) == ("1.1.0",
                                                                         {"plm_index": 4.0}, ())
    records.set_status(night.id, "failed", "no data")
    failed = records.night(night.id)
    assert failed is not None and failed.failure == "no data"
    with pytest.raises(NotFound):
        records.set_status(night.id + 99, "ready")


def test_device_events_round_trip(stores: tuple[SqliteSampleStore, SqliteRecordStore]) -> None:
    _, records = stores
    events = [
        DeviceEvent("kid", "left", T0 + 5, "gap", {"seconds": 12.5, "packets": 16}),
        DeviceEvent("kid", None, T0 + 1, "backfill", {"from": 3, "note": None, "who": "x"}),
        DeviceEvent("other", "right", T0 + 2, "connected", {}),
    ]
    records.write_device_events(events)
    assert records.device_events("kid", T0, T0 + 10) == [events[1], events[0]]
    assert records.device_events("kid", T0 + 2, T0 + 5) == []


def test_closed_record_store_is_unavailable(tmp_path: Path) -> None:
    records = SqliteRecordStore(tmp_path / "x.db")
    records.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        records.subjects()


def test_tokens_shares_and_revocation(stores: tuple[SqliteSampleStore, SqliteRecordStore]) -> None:
    _, records = stores
    records.put_subject(KID)
    care = Token("mum", "caregiver", "kid", "ab" * 32, 1.0, None)
    doc = Token("dr", "clinician", None, "cd" * 32, 2.0, None)
    records.put_token(care)
    records.put_token(doc)
    with pytest.raises(Conflict):
        records.put_token(Token("mum", "admin", None, "ef" * 32, 3.0, None))
    with pytest.raises(NotFound):
        records.put_token(Token("dad", "caregiver", "nobody", "01" * 32, 3.0, None))
    assert records.token_by_digest("cd" * 32) == doc and records.token_by_digest("00") is None
    assert records.tokens() == [doc, care]
    records.put_share("kid", "dr")
    records.put_share("kid", "dr")  # again: no change
    assert records.shared_subjects("dr") == {"kid"}
    records.delete_share("kid", "dr")
    with pytest.raises(NotFound):
        records.delete_share("kid", "dr")
    records.put_share("kid", "dr")
    records.revoke_token("dr", now=9.0)
    revoked = records.token("dr")
    assert revoked is not None and revoked.revoked == 9.0
    assert records.shared_subjects("dr") == set()  # a revoked token's shares go with it
    with pytest.raises(NotFound):
        records.revoke_token("nobody", now=9.0)


def test_journal_notes_by_time(stores: tuple[SqliteSampleStore, SqliteRecordStore]) -> None:
    _, records = stores
    records.put_subject(KID)
    late = records.add_note("kid", T0 + 60, "fever", "38.5")
    early = records.add_note("kid", T0, "feeding", "")
    assert records.notes("kid", T0, T0 + 61) == [early, late]
    assert records.notes("kid", T0 + 1, T0 + 60) == []
    assert late.id != early.id and late.kind == "fever"


def test_night_events_are_replaced_with_the_report_and_filtered(
    stores: tuple[SqliteSampleStore, SqliteRecordStore],
) -> None:
    samples, records = stores
    records.put_subject(KID)
    samples.write_chunks(leg_chunks("left", 10))
    (night,) = refresh_nights(samples, records, KID, now=1.0)
    lm = NightEvent("lm", T0 + 1, T0 + 2, "left", {"in_sleep": True, "bilateral_group": None})
    series = NightEvent("plm_series", T0, T0 + 90, None, {"count": 4})
    records.put_report(night.id, "1", "{}", {}, [], 2.0, [series, lm])
    assert records.night_events(night.id) == [series, lm]
    assert records.night_events(night.id, kinds=["lm"]) == [lm]
    assert records.night_events(night.id, start=T0 + 2.5, end=T0 + 100) == [series]
    records.put_report(night.id, "2", "{}", {}, [], 3.0, [lm])  # re-analysis replaces them
    assert records.night_events(night.id) == [lm]


def test_status_snapshots_have_growing_ids(
    stores: tuple[SqliteSampleStore, SqliteRecordStore],
) -> None:
    _, records = stores
    a = SensorStatus("LW-left", "kid", "left", T0, True, 80.0, T0, True, T0 - 5)
    b = SensorStatus("LW-x", "other", "right", T0 + 1, False, None, None, None, None)
    first = records.put_status([a])
    last = records.put_status([b, a])
    assert last == first + 2
    assert [s for _, s in records.statuses_since(first)] == [b, a]
    assert records.statuses_since(0, subjects=["other"]) == [(first + 1, b)]
    assert [i for i, _ in records.statuses_since(0, since_time=T0 + 0.5)] == [first + 1]


def test_latest_statuses_are_each_serials_newest_however_old(
    stores: tuple[SqliteSampleStore, SqliteRecordStore],
) -> None:
    _, records = stores
    gone = SensorStatus("LW-left", "kid", "left", T0 - 86400, False, 40.0, T0 - 86500, None, None)
    first = records.put_status([gone])
    records.put_status([SensorStatus("LW-right", "kid", "right", T0 + k, True, 90.0, T0 + k,
                                     None, None) for k in range(3)])
    newest = SensorStatus("LW-right", "kid", "right", T0 + 9, True, 89.0, T0 + 9, None, None)
    other = SensorStatus("LW-x", "other", "left", T0, True, None, T0, None, None)
    last = records.put_status([newest, other])
    assert records.latest_statuses() == [(first, gone), (last - 1, newest), (last, other)]
    assert records.latest_statuses(["kid"]) == [(first, gone), (last - 1, newest)]
    assert records.latest_statuses([]) == []
    moved = SensorStatus("LW-left", "other", "left", T0 + 10, True, 40.0, T0 + 10, None, None)
    records.put_status([moved])  # given to another child: no longer kid's sensor
    assert [s.serial for _, s in records.latest_statuses(["kid"])] == ["LW-right"]


def test_pruning_drops_old_snapshots_but_each_sensors_newest(
    stores: tuple[SqliteSampleStore, SqliteRecordStore],
) -> None:
    _, records = stores
    gone = SensorStatus("LW-old", "kid", "left", T0 - 9000, False, 40.0, T0 - 9100, None, None)
    old, newest = (SensorStatus("LW-right", "kid", "right", T0 + k, True, 90.0, T0 + k, None,
                                None) for k in (-5000, 0))
    kept = records.put_status([gone])
    records.put_status([old])
    last = records.put_status([newest])
    assert records.prune_statuses(T0 - 1000) == 1  # `old`: `gone` is LW-old's newest
    assert records.statuses_since(0) == [(kept, gone), (last, newest)]
    assert records.prune_statuses(T0 + 1) == 0


def test_a_schema_3_store_is_upgraded_in_place_keeping_its_tokens_and_shares(
        tmp_path: Path) -> None:
    """Schema 3 did not know the gateway role, schema 4 had no index of live status by serial,
    schema 5 none by time; opening such a store upgrades it (once, in one transaction) and
    keeps every token and share."""
    path = tmp_path / "v3.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    for statement in schema.TABLES:
        if "INDEX sensor_status_by" not in statement:
            db.execute(statement.replace(", 'gateway'", ""))
    db.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
    db.execute("PRAGMA user_version = 3")
    db.execute("INSERT INTO subjects VALUES ('kid', 'Kid', NULL, 'UTC')")
    db.execute("INSERT INTO tokens VALUES ('dr', 'clinician', NULL, 'ab', 1.0, NULL)")
    db.execute("INSERT INTO shares VALUES ('kid', 'dr')")
    with pytest.raises(sqlite3.IntegrityError):  # what schema 3 refused
        db.execute("INSERT INTO tokens VALUES ('home', 'gateway', NULL, 'cd', 1.0, NULL)")
    db.close()
    with SqliteRecordStore(path) as records:
        assert records.token("dr") == Token("dr", "clinician", None, "ab", 1.0, None)
        assert records.shared_subjects("dr") == {"kid"}
        records.put_token(Token("home", "gateway", None, "cd", 2.0, None))
        records.put_share("kid", "home")
        assert records.shared_subjects("home") == {"kid"}
    with SqliteSampleStore(path, create=False), closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_schema")}
        assert "tokens_v4" not in names
        assert {"sensor_status_by_serial", "sensor_status_by_time"} <= names
