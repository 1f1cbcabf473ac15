"""The BLE central: finds the configured sensors, keeps them connected all night, and hands every
packet, once and on UTC, to the durable spool (`ingest.spool`), from which `drain` fills the store.

Per sensor (`SensorLink`), a loop: scan for the sensor's name and service, connect through
bleak-retry-connector, check its serial, subscribe, sync clocks, start streaming, then until the
link drops: decode and validate every notification (bad ones are counted, logged and dropped),
drop duplicates by sequence number, turn device ticks into UTC (`ingest.clock`), and ask the
sensor's flash for every packet that did not arrive (gaps by sequence number, and all that was
taken while disconnected). A gap the flash can no longer fill is recorded as a gap event. After a
drop: back off and start again. Nothing here keeps more than a few seconds of data in memory.

Which packets are already safe is learnt from the store and the spool at every connection, so a
killed and restarted ingester asks for exactly what it is missing. Clock syncs are kept in a small
state file beside the spool so packets backfilled after a restart get the same times.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakError
from bleak_retry_connector import establish_connection

from ingest.clock import DeviceClock, Sync
from ingest.spool import PendingModels, Spool, drain
from limbwatch import wire
from limbwatch.clockmodel import ClockModel, ClockSegment
from limbwatch.recording import Side
from limbwatch.simclock import SimClock
from limbwatch.store.records import DeviceEvent, RecordStore
from limbwatch.store.samples import Chunk, SampleStore, StoreUnavailable

log = logging.getLogger(__name__)

REPLY_TIMEOUT_S = 10.0  # real seconds to wait for a control reply
BACKFILL_TIMEOUT_S = 120.0  # real seconds for one backfill request to complete
BACKFILL_MAX_PACKETS = 4000  # per request, so a long outage is fetched in pieces
REORDER_GRACE_PACKETS = 8  # a missing packet is asked for once this many later ones arrived,
REORDER_GRACE_S = 2.0  # or after this many real seconds (the night's last packets)
FLUSH_PACKETS = 64  # packets buffered before a spool write
SCAN_TIMEOUT_S = 10.0  # real seconds per scan attempt
SYNCS_AT_CONNECT = 8  # a burst of clock syncs before streaming: the quickest weigh most


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
    packets: int = 0
    duplicates: int = 0
    bad_packets: int = 0
    backfilled: int = 0
    gaps_open: int = 0  # packets missing, still being asked for
    gaps_lost: int = 0  # packets the sensor no longer had
    connects: int = 0
    drift_ppm: float = 0.0


@dataclass(frozen=True, slots=True)
class Backend:
    """bleak backend classes; None means bleak's platform backend (BlueZ on Linux)."""

    scanner: type[BaseBleakScanner] | None = None
    client: type[BaseBleakClient] | None = None


