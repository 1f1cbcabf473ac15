"""The record store interface: everything but raw samples.

Subjects (with birth date and IANA time zone) and their sensors, nights with integer ids, reports
with the algorithm version that made them, device events from the gateway, and (built on by the
API) journal notes, tokens, shares and live-status snapshots. SQLite in every deployment
(`limbwatch.store.sqlite_records.SqliteRecordStore`); nothing here is SQLite-specific, so a
server database could stand in behind the same methods.

A night is keyed by (subject, local evening date): it runs from noon local time on that date to
noon the next day (the convention of OSCAR and Luna), so its id survives data that arrives late
(a morning backfill) or a night split by a long gap.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal, Protocol, get_args
from zoneinfo import ZoneInfo

from limbwatch.events import EventKind, NightEvent
from limbwatch.recording import Side

NightStatus = Literal["recording", "waiting", "analysing", "ready", "failed"]
NIGHT_STATUSES: tuple[NightStatus, ...] = get_args(NightStatus)
NIGHT_SPLIT_HOUR = 12  # local time at which one night ends and the next begins (OSCAR, Luna)

Detail = Mapping[str, float | int | str | bool | None]

Role = Literal["caregiver", "clinician", "admin", "gateway"]
ROLES: tuple[Role, ...] = get_args(Role)
NoteKind = Literal["feeding", "fever", "medication", "supplement", "shaking_seen",
                   "stopped_when_held", "woke", "lights_out", "other"]
NOTE_KINDS: tuple[NoteKind, ...] = get_args(NoteKind)


@dataclass(frozen=True, slots=True)
class SensorAssignment:
    serial: str
    side: Side


@dataclass(frozen=True, slots=True)
class Subject:
    id: str  # a short slug ("child-1"), used in URLs and by the gateway configuration
    name: str
    birth_date: date | None
    time_zone: str  # IANA name, e.g. "Europe/Berlin"
    sensors: tuple[SensorAssignment, ...] = ()

    def age_months(self, at: float) -> float | None:
        """Age in months (30.44-day months) at Unix time `at`, None without a birth date."""
        if self.birth_date is None:
            return None
        born = datetime.combine(self.birth_date, time(0), ZoneInfo(self.time_zone)).timestamp()
        return max(0.0, (at - born) / (30.4375 * 86400))


@dataclass(frozen=True, slots=True)
class NightRecord:
    id: int
    subject_id: str
    date: date  # the local evening date
    start: float  # Unix s of the first sample of the night (any leg)
    end: float  # Unix s of the last
    status: NightStatus
    data_changed: float  # Unix s (store clock) when the night's data last grew
    ended: bool  # the night is over: quiet long enough, synced, or a caregiver said so
    algorithm_version: str | None  # of the stored report, None before the first
    failure: str | None  # why the last analysis failed
    figures: Detail  # the trend row's figures of the stored report (empty before)
    flags: tuple[str, ...]  # flag codes of the stored report
    reanalyse: bool = False  # a re-analysis was asked for
    warnings: tuple[str, ...] = ()  # plausibility warnings of imported data, for its report


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """Something that happened to a sensor or the gateway: a gap, a drop, a bad packet..."""

    subject: str
    side: Side | None
    time: float  # Unix s
    kind: str  # e.g. "gap", "disconnected", "connected", "bad_packet", "backfill"
    detail: Detail


@dataclass(frozen=True, slots=True)
class Token:
    """An API token: only the SHA-256 (hex) of the secret is stored, never the secret."""

    name: str  # unique, what a caregiver shares a subject with
    role: Role
    subject_id: str | None  # the caregiver's child; None for the other roles
    digest: str  # hex SHA-256 of the token
    created: float  # Unix s
    revoked: float | None  # Unix s, None while valid


@dataclass(frozen=True, slots=True)
class Note:
    """A caregiver's journal note."""

    id: int
    subject_id: str
    time: float  # Unix s
    kind: NoteKind
    text: str


@dataclass(frozen=True, slots=True)
class SensorStatus:
    """What the gateway last knew of one sensor (one live-status snapshot)."""

    serial: str
    subject_id: str
    side: Side
    time: float  # Unix s of the snapshot
    connected: bool
    battery_pct: float | None
    last_packet: float | None  # Unix s of the last packet received
    on_ankle: bool | None  # None: not known yet
    last_movement: float | None  # Unix s


def night_window(day: date, time_zone: str) -> tuple[float, float]:
    """Unix s [start, end) of the night of local evening date `day`: noon to noon, local."""
    zone = ZoneInfo(time_zone)
    noon = time(NIGHT_SPLIT_HOUR)
    start = datetime.combine(day, noon, zone)
    end = datetime.combine(day + timedelta(days=1), noon, zone)
    return start.timestamp(), end.timestamp()


