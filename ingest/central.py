"""The BLE central: finds the configured sensors, keeps them connected all night, and hands every
packet, once and on UTC, to the durable spool (`ingest.spool`), from which `drain` fills the store.

Per sensor (`SensorLink`), a loop: scan for the sensor's name and service, connect through
bleak-retry-connector, check its serial, subscribe, sync clocks, start streaming, then until the
link drops: decode and validate every notification (bad ones are counted, logged and dropped),
drop duplicates by sequence number, turn device ticks into UTC (`ingest.clock`), and ask the
sensor's flash for every packet that did not arrive (gaps by sequence number, and all that was
taken while disconnected). A gap the flash can no longer fill is recorded as a gap event. After a
drop: back off and start again. Nothing here keeps more than a few seconds of data in memory.

No fault ends the gateway. Whatever one sensor's link raises (BLE, the adapter or the radio
gone, the store or the spool down) is logged, the link backs off (1 s doubling to 15 s) and tries
again, and the other sensors carry on; connecting and losing a sensor are device events
("connected", "disconnected", then "reconnected" with the gap). Every request to a sensor is
bounded: no reply within `REPLY_TIMEOUT_S` of real time (for a backfill: no packet either), or the
link dropping under it, fails it at once, and the link starts again; scanning and connecting
are bounded too. A link that goes quiet for `SILENCE_S` is probed with a status read. When
requests go unanswered (or Bumble errs out of step), the adapter is reset if the backend can
(`Backend.reset`: a controller that stalled may answer out of turn ever after). Nothing blocks
the event loop: packets go to the spool through `ingest.writer` (bounded; what does not fit is
fetched again from the sensor's flash), store and spool reads run in worker threads and back
off while they fail.

Which packets are already safe is learnt from the store and the spool at every connection, so a
killed and restarted ingester asks for exactly what it is missing. Clock syncs are kept in a small
state file beside the spool so packets backfilled after a restart get the same times, and every
refit goes to the store as a clock model (`limbwatch.clockmodel`) beside the chunks' raw ticks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakError
from bleak_retry_connector import establish_connection

from ingest.aio import first_of
from ingest.clock import Arrival, DeviceClock, Sync
from ingest.spool import PendingModels, Spool, drain
from ingest.writer import MAX_QUEUED, SpoolWriter
from limbwatch import wire
from limbwatch.clockmodel import ClockModel, ClockSegment
from limbwatch.errors import LimbwatchError, Unavailable
from limbwatch.recording import Side
from limbwatch.simclock import SimClock
from limbwatch.store.records import DeviceEvent, GatewayRecords
from limbwatch.store.records import SensorStatus as RecordStatus
from limbwatch.store.samples import Chunk, ChunkSink

log = logging.getLogger(__name__)

REPLY_TIMEOUT_S = 5.0  # real seconds without a reply (or, in a backfill, a packet): fail
SILENCE_S = 5.0  # real seconds without a notification before the link is probed
STOPPED_S = 30.0  # s (gateway clock) without a new packet: the sensor has stopped sampling
DISCONNECT_TIMEOUT_S = 2.0  # real seconds for a clean disconnect before giving up on it
BACKFILL_MAX_PACKETS = 4000  # per request, so a long outage is fetched in pieces
REORDER_GRACE_PACKETS = 8  # a missing packet is asked for once this many later ones arrived,
REORDER_GRACE_S = 2.0  # or after this many real seconds (the night's last packets)
FLUSH_PACKETS = 64  # packets buffered before they go to the spool writer
SCAN_TIMEOUT_S = 10.0  # real seconds per scan attempt
CONNECT_TIMEOUT_S = 45.0  # real seconds for bleak-retry-connector's attempts (3 x 10 s + backoff)
RESET_GAP_S = 10.0  # real seconds: one adapter reset serves every link that found it silent
SYNCS_AT_CONNECT = 8  # a burst of clock syncs before streaming: the quickest weigh most
# A link's backoff between attempts, real seconds: short enough that a sensor back in range is
# streaming again within about half a minute (each attempt scans for up to SCAN_TIMEOUT_S).
RETRY_MIN_S, RETRY_MAX_S = 1.0, 15.0
STORE_RETRY_MAX_S = 30.0  # backoff cap of the store reads at connect
MAX_UNSYNCED = 2000  # packets held for a clock sync; more wait in the sensor's flash
STATUS_EVERY_S = 2.0  # real seconds between live-status snapshots to the record store
MOVING_G = 0.05  # a packet whose samples swing more than this (g, any axis) shows movement: far
# above the sensor's noise (about 2-3 mg) and breathing (1.5-3 mg), below a leg movement's
MAX_EVENTS_HELD = 10_000  # device events held while the store is down; the oldest go first
STOP_GRACE_S = 0.5  # real seconds the links get to stop by themselves before being cancelled
CANCEL_S = 1.0  # real seconds of repeated cancels (Bumble can swallow one) before giving up
FINAL_PUT_S = 1.5  # real seconds to put what is still queued for the spool at the end

_T = TypeVar("_T")


class LinkLost(BleakError):
    """The link to a sensor dropped under a request."""


class NoAnswer(LinkLost):
    """A request to a sensor (or the adapter) got no answer in time."""


@dataclass(frozen=True, slots=True)
class SensorTarget:
    """A sensor to collect: who wears it, on which leg, and how to know it."""

    subject: str
    side: Side
    name: str  # advertised local name
    serial: str  # Device Information serial number, checked after connecting


@dataclass(slots=True)
class SensorStatus:
    """What the API shows about one sensor."""

    subject: str
    side: Side
    serial: str
    connected: bool = False
    battery_pct: int | None = None
    last_packet_time: float | None = None  # UTC of the newest sample received
    last_movement_time: float | None = None  # UTC of the newest packet with a swing > MOVING_G
    packets: int = 0
    duplicates: int = 0
    bad_packets: int = 0
    backfilled: int = 0
    gaps_open: int = 0  # packets missing, still being asked for
    gaps_lost: int = 0  # packets the sensor no longer had
    connects: int = 0
    drift_ppm: float = 0.0
    synced: bool = False  # the sensor stopped sampling and every packet it took is stored (the
    # morning sync is complete); False again when a newer packet comes


@dataclass(frozen=True, slots=True)
class Backend:
    """bleak backend classes; None means bleak's platform backend (BlueZ on Linux). `reset`,
    if given, drops an adapter that stopped answering (BlueZ recovers its own)."""

    scanner: type[BaseBleakScanner] | None = None
    client: type[BaseBleakClient] | None = None
    reset: Callable[[], Awaitable[None]] | None = None


KEEP_SESSIONS = 2  # sensor sessions whose syncs the gateway keeps: the current one, and the
# one before, whose last chunks may still wait in the spool for their clock model


class ClockState:
    """Clock syncs and packet bounds per (device, session), kept in a JSON file replaced
    atomically: a restarted gateway fits the same model (without the packet bounds the rate of
    the live packets is lost, and the model after a restart is that of the syncs alone); and
    the newest packet of a session whose morning sync was complete, so that a restarted gateway
    does not sync that collected night's clock again (see `SensorLink._sync`).

    `snapshot` runs on the event loop (where the clocks change), `write` in a worker thread; a
    write never replaces a newer snapshot already written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, dict[str, Any]] = {
            key: value if isinstance(value, dict) else {"syncs": value}  # a file of syncs only
            for key, value in (json.loads(path.read_text()) if path.exists() else {}).items()}
        self._lock = threading.Lock()
        self._version = self._written = 0

    def load(self, device: str, session: int) -> DeviceClock:
        kept = self._data.get(f"{device}/{session}", {})
        return DeviceClock.restore(
            [(int(r[0]), Sync(int(r[1]), r[2], r[3])) for r in kept.get("syncs", [])],
            [(int(r[0]), Arrival(int(r[1]), int(r[2]), r[3], bool(r[4])))
             for r in kept.get("arrivals", [])])

    def synced(self, device: str, session: int) -> int | None:
        """The session's newest packet when its morning sync was complete, if it was (and no
        sync came after)."""
        newest = self._data.get(f"{device}/{session}", {}).get("synced")
        return None if newest is None else int(newest)

    def mark_synced(self, device: str, session: int, newest: int) -> tuple[int, str]:
        """Note that the session's morning sync is complete up to `newest`; (version, file
        text) for `write`."""
        self._data.setdefault(f"{device}/{session}", {})["synced"] = newest
        return self._next()

    def sessions(self) -> list[tuple[str, int]]:
        """The (device, session) pairs with syncs kept here."""
        return [(key.rsplit("/", 1)[0], int(key.rsplit("/", 1)[1])) for key in self._data]

    def snapshot(self, device: str, session: int, clock: DeviceClock) -> tuple[int, str]:
        """Take in `clock`'s syncs and packet bounds, keeping the KEEP_SESSIONS sessions of the
        device synced last (the file would otherwise grow by every night's session); (version,
        file text) for `write`."""
        key = f"{device}/{session}"
        self._data.pop(key, None)  # re-inserted last: the order is that of the latest sync
        self._data[key] = {
            "syncs": [[seq, s.ticks, s.sent, s.received] for seq, s in clock.syncs()],
            "arrivals": [[seq, a.seq, a.ticks, a.arrival, int(a.prompt)]
                         for seq, a in clock.arrivals()]}
        kept = [k for k in self._data if k.rsplit("/", 1)[0] == device]
        for old in kept[:-KEEP_SESSIONS]:
            del self._data[old]
        return self._next()

    def _next(self) -> tuple[int, str]:
        """A new version of the file's text, for `write`."""
        self._version += 1
        return self._version, json.dumps(self._data)

    def write(self, version: int, text: str) -> None:
        """Replace the file with a snapshot unless a newer one was written; OSError."""
        with self._lock:
            if version <= self._written:
                return
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, self.path)
            self._written = version