class ClockState:
    """Clock syncs per (device, session), kept in a JSON file replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, list[list[float]]] = (
            json.loads(path.read_text()) if path.exists() else {}
        )

    def load(self, device: str, session: int) -> DeviceClock:
        rows = self._data.get(f"{device}/{session}", [])
        return DeviceClock.restore([(int(r[0]), Sync(int(r[1]), r[2], r[3])) for r in rows])

    def sessions(self) -> list[tuple[str, int]]:
        """The (device, session) pairs with syncs kept here."""
        return [(key.rsplit("/", 1)[0], int(key.rsplit("/", 1)[1])) for key in self._data]

    def save(self, device: str, session: int, clock: DeviceClock) -> None:
        self._data[f"{device}/{session}"] = [
            [seq, s.ticks, s.sent, s.received] for seq, s in clock.syncs()
        ]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._data))
        os.replace(tmp, self.path)


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
                 store: SampleStore, state: ClockState, models: PendingModels,
                 sync_interval_s: float = 300.0,
                 events: Callable[[DeviceEvent], None] | None = None) -> None:
        self.target = target
        self.models = models
        self.backend = backend
        self.clock = clock
        self.spool = spool
        self.store = store
        self.state = state
        self.sync_interval_s = sync_interval_s
        self.status = SensorStatus(target.subject, target.side, target.serial)
        self._emit = events or (lambda e: None)
        self._session: _Session | None = None
        self._buffer: list[Chunk] = []
        # op -> the pending request's reply and the sim UTC when it arrived
        self._replies: dict[wire.Op, asyncio.Future[tuple[wire.Reply, float]]] = {}
        self._sync_wanted = asyncio.Event()
        self._sync_id = 0  # id of the latest TIME_SYNC request: a late reply to another is ignored

    async def run(self, stop: asyncio.Event) -> None:
        """Collect until `stop` is set, reconnecting with backoff (1 s doubling to 60 s)."""
        backoff = 1.0
        while not stop.is_set():
            device = await self._find(stop)
            if device is not None:
                try:
                    await self._connected(device, stop)
                    backoff = 1.0
                except (BleakError, TimeoutError, EOFError, ConnectionError) as exc:
                    log.warning("%s: connection lost: %s", self.target.name, exc)
                finally:
                    self._flush()
                    self.status.connected = False
                    self._event("disconnected", {})
            if not stop.is_set():
                await _wait(stop, backoff)
                backoff = min(backoff * 2, 60.0)

    async def _find(self, stop: asyncio.Event) -> BLEDevice | None:
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
        client = await establish_connection(
            BleakClient, device, self.target.name,
            disconnected_callback=lambda _c: dropped.set(), max_attempts=3, **kwargs,
        )
        try:
            serial = bytes(await client.read_gatt_char(wire.SERIAL_UUID)).decode()
            if serial != self.target.serial:
                log.warning("%s: serial %s is not %s; ignored", self.target.name, serial,
                            self.target.serial)
                return
            status = wire.Status.decode(bytes(await client.read_gatt_char(wire.STATUS_CHAR_UUID)))
            self._open_session(status)
            self.status.connected, self.status.battery_pct = True, status.battery_pct
            self.status.connects += 1
            self._event("connected", {"newest_seq": status.newest_seq})
            await client.start_notify(wire.CONTROL_CHAR_UUID, self._on_reply)
            await client.start_notify(wire.DATA_CHAR_UUID, self._on_data)
            for _ in range(SYNCS_AT_CONNECT):
                await self._sync(client)
            await self._ask(client, wire.command(wire.Op.START))
            if _holds_packets(status):
                self._want_range(status.oldest_seq, status.newest_seq)
            await self._serve(client, stop, dropped)
        finally:
            if client.is_connected:
                await client.disconnect()

    def _open_session(self, status: wire.Status) -> None:
        """Learn what is already safe for this sensor session (a restart resumes here)."""
        device = self.target.serial
        s = self._session
        if s is None or s.session != status.session:
            have = set(self.store.stored_seqs(device, status.session))
            have |= set(self.spool.seqs(device, status.session))
            clock = self.state.load(device, status.session)
            s = _Session(device, status.session, status.rate_hz, status.counts_per_g, clock,
                         _clock_model(clock), have=have, highest=max(have, default=-1))
            self._session = s
        else:
            s.rate_hz, s.counts_per_g = status.rate_hz, status.counts_per_g

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
                await self._sync(client)
                await self._refresh_status(client)
                next_sync = self.clock.now() + self.sync_interval_s
            due = self._due_backfill()
            if due is not None:
                await self._backfill(client, *due)
            else:
                self._flush()
                await _wait_any((stop, dropped, self._sync_wanted), 0.2)

    async def _refresh_status(self, client: BleakClient) -> None:
        """Battery, and packets taken that never arrived (a lost last packet shows only here)."""
        status = wire.Status.decode(bytes(await client.read_gatt_char(wire.STATUS_CHAR_UUID)))
        self.status.battery_pct = status.battery_pct
        if _holds_packets(status):
            self._want_range(self._require().highest + 1, status.newest_seq, now=False)

    def _due_backfill(self) -> tuple[int, int] | None:
        """The first run of missing packets that waited long enough for a late arrival."""
        s = self._require()
        now = time.monotonic()
        ready = sorted(q for q, (n, t) in s.missing.items()
                       if s.live - n >= REORDER_GRACE_PACKETS or now - t >= REORDER_GRACE_S)
        if not ready:
            return None
        first = last = ready[0]
        for q in ready[1:]:
            if q != last + 1 or q - first >= BACKFILL_MAX_PACKETS:
                break
            last = q
        return first, last

    async def _backfill(self, client: BleakClient, first: int, last: int) -> None:
        reply, _ = await self._ask(client, wire.command(wire.Op.BACKFILL, first, last),
                                   timeout=BACKFILL_TIMEOUT_S)
        s = self._require()
        still = [q for q in range(first, last + 1) if q in s.missing]
        if reply.result == wire.Result.NOT_IN_FLASH or still:
            for q in still:
                del s.missing[q]
            self.status.gaps_lost += len(still)
            self._event("gap", {"first_seq": still[0], "last_seq": still[-1],
                                "packets": len(still)} if still else {})
        self.status.gaps_open = len(s.missing)

    async def _sync(self, client: BleakClient) -> None:
        s = self._require()
        self._sync_id = (self._sync_id + 1) & 0xFFFFFFFF
        sent = self.clock.now()
        reply, received = await self._ask(client, wire.command(wire.Op.TIME_SYNC, self._sync_id))
        s.clock.add_sync(wire.TimeSyncReply.decode(reply.payload).ticks, sent, received)
        self.state.save(s.device, s.session, s.clock)
        s.model = _clock_model(s.clock)
        if s.model is not None:
            self.models.put(s.device, s.session, s.model)
        self.status.drift_ppm = s.clock.drift_ppm
        held, s.unsynced = s.unsynced, []
        for packet in held:
            self._accept(packet)

    async def _ask(self, client: BleakClient, data: bytes,
                   timeout: float = REPLY_TIMEOUT_S) -> tuple[wire.Reply, float]:
        """Send a control command; its reply and the sim UTC when the reply arrived."""
        op = wire.Op(data[0])
        future: asyncio.Future[tuple[wire.Reply, float]] = (
            asyncio.get_running_loop().create_future())
        self._replies[op] = future
        await client.write_gatt_char(wire.CONTROL_CHAR_UUID, data, response=True)
        reply, received = await asyncio.wait_for(future, timeout)
        if reply.result == wire.Result.BAD_REQUEST:
            raise BleakError(f"{self.target.name} refused {op.name}")
        return reply, received

    def _on_reply(self, _char: object, data: bytearray) -> None:
        received = self.clock.now()
        try:
            reply = wire.decode_reply(bytes(data))
            if reply.op is wire.Op.TIME_SYNC and reply.result is wire.Result.OK and \
                    wire.TimeSyncReply.decode(reply.payload).request_id != self._sync_id:
                log.info("%s: ignored a late TIME_SYNC reply", self.target.name)
                return
        except wire.WireError as exc:
            self._bad(str(exc))
            return
        future = self._replies.pop(reply.op, None)
        if future is not None and not future.done():
            future.set_result((reply, received))

    def _on_data(self, _char: object, data: bytearray) -> None:
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
        if not s.clock.ready_for(packet.seq):
            s.unsynced.append(packet)
            return
        self._accept(packet)

    def _accept(self, packet: wire.Packet) -> None:
        s = self._require()
        if packet.seq in s.have:
            self.status.duplicates += 1
            return
        t0 = s.clock.to_utc(packet.ticks, packet.seq)
        dt = s.clock.seconds_per_sample(s.rate_hz, packet.seq)
        self._buffer.append(Chunk(
            subject=self.target.subject, side=self.target.side, device=s.device,
            session=s.session, seq=packet.seq, t0=t0, dt=dt, counts=packet.counts,
            counts_per_g=s.counts_per_g, rate_hz=s.rate_hz,
            ticks=None if s.model is None else s.model.ticks_at(t0, packet.seq),
        ))
        s.have.add(packet.seq)
        self.status.packets += 1
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
        if len(self._buffer) >= FLUSH_PACKETS:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self.spool.put(self._buffer)
            self._buffer = []

    def _bad(self, problem: str) -> None:
        self.status.bad_packets += 1
        log.info("%s: dropped a bad notification: %s", self.target.name, problem)
        if self.status.bad_packets <= 100 or self.status.bad_packets % 1000 == 0:
            self._event("bad_packet", {"problem": problem, "count": self.status.bad_packets})

    def _event(self, kind: str, detail: dict[str, float | int | str | None]) -> None:
        self._emit(DeviceEvent(self.target.subject, self.target.side, self.clock.now(), kind,
                               detail))

    def _require(self) -> _Session:
        if self._session is None:
            raise RuntimeError("no sensor session open")
        return self._session


def _clock_model(clock: DeviceClock) -> ClockModel | None:
    """The clock's fit as plain data for the store: its segments that have syncs (packets of a
    segment without any are held back, so no chunk is stamped on one); None before the first.

    Reads DeviceClock's private segments (first_seq, a, b) while `ingest.clock` is rewritten;
    to be replaced by the clock's own public model snapshot."""
    segments = [ClockSegment(seg.first_seq, seg.a, seg.b)
                for seg in clock._segments if seg.syncs]
    return ClockModel(tuple(segments)) if segments else None


