"""Live sensor status as server-sent events, and the device alerts derived from it.

The gateway appends status snapshots to the record store (`RecordStore.put_status`); each
stream reads them in id order. Event ids are `4 * snapshot id + k` (k = 0 the status, 1-3 its
alerts), so they only grow and a browser resumes with `Last-Event-ID`. Alerts are a pure
function of the snapshot sequence, with a confirm delay so that a brief drop does not alarm
(alert fatigue: `../shared/notes/surfaces.md`):
- `low_battery`: below `low_battery_pct` for `confirm_s`;
- `lost`: disconnected (or no packet for `confirm_s`) and nothing heard for `lost_after_s`;
- `off_ankle`: the sensor reports it is off the ankle for `confirm_s`.
Each alerts once per episode; a condition that clears and comes back alerts again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from api.context import Context, Settings
from limbwatch.report import iso_ms
from limbwatch.store.records import SensorStatus

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
        self._raised: set[tuple[str, AlertKind]] = set()

    def _condition(self, s: SensorStatus, kind: AlertKind) -> tuple[bool, float, float]:
        """(holds, since when, how long it must hold) for one alert kind."""
        cfg = self.settings
        if kind == "low_battery":
            low = s.battery_pct is not None and s.battery_pct < cfg.low_battery_pct
            return low, s.time, cfg.confirm_s
        if kind == "off_ankle":
            return s.on_ankle is False, s.time, cfg.confirm_s
        silent = s.last_packet is None or s.time - s.last_packet > cfg.confirm_s
        heard = s.time if s.last_packet is None else s.last_packet
        return (not s.connected) or silent, heard, cfg.lost_after_s

    def feed(self, snapshot_id: int, s: SensorStatus) -> list[LiveEvent]:
        out = [LiveEvent(4 * snapshot_id, "status", {
            "serial": s.serial, "subject_id": s.subject_id, "side": s.side,
            "time": iso_ms(s.time), "connected": s.connected, "battery_pct": s.battery_pct,
            "last_packet": _opt_time(s.last_packet), "on_ankle": s.on_ankle,
            "last_movement": _opt_time(s.last_movement),
        })]
        for k, kind in enumerate(ALERT_KINDS, start=1):
            key = (s.serial, kind)
            holds, began, delay = self._condition(s, kind)
            if not holds:
                self._since.pop(key, None)
                self._raised.discard(key)
                continue
            since = self._since.setdefault(key, began)
            if key not in self._raised and s.time - since >= delay:
                self._raised.add(key)
                out.append(LiveEvent(4 * snapshot_id + k, "alert", {
                    "alert": kind, "tier": "device", "serial": s.serial,
                    "subject_id": s.subject_id, "side": s.side, "since": iso_ms(since),
                    "time": iso_ms(s.time), "message": _MESSAGES[kind].format(
                        side=s.side, battery=s.battery_pct or 0.0, since=iso_ms(since)),
                }))
        return out


async def stream(ctx: Context, subjects: Sequence[str] | None, last_event_id: int | None,
                 once: bool) -> AsyncIterator[str]:
    """The event stream: with `last_event_id`, every event after it (as far back as
    `live_history_s`); else the snapshots of the last `live_history_s`; then new ones as the
    gateway stores them (every `live_poll_s`), until the client goes or, with `once`, at once."""
    cfg = ctx.settings
    tracker = AlertTracker(cfg)
    now = ctx.now()
    shown_from = now - cfg.live_history_s
    rows = await asyncio.to_thread(
        ctx.records.statuses_since, 0,
        since_time=shown_from - cfg.lost_after_s - cfg.confirm_s, subjects=subjects)
    after = 0
    while True:
        for snapshot_id, status in rows:
            after = snapshot_id
            for event in tracker.feed(snapshot_id, status):
                wanted = (event.id > last_event_id if last_event_id is not None
                          else status.time >= shown_from)
                if wanted:
                    yield event.sse()
        if once:
            return
        quiet = 0.0
        while True:
            await asyncio.sleep(cfg.live_poll_s)
            rows = await asyncio.to_thread(ctx.records.statuses_since, after,
                                           subjects=subjects)
            if rows:
                break
            quiet += cfg.live_poll_s
            if quiet >= PING_S:
                quiet = 0.0
                yield ": ping\n\n"
        last_event_id = None
        shown_from = -float("inf")
