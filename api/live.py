"""Live sensor status as server-sent events, and the device alerts derived from it.

The gateway appends status snapshots to the record store (`RecordStore.put_status`); each
stream reads them in id order. Event ids are `4 * snapshot id + k` (k = 0 the status, 1-3 its
alerts), so they only grow and a browser resumes with `Last-Event-ID`. Alerts are a pure
function of the snapshot sequence (and, for a sensor's newest snapshot when a stream starts,
of the time since it), with a confirm delay so that a brief drop does not alarm (alert
fatigue: `../shared/notes/surfaces.md`):
- `low_battery`: below `low_battery_pct` for `confirm_s`;
- `lost`: disconnected (or no packet for `confirm_s`) and nothing heard for `lost_after_s`; a
  sensor whose newest snapshot is old (the gateway went away too) counts as not heard since
  when a stream starts; for a stream already open, the analysis service adds snapshots of a
  silent gateway's sensors saying they are not connected (`worker.live_status`);
- `off_ankle`: the sensor reports it is off the ankle for `confirm_s`.
Each alerts once per episode; a condition that clears and comes back alerts again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from api.auth import Principal, principal_now
from api.context import Context, Settings
from limbwatch.report import iso_ms
from limbwatch.store.records import RecordStore, SensorStatus

AlertKind = Literal["low_battery", "lost", "off_ankle"]
ALERT_KINDS: tuple[AlertKind, ...] = ("low_battery", "lost", "off_ankle")
PING_S = 15.0
_MESSAGES = {
    "low_battery": "The {side} sensor's battery is low ({battery:.0f} %): charge it before "
                   "tonight.",
    "lost": "The {side} sensor has not been heard from since {since}: check it is near the "
            "gateway and switched on.",
    "off_ankle": "The {side} sensor seems to be off the ankle since {since}: check the strap.",
}


@dataclass(frozen=True)
class LiveEvent:
    id: int
    event: Literal["status", "alert"]
    data: dict[str, Any]

    def sse(self) -> str:
        return f"id: {self.id}\nevent: {self.event}\ndata: {json.dumps(self.data)}\n\n"


def _opt_time(t: float | None) -> str | None:
    return None if t is None else iso_ms(t)


class AlertTracker:
    """Feeds on snapshots in id order; gives each snapshot's status event and new alerts."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._since: dict[tuple[str, AlertKind], float] = {}
        self._raised: dict[tuple[str, AlertKind], int] = {}  # open alerts: their event ids

    def _condition(self, s: SensorStatus, kind: AlertKind, at: float
                   ) -> tuple[bool, float, float, float]:
        """(holds, since when, how long it must hold, as of when) for one alert kind: the
        sensor's readings as of the snapshot, its silence as of `at` (>= the snapshot's time,
        with no newer snapshot of it)."""
        cfg = self.settings
        if kind == "low_battery":
            low = s.battery_pct is not None and s.battery_pct < cfg.low_battery_pct
            return low, s.time, cfg.confirm_s, s.time
        if kind == "off_ankle":
            return s.on_ankle is False, s.time, cfg.confirm_s, s.time
        silent = s.last_packet is None or at - s.last_packet > cfg.confirm_s
        heard = s.time if s.last_packet is None else s.last_packet
        return (not s.connected) or silent, heard, cfg.lost_after_s, at

    def feed(self, snapshot_id: int, s: SensorStatus, heard_nothing_until: float | None = None
             ) -> list[LiveEvent]:
        """The snapshot's status event and the alerts it raises. `heard_nothing_until`, for a
        sensor's newest snapshot: the time up to which nothing newer of it came (a stream's
        start), so that its silence since counts towards `lost`."""
        at = s.time if heard_nothing_until is None else max(s.time, heard_nothing_until)
        out = [LiveEvent(4 * snapshot_id, "status", {
            "serial": s.serial, "subject_id": s.subject_id, "side": s.side,
            "time": iso_ms(s.time), "connected": s.connected, "battery_pct": s.battery_pct,
            "last_packet": _opt_time(s.last_packet), "on_ankle": s.on_ankle,
            "last_movement": _opt_time(s.last_movement),
        })]
        for k, kind in enumerate(ALERT_KINDS, start=1):
            key = (s.serial, kind)
            holds, began, delay, judged = self._condition(s, kind, at)
            if not holds:
                self._since.pop(key, None)
                self._raised.pop(key, None)
                continue
            since = self._since.setdefault(key, began)
            if key not in self._raised and judged - since >= delay:
                self._raised[key] = 4 * snapshot_id + k
                out.append(LiveEvent(4 * snapshot_id + k, "alert", {
                    "alert": kind, "tier": "device", "serial": s.serial,
                    "subject_id": s.subject_id, "side": s.side, "since": iso_ms(since),
                    "time": iso_ms(judged), "message": _MESSAGES[kind].format(
                        side=s.side, battery=s.battery_pct or 0.0, since=iso_ms(since)),
                }))
        return out

    def open_alerts(self) -> set[int]:
        """The event ids of the alerts whose condition still holds."""
        return set(self._raised.values())