def _holds_packets(status: wire.Status) -> bool:
    """False for an empty flash, which reports oldest = newest + 1 mod 2**32 (oldest 0 and
    newest 0xFFFFFFFF after an erase)."""
    return (status.newest_seq + 1) % (1 << 32) != status.oldest_seq


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    await _wait_any((stop,), seconds)


async def _wait_any(events: tuple[asyncio.Event, ...], seconds: float) -> None:
    """Return when any event is set or after `seconds` (real time)."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


class Ingester:
    """All configured sensors, the spool and its drain into the store, and their status."""

    def __init__(self, targets: list[SensorTarget], *, backend: Backend, clock: SimClock,
                 spool: Spool, store: SampleStore, records: RecordStore, state_path: Path,
                 sync_interval_s: float = 300.0) -> None:
        self.spool, self.store, self.records = spool, store, records
        self._events: list[DeviceEvent] = []
        state = ClockState(state_path)
        self.models = PendingModels()
        for device, session in state.sessions():  # what a killed gateway may not have written
            model = _clock_model(state.load(device, session))
            if model is not None:
                self.models.put(device, session, model)
        self.links = [
            SensorLink(t, backend=backend, clock=clock, spool=spool, store=store, state=state,
                       models=self.models, sync_interval_s=sync_interval_s,
                       events=self._events.append)
            for t in targets
        ]

    def status(self) -> list[SensorStatus]:
        return [replace(link.status) for link in self.links]

    async def run(self, stop: asyncio.Event) -> None:
        """Collect until `stop` is set; then hand everything still held to the spool."""
        tasks = [asyncio.create_task(link.run(stop)) for link in self.links]
        tasks.append(asyncio.create_task(drain(self.spool, self.store, models=self.models,
                                               stop=stop)))
        tasks.append(asyncio.create_task(self._write_events(stop)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()

    async def _write_events(self, stop: asyncio.Event) -> None:
        """Events go straight to the store (not the spool); kept in memory while it is down."""
        while True:
            if self._events:
                batch, self._events[:] = list(self._events), []
                try:
                    await asyncio.to_thread(self.records.write_device_events, batch)
                except StoreUnavailable:
                    self._events[:0] = batch
            if stop.is_set():
                return
            await _wait(stop, 1.0)