def night_date(t: float, time_zone: str) -> date:
    """The local evening date of the night that Unix time `t` belongs to."""
    local = datetime.fromtimestamp(t, ZoneInfo(time_zone))
    return (local - timedelta(hours=NIGHT_SPLIT_HOUR)).date()


class GatewayRecords(Protocol):
    """What a gateway needs of a record store: its subjects' sensors, device events and live
    status (a local store, or a central server's: `limbwatch.store.remote`)."""

    def put_subject(self, subject: Subject) -> None:
        """Create or update a subject and replace its sensor assignments."""

    def subject(self, subject_id: str) -> Subject | None: ...

    def write_device_events(self, events: Sequence[DeviceEvent]) -> None:
        """Append events, all or none."""

    def put_status(self, statuses: Sequence[SensorStatus]) -> int:
        """Append snapshots (all or none); the id of the last one (ids only ever grow)."""

    def close(self) -> None: ...


class RecordStore(GatewayRecords, Protocol):
    def changes(self) -> Hashable:
        """A value equal to the last one only if no record changed in between, through any
        connection or process: what lets a reader keep an answer made from records (a store
        that cannot tell may return a new object each time)."""

    # subjects
    def subjects(self) -> list[Subject]: ...

    # nights
    def upsert_night(self, subject_id: str, day: date, start: float, end: float, chunks: int,
                     now: float) -> NightRecord:
        """The night of (subject, day), created if new, with its data's span and chunk count
        (data_changed = now when either changed). The id never changes."""

    def night(self, night_id: int) -> NightRecord | None: ...

    def nights(self, subject_id: str, *, first: date | None = None, last: date | None = None,
               limit: int | None = None, before: date | None = None) -> list[NightRecord]:
        """A subject's nights with first <= date <= last (and date < before), newest first."""

    def night_chunks(self, subject_id: str) -> int:
        """How many chunks the subject's nights held when each was last refreshed."""

    def mark_ended(self, night_id: int) -> None:
        """The night is over: analyse it once its data is in."""

    def set_status(self, night_id: int, status: NightStatus, failure: str | None = None) -> None:
        ...

    def request_reanalysis(self, night_id: int) -> None: ...

    def add_warnings(self, night_id: int, warnings: Sequence[str]) -> None:
        """Keep plausibility warnings with the night (each once); its reports carry them."""

    # reports
    def put_report(self, night_id: int, algorithm_version: str, report_json: str,
                   figures: Detail, flags: Sequence[str], now: float,
                   events: Sequence[NightEvent] = ()) -> None:
        """Store (or replace, in one transaction) the night's report and its events; the night
        becomes ready."""

    def report(self, night_id: int) -> tuple[str, str] | None:
        """(algorithm_version, report JSON) of the stored report, None before the first."""

    # device events
    def device_events(self, subject: str, start: float, end: float) -> list[DeviceEvent]:
        """The subject's events with start <= time < end, in time (then write) order."""

    # night events (of the stored report)
    def night_events(self, night_id: int, *, kinds: Sequence[EventKind] | None = None,
                     start: float | None = None, end: float | None = None) -> list[NightEvent]:
        """The night's events of `kinds` (default all) overlapping [start, end), by start."""

    # tokens and shares
    def put_token(self, token: Token) -> None:
        """Add a token; Conflict if the name is taken, NotFound for a caregiver's missing
        subject."""

    def token(self, name: str) -> Token | None: ...

    def token_by_digest(self, digest: str) -> Token | None: ...

    def tokens(self) -> list[Token]: ...

    def revoke_token(self, name: str, now: float) -> None:
        """Revoke a token (NotFound if there is none of that name); its shares go too."""

    def put_share(self, subject_id: str, token_name: str) -> None:
        """Let the clinician token `token_name` read the subject, or the gateway token write
        it (again: no change)."""

    def delete_share(self, subject_id: str, token_name: str) -> None:
        """NotFound if the subject was not shared with that token."""

    def shared_subjects(self, token_name: str) -> set[str]: ...

    # journal
    def add_note(self, subject_id: str, time: float, kind: NoteKind, text: str) -> Note: ...

    def notes(self, subject_id: str, start: float, end: float,
              limit: int | None = None) -> list[Note]:
        """The subject's notes with start <= time < end, oldest first."""

    # live status
    def statuses_since(self, after_id: int, *, since_time: float | None = None,
                       subjects: Sequence[str] | None = None
                       ) -> list[tuple[int, SensorStatus]]:
        """(id, snapshot) with id > after_id (and time >= since_time), of `subjects` (default
        all), by id."""

    def latest_statuses(self, subjects: Sequence[str] | None = None
                        ) -> list[tuple[int, SensorStatus]]:
        """(id, snapshot) of each serial's newest snapshot, however old, where that is of
        `subjects` (default all), by id."""

    def prune_statuses(self, before: float) -> int:
        """Drop the snapshots with time < `before` but each serial's newest; how many."""

