"""Firmware behaviour of one simulated ankle sensor, without any radio (pure asyncio + numpy).

The BLE layer (``firmware_sim/peripheral.py``) wraps a :class:`Sensor`: it forwards control writes
to :meth:`Sensor.control`, gives it the send/reply callbacks of a connection, and obeys the fault
schedule the sensor exposes (:meth:`Sensor.drop_times`, :meth:`Sensor.reachable`). The formats are
those of :mod:`limbwatch.wire`.

Model (times are sim UTC from a :class:`~limbwatch.simclock.SimClock`, Unix s):

* **Samples**: the night of ``plan_night(scenario, seed)`` rendered once for this leg at the leg
  model's rate; sample ``k`` is taken at ``night_start + k / (rate * (1 + drift_ppm * 1e-6))``
  (the device samples on its own, drifting clock) and stored as ``round(g * counts_per_g)``
  clipped to int16.
* **Clock**: 32.768 kHz ticks, ``ticks0`` (random u32 from the seed) at ``night_start``, drifting
  by ``drift_ppm``; a packet's ``ticks`` is the device time of its first sample, mod 2**32. A
  ``clock_jump`` fault adds its seconds to the counter from its time on; the first packet whose
  first sample is at or after the jump carries ``Flag.CLOCK_SET``.
* **Packets** of ``wire.max_samples(mtu)`` samples are formed when their last sample is due. The
  MTU is 23 at every new connection until :meth:`Sensor.set_mtu`; while no central is connected
  the sensor packs for ``STORAGE_MTU`` (247, what the limbwatch central negotiates), so a night
  recorded alone fills flash with full packets (``mtu23`` fault: 23 throughout). The ingester
  must exchange the MTU before BACKFILL, or packets bigger than the link carries arrive
  truncated.
* **Flash**: every packet, in a ring holding the newest ``flash_hours`` of samples.
* **Live**: while connected and streaming (START; STOP or a disconnect ends it), each new packet
  is sent, subject to the live faults. A new connection starts not streaming.
* **Control**: SET_RATE is accepted only before sampling starts (``night_start``; the night is
  rendered again at the new rate, synchronously); while or after sampling it replies BAD_REQUEST
  unless the rate is already in effect. SET_RANGE applies from the next packet formed. BACKFILL
  of ``first > last`` or ``last`` beyond the newest packet replies BAD_REQUEST and sends nothing.
  A write whose opcode is unknown (or that is empty) is answered ``opcode | 0x80, BAD_REQUEST``,
  which ``wire.decode_reply`` cannot name (``Op`` has no member for it).
* **Battery**: a full battery lasts ``battery_hours``; ``Flag.LOW_BATTERY`` below 15 %.

The send and reply callbacks must not raise: a notification the link cannot carry is lost.
"""

from __future__ import annotations

import asyncio
import math
from bisect import bisect_right
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from firmware_sim.motion import render_leg
from firmware_sim.night import Interval, NightPlan, merge_intervals, plan_night
from firmware_sim.scenario import load_scenario
from limbwatch import wire
from limbwatch.recording import Side, as_side
from limbwatch.simclock import SimClock
from limbwatch.wire import RANGES_G, RATES_HZ, TICK_HZ, Flag, Op, Result, Status

Send = Callable[[bytes], Awaitable[None]]

DEFAULT_MTU = 23
MAX_MTU = 517  # largest ATT MTU
STORAGE_MTU = 247  # packing while disconnected: the MTU the limbwatch central negotiates
MAX_DRIFT_PPM = 50.0
LOW_BATTERY_PCT = 15.0  # packets carry Flag.LOW_BATTERY below this
LOW_BATTERY_FAULT_PCT = 10.0  # level set by a low_battery fault whose value is 0
COUNTS_PER_G = {2: 16384, 4: 8192, 8: 4096, 16: 2048}  # by range in g
INT16 = (-32768, 32767)
U32 = 1 << 32
NAME_MAX = 8  # characters of the advertised name
TIME_DECIMALS = 4  # truth CSV: Unix seconds
AXIS_DECIMALS = 6  # truth CSV: g
CSV_HEADER = b"time,x,y,z\n"

