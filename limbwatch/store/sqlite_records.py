"""`SqliteRecordStore`: the `RecordStore` in the store's SQLite file (one file, WAL).

All methods are single statements or one transaction; SQLite errors become `StoreUnavailable`
with a one-line message (`GuardedSqlite`). Safe to share between threads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from limbwatch.errors import NotFound
from limbwatch.recording import as_side
from limbwatch.store import schema
from limbwatch.store.records import (
    Detail,
    DeviceEvent,
    NightRecord,
    NightStatus,
    SensorAssignment,
    Subject,
)
from limbwatch.store.samples import StoreUnavailable
from limbwatch.store.sqlite_base import GuardedSqlite, Synchronous

_NIGHT_COLUMNS = """n.id, n.subject_id, n.date, n.start, n.end, n.status, n.data_changed,
    n.ended, r.algorithm_version, n.failure, r.figures, r.flags, n.reanalyse"""
_SELECT_NIGHTS = f"SELECT {_NIGHT_COLUMNS} FROM nights n LEFT JOIN reports r ON r.night_id = n.id"


def _night(row: tuple[Any, ...]) -> NightRecord:
    (id_, subject_id, day, start, end, status, changed, ended, version, failure, figures,
     flags, reanalyse) = row
    return NightRecord(
        id=int(id_), subject_id=subject_id, date=date.fromisoformat(day), start=start, end=end,
        status=status, data_changed=changed, ended=bool(ended), algorithm_version=version,
        failure=failure, figures=json.loads(figures) if figures else {},
        flags=tuple(json.loads(flags)) if flags else (), reanalyse=bool(reanalyse),
    )


class SqliteRecordStore(GuardedSqlite):
    """The records of a limbwatch store file (see `limbwatch.store.records`)."""

    label = "store"
    unavailable = StoreUnavailable

    def __init__(self, path: Path | str, *, create: bool = True, timeout_s: float = 5.0,
                 synchronous: Synchronous = "NORMAL") -> None:
        self._open(path, application_id=schema.APPLICATION_ID,
                   schema_version=schema.SCHEMA_VERSION, schema=schema.TABLES, what=schema.WHAT,
                   create=create, timeout_s=timeout_s, synchronous=synchronous)

    # --- subjects ----------------------------------------------------------------------------

    def put_subject(self, subject: Subject) -> None:
        birth = None if subject.birth_date is None else subject.birth_date.isoformat()
        with self._transaction(f"store subject {subject.id!r} (nothing changed)") as db:
            db.execute(
                """INSERT INTO subjects VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET
                name = excluded.name, birth_date = excluded.birth_date,
                time_zone = excluded.time_zone""",
                (subject.id, subject.name, birth, subject.time_zone),
            )
            db.execute("DELETE FROM sensors WHERE subject_id = ?", (subject.id,))
            db.executemany(
                """INSERT INTO sensors VALUES (?, ?, ?) ON CONFLICT (serial) DO UPDATE SET
                subject_id = excluded.subject_id, side = excluded.side""",
                [(s.serial, subject.id, s.side) for s in subject.sensors],
            )

    def subjects(self) -> list[Subject]:
        with self._reading("list subjects") as db:
            rows = db.execute("SELECT id, name, birth_date, time_zone FROM subjects "
                              "ORDER BY id").fetchall()
            sensors = db.execute("SELECT subject_id, serial, side FROM sensors "
                                 "ORDER BY subject_id, side, serial").fetchall()
        by_subject: dict[str, list[SensorAssignment]] = {}
        for subject_id, serial, side in sensors:
            by_subject.setdefault(subject_id, []).append(SensorAssignment(serial, as_side(side)))
        return [
            Subject(id_, name, None if birth is None else date.fromisoformat(birth), zone,
                    tuple(by_subject.get(id_, ())))
            for id_, name, birth, zone in rows
        ]

    def subject(self, subject_id: str) -> Subject | None:
        return next((s for s in self.subjects() if s.id == subject_id), None)

    # --- nights ------------------------------------------------------------------------------

    def upsert_night(self, subject_id: str, day: date, start: float, end: float, chunks: int,
                     now: float) -> NightRecord:
        with self._transaction(f"record the night of {day} (nothing changed)") as db:
            db.execute(
                """INSERT INTO nights (subject_id, date, start, end, status, chunks, data_changed)
                VALUES (?1, ?2, ?3, ?4, 'recording', ?5, ?6)
                ON CONFLICT (subject_id, date) DO UPDATE SET
                    data_changed = CASE WHEN (excluded.start, excluded.end, excluded.chunks)
                        IS NOT (start, end, chunks) THEN excluded.data_changed
                        ELSE data_changed END,
                    start = excluded.start, end = excluded.end, chunks = excluded.chunks""",
                (subject_id, day.isoformat(), float(start), float(end), int(chunks), float(now)),
            )
            row = db.execute(f"{_SELECT_NIGHTS} WHERE n.subject_id = ? AND n.date = ?",
                             (subject_id, day.isoformat())).fetchone()
        return _night(row)

    def night(self, night_id: int) -> NightRecord | None:
        with self._reading("read a night") as db:
            row = db.execute(f"{_SELECT_NIGHTS} WHERE n.id = ?", (int(night_id),)).fetchone()
        return None if row is None else _night(row)

    def nights(self, subject_id: str, *, first: date | None = None, last: date | None = None,
               limit: int | None = None, before: date | None = None) -> list[NightRecord]:
        where, args = ["n.subject_id = ?"], [subject_id]
        for op, day in ((">=", first), ("<=", last), ("<", before)):
            if day is not None:
                where.append(f"n.date {op} ?")
                args.append(day.isoformat())
        sql = f"{_SELECT_NIGHTS} WHERE {' AND '.join(where)} ORDER BY n.date DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._reading("list nights") as db:
            rows = db.execute(sql, args).fetchall()
        return [_night(row) for row in rows]

    def _update_night(self, night_id: int, action: str, sql: str,
                      args: tuple[Any, ...]) -> None:
        with self._transaction(action) as db:
            if db.execute(sql, (*args, int(night_id))).rowcount == 0:
                raise NotFound(f"no night {night_id}")

    def mark_ended(self, night_id: int) -> None:
        self._update_night(night_id, "mark the night ended",
                           "UPDATE nights SET ended = 1 WHERE id = ?", ())

    def set_status(self, night_id: int, status: NightStatus, failure: str | None = None) -> None:
        self._update_night(night_id, f"set the night's status to {status}",
                           # a failed re-analysis is not retried until asked again
                           "UPDATE nights SET status = ?1, failure = ?2, reanalyse = CASE "
                           "WHEN ?1 = 'failed' THEN 0 ELSE reanalyse END WHERE id = ?3",
                           (status, failure))

    def request_reanalysis(self, night_id: int) -> None:
        self._update_night(night_id, "ask for a re-analysis",
                           "UPDATE nights SET reanalyse = 1 WHERE id = ?", ())

    # --- reports -----------------------------------------------------------------------------

    def put_report(self, night_id: int, algorithm_version: str, report_json: str,
                   figures: Detail, flags: Sequence[str], now: float) -> None:
        with self._transaction("store the report (the previous one is kept)") as db:
            db.execute(
                """INSERT INTO reports VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (night_id) DO UPDATE
                SET algorithm_version = excluded.algorithm_version, report = excluded.report,
                figures = excluded.figures, flags = excluded.flags, created = excluded.created""",
                (int(night_id), algorithm_version, report_json, json.dumps(dict(figures)),
                 json.dumps(list(flags)), float(now)),
            )
            db.execute("UPDATE nights SET status = 'ready', failure = NULL, reanalyse = 0 "
                       "WHERE id = ?", (int(night_id),))

    def report(self, night_id: int) -> tuple[str, str] | None:
        with self._reading("read the report") as db:
            row = db.execute("SELECT algorithm_version, report FROM reports WHERE night_id = ?",
                             (int(night_id),)).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    # --- device events -----------------------------------------------------------------------

    def write_device_events(self, events: Sequence[DeviceEvent]) -> None:
        rows = [
            (e.subject, None if e.side is None else as_side(e.side), float(e.time), e.kind,
             json.dumps(dict(e.detail)))
            for e in events
        ]
        with self._transaction(f"write {len(rows)} events (none was stored)") as db:
            db.executemany(
                "INSERT INTO device_events (subject, side, time, kind, detail) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def device_events(self, subject: str, start: float, end: float) -> list[DeviceEvent]:
        with self._reading("read events") as db:
            rows = db.execute(
                "SELECT side, time, kind, detail FROM device_events "
                "WHERE subject = ? AND time >= ? AND time < ? ORDER BY time, id",
                (subject, start, end),
            ).fetchall()
        return [
            DeviceEvent(subject, None if side is None else as_side(side), time, kind,
                        json.loads(detail))
            for side, time, kind, detail in rows
        ]