def opening_snapshots(records: RecordStore, since_time: float, subjects: Sequence[str] | None
                      ) -> tuple[list[tuple[int, SensorStatus]], set[int]]:
    """What a stream starts from, by id: the snapshots from `since_time` on and each
    sensor's newest however old (one with none since); and the ids of each one's newest."""
    recent = records.statuses_since(0, since_time=since_time, subjects=subjects)
    serials = {s.serial for _, s in recent}
    rows = sorted(recent + [(i, s) for i, s in records.latest_statuses(subjects)
                            if s.serial not in serials], key=lambda row: row[0])
    newest = {s.serial: i for i, s in rows}
    return rows, set(newest.values())


def visible_subjects(ctx: Context, who: Principal) -> list[str] | None:
    """The subjects whose sensors `who` may follow (None: all, for an admin)."""
    return None if who.role == "admin" else [
        s.id for s in ctx.records.subjects() if who.may_read(s.id)]


async def stream(ctx: Context, who: Principal, last_event_id: int | None,
                 once: bool) -> AsyncIterator[str]:
    """The event stream of the subjects `who` may see: with `last_event_id`, every event
    after it (as far back as `live_history_s`); else each sensor's newest snapshot however old,
    the snapshots of the last `live_history_s` and the alerts still open; then new ones as the
    gateway stores them (every `live_poll_s`), until the client goes or, with `once`, at once.
    What `who` may see is looked up again at every poll: a share taken back stops its subject's
    events, and a revoked token ends the stream (the browser's reconnection then gets 401)."""
    cfg = ctx.settings
    subjects = await asyncio.to_thread(visible_subjects, ctx, who)
    tracker = AlertTracker(cfg)
    now = ctx.now()
    shown_from = now - cfg.live_history_s
    rows, newest = await asyncio.to_thread(
        opening_snapshots, ctx.records, shown_from - cfg.lost_after_s - cfg.confirm_s, subjects)
    fed = [(event, snapshot_id in newest or status.time >= shown_from)
           for snapshot_id, status in rows
           for event in tracker.feed(snapshot_id, status,
                                     now if snapshot_id in newest else None)]
    still_open = tracker.open_alerts()
    for event, shown in fed:
        if (event.id > last_event_id if last_event_id is not None
                else shown or event.id in still_open):
            yield event.sse()
    if once:
        return
    after = rows[-1][0] if rows else 0
    quiet = 0.0
    while True:
        await asyncio.sleep(cfg.live_poll_s)
        now_who = await asyncio.to_thread(principal_now, ctx, who.name)
        if now_who is None:
            return
        subjects = await asyncio.to_thread(visible_subjects, ctx, now_who)
        rows = await asyncio.to_thread(ctx.records.statuses_since, after, subjects=subjects)
        for snapshot_id, status in rows:
            after = snapshot_id
            for event in tracker.feed(snapshot_id, status):
                yield event.sse()
        quiet = 0.0 if rows else quiet + cfg.live_poll_s
        if quiet >= PING_S:
            quiet = 0.0
            yield ": ping\n\n"
