"""Clock model acceptance, offline at real speed: simulated 10-h nights of a drifting device clock
with syncs, reconnects, live and backfilled packets and a clock jump, under three BLE delay
classes. `python tests/test_clock_offline.py [NIGHTS] [--syncs-only]` prints the error figures
(median and worst, live and after re-stamping) over more nights."""

from __future__ import annotations

import heapq
import math
import sys
from dataclasses import dataclass, field

import numpy as np
import pytest

from ingest.clock import WRAP, DeviceClock
from limbwatch.wire import TICK_HZ

T0 = 1795203000.0  # night start, host UTC
RATE = 50  # Hz, nominal
PER_PACKET = 38
SYNC_INTERVAL_S = 300.0
BURST = 8  # syncs at each (re)connect, back to back
HANDLING_S = (0.001, 0.010)  # device time from a request's arrival to its reply; the clock is
# read at a random point of it


@dataclass(frozen=True)
class Delays:
    """One-way BLE delays, drawn independently each way: uniform, plus rare stalls."""

    name: str
    low: float
    high: float
    stall_p: float = 0.0
    stall: tuple[float, float] = (0.5, 3.0)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        d = rng.uniform(self.low, self.high, n)
        stalled = rng.random(n) < self.stall_p
        return d + stalled * rng.uniform(*self.stall, n)


QUIET = Delays("a: 7.5-45 ms", 0.0075, 0.045)
BUSY = Delays("b: 30-150 ms", 0.030, 0.150)
STALLS = Delays("c: 50-300 ms, 2 % stalls", 0.050, 0.300, 0.02)
RESTAMP_LIMIT_S = {QUIET.name: 0.020, BUSY.name: 0.030, STALLS.name: 0.040}
LIVE_LIMIT_S = 0.100