@dataclass(slots=True)
class _Session:
    """What is known about one sensor session during a connection."""

    device: str
    session: int
    rate_hz: int
    counts_per_g: int
    clock: DeviceClock
    model: ClockModel | None  # `clock`'s fit as of its latest sync, as written to the store
    have: set[int] = field(default_factory=set)  # seqs safe in the spool or store
    missing: dict[int, tuple[int, float]] = field(default_factory=dict)  # seq -> (`live`,
    # host monotonic time) when it was found missing
    live: int = 0  # live packets received in this session
    highest: int = -1
    unsynced: list[wire.Packet] = field(default_factory=list)


class SensorLink:
    """Keeps one sensor collected all night (see module docstring)."""

    def __init__(self, target: SensorTarget, *, backend: Backend, clock: SimClock, spool: Spool,
                 writer: SpoolWriter, store: ChunkSink, state: ClockState,
                 models: PendingModels, sync_interval_s: float = 300.0,
                 events: Callable[[DeviceEvent], None] | None = None,
                 reset_adapter: Callable[[], Awaitable[None]] | None = None) -> None:
        self.target = target
        self.backend = backend
        self._reset_adapter = reset_adapter
        self.clock = clock
        self.spool = spool
        self.writer = writer
        self.store = store
        self.state = state
        self.models = models
        self.sync_interval_s = sync_interval_s
        self.status = SensorStatus(target.subject, target.side, target.serial)
        self._emit = events or (lambda e: None)
        self._session: _Session | None = None
        self._buffer: list[Chunk] = []
        self._forgotten: set[int] = set()  # seqs received during this backfill but forgotten
        # for want of room in the spool writer: not lost, fetched again
        # op -> the pending request's reply and the sim UTC when it arrived
        self._replies: dict[wire.Op, asyncio.Future[tuple[wire.Reply, float]]] = {}
        self._sync_wanted = asyncio.Event()
        self._sync_id = 0  # id of the latest TIME_SYNC request: a late reply to another is ignored
        self._heard = 0  # notifications received (progress of a backfill)
        self._heard_at = 0.0  # host monotonic time of the last sign of life from the sensor
        self._lost_at: float | None = None  # sim UTC when the link was lost (None: never up)
        # the sensor's newest packet at a status read of this connection, and since when (sim s)
        self._newest_seen: tuple[int | None, float] | None = None
        self._synced: tuple[int, int | None] | None = None  # (session, newest) said synced

    async def run(self, stop: asyncio.Event) -> None:
        """Collect until `stop` is set; after any failure back off (1 s doubling to 15 s) and
        try again. Raises nothing (a failure of one link must not stop the others)."""
        backoff = RETRY_MIN_S
        while not stop.is_set():
            reason, silent = "stopped", False
            try:
                device = await self._bounded(self._find(), "the scan", None,
                                             idle_s=SCAN_TIMEOUT_S + REPLY_TIMEOUT_S)
                if device is not None:
                    await self._connected(device, stop)
            except (BleakError, OSError, EOFError, LimbwatchError, wire.WireError) as exc:
                reason = _describe(exc)  # OSError includes TimeoutError
                silent = isinstance(exc, NoAnswer)
                log.warning("%s: %s", self.target.name, reason, extra=self._about)
            except Exception as exc:  # a bug, or Bumble out of step: logged, and retried
                reason, silent = f"unexpected {type(exc).__name__}: {exc}", True
                log.exception("%s: unexpected error; retrying", self.target.name, extra=self._about)
            finally:
                self._flush()
                if self.status.connected:
                    self.status.connected = False
                    self._lost_at = self.clock.now()
                    self._event("disconnected", {"reason": reason})
                    backoff = RETRY_MIN_S
            if silent and self._reset_adapter is not None and not stop.is_set():
                await self._reset_adapter()
            if not stop.is_set():
                await first_of(stop, timeout=backoff)
                backoff = min(backoff * 2, RETRY_MAX_S)

    async def _find(self) -> BLEDevice | None:
        def match(device: BLEDevice, adv: AdvertisementData) -> bool:
            return adv.local_name == self.target.name

        kwargs: dict[str, Any] = {"service_uuids": [wire.SERVICE_UUID]}
        if self.backend.scanner is not None:
            kwargs["backend"] = self.backend.scanner
        return await BleakScanner.find_device_by_filter(match, timeout=SCAN_TIMEOUT_S, **kwargs)

    async def _connected(self, device: BLEDevice, stop: asyncio.Event) -> None:
        dropped = asyncio.Event()
        kwargs: dict[str, Any] = {}
        if self.backend.client is not None:
            kwargs["backend"] = self.backend.client
        client = await self._bounded(establish_connection(
            BleakClient, device, self.target.name,
            disconnected_callback=lambda _c: dropped.set(), max_attempts=3, **kwargs,
        ), "connecting", None, idle_s=CONNECT_TIMEOUT_S)
        self._replies = {}
        self._heard_at = time.monotonic()
        try:
            serial = bytes(await self._bounded(client.read_gatt_char(wire.SERIAL_UUID),
                                               "the serial read", dropped)).decode()
            if serial != self.target.serial:
                log.warning("%s: serial %s is not %s; ignored", self.target.name, serial,
                            self.target.serial, extra=self._about)
                return
            status = await self._read_status(client, dropped)
            await self._open_session(status, stop, dropped)
            await self._bounded(client.start_notify(wire.CONTROL_CHAR_UUID, self._on_reply),
                                "subscribing to control replies", dropped)
            await self._bounded(client.start_notify(wire.DATA_CHAR_UUID, self._on_data),
                                "subscribing to data", dropped)
            self.status.connected, self.status.battery_pct = True, status.battery_pct
            self.status.connects += 1
            for _ in range(SYNCS_AT_CONNECT):
                await self._sync(client, dropped)
            await self._ask(client, wire.command(wire.Op.START), dropped)
            if _holds_packets(status):
                self._want_range(status.oldest_seq, status.newest_seq)
            self._event_connected(status)
            await self._serve(client, stop, dropped)
        finally:
            if client.is_connected:
                try:
                    await self._bounded(client.disconnect(), "disconnecting", None,
                                        idle_s=DISCONNECT_TIMEOUT_S)
                except (BleakError, OSError) as exc:
                    log.info("%s: disconnect: %s", self.target.name, exc, extra=self._about)

    def _event_connected(self, status: wire.Status) -> None:
        detail: dict[str, float | int | str | None] = {
            "newest_seq": status.newest_seq, "missing": len(self._require().missing)}
        if self._lost_at is None:
            self._event("connected", detail)
            log.info("%s: connected (%s leg)", self.target.name, self.target.side,
                     extra=self._about)
        else:
            gap_s = self.clock.now() - self._lost_at
            self._event("reconnected", {**detail, "gap_s": gap_s})
            log.info("%s: reconnected (%s leg) after %.0f s", self.target.name,
                     self.target.side, gap_s, extra=self._about)

    async def _open_session(self, status: wire.Status, stop: asyncio.Event,
                            dropped: asyncio.Event) -> None:
        """Learn what is already safe for this sensor session (a restart resumes here)."""
        self._newest_seen = None  # "stopped sampling" is judged within one connection
        device = self.target.serial
        s = self._session
        if s is None or s.session != status.session:
            have = await self._safe_seqs(device, status.session, stop, dropped)
            clock = self.state.load(device, status.session)
            s = _Session(device, status.session, status.rate_hz, status.counts_per_g, clock,
                         _clock_model(clock), have=have, highest=max(have, default=-1))
            self._session = s
            newest = self.state.synced(device, status.session)
            if newest is not None:  # collected before a restart: its clock stays as it is
                self._synced = (status.session, newest)
                self.status.synced = newest == s.highest
        else:
            s.rate_hz, s.counts_per_g = status.rate_hz, status.counts_per_g

    async def _safe_seqs(self, device: str, session: int, stop: asyncio.Event,
                         dropped: asyncio.Event) -> set[int]:
        """Seqs of the session in the store or the spool; while either is unavailable, wait
        (1 s doubling to 30 s) and ask again, the link held."""
        delay = RETRY_MIN_S
        while True:
            try:
                stored = await asyncio.to_thread(self.store.stored_seqs, device, session)
                waiting = await asyncio.to_thread(self.spool.seqs, device, session)
                return set(stored) | set(waiting)
            except Unavailable as exc:
                log.warning("%s: %s; asking again in %.0f s", self.target.name, exc, delay,
                            extra=self._about)
            if await first_of(stop, dropped, timeout=delay):
                raise LinkLost("stopped or dropped while the store was unavailable")
            delay = min(2 * delay, STORE_RETRY_MAX_S)

    def _want_range(self, first: int, last: int, *, now: bool = True) -> None:
        """Mark every packet in [first, last] not yet safe as missing (to backfill), due at once
        or (`now=False`: they may still be on their way) after the usual grace."""
        s = self._require()
        noticed = (s.live - REORDER_GRACE_PACKETS, 0.0) if now else (s.live, time.monotonic())
        for seq in range(max(first, 0), last + 1):
            if seq not in s.have:
                s.missing.setdefault(seq, noticed)
        s.highest = max(s.highest, last)
        self.status.gaps_open = len(s.missing)

    async def _serve(self, client: BleakClient, stop: asyncio.Event,
                     dropped: asyncio.Event) -> None:
        next_sync = self.clock.now() + self.sync_interval_s
        while not (stop.is_set() or dropped.is_set()):
            if self._sync_wanted.is_set() or self.clock.now() >= next_sync:
                self._sync_wanted.clear()
                await self._sync(client, dropped)
                await self._refresh_status(client, dropped)
                next_sync = self.clock.now() + self.sync_interval_s
            elif time.monotonic() - self._heard_at > SILENCE_S:
                await self._refresh_status(client, dropped)  # raises if the link is dead
            due = self._due_backfill()
            if due is not None:
                await self._backfill(client, *due, dropped)
            else:
                self._flush()
                await first_of(stop, dropped, self._sync_wanted, timeout=0.2)

    async def _read_status(self, client: BleakClient, dropped: asyncio.Event) -> wire.Status:
        data = await self._bounded(client.read_gatt_char(wire.STATUS_CHAR_UUID),
                                   "the status read", dropped)
        self._heard_at = time.monotonic()
        return wire.Status.decode(bytes(data))

    async def _refresh_status(self, client: BleakClient, dropped: asyncio.Event) -> None:
        """Battery, and packets taken that never arrived (a lost last packet shows only here)."""
        status = await self._read_status(client, dropped)
        self.status.battery_pct = status.battery_pct
        if _holds_packets(status):
            self._want_range(self._require().highest + 1, status.newest_seq, now=False)
        await self._note_synced(status)

    async def _note_synced(self, status: wire.Status) -> None:
        """The morning sync is complete: a "synced" event, once per sensor session and newest
        packet, when the sensor has stopped sampling (the same newest packet at status reads of
        this connection at least STOPPED_S apart on the gateway's clock: a sampling sensor sends a
        packet every second or two) and every packet it took is in the store (none missing,
        held for a clock sync, buffered, queued for the spool or in it). The analysis service
        then need not wait out its quiet period."""
        s = self._require()
        newest = status.newest_seq if _holds_packets(status) else None
        now = self.clock.now()
        if self._newest_seen is None or self._newest_seen[0] != newest:
            self._newest_seen = (newest, now)
        stopped = newest is not None and now - self._newest_seen[1] >= STOPPED_S
        if (not stopped or (s.session, newest) == self._synced or s.highest != newest
                or s.missing or s.unsynced or self._buffer
                or self.writer.holds(self.target.serial)):
            return
        if await asyncio.to_thread(self.spool.seqs, s.device, s.session):
            return  # the drain has not stored them all yet: the next refresh looks again
        self._synced = (s.session, newest)
        await self._keep(self.state.mark_synced(s.device, s.session, newest))
        self.status.synced = True
        self._event("synced", {"session": s.session, "newest_seq": newest})

    async def _keep(self, snapshot: tuple[int, str]) -> None:
        """Write a `ClockState` snapshot to its file; a failure is only logged (the store gets
        the model anyway; a restarted gateway may then re-stamp less, or sync again)."""
        try:
            await asyncio.to_thread(self.state.write, *snapshot)
        except OSError as exc:
            log.warning("%s: cannot keep the clock state in %s: %s", self.target.name,
                        self.state.path, exc, extra=self._about)

    def _due_backfill(self) -> tuple[int, int] | None:
        """The first run of missing packets that waited long enough for a late arrival, as long
        as the spool writer takes chunks and has room for them."""
        s = self._require()
        limit = min(BACKFILL_MAX_PACKETS, self.writer.room() - FLUSH_PACKETS)
        if not self.writer.accepting or limit < FLUSH_PACKETS:
            return None
        now = time.monotonic()
        ready = sorted(q for q, (n, t) in s.missing.items()
                       if s.live - n >= REORDER_GRACE_PACKETS or now - t >= REORDER_GRACE_S)
        if not ready:
            return None
        first = last = ready[0]
        for q in ready[1:]:
            if q != last + 1 or q - first >= limit:
                break
            last = q
        return first, last

    async def _backfill(self, client: BleakClient, first: int, last: int,
                        dropped: asyncio.Event) -> None:
        self._forgotten.clear()
        reply, _ = await self._ask(client, wire.command(wire.Op.BACKFILL, first, last), dropped,
                                   progress=lambda: self._heard)
        s = self._require()
        still = [q for q in range(first, last + 1) if q in s.missing and q not in self._forgotten]
        if reply.result == wire.Result.NOT_IN_FLASH or still:
            for q in still:
                del s.missing[q]
            self.status.gaps_lost += len(still)
            self._event("gap", {"first_seq": still[0], "last_seq": still[-1],
                                "packets": len(still)} if still else {})
        self.status.gaps_open = len(s.missing)

    async def _sync(self, client: BleakClient, dropped: asyncio.Event) -> None:
        """A TIME_SYNC exchange into the session's clock, and its model to the store; none once
        the night is collected (its morning sync complete, nothing newer): the model that
        stamped it is then final, as its report uses it."""
        s = self._require()
        if self._synced == (s.session, s.highest) and not s.unsynced:
            return
        self._sync_id = (self._sync_id + 1) & 0xFFFFFFFF
        sent = self.clock.now()
        reply, received = await self._ask(client, wire.command(wire.Op.TIME_SYNC, self._sync_id),
                                          dropped)
        s.clock.add_sync(wire.TimeSyncReply.decode(reply.payload).ticks, sent, received)
        await self._keep(self.state.snapshot(s.device, s.session, s.clock))
        s.model = _clock_model(s.clock)
        if s.model is not None:
            self.models.put(s.device, s.session, s.model)
        self.status.drift_ppm = s.clock.drift_ppm
        held, s.unsynced = s.unsynced, []
        for packet in held:
            self._accept(packet)

    async def _ask(self, client: BleakClient, data: bytes, dropped: asyncio.Event,
                   progress: Callable[[], int] | None = None) -> tuple[wire.Reply, float]:
        """Send a control command; its reply and the sim UTC when the reply arrived. LinkLost
        if the link drops first, or nothing comes for REPLY_TIMEOUT_S (with `progress`: while
        its value does not change)."""
        op = wire.Op(data[0])
        future: asyncio.Future[tuple[wire.Reply, float]] = (
            asyncio.get_running_loop().create_future())
        self._replies[op] = future
        await self._bounded(client.write_gatt_char(wire.CONTROL_CHAR_UUID, data, response=True),
                            f"the {op.name} write", dropped)
        reply, received = await self._bounded(future, f"{op.name}", dropped, progress=progress)
        if reply.result == wire.Result.BAD_REQUEST:
            raise BleakError(f"{self.target.name} refused {op.name}")
        return reply, received

    async def _bounded(self, step: Awaitable[_T], what: str, dropped: asyncio.Event | None, *,
                       idle_s: float = REPLY_TIMEOUT_S,
                       progress: Callable[[], int] | None = None) -> _T:
        """Await one step of talking to the sensor, failing fast with LinkLost when `dropped`
        is set or nothing happens for `idle_s` real seconds (with `progress`: the wait goes on
        while its value changes). The step is cancelled, not awaited, when it fails."""
        task = asyncio.ensure_future(step)
        task.add_done_callback(_consume)
        waiters: set[asyncio.Future[Any]] = {task}
        drop = None if dropped is None else asyncio.ensure_future(dropped.wait())
        if drop is not None:
            waiters.add(drop)
        try:
            mark = None if progress is None else progress()
            while True:
                done, _ = await asyncio.wait(waiters, timeout=idle_s,
                                             return_when=asyncio.FIRST_COMPLETED)
                if task in done:
                    return task.result()
                if drop is not None and drop in done:
                    raise LinkLost(f"the link dropped during {what}")
                if progress is None or progress() == mark:
                    raise NoAnswer(f"no answer to {what} within {idle_s:g} s")
                mark = progress()
        finally:
            if drop is not None:
                drop.cancel()
            task.cancel()

    def _on_reply(self, _char: object, data: bytearray) -> None:
        received = self.clock.now()
        self._heard_at = time.monotonic()
        try:
            reply = wire.decode_reply(bytes(data))
            if reply.op is wire.Op.TIME_SYNC and reply.result is wire.Result.OK and \
                    wire.TimeSyncReply.decode(reply.payload).request_id != self._sync_id:
                log.info("%s: ignored a late TIME_SYNC reply", self.target.name, extra=self._about)
                return
        except wire.WireError as exc:
            self._bad(str(exc))
            return
        future = self._replies.pop(reply.op, None)
        if future is not None and not future.done():
            future.set_result((reply, received))

    def _on_data(self, _char: object, data: bytearray) -> None:
        self._heard += 1
        self._heard_at = time.monotonic()
        try:
            packet = wire.decode_packet(bytes(data))
        except wire.WireError as exc:
            self._bad(str(exc))
            return
        s = self._require()
        if packet.flags & wire.Flag.CLOCK_SET and packet.seq not in s.have:
            s.clock.new_segment(packet.seq)
            self._sync_wanted.set()
        if packet.seq in s.have:
            self.status.duplicates += 1
            return
        # arrival >= the last sample's time: a bound for the clock fit, backfill included
        s.clock.add_arrival(packet.ticks, packet.seq, self.clock.now(), len(packet.counts),
                            s.rate_hz, live=not packet.flags & wire.Flag.BACKFILL)
        if not s.clock.ready_for(packet.seq):
            if len(s.unsynced) < MAX_UNSYNCED:  # else it is fetched from flash after the sync
                s.unsynced.append(packet)
            return
        self._accept(packet)

    def _accept(self, packet: wire.Packet) -> None:
        s = self._require()
        if packet.seq in s.have:
            self.status.duplicates += 1
            return
        ticks = s.clock.unwrapped(packet.ticks, packet.seq)
        t0 = s.clock.to_utc(packet.ticks, packet.seq)
        dt = s.clock.seconds_per_sample(s.rate_hz, packet.seq)
        self._buffer.append(Chunk(
            subject=self.target.subject, side=self.target.side, device=s.device,
            session=s.session, seq=packet.seq, t0=t0, dt=dt, counts=packet.counts,
            counts_per_g=s.counts_per_g, rate_hz=s.rate_hz,
            ticks=ticks,  # the raw reading, unwrapped: re-stamped by the newest model
        ))
        s.have.add(packet.seq)
        self.status.packets += 1
        self.status.synced = False
        if packet.flags & wire.Flag.BACKFILL:
            self.status.backfilled += 1
        else:
            s.live += 1
            noticed = (s.live, time.monotonic())
            for q in range(s.highest + 1, packet.seq):
                s.missing.setdefault(q, noticed)
        s.missing.pop(packet.seq, None)
        s.highest = max(s.highest, packet.seq)
        self.status.gaps_open = len(s.missing)
        last = t0 + dt * (len(packet.counts) - 1)
        if self.status.last_packet_time is None or last > self.status.last_packet_time:
            self.status.last_packet_time = last
            swing = int(np.ptp(packet.counts, axis=0).max())
            if swing > MOVING_G * s.counts_per_g:
                self.status.last_movement_time = last
        if len(self._buffer) >= FLUSH_PACKETS:
            self._flush()

    def _flush(self) -> None:
        """Hand the buffered chunks to the spool writer; if it is full, forget them: they are
        missing again, to be fetched from the sensor's flash once there is room."""
        batch, self._buffer = self._buffer, []
        if not batch or self.writer.offer(batch):
            return
        s = self._session
        noticed = (0, 0.0) if s is None else (s.live - REORDER_GRACE_PACKETS, 0.0)
        for chunk in batch:
            if s is not None and chunk.session == s.session:
                s.have.discard(chunk.seq)
                s.missing[chunk.seq] = noticed
                self._forgotten.add(chunk.seq)
        self.status.packets -= len(batch)
        self.status.gaps_open = 0 if s is None else len(s.missing)
        log.info("%s: the spool writer is full; %d packets are left in the sensor's flash",
                 self.target.name, len(batch), extra=self._about)

    def _bad(self, problem: str) -> None:
        self.status.bad_packets += 1
        log.info("%s: dropped a bad notification: %s", self.target.name, problem, extra=self._about)
        if self.status.bad_packets <= 100 or self.status.bad_packets % 1000 == 0:
            self._event("bad_packet", {"problem": problem, "count": self.status.bad_packets})

    @property
    def _about(self) -> dict[str, object]:
        """The context of a log line about this sensor (`limbwatch.logs`)."""
        return {"sensor": self.target.name, "subject": self.target.subject}

    def _event(self, kind: str, detail: dict[str, float | int | str | None]) -> None:
        self._emit(DeviceEvent(self.target.subject, self.target.side, self.clock.now(), kind,
                               detail))

    def _require(self) -> _Session:
        if self._session is None:
            raise RuntimeError("no sensor session open")
        return self._session


