"""Map a sensor's 32.768 kHz ticks to UTC, with its drift, from time-sync exchanges.

A sync is a TIME_SYNC write sent at host time `sent` whose reply, carrying the device's ticks at
the moment it handled the request, arrives at `received`. The device read its clock somewhere in
between; the midpoint is the estimate and half the round trip its uncertainty. The model is a
weighted least-squares line UTC = a + b * ticks over the syncs, weights 1 / RTT^2 (a quick
exchange says more), after dropping exchanges slower than `MAX_RTT_FACTOR` x the median. With
one sync the slope is nominal (no drift known yet). Over a night at +-50 ppm a fixed slope would
be off by up to 1.8 s; the fitted line is off by the midpoint noise averaged over the syncs.

Ticks travel as u32 and wrap every 36.4 h: `unwrap` picks the unwrapped value nearest a reference.
A device clock that was set or jumped (packet flag CLOCK_SET) starts a new segment; packets are
mapped with the segment their sequence number falls in.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from limbwatch.wire import TICK_HZ

WRAP = 1 << 32
MAX_RTT_FACTOR = 2.0


def unwrap(ticks32: int, reference: int) -> int:
    """The value congruent to `ticks32` mod 2**32 nearest to `reference` (an unwrapped tick)."""
    return reference + ((ticks32 - reference + WRAP // 2) % WRAP) - WRAP // 2


@dataclass(frozen=True, slots=True)
class Sync:
    ticks: int  # unwrapped device ticks in the reply
    sent: float  # host UTC, s
    received: float  # host UTC, s

    @property
    def rtt(self) -> float:
        return self.received - self.sent

    @property
    def mid(self) -> float:
        return (self.sent + self.received) / 2


@dataclass(slots=True)
class Segment:
    """One stretch of the device clock without jumps: its syncs and the fitted line."""

    first_seq: int
    syncs: list[Sync] = field(default_factory=list)
    a: float = 0.0  # UTC of tick 0, s
    b: float = 1.0 / TICK_HZ  # s per tick

    def fit(self) -> None:
        s = self.syncs
        rtt = np.array([x.rtt for x in s])
        keep = rtt <= MAX_RTT_FACTOR * max(float(np.median(rtt)), 1e-6)
        ticks = np.array([x.ticks for x in s], dtype=np.float64)[keep]
        mid = np.array([x.mid for x in s])[keep]
        w = 1.0 / np.maximum(rtt[keep], 1e-4) ** 2
        if len(ticks) < 2 or np.ptp(ticks) < TICK_HZ:
            self.b = 1.0 / TICK_HZ
            self.a = float(np.average(mid - self.b * ticks, weights=w))
            return
        t0 = float(np.average(ticks, weights=w))
        m0 = float(np.average(mid, weights=w))
        dt = ticks - t0
        self.b = float(np.sum(w * dt * (mid - m0)) / np.sum(w * dt * dt))
        self.a = m0 - self.b * t0


class DeviceClock:
    """The clock model of one sensor session (see module docstring)."""

    def __init__(self) -> None:
        self._segments: list[Segment] = []
        self._starts: list[int] = []
        self._reference: int | None = None

    @property
    def ready(self) -> bool:
        return bool(self._segments and self._segments[-1].syncs)

    @property
    def drift_ppm(self) -> float:
        """The device clock's rate error, ppm (positive: it runs fast)."""
        if not self.ready:
            return 0.0
        return (1.0 / (self._segments[-1].b * TICK_HZ) - 1.0) * 1e6

    def new_segment(self, first_seq: int) -> None:
        """The device clock jumped at packet `first_seq`: later packets need new syncs."""
        self._segments.append(Segment(first_seq))
        self._starts.append(first_seq)
        self._reference = None

    def add_sync(self, ticks32: int, sent: float, received: float) -> Sync:
        if not self._segments:
            self.new_segment(0)
        seg = self._segments[-1]
        if self._reference is None:
            self._reference = ticks32
        sync = Sync(unwrap(ticks32, self._reference), sent, received)
        self._reference = sync.ticks
        seg.syncs.append(sync)
        seg.fit()
        return sync

    def to_utc(self, ticks32: int, seq: int) -> float:
        """UTC (Unix s) of a device tick reading carried by packet `seq`."""
        seg = self._segment(seq)
        if not seg.syncs:
            raise LookupError("no time sync yet for this part of the device clock")
        reference = seg.syncs[-1].ticks
        return seg.a + seg.b * unwrap(ticks32, reference)

    def seconds_per_sample(self, rate_hz: float, seq: int) -> float:
        """UTC seconds between two samples at the device's nominal `rate_hz`."""
        return self._segment(seq).b * TICK_HZ / rate_hz

    def ready_for(self, seq: int) -> bool:
        return bool(self._segments) and bool(self._segment(seq).syncs)

    def _segment(self, seq: int) -> Segment:
        i = bisect.bisect_right(self._starts, seq) - 1
        return self._segments[max(i, 0)]

    def syncs(self) -> list[tuple[int, Sync]]:
        """(segment first seq, sync) pairs, to persist and restore the model."""
        return [(seg.first_seq, s) for seg in self._segments for s in seg.syncs]

    @classmethod
    def restore(cls, syncs: list[tuple[int, Sync]]) -> DeviceClock:
        clock = cls()
        for first_seq, s in syncs:
            if not clock._starts or clock._starts[-1] != first_seq:
                clock.new_segment(first_seq)
            clock._segments[-1].syncs.append(s)
            clock._reference = s.ticks
        for seg in clock._segments:
            if seg.syncs:
                seg.fit()
        return clock