@dataclass
class Device:
    """A drifting 32.768 kHz counter, u32, with jumps (UTC at, ticks added)."""

    ppm: float
    offset: int
    jumps: list[tuple[float, int]] = field(default_factory=list)

    def elapsed(self, t: float) -> float:
        return (t - T0) * TICK_HZ * (1 + self.ppm * 1e-6)

    def jumped(self, t: float) -> int:
        return sum(j for at, j in self.jumps if at <= t)

    def ticks_at(self, t: float) -> int:
        return (self.offset + math.floor(self.elapsed(t)) + self.jumped(t)) % WRAP

    def sample_time(self, k: int) -> float:
        return T0 + k / (RATE * (1 + self.ppm * 1e-6))

    def sample_ticks(self, k: int) -> int:
        return (self.offset + k * TICK_HZ // RATE + self.jumped(self.sample_time(k))) % WRAP


@dataclass
class Night:
    live: np.ndarray  # per packet: worst |error| of its samples, stamped as it arrived, s
    restamped: np.ndarray  # the same with the final model
    clock: DeviceClock
    device: Device
    ticks: np.ndarray  # per packet: first-sample ticks (u32)
    stamped: np.ndarray  # per packet: the live t0
    unstamped: int  # packets delivered but never stamped


def simulate(delays: Delays, seed: int, hours: float = 10.0, jump: str = "",
             arrivals: bool = True) -> Night:
    """One night fed to a DeviceClock in host-time order, as the gateway would. `jump`: "" (none),
    "live" (just before a periodic sync, so that sync reads the jumped clock before the CLOCK_SET
    packet arrives), "outage" (while disconnected: the reconnect burst reads the jumped clock,
    and the CLOCK_SET packet comes from flash after it)."""
    rng = np.random.default_rng(seed)
    device = Device(rng.uniform(-50, 50), int(rng.integers(WRAP)))
    end = T0 + hours * 3600
    outages = sorted(rng.uniform(T0 + 1800, end - 1800, 3))
    while min(np.diff(outages)) < 1800:  # apart, so that every stream lasts
        outages = sorted(rng.uniform(T0 + 1800, end - 1800, 3))
    connects = [T0] + [t + rng.uniform(30, 900) for t in outages]
    drops = [*outages, end]
    events: list[tuple[float, int, str, tuple[float, ...]]] = []  # (host time, order, kind, ...)
    order = iter(range(1 << 60))

    def sync_at(sent: float) -> float:
        up, down = delays.draw(rng, 2)
        handling = rng.uniform(*HANDLING_S)
        read = sent + up + rng.uniform(0, handling)
        received = sent + up + handling + down
        heapq.heappush(events, (received, next(order), "sync", (sent, read)))
        return received

    streams = []  # (streaming from, until)
    for start, stop in zip(connects, drops, strict=True):
        t = start
        for _ in range(BURST):
            t = sync_at(t) + 0.002
        streams.append((t, stop))
        s = t + SYNC_INTERVAL_S
        while s < stop - 5:
            sync_at(s)
            s += SYNC_INTERVAL_S
    if jump:
        at = streams[1][0] + 3 * SYNC_INTERVAL_S - 0.3 if jump == "live" else outages[1] + 10
        device.jumps.append((at, int(rng.choice([-1, 1]) * rng.uniform(10, 3600) * TICK_HZ)))
    n = int((end - T0) * RATE) // PER_PACKET
    first = device.sample_time(np.arange(n) * PER_PACKET)
    last = device.sample_time(np.arange(n) * PER_PACKET + PER_PACKET - 1)
    starts, stops = np.array(streams).T
    i = np.searchsorted(starts, last, side="right") - 1
    live = (i >= 0) & (last < stops[np.maximum(i, 0)])
    arrival = last + delays.draw(rng, n)
    for k in range(len(streams)):  # taken while disconnected or before streaming: from flash
        late = np.flatnonzero(~live & (i == k - 1))  # at the next connection, quickly
        arrival[late] += starts[k] + 0.02 + 0.0003 * np.arange(len(late)) - last[late]
    flagged = int(np.argmax(first >= device.jumps[0][0])) if jump else -1
    n = int(np.sum(i < len(streams) - 1) + np.sum(live & (i == len(streams) - 1)))
    events.extend((float(arrival[p]), next(order), "packet", (p, float(p == flagged)))
                  for p in range(n))
    heapq.heapify(events)

    clock = DeviceClock()
    ticks = np.array([device.sample_ticks(p * PER_PACKET) for p in range(n)], dtype=np.int64)
    stamped = np.full(n, np.nan)
    dts = np.full(n, np.nan)
    held: list[int] = []

    def stamp(p: int) -> None:
        stamped[p] = clock.to_utc(int(ticks[p]), p)
        dts[p] = clock.seconds_per_sample(RATE, p)

    while events:
        t, _, kind, data = heapq.heappop(events)
        if kind == "sync":
            sent, read = data
            clock.add_sync(device.ticks_at(read), sent, t)
            for p in held:
                stamp(p)
            held = []
            continue
        p, clock_set = int(data[0]), bool(data[1])
        if clock_set:
            clock.new_segment(p)
            sync_at(t + 0.01)  # the gateway asks for a sync at once
        if arrivals:
            clock.add_arrival(int(ticks[p]), p, t, PER_PACKET, RATE, live=bool(live[p]))
        if clock.ready_for(p):
            stamp(p)
        else:
            held.append(p)

    got = ~np.isnan(stamped)
    k = np.arange(n)[got] * PER_PACKET
    truth0 = device.sample_time(k)
    truth1 = device.sample_time(k + PER_PACKET - 1)
    live = _worst(stamped[got], dts[got], truth0, truth1)
    model = clock.model()
    t0 = np.array([model.to_utc(int(ticks[p]), p, near=stamped[p]) for p in np.flatnonzero(got)])
    dt = np.array([model.seconds_per_sample(RATE, p) for p in np.flatnonzero(got)])
    restamped = _worst(t0, dt, truth0, truth1)
    return Night(live, restamped, clock, device, ticks[got], stamped[got], int(np.sum(~got)))


def _worst(t0: np.ndarray, dt: np.ndarray, truth0: np.ndarray, truth1: np.ndarray) -> np.ndarray:
    """Worst |error| over a packet's samples: the error is linear in the sample index, so it is
    at the first or the last sample."""
    return np.maximum(np.abs(t0 - truth0), np.abs(t0 + (PER_PACKET - 1) * dt - truth1))


def _figures(night: Night) -> str:
    return (f"live median {np.median(night.live) * 1e3:.1f} ms, worst {night.live.max() * 1e3:.1f}"
            f" ms; re-stamped median {np.median(night.restamped) * 1e3:.1f} ms, worst "
            f"{night.restamped.max() * 1e3:.1f} ms")


def _bounds(night: Night) -> np.ndarray:
    """Per packet: the final model's error bound (`ClockSegment.bound`, vectorised), the larger
    at its first and last sample."""
    model = night.clock.model()
    out = np.empty(len(night.ticks))
    seqs = np.arange(len(night.ticks))
    for k, seg in enumerate(model.segments):
        mine = seqs >= seg.first_seq
        if k + 1 < len(model.segments):
            mine &= seqs < model.segments[k + 1].first_seq
        first = np.array([seg.unwrap(int(t), near) for t, near in
                          zip(night.ticks[mine], night.stamped[mine], strict=True)])
        offsets, slopes = np.array(seg.band).T
        for ticks in (first, first + (PER_PACKET - 1) * TICK_HZ // RATE):
            x = (ticks - seg.ticks0) / TICK_HZ
            bound = np.abs(offsets[:, None] + slopes[:, None] * x[None, :]).max(axis=0)
            out[mine] = np.maximum(out[mine] if ticks is not first else 0, bound + 1 / TICK_HZ)
    return out


@pytest.mark.parametrize("delays, jump", [(QUIET, ""), (BUSY, "live"), (STALLS, "outage")],
                         ids=["a", "b, clock jump", "c, clock jump in an outage"])
def test_a_night_stays_within_bounds_live_and_after_restamping(delays: Delays, jump: str) -> None:
    night = simulate(delays, 11, jump=jump)
    print(f"\n{delays.name}{', clock jump (' + jump + ')' if jump else ''}: {_figures(night)}")
    assert night.unstamped == 0 and len(night.live) > 47_300  # every packet stamped
    assert night.restamped.max() <= RESTAMP_LIMIT_S[delays.name]
    assert night.live.max() <= LIVE_LIMIT_S
    model = night.clock.model()
    assert len(model.segments) == (2 if jump else 1)
    assert all(s.consistent for s in model.segments)  # no post-jump reading in the old segment
    assert model.segments[-1].drift_ppm == pytest.approx(night.device.ppm, abs=0.5)
    assert np.all(night.restamped <= _bounds(night))  # the error bound holds
    assert len(night.clock.arrivals()) < 200  # of 47,000 packet bounds


def main(seeds: int = 12, arrivals: bool = True) -> None:
    """Print median and worst errors per delay class over `seeds` nights (a third without a
    clock jump, a third with one while connected, a third with one in an outage); `arrivals`
    False: from syncs alone, as a gateway that does not report packet arrivals."""
    for delays in (QUIET, BUSY, STALLS):
        nights = [simulate(delays, 100 + s, jump=("", "live", "outage")[s % 3],
                           arrivals=arrivals) for s in range(seeds)]
        live = np.concatenate([n.live for n in nights])
        restamped = np.concatenate([n.restamped for n in nights])
        print(f"{delays.name}: {seeds} nights{'' if arrivals else ', syncs only'}; live median "
              f"{np.median(live) * 1e3:.1f} ms, worst {live.max() * 1e3:.1f} ms; re-stamped "
              f"median {np.median(restamped) * 1e3:.1f} ms, worst {restamped.max() * 1e3:.1f} ms")


if __name__ == "__main__":  # python tests/test_clock_offline.py [NIGHTS] [--syncs-only]
    main(int(next((a for a in sys.argv[1:] if a.isdigit()), 12)),
         arrivals="--syncs-only" not in sys.argv)