#: kind -> when it acts: "at" at_s, "window" [at_s, until_s), "from" [at_s, until_s or the end),
#: "run" the whole run.
FAULT_KINDS = {
    "drop": "at",
    "out_of_range": "window",
    "lose": "from",
    "duplicate": "from",
    "reorder": "from",
    "corrupt": "from",
    "mtu23": "run",
    "clock_jump": "at",
    "stall": "window",
    "low_battery": "at",
}
_PROBABILITIES = ("lose", "duplicate", "reorder", "corrupt")
_VALUED = (*_PROBABILITIES, "clock_jump", "low_battery")  # kinds that take a value
_FLASH_DTYPE = np.dtype([("first", "<i8"), ("count", "u1"), ("ticks", "<u4"), ("flags", "u1")])
_FRACTIONS = pa.array([f"{i:0{TIME_DECIMALS}d}" for i in range(10**TIME_DECIMALS)])


class ConfigError(ValueError):
    """A bad sensor or fault setting; ``key`` names the field (for the rig loader's messages)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def _finite(key: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(key, f"expected a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted fault; times in s since night start.

    ``drop`` at ``at_s``; ``out_of_range`` and ``stall`` over ``[at_s, until_s)``; ``lose``,
    ``duplicate``, ``reorder``, ``corrupt`` with probability ``value`` for live notifications
    formed in ``[at_s, until_s)`` (``until_s`` None: to the end); ``mtu23`` for the whole run;
    ``clock_jump`` by ``value`` s at ``at_s``; ``low_battery`` at ``at_s`` to ``value`` %
    (0: 10 %).
    """

    kind: str
    at_s: float = 0.0
    until_s: float | None = None
    value: float = 0.0

    def __post_init__(self) -> None:
        timing = FAULT_KINDS.get(self.kind)
        if timing is None:
            raise ConfigError("kind", f"unknown fault {self.kind!r} (known: "
                                      f"{', '.join(FAULT_KINDS)})")
        if _finite("at_s", self.at_s) < 0.0:
            raise ConfigError("at_s", f"must be >= 0, got {self.at_s}")
        if timing == "run" and self.at_s:
            raise ConfigError("at_s", f"{self.kind} lasts the whole run: no at_s")
        if self.until_s is not None and timing in ("at", "run"):
            raise ConfigError("until_s", f"{self.kind} has no end: no until_s")
        if self.until_s is not None and _finite("until_s", self.until_s) <= self.at_s:
            raise ConfigError("until_s", f"must be after at_s {self.at_s}, got {self.until_s}")
        if timing == "window" and self.until_s is None:
            raise ConfigError("until_s", f"a {self.kind} fault needs an end")
        self._check_value()

    def _check_value(self) -> None:
        value = _finite("value", self.value)
        if self.kind not in _VALUED and value != 0.0:
            raise ConfigError("value", f"{self.kind} takes no value, got {value}")
        if self.kind in _PROBABILITIES and not 0.0 <= value <= 1.0:
            raise ConfigError("value", f"{self.kind} needs a probability in [0, 1], got {value}")
        if self.kind == "clock_jump" and value == 0.0:
            raise ConfigError("value", "clock_jump needs a non-zero jump in s")
        if self.kind == "low_battery" and not 0.0 <= value < LOW_BATTERY_PCT:
            raise ConfigError("value", f"low_battery level must be in [0, {LOW_BATTERY_PCT:g}) "
                                       f"%, got {value}")

    def span(self, night_start: float) -> tuple[float, float]:
        """``[start, end)`` in Unix s (end inf when open)."""
        end = math.inf if self.until_s is None else night_start + self.until_s
        return night_start + self.at_s, end


