"""`SqliteRecordStore`: the `RecordStore` in the store's SQLite file (one file, WAL).

All methods are single statements or one transaction; SQLite errors become `StoreUnavailable`
with a one-line message (`GuardedSqlite`). Safe to share between threads.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Hashable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeVar, cast

from limbwatch.errors import Conflict, NotFound
from limbwatch.events import EventKind, NightEvent
from limbwatch.recording import as_side
from limbwatch.store import schema
from limbwatch.store.records import (
    Detail,
    DeviceEvent,
    NightRecord,
    NightStatus,
    Note,
    NoteKind,
    SensorAssignment,
    SensorStatus,
    Subject,
    Token,
)
from limbwatch.store.samples import StoreUnavailable
from limbwatch.store.sqlite_base import GuardedSqlite, Synchronous

_NIGHT_COLUMNS = """n.id, n.subject_id, n.date, n.start, n.end, n.status, n.data_changed,
    n.ended, r.algorithm_version, n.failure, r.figures, r.flags, n.reanalyse, n.warnings"""
_SELECT_NIGHTS = f"SELECT {_NIGHT_COLUMNS} FROM nights n LEFT JOIN reports r ON r.night_id = n.id"


T = TypeVar("T")
_TOKEN_COLUMNS = "name, role, subject_id, digest, created, revoked"
_STATUS_COLUMNS = """id, serial, subject_id, side, time, connected, battery_pct, last_packet,
    on_ankle, last_movement"""


def _optional_bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _status(row: tuple[Any, ...]) -> tuple[int, SensorStatus]:
    id_, serial, subject_id, side, t, connected, battery, last_packet, on_ankle, moved = row
    return int(id_), SensorStatus(serial, subject_id, as_side(side), t, bool(connected), battery,
                                  last_packet, _optional_bool(on_ankle), moved)


def _night(row: tuple[Any, ...]) -> NightRecord:
    (id_, subject_id, day, start, end, status, changed, ended, version, failure, figures,
     flags, reanalyse, warnings) = row
    return NightRecord(
        id=int(id_), subject_id=subject_id, date=date.fromisoformat(day), start=start, end=end,
        status=status, data_changed=changed, ended=bool(ended), algorithm_version=version,
        failure=failure, figures=json.loads(figures) if figures else {},
        flags=tuple(json.loads(flags)) if flags else (), reanalyse=bool(reanalyse),
        warnings=tuple(json.loads(warnings)),
    )


class SqliteRecordStore(GuardedSqlite):
    """The records of a limbwatch store file (see `limbwatch.store.records`).

    The reads that every API request makes (a token and its shares, a night, a subject, a
    report) are remembered while the file is unchanged: SQLite's `PRAGMA data_version` changes
    when any other connection, in this process or another, commits, and this connection counts
    its own transactions; a remembered answer is given only while both are as they were. So a
    token revoked by `limbwatch token revoke` or by another server process is refused on the
    very next request, and a new report is served as soon as it is committed; one check costs
    about a quarter of a query."""

    label = "store"
    unavailable = StoreUnavailable
    MEMO_SIZE = 4096  # answers remembered at most; all are forgotten past it

    def __init__(self, path: Path | str, *, create: bool = True, timeout_s: float = 5.0,
                 synchronous: Synchronous = "NORMAL") -> None:
        self._open(path, application_id=schema.APPLICATION_ID,
                   schema_version=schema.SCHEMA_VERSION, schema=schema.TABLES, what=schema.WHAT,
                   upgrades=schema.UPGRADES,
                   create=create, timeout_s=timeout_s, synchronous=synchronous)
        self._memo: dict[Hashable, Any] = {}
        self._memo_version: tuple[int, int] | None = None

    def _version(self, db: sqlite3.Connection) -> tuple[int, int]:
        return int(db.execute("PRAGMA data_version").fetchone()[0]), self._writes

    def changes(self) -> Hashable:
        """(SQLite's data_version, this connection's transactions): both move on any commit to
        the file (samples included, where they share it)."""
        with self._reading("check for changes") as db:
            return self._version(db)

    def _remembered(self, action: str, key: Hashable,
                    read: Callable[[sqlite3.Connection], T]) -> T:
        """`read(db)`, or its answer for `key` from before if the file has not changed since."""
        with self._reading(action) as db:
            version = self._version(db)
            if version != self._memo_version:
                self._memo.clear()
                self._memo_version = version
            try:
                return cast(T, self._memo[key])
            except KeyError:
                pass
            found = read(db)
            if len(self._memo) >= self.MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = found
            return found

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
        def read(db: sqlite3.Connection) -> Subject | None:
            row = db.execute("SELECT id, name, birth_date, time_zone FROM subjects WHERE id = ?",
                             (subject_id,)).fetchone()
            if row is None:
                return None
            sensors = db.execute("SELECT serial, side FROM sensors WHERE subject_id = ? "
                                 "ORDER BY side, serial", (subject_id,)).fetchall()
            id_, name, birth, zone = row
            return Subject(id_, name, None if birth is None else date.fromisoformat(birth), zone,
                           tuple(SensorAssignment(serial, as_side(side))
                                 for serial, side in sensors))
        return self._remembered("read a subject", ("subject", subject_id), read)

    # --- nights ------------------------------------------------------------------------------

    def upsert_night(self, subject_id: str, day: date, start: float, end: float, chunks: int,
                     now: float) -> NightRecord:
        args = (subject_id, day.isoformat(), float(start), float(end), int(chunks), float(now))
        with self._transaction(f"record the night of {day} (nothing changed)") as db:
            # UPDATE first: an INSERT ... ON CONFLICT DO UPDATE would use up an AUTOINCREMENT id
            # on every call, and night ids are to be sequential
            updated = db.execute(
                """UPDATE nights SET
                    data_changed = CASE WHEN (?3, ?4, ?5) IS NOT (start, end, chunks) THEN ?6
                        ELSE data_changed END,
                    start = ?3, end = ?4, chunks = ?5
                WHERE subject_id = ?1 AND date = ?2""", args).rowcount
            if not updated:
                db.execute(
                    """INSERT INTO nights (subject_id, date, start, end, status, chunks,
                    data_changed) VALUES (?1, ?2, ?3, ?4, 'recording', ?5, ?6)""", args)
            row = db.execute(f"{_SELECT_NIGHTS} WHERE n.subject_id = ? AND n.date = ?",
                             (subject_id, day.isoformat())).fetchone()
        return _night(row)

    def night_chunks(self, subject_id: str) -> int:
        with self._reading("count the nights' chunks") as db:
            return int(db.execute("SELECT coalesce(sum(chunks), 0) FROM nights "
                                  "WHERE subject_id = ?", (subject_id,)).fetchone()[0])

    def night(self, night_id: int) -> NightRecord | None:
        def read(db: sqlite3.Connection) -> NightRecord | None:
            row = db.execute(f"{_SELECT_NIGHTS} WHERE n.id = ?", (int(night_id),)).fetchone()
            return None if row is None else _night(row)
        return self._remembered("read a night", ("night", int(night_id)), read)

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

    def add_warnings(self, night_id: int, warnings: Sequence[str]) -> None:
        with self._transaction("keep the night's warnings") as db:
            row = db.execute("SELECT warnings FROM nights WHERE id = ?", (int(night_id),))\
                .fetchone()
            if row is None:
                raise NotFound(f"no night {night_id}")
            kept = json.loads(row[0])
            kept += [w for w in warnings if w not in kept]
            db.execute("UPDATE nights SET warnings = ? WHERE id = ?",
                       (json.dumps(kept), int(night_id)))

    def request_reanalysis(self, night_id: int) -> None:
        self._update_night(night_id, "ask for a re-analysis",
                           "UPDATE nights SET reanalyse = 1 WHERE id = ?", ())

    # --- reports -----------------------------------------------------------------------------

    def put_report(self, night_id: int, algorithm_version: str, report_json: str,
                   figures: Detail, flags: Sequence[str], now: float,
                   events: Sequence[NightEvent] = ()) -> None:
        rows = [(int(night_id), e.kind, float(e.start), float(e.end), e.side,
                 json.dumps(dict(e.detail))) for e in events]
        with self._transaction("store the report (the previous one is kept)") as db:
            db.execute("DELETE FROM night_events WHERE night_id = ?", (int(night_id),))
            db.executemany("INSERT INTO night_events (night_id, kind, start, end, side, detail) "
                           "VALUES (?, ?, ?, ?, ?, ?)", rows)
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
        def read(db: sqlite3.Connection) -> tuple[str, str] | None:
            row = db.execute("SELECT algorithm_version, report FROM reports WHERE night_id = ?",
                             (int(night_id),)).fetchone()
            return None if row is None else (str(row[0]), str(row[1]))
        return self._remembered("read the report", ("report", int(night_id)), read)

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

    # --- night events ------------------------------------------------------------------------

    def night_events(self, night_id: int, *, kinds: Sequence[EventKind] | None = None,
                     start: float | None = None, end: float | None = None) -> list[NightEvent]:
        where, args = ["night_id = ?"], list[Any]([int(night_id)])
        if kinds is not None:
            where.append(f"kind IN ({', '.join('?' * len(kinds))})")
            args += list(kinds)
        if start is not None:
            where.append("end >= ?")
            args.append(float(start))
        if end is not None:
            where.append("start < ?")
            args.append(float(end))
        with self._reading("read the night's events") as db:
            rows = db.execute("SELECT kind, start, end, side, detail FROM night_events WHERE "
                              f"{' AND '.join(where)} ORDER BY start, id", args).fetchall()
        return [NightEvent(kind, a, b, side, json.loads(detail))
                for kind, a, b, side, detail in rows]

    # --- tokens and shares -------------------------------------------------------------------

    def put_token(self, token: Token) -> None:
        with self._transaction(f"add the token {token.name!r} (nothing changed)") as db:
            if token.subject_id is not None and db.execute(
                    "SELECT 1 FROM subjects WHERE id = ?", (token.subject_id,)).fetchone() is None:
                raise NotFound(f"no subject {token.subject_id!r} (see `limbwatch subject`)")
            if db.execute("SELECT 1 FROM tokens WHERE name = ?", (token.name,)).fetchone():
                raise Conflict(f"a token named {token.name!r} exists already; pick another name")
            db.execute(f"INSERT INTO tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                       (token.name, token.role, token.subject_id, token.digest,
                        float(token.created), token.revoked))

    def _tokens(self, where: str, args: tuple[Any, ...]) -> list[Token]:
        with self._reading("read tokens") as db:
            rows = db.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens {where} ORDER BY name",
                              args).fetchall()
        return [Token(*row) for row in rows]

    def token(self, name: str) -> Token | None:
        return next(iter(self._tokens("WHERE name = ?", (name,))), None)

    def token_by_digest(self, digest: str) -> Token | None:
        def read(db: sqlite3.Connection) -> Token | None:
            row = db.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE digest = ?",
                             (digest,)).fetchone()
            return None if row is None else Token(*row)
        return self._remembered("read tokens", ("token", digest), read)

    def tokens(self) -> list[Token]:
        return self._tokens("", ())

    def revoke_token(self, name: str, now: float) -> None:
        with self._transaction(f"revoke the token {name!r}") as db:
            if db.execute("UPDATE tokens SET revoked = coalesce(revoked, ?) WHERE name = ?",
                          (float(now), name)).rowcount == 0:
                raise NotFound(f"no token named {name!r} (see `limbwatch token list`)")
            db.execute("DELETE FROM shares WHERE token_name = ?", (name,))

    def put_share(self, subject_id: str, token_name: str) -> None:
        with self._transaction(f"share {subject_id!r} with {token_name!r}") as db:
            db.execute("INSERT OR IGNORE INTO shares VALUES (?, ?)", (subject_id, token_name))

    def delete_share(self, subject_id: str, token_name: str) -> None:
        with self._transaction(f"stop sharing {subject_id!r} with {token_name!r}") as db:
            if db.execute("DELETE FROM shares WHERE subject_id = ? AND token_name = ?",
                          (subject_id, token_name)).rowcount == 0:
                raise NotFound(f"{subject_id!r} is not shared with {token_name!r}")

    def shared_subjects(self, token_name: str) -> set[str]:
        def read(db: sqlite3.Connection) -> frozenset[str]:
            rows = db.execute("SELECT subject_id FROM shares WHERE token_name = ?",
                              (token_name,)).fetchall()
            return frozenset(row[0] for row in rows)
        return set(self._remembered("read shares", ("shares", token_name), read))

    # --- journal -----------------------------------------------------------------------------

    def add_note(self, subject_id: str, time: float, kind: NoteKind, text: str) -> Note:
        with self._transaction("add the note (nothing stored)") as db:
            cursor = db.execute("INSERT INTO journal (subject_id, time, kind, text) "
                                "VALUES (?, ?, ?, ?)", (subject_id, float(time), kind, text))
        return Note(int(cursor.lastrowid or 0), subject_id, float(time), kind, text)

    def notes(self, subject_id: str, start: float, end: float,
              limit: int | None = None) -> list[Note]:
        sql = ("SELECT id, subject_id, time, kind, text FROM journal WHERE subject_id = ? "
               "AND time >= ? AND time < ? ORDER BY time, id")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._reading("read the journal") as db:
            rows = db.execute(sql, (subject_id, float(start), float(end))).fetchall()
        return [Note(*row) for row in rows]

    # --- live status -------------------------------------------------------------------------

    def put_status(self, statuses: Sequence[SensorStatus]) -> int:
        rows = [(s.serial, s.subject_id, as_side(s.side), float(s.time), int(s.connected),
                 s.battery_pct, s.last_packet, None if s.on_ankle is None else int(s.on_ankle),
                 s.last_movement) for s in statuses]
        with self._transaction(f"store {len(rows)} status snapshots (none was stored)") as db:
            db.executemany(f"INSERT INTO sensor_status ({_STATUS_COLUMNS.split(', ', 1)[1]}) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            last = db.execute("SELECT max(id) FROM sensor_status").fetchone()[0]
        return int(last or 0)

    def statuses_since(self, after_id: int, *, since_time: float | None = None,
                       subjects: Sequence[str] | None = None
                       ) -> list[tuple[int, SensorStatus]]:
        where, args, table = ["id > ?"], list[Any]([int(after_id)]), "sensor_status"
        if since_time is not None:  # the planner would scan by id (no sort): 5x slower at 100k
            where.append("time >= ?")
            args.append(float(since_time))
            table += " INDEXED BY sensor_status_by_time"
        if subjects is not None:
            where.append(f"subject_id IN ({', '.join('?' * len(subjects))})")
            args += list(subjects)
        with self._reading("read live status") as db:
            rows = db.execute(f"SELECT {_STATUS_COLUMNS} FROM {table} "
                              f"WHERE {' AND '.join(where)} ORDER BY id", args).fetchall()
        return [_status(row) for row in rows]

    def latest_statuses(self, subjects: Sequence[str] | None = None
                        ) -> list[tuple[int, SensorStatus]]:
        # the serials by a skip-scan of sensor_status_by_serial, then each one's max(id) from
        # it: a seek per serial, however many snapshots there are
        where, args = "", list[Any]()
        if subjects is not None:
            where = f"AND subject_id IN ({', '.join('?' * len(subjects))})"
            args = list(subjects)
        with self._reading("read live status") as db:
            rows = db.execute(
                f"""WITH RECURSIVE serials (serial) AS (
                       SELECT min(serial) FROM sensor_status
                       UNION ALL
                       SELECT (SELECT min(serial) FROM sensor_status s
                               WHERE s.serial > serials.serial)
                       FROM serials WHERE serials.serial IS NOT NULL)
                   SELECT {_STATUS_COLUMNS} FROM sensor_status WHERE id IN (
                       SELECT (SELECT max(id) FROM sensor_status s
                               WHERE s.serial = serials.serial)
                       FROM serials WHERE serials.serial IS NOT NULL) {where}
                   ORDER BY id""", args).fetchall()
        return [_status(row) for row in rows]

    def prune_statuses(self, before: float) -> int:
        with self._transaction("drop old status snapshots (none was dropped)") as db:
            return int(db.execute(
                "DELETE FROM sensor_status WHERE time < ? AND id NOT IN "
                "(SELECT max(id) FROM sensor_status GROUP BY serial)",
                (float(before),)).rowcount)