def _describe(exc: BaseException) -> str:
    """An exception's message (bleak's "not available" error carries (message, reason))."""
    if exc.args and isinstance(exc.args[0], str):
        return exc.args[0]
    return str(exc) or type(exc).__name__


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a step given up on, so that asyncio does not log it as lost."""
    if not task.cancelled():
        task.exception()


def _clock_model(clock: DeviceClock) -> ClockModel | None:
    """The clock's fit as plain data for the store: its segments that have syncs (packets of a
    segment without any are held back, so no chunk is stamped on one); None before the first."""
    segments = [ClockSegment(seg.first_seq, seg.a, seg.b)
                for seg in clock.model().segments if seg.synced]
    return ClockModel(tuple(segments)) if segments else None


def _holds_packets(status: wire.Status) -> bool:
    """False for an empty flash, which reports oldest = newest + 1 mod 2**32 (oldest 0 and
    newest 0xFFFFFFFF after an erase)."""
    return (status.newest_seq + 1) % (1 << 32) != status.oldest_seq


class Ingester:
    """All configured sensors, the spool (its writer and its drain into the store), device
    events, and their status."""

    def __init__(self, targets: list[SensorTarget], *, backend: Backend, clock: SimClock,
                 spool: Spool, store: ChunkSink, records: GatewayRecords, state_path: Path,
                 sync_interval_s: float = 300.0, max_queued: int = MAX_QUEUED) -> None:
        self.spool, self.store, self.records = spool, store, records
        self.clock = clock
        self.writer = SpoolWriter(spool, max_queued=max_queued)  # shared by the links
        self._events: list[DeviceEvent] = []
        state = ClockState(state_path)
        self.models = PendingModels()
        for device, session in state.sessions():  # what a killed gateway may not have written
            model = _clock_model(state.load(device, session))
            if model is not None:
                self.models.put(device, session, model)
        self._backend = backend
        self._last_reset = -math.inf
        self.links = [
            SensorLink(t, backend=backend, clock=clock, spool=spool, writer=self.writer,
                       store=store, state=state, models=self.models,
                       sync_interval_s=sync_interval_s, events=self._hold_event,
                       reset_adapter=self._reset_adapter)
            for t in targets
        ]

    def status(self) -> list[SensorStatus]:
        return [replace(link.status) for link in self.links]

    async def run(self, stop: asyncio.Event) -> None:
        """Collect until `stop` is set; then stop the links (STOP_GRACE_S, then cancelled), put
        what they held in the spool and write the last events: about 3 s at most."""
        links_done = asyncio.Event()
        helpers = [
            asyncio.create_task(self.writer.run(links_done)),
            asyncio.create_task(drain(self.spool, self.store, models=self.models, stop=stop)),
            asyncio.create_task(self._write_events(links_done)),
            asyncio.create_task(self._publish_status(links_done)),
        ]
        links = [asyncio.create_task(link.run(stop)) for link in self.links]
        try:
            await stop.wait()
        finally:
            stop.set()
            await _end(links)
            links_done.set()
            await _end(helpers)
            await self.writer.finish(FINAL_PUT_S)

    async def _reset_adapter(self) -> None:
        """A link found the adapter silent: drop it (once for all links that found so within
        RESET_GAP_S), so that the next attempt opens a fresh one."""
        if self._backend.reset is None or time.monotonic() - self._last_reset < RESET_GAP_S:
            return
        self._last_reset = time.monotonic()
        log.warning("resetting the BLE adapter: it stopped answering")
        await self._backend.reset()

    def _hold_event(self, event: DeviceEvent) -> None:
        self._events.append(event)
        if len(self._events) > MAX_EVENTS_HELD:
            del self._events[: len(self._events) - MAX_EVENTS_HELD]
            log.warning("the store has been unavailable long: dropped the oldest device events")

    async def _write_events(self, done: asyncio.Event) -> None:
        """Events go straight to the record store (not the spool); held in memory while it is
        unavailable. A last write once `done` is set."""
        while True:
            if self._events:
                batch, self._events[:] = list(self._events), []
                try:
                    await asyncio.to_thread(self.records.write_device_events, batch)
                except LimbwatchError as exc:
                    self._events[:0] = batch
                    log.warning("%d device events wait: %s", len(self._events), exc)
            if done.is_set():
                return
            await first_of(done, timeout=1.0)


    async def _publish_status(self, done: asyncio.Event) -> None:
        """Each link's status as a live-status snapshot for the API every STATUS_EVERY_S (the
        gateway and the API may be separate processes); a store that is down skips a round.
        Off the ankle is not known at the gateway (non-wear needs 30 min of analysis)."""
        while not done.is_set():
            now = self.clock.now()
            snapshots = [RecordStatus(
                serial=s.serial, subject_id=s.subject, side=s.side, time=now,
                connected=s.connected, battery_pct=s.battery_pct,
                last_packet=s.last_packet_time, on_ankle=None,
                last_movement=s.last_movement_time) for s in self.status()]
            try:
                await asyncio.to_thread(self.records.put_status, snapshots)
            except LimbwatchError as exc:
                log.warning("live status not published: %s", exc)
            await first_of(done, timeout=STATUS_EVERY_S)


async def _end(tasks: list[asyncio.Task[None]]) -> None:
    """Give `tasks` STOP_GRACE_S to end, then cancel them, repeating the cancel for CANCEL_S
    (on Python 3.11 Bumble can swallow one); log any that still runs or that failed."""
    _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
    deadline = time.monotonic() + CANCEL_S
    while pending and time.monotonic() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    if pending:
        log.warning("%d tasks did not stop in time", len(pending))
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("a gateway task failed", exc_info=task.exception())