@dataclass(frozen=True, slots=True)
class SensorConfig:
    """One simulated sensor: which leg of which night, its clock, flash, battery and faults."""

    serial: str  # e.g. "LW0001L"
    side: Side
    scenario: str  # bundled name or TOML path
    seed: int
    night_start: float  # Unix s when sampling starts (sim UTC)
    duration_h: float | None = None  # override the scenario's
    range_g: int = 8
    drift_ppm: float = 0.0
    flash_hours: float = 14.0
    battery_pct: float = 100.0  # at night start
    battery_hours: float = 30.0  # life of a full battery
    faults: tuple[Fault, ...] = ()

    def __post_init__(self) -> None:
        if not self.serial or not self.serial.isascii() or not self.serial.isprintable():
            raise ConfigError("serial", f"expected printable ASCII, got {self.serial!r}")
        try:
            as_side(self.side)
        except ValueError as exc:
            raise ConfigError("side", str(exc)) from None
        _finite("night_start", self.night_start)
        if self.duration_h is not None and not _finite("duration_h", self.duration_h) > 0.0:
            raise ConfigError("duration_h", f"must be > 0, got {self.duration_h}")
        if self.range_g not in RANGES_G:
            raise ConfigError("range_g", f"expected one of {RANGES_G}, got {self.range_g!r}")
        if abs(_finite("drift_ppm", self.drift_ppm)) > MAX_DRIFT_PPM:
            raise ConfigError("drift_ppm", f"must be within +-{MAX_DRIFT_PPM:g}, got "
                                           f"{self.drift_ppm}")
        if not _finite("flash_hours", self.flash_hours) > 0.0:
            raise ConfigError("flash_hours", f"must be > 0, got {self.flash_hours}")
        if not 0.0 <= _finite("battery_pct", self.battery_pct) <= 100.0:
            raise ConfigError("battery_pct", f"must be in [0, 100], got {self.battery_pct}")
        if not _finite("battery_hours", self.battery_hours) > 0.0:
            raise ConfigError("battery_hours", f"must be > 0, got {self.battery_hours}")

    @property
    def name(self) -> str:
        """Advertised local name (<= 8 characters): the serial, or "LW" + its last 6."""
        return self.serial if len(self.serial) <= NAME_MAX else "LW" + self.serial[-6:]


@dataclass(slots=True)
class SensorStats:
    """Packet counters of one sensor."""

    formed: int = 0  # packets formed (every one went to flash)
    sent_live: int = 0  # live notifications sent (a duplicate counts twice)
    lost: int = 0  # by `lose`, or held back by `reorder` when streaming ended
    duplicated: int = 0
    reordered: int = 0  # held back and sent after the next packet
    corrupted: int = 0
    withheld: int = 0  # not sent live: stalled or out of range while streaming
    backfilled: int = 0  # sent from flash on BACKFILL


@dataclass(frozen=True, slots=True, eq=False)
class _Link:
    """One connection's callbacks; identity tells connections apart."""

    send: Send
    reply: Send


class _Flash:
    """Packets formed since the last erase, indexed by seq; a ring of the newest samples."""

    __slots__ = ("_log", "_stored", "next_seq", "oldest")

    def __init__(self) -> None:
        self._log = np.zeros(1024, dtype=_FLASH_DTYPE)
        self._stored = 0  # samples in flash
        self.next_seq = 0
        self.oldest = 0

    def append(self, first: int, count: int, ticks: int, flags: Flag, capacity: int) -> int:
        """Store a packet, overwrite the oldest beyond ``capacity`` samples; return its seq."""
        if self.next_seq == len(self._log):
            self._log = np.concatenate([self._log, np.zeros_like(self._log)])
        seq = self.next_seq
        self._log[seq] = (first, count, ticks, int(flags))
        self.next_seq += 1
        self._stored += count
        while self._stored > capacity and self.oldest < seq:
            self._stored -= int(self._log["count"][self.oldest])
            self.oldest += 1
        return seq

    def holds(self, seq: int) -> bool:
        return self.oldest <= seq < self.next_seq

    def entry(self, seq: int) -> tuple[int, int, int, Flag]:
        """(first sample index, count, ticks, flags) of a stored packet."""
        row = self._log[seq]
        return int(row["first"]), int(row["count"]), int(row["ticks"]), Flag(int(row["flags"]))


def _active_probability(faults: list[Fault], t_rel: float) -> float:
    """Probability that at least one of these faults hits at ``t_rel`` s since night start."""
    miss = 1.0
    for f in faults:
        if f.at_s <= t_rel and (f.until_s is None or t_rel < f.until_s):
            miss *= 1.0 - f.value
    return 1.0 - miss


def _inside(spans: list[Interval], t: float) -> bool:
    return any(start <= t < end for start, end in spans)


class Sensor:
    """The firmware of one ankle sensor on a SimClock: samples, flash, control, live stream."""

    def __init__(self, config: SensorConfig, clock: SimClock) -> None:
        self.config = config
        self.clock = clock
        self.stats = SensorStats()
        self._plan = self._night_plan()
        self._rate = self._leg_rate()
        self._accel = render_leg(self._plan.legs[config.side], self._plan.leg_seed(config.side))
        index = ("left", "right").index(config.side)
        setup = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(3, index)))
        self._ticks0 = int(setup.integers(U32))
        self.session = int(setup.integers(1 << 16))
        self._rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(4, index)))
        self._range_g = config.range_g
        # (first sample, counts/g) from which each range applies; packets never straddle two
        self._ranges: list[tuple[int, int]] = [(0, self.counts_per_g)]
        self._taken = 0  # samples in packets
        self._flash = _Flash()
        self._link: _Link | None = None
        self._streaming = False
        self._held: list[bytes] = []  # a live packet (and its duplicate) held back by `reorder`
        self._jumps_flagged = 0
        self._schedule_faults()

    # -- set-up ----------------------------------------------------------------------------------

    def _night_plan(self) -> NightPlan:
        cfg = self.config
        plan = plan_night(load_scenario(cfg.scenario), cfg.seed, start=cfg.night_start,
                          duration_h=cfg.duration_h)
        if cfg.side not in plan.legs:
            raise ConfigError("side", f"scenario {cfg.scenario!r} has no {cfg.side} sensor")
        return plan

    def _leg_rate(self) -> int:
        fs = self._plan.legs[self.config.side].fs
        if fs not in RATES_HZ:
            raise ConfigError("scenario", f"{self.config.scenario!r} samples the {self.config.side}"
                                          f" leg at {fs:g} Hz; the sensor supports {RATES_HZ}")
        return int(fs)

    def _schedule_faults(self) -> None:
        faults, start = self.config.faults, self.config.night_start
        by_kind = {kind: [f for f in faults if f.kind == kind] for kind in FAULT_KINDS}
        self._unreachable = merge_intervals([f.span(start) for f in by_kind["out_of_range"]])
        self._stalls = [f.span(start) for f in by_kind["stall"]]
        self._drops = sorted(f.span(start)[0] for f in by_kind["drop"])
        self._jumps = sorted((f.span(start)[0], round(f.value * TICK_HZ))
                             for f in by_kind["clock_jump"])
        self._low_battery = [(f.span(start)[0], f.value or LOW_BATTERY_FAULT_PCT)
                             for f in by_kind["low_battery"]]
        self._mtu23 = bool(by_kind["mtu23"])
        self._mtu = DEFAULT_MTU if self._mtu23 else STORAGE_MTU  # no central yet
        self._chances = {kind: by_kind[kind] for kind in _PROBABILITIES}

    # -- time ------------------------------------------------------------------------------------

    @property
    def _hz(self) -> float:
        """True rate (Hz) at which the drifting device samples."""
        return self._rate * (1.0 + self.config.drift_ppm * 1e-6)

    def _sample_time(self, k: int) -> float:
        """True UTC (Unix s) of sample ``k``."""
        return self.config.night_start + k / self._hz

    def _jump_ticks(self, t: float) -> int:
        """Ticks added to the counter by clock jumps up to ``t``."""
        return sum(ticks for at, ticks in self._jumps if at <= t)

    def _ticks_at(self, t: float) -> int:
        """Device tick counter at true UTC ``t`` (u32)."""
        elapsed = (t - self.config.night_start) * TICK_HZ * (1.0 + self.config.drift_ppm * 1e-6)
        return (self._ticks0 + math.floor(elapsed) + self._jump_ticks(t)) % U32

    def _sample_ticks(self, k: int) -> int:
        """Device tick counter when sample ``k`` was taken (u32), in exact integer arithmetic."""
        return (self._ticks0 + k * TICK_HZ // self._rate + self._jump_ticks(self._sample_time(k))
                ) % U32

    # -- schedule the BLE layer obeys ------------------------------------------------------------

    def reachable(self, now: float | None = None) -> bool:
        """Whether the sensor is in radio range at ``now`` (default: the clock's now)."""
        t = self.clock.now() if now is None else now
        return not _inside(self._unreachable, t)

    def next_reach_change(self, now: float | None = None) -> float | None:
        """Next sim UTC after ``now`` at which :meth:`reachable` changes, or None."""
        t = self.clock.now() if now is None else now
        return min((edge for span in self._unreachable for edge in span if edge > t),
                   default=None)

    def drop_times(self) -> list[float]:
        """Sim UTC times at which the BLE layer must drop the link, sorted."""
        return list(self._drops)

    # -- connection ------------------------------------------------------------------------------

    def connect(self, send: Send, reply: Send) -> None:
        """A central connected: notifications go to ``send``, control replies to ``reply``."""
        self._end_stream()
        self._link = _Link(send, reply)
        self._mtu = DEFAULT_MTU

    def disconnect(self) -> None:
        """The link is gone: streaming ends; sampling into flash goes on, in full packets."""
        self._end_stream()
        self._link = None
        self._mtu = DEFAULT_MTU if self._mtu23 else STORAGE_MTU

    def set_mtu(self, mtu: int) -> int:
        """The central exchanged the ATT MTU; returns the MTU in effect (23 under ``mtu23``)."""
        self._mtu = DEFAULT_MTU if self._mtu23 else min(max(int(mtu), DEFAULT_MTU), MAX_MTU)
        return self._mtu

    def _end_stream(self) -> None:
        self._streaming = False
        self._drop_held()

    def _drop_held(self) -> None:
        """Forget a live packet held back by `reorder`: it is lost (flash still has it)."""
        if self._held:
            self.stats.lost += 1
        self._held = []

    # -- sampling --------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Whether the night's samples have all been taken."""
        return self._taken >= len(self._accel)

    async def run(self) -> None:
        """Form packets as sim time passes (bursting when late) until the night's samples end."""
        while not self.finished:
            count = min(wire.max_samples(self._mtu), len(self._accel) - self._taken)
            due = self._sample_time(self._taken + count - 1)
            if self.clock.now() < due:
                await self.clock.sleep_until(due)
                continue
            await self._form_packet(count, due)
            await asyncio.sleep(0)
        await self._send_held()

    def _counts(self, first: int, count: int) -> np.ndarray:
        """int16 counts (count, 3) of samples ``first...``, at the range of their packet."""
        starts = [k for k, _ in self._ranges]
        counts_per_g = self._ranges[bisect_right(starts, first) - 1][1]
        return _to_counts(self._accel[first:first + count], counts_per_g)

    async def _form_packet(self, count: int, due: float) -> None:
        """Form the next packet (its last sample is due at ``due``), store it, send it live."""
        first = self._taken
        if self._ranges[-1][1] != self.counts_per_g:
            self._ranges.append((first, self.counts_per_g))
        counts = self._counts(first, count)
        flags = self._flags(counts, first, due)
        ticks = self._sample_ticks(first)
        capacity = max(1, math.ceil(self.config.flash_hours * 3600.0 * self._rate))
        seq = self._flash.append(first, count, ticks, flags, capacity)
        self._taken += count
        self.stats.formed += 1
        await self._send_live(wire.encode_packet(seq, ticks, counts, flags), due)

    def _flags(self, counts: np.ndarray, first: int, due: float) -> Flag:
        flags = Flag(0)
        if counts.min() <= INT16[0] or counts.max() >= INT16[1]:
            flags |= Flag.CLIPPED
        if self._battery_at(due) < LOW_BATTERY_PCT:
            flags |= Flag.LOW_BATTERY
        jumps = sum(1 for at, _ in self._jumps if at <= self._sample_time(first))
        if jumps > self._jumps_flagged:
            flags |= Flag.CLOCK_SET
            self._jumps_flagged = jumps
        return flags

    # -- live stream -----------------------------------------------------------------------------

    async def _send_live(self, packet: bytes, t: float) -> None:
        """Send a packet formed at ``t`` live, through the live faults."""
        link = self._link
        if link is None or not self._streaming:
            return
        if _inside(self._stalls, t) or not self.reachable(t):
            self.stats.withheld += 1
            return
        t_rel = t - self.config.night_start
        lose, corrupt, duplicate, reorder = self._rng.random(4) < [
            _active_probability(self._chances[kind], t_rel)
            for kind in ("lose", "corrupt", "duplicate", "reorder")
        ]
        if lose:
            self.stats.lost += 1
            return
        if corrupt:
            packet = self._corrupted(packet)
        copies = [packet, packet] if duplicate else [packet]
        self.stats.duplicated += int(duplicate)
        if reorder and not self._held:
            self.stats.reordered += 1
            self._held = copies
            return
        copies, self._held = copies + self._held, []
        await self._send_all(link, copies)

    def _corrupted(self, packet: bytes) -> bytes:
        """The packet with one byte flipped (after its CRC was computed)."""
        self.stats.corrupted += 1
        data = bytearray(packet)
        data[int(self._rng.integers(len(data)))] ^= int(self._rng.integers(1, 256))
        return bytes(data)

    async def _send_all(self, link: _Link, notifications: list[bytes]) -> None:
        for data in notifications:
            if self._link is not link:
                return
            await link.send(data)
            self.stats.sent_live += 1

    async def _send_held(self) -> None:
        """At the end of the night, send a packet still held back by `reorder`."""
        held, self._held = self._held, []
        if held and self._link is not None and self._streaming:
            await self._send_all(self._link, held)

    # -- control ---------------------------------------------------------------------------------

    async def control(self, data: bytes) -> None:
        """Handle one write to the control characteristic; reply through the connection."""
        link, data = self._link, bytes(data)
        try:
            op, args = wire.decode_command(data)
        except wire.WireError:
            opcode = data[0] & 0x7F if data else 0
            await self._reply(link, bytes([0x80 | opcode, Result.BAD_REQUEST]))
            return
        if op is Op.BACKFILL:
            result, payload = await self._backfill(link, *args), b""
        else:
            result, payload = self._command(op, args)
        await self._reply(link, wire.encode_reply(op, result, payload))

    async def _reply(self, link: _Link | None, data: bytes) -> None:
        if link is not None and self._link is link:
            await link.reply(data)

    def _command(self, op: Op, args: tuple[int, ...]) -> tuple[Result, bytes]:
        """Handle every opcode but BACKFILL: (result, reply payload)."""
        if op is Op.START:
            self._streaming = self._link is not None
        elif op is Op.STOP:
            self._end_stream()
        elif op is Op.SET_RATE:
            return self._set_rate(args[0]), b""
        elif op is Op.SET_RANGE:
            if args[0] not in COUNTS_PER_G:
                return Result.BAD_REQUEST, b""
            self._range_g = args[0]
        elif op is Op.TIME_SYNC:
            now_ticks = self._ticks_at(self.clock.now())
            return Result.OK, wire.TimeSyncReply(args[0], now_ticks).encode()
        else:
            self._erase()
        return Result.OK, b""

    def _set_rate(self, rate: int) -> Result:
        """Accept a new rate only before sampling starts: the night is rendered again at it."""
        if rate == self._rate:
            return Result.OK
        if rate not in RATES_HZ or self._taken or self.clock.now() >= self.config.night_start:
            return Result.BAD_REQUEST
        model = self._plan.legs[self.config.side]
        model = replace(model, fs=float(rate), n_samples=round(self._plan.duration_s * rate))
        self._accel = render_leg(model, self._plan.leg_seed(self.config.side))
        self._rate = rate
        return Result.OK

    def _erase(self) -> None:
        """Clear the flash: seq restarts at 0 in a new session (streaming goes on)."""
        self._drop_held()
        self._flash = _Flash()
        self.session = (self.session + 1) & 0xFFFF

    async def _backfill(self, link: _Link | None, first: int, last: int) -> Result:
        """Send packets ``first..last`` from flash with Flag.BACKFILL, as fast as send takes."""
        flash = self._flash
        if first > last or last >= flash.next_seq:
            return Result.BAD_REQUEST
        result = Result.OK if first >= flash.oldest else Result.NOT_IN_FLASH
        for seq in range(max(first, flash.oldest), last + 1):
            if link is None or self._link is not link or self._flash is not flash:
                return Result.NOT_IN_FLASH
            if not flash.holds(seq):  # overwritten while the backfill ran
                result = Result.NOT_IN_FLASH
                continue
            start, count, ticks, flags = flash.entry(seq)
            await link.send(wire.encode_packet(seq, ticks, self._counts(start, count),
                                               flags | Flag.BACKFILL))
            self.stats.backfilled += 1
            await asyncio.sleep(0)
        return result

    # -- state -----------------------------------------------------------------------------------

    @property
    def counts_per_g(self) -> int:
        """Scale of the packets formed from now on (set by the range)."""
        return COUNTS_PER_G[self._range_g]

    def _battery_at(self, t: float) -> float:
        """Battery level (%) at sim UTC ``t``."""
        cfg = self.config
        drain = 100.0 / (cfg.battery_hours * 3600.0)  # % per s
        level = cfg.battery_pct - drain * max(0.0, t - cfg.night_start)
        for at, low in self._low_battery:
            if t >= at:
                level = min(level, low - drain * (t - at))
        return min(100.0, max(0.0, level))

    def battery_pct(self) -> int:
        """Battery level now, whole %."""
        return round(self._battery_at(self.clock.now()))

    def status(self) -> Status:
        """What STATUS_CHAR reads now; an empty flash has ``oldest_seq == newest_seq + 1``."""
        return Status(
            side=self.config.side,
            counts_per_g=self.counts_per_g,
            rate_hz=self._rate,
            range_g=self._range_g,
            streaming=self._streaming,
            oldest_seq=self._flash.oldest,
            newest_seq=(self._flash.next_seq - 1) % U32,
            battery_pct=self.battery_pct(),
            session=self.session,
        )

    # -- truth -----------------------------------------------------------------------------------

    def _truth_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """int16 counts (n, 3) of every sample in a packet so far and counts/g per sample."""
        counts = np.empty((self._taken, 3), dtype=np.int16)
        scale = np.empty(self._taken, dtype=np.int64)
        edges = [k for k, _ in self._ranges[1:]] + [self._taken]
        for (start, counts_per_g), end in zip(self._ranges, edges, strict=True):
            counts[start:end] = _to_counts(self._accel[start:end], counts_per_g)
            scale[start:end] = counts_per_g
        return counts, scale

    def truth_samples(self) -> tuple[np.ndarray, np.ndarray]:
        """True UTC (float64, Unix s) and g (float32 (n, 3)) of every sample in a packet so far."""
        counts, scale = self._truth_counts()
        time = self.config.night_start + np.arange(self._taken) / self._hz
        return time, (counts / scale[:, None]).astype(np.float32)

    def write_truth_csv(self, path: Path) -> Path:
        """Write :meth:`truth_samples` as a contract CSV (``time,x,y,z``; 4 and 6 decimals)."""
        counts, scale = self._truth_counts()
        time = self.config.night_start + np.arange(self._taken) / self._hz
        columns = {"time": _format_time(time)}
        for j, axis in enumerate("xyz"):
            columns[axis] = _format_axis(counts[:, j], scale)
        path = Path(path)
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        with path.open("wb") as handle:
            handle.write(CSV_HEADER)
            pacsv.write_csv(pa.table(columns), handle, write_options=options)
        return path


def _to_counts(accel_g: np.ndarray, counts_per_g: int) -> np.ndarray:
    """``round(g * counts_per_g)`` clipped to int16."""
    counts = np.rint(accel_g.astype(np.float64) * counts_per_g)
    return np.clip(counts, *INT16).astype(np.int16)


def _format_time(time: np.ndarray) -> pa.Array:
    """Unix seconds as strings with TIME_DECIMALS decimals."""
    scale = 10**TIME_DECIMALS
    ticks = np.rint(time * scale).astype(np.int64)
    whole = pa.array(ticks // scale).cast(pa.string())
    return pc.binary_join_element_wise(whole, _FRACTIONS.take(pa.array(ticks % scale)), ".")


@cache
def _axis_strings(counts_per_g: int) -> pa.Array:
    """Every int16 count at this scale as g with AXIS_DECIMALS decimals, from -32768 up."""
    low, high = INT16
    return pa.array([f"{c / counts_per_g:.{AXIS_DECIMALS}f}" for c in range(low, high + 1)])


def _format_axis(counts: np.ndarray, scale: np.ndarray) -> pa.Array:
    """int16 counts at their per-sample counts/g as g strings (one lookup table per scale)."""
    index = counts.astype(np.int64) - INT16[0]
    cuts = np.flatnonzero(np.diff(scale)) + 1
    parts = [
        _axis_strings(int(s[0])).take(pa.array(i))
        for i, s in zip(np.split(index, cuts), np.split(scale, cuts), strict=True)
        if len(i)
    ]
    return pa.concat_arrays(parts) if parts else pa.array([], type=pa.string())
