"""Map a sensor's 32.768 kHz ticks to UTC from hard bounds on its clock: one line per segment.

Bounds. A TIME_SYNC write sent at host time `sent`, whose reply carries the ticks the device read
while handling it and arrives at `received`, says sent <= UTC(ticks) <= received (the lower
bound less one tick, the counter's resolution). A data packet arriving at `arrival` says its last
sample was taken before: UTC(ticks of that sample) <= arrival. A slow exchange or a late packet
(a stall, a morning backfill) gives a loose bound, never a wrong one: nothing is filtered by
speed, so no quick burst can make later exchanges count for nothing.

Model. Within a segment the device clock runs at a constant rate: UTC = utc0 + b * (ticks -
ticks0), with its drift within +-MAX_DRIFT_PPM. The lines meeting every bound form a convex
polygon, the feasible set; the model is one of its lines:
- Rate. Packets delivered live (not from flash: the caller says which) and promptly (within
  PROMPT_S of the highest feasible line, which is never below the truth) trace the clock: the
  quickest deliveries lie on a line parallel to it, as the shortest BLE delay does not change.
  Once they span MIN_SLOPE_SPAN_S the rate is that of their lower envelope over its middle
  (the line under all of them touching them on both sides of the middle; a variant of Moon,
  Skelly and Towsley's 1999 skew estimate), which needs no noise model, only the quickest
  packets. With syncs alone, once they
  span MIN_SLOPE_SPAN_S, it is the mean rate over the feasible lines within +-PRIOR_PPM (if no
  line meets every bound: the rate that violates them least). Before that it is nominal: a
  connect burst seconds long says nothing about drift. The rate is then clipped to the feasible
  set's, so it cannot run away.
- Offset: centred, at that rate, between the tightest lower and the tightest upper bound. Its
  bias is half the difference between the quickest request-to-clock-read and the quickest
  sample-to-arrival delays, which a night of syncs and packets makes small.
Only the convex envelopes of the bounds can be active (the upper hull of the lower bounds, the
lower hull of the upper bounds), so only their vertices are kept: a few dozen per night, at most
MAX_ENVELOPE_POINTS, updated in O(1) amortised per live packet. The line is refitted when next
used, and only if a new bound cut the feasible set or moved the traced rate.

Error bound. The true line is one of the feasible ones, so the error at a tick is at most the
distance from the model to the farthest vertex line of the polygon there (plus a tick):
`error_bound_s`. It is smallest inside the span of the bounds and grows by up to MAX_DRIFT_PPM
outside it. It is a guarantee if the assumptions hold: the host clock is right and does not
step during a segment, the drift is constant and within MAX_DRIFT_PPM (a crystal's drift wanders
by a few ppm with temperature: 6 ppm over a night adds about 15 ms), the device reads its clock
between receiving a request and replying, and samples are taken before they are sent. Bounds
that contradict each other show that an assumption broke: the segment is then not `consistent`,
every bound is widened by the least violation that makes them agree, and the bound is an
estimate, no longer a guarantee.

Wraps and jumps. Ticks travel as u32 and wrap every 36.4 h. A sync or a packet bound is unwrapped
to the value nearest the model's prediction of the ticks at its host time, so any gap between
syncs is safe (the prediction is off by at most MAX_DRIFT_PPM of the gap: 29 s after 40 h). A
packet's ticks are unwrapped near the latest ticks seen (a packet is at most a flash's 14 h old)
or near a given UTC (`near`: the time stored with it). A device clock that was set or jumped
(packet flag CLOCK_SET) starts a new segment, found by packet sequence number. A sync or packet
bound that misses every feasible line by more than SUSPECT_MARGIN_S is held aside as a likely
reading of a jumped clock whose CLOCK_SET packet has not arrived yet (it may come from flash
after the connect burst); it moves to the new segment when that starts, and packets newer than
the last trusted one wait (`ready_for`). A run of SUSPECT_RUN such syncs is taken as it is.

Persistence: `syncs()` and `arrivals()` (the packet bounds on the envelopes: the others are
implied) restore the same model with `DeviceClock.restore`. `model()` gives a frozen,
serialisable `ClockModel` (per segment: ticks0, utc0, b, error bound, the feasible band) with
which stored ticks can be re-stamped.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from limbwatch.wire import TICK_HZ

WRAP = 1 << 32
TICK_S = 1.0 / TICK_HZ
MAX_DRIFT_PPM = 200.0  # the crystal's spec is +-50 ppm with temperature and ageing; 4x that
# still keeps a fitted rate from running away, and never excludes a sound clock
MIN_SLOPE_SPAN_S = 600.0  # fit a rate only once syncs (or prompt packets) span 10 min: before,
# bounds tens of ms wide say less about the rate (> 50 ppm) than the crystal's spec does
MAX_ENVELOPE_POINTS = 512  # per envelope; beyond, every other vertex is dropped (a valid bound
# dropped only loosens the model); a night's envelopes hold a few dozen
SUSPECT_MARGIN_S = 0.25  # a bound this far outside every feasible line is a post-jump reading
SUSPECT_RUN = 10  # consecutive suspect syncs then taken as they are: more than a connect burst
# (8) and a sync or two, as a CLOCK_SET packet may come from flash after the burst
PROMPT_S = 1.0  # a live packet later than this (its BLE delay is 0.01-0.3 s, stalls aside)
# waited in the sensor (a burst after a stall, a busy sensor catching up): a bound, not a trace
MAX_HELD = 1024  # arrivals held per segment before its first sync, or as suspects

_D_LO = 1.0 / (1.0 + MAX_DRIFT_PPM * 1e-6) - 1.0  # bounds of d, UTC s per device s minus 1
_D_HI = 1.0 / (1.0 - MAX_DRIFT_PPM * 1e-6) - 1.0
PRIOR_PPM = 100.0  # a rate from syncs alone is the mean over the feasible rates within this:
# twice the spec, as a prior ending at the spec pulls a clock near its edge inward (a 40 ppm
# clock read as 28-32 ppm under slow syncs)
_D_PRIOR_LO = 1.0 / (1.0 + PRIOR_PPM * 1e-6) - 1.0
_D_PRIOR_HI = 1.0 / (1.0 - PRIOR_PPM * 1e-6) - 1.0


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


@dataclass(frozen=True, slots=True)
class Arrival:
    """A packet bound: the sample at unwrapped `ticks` was taken before host UTC `arrival`."""

    seq: int
    ticks: int
    arrival: float
    prompt: bool = True  # delivered live and within PROMPT_S of every feasible line: it traces
    # the clock's rate; a packet from flash (backfill) or one that waited bounds it only


Raw = tuple[int, int, float, bool]  # a packet bound not yet placed on a segment's line: (seq,
# ticks32 of its last sample, arrival, prompt)


def _raw(a: Arrival) -> Raw:
    return (a.seq, a.ticks % WRAP, a.arrival, a.prompt)


@dataclass(frozen=True, slots=True)
class ClockSegment:
    """The fitted line of one clock segment: UTC = utc0 + b * (ticks - ticks0), unwrapped ticks.

    `band` holds the feasible polygon's vertex lines relative to this one, (offset at ticks0 s,
    rate difference s/s): the truth is within max |offset + rate * (ticks - ticks0) / TICK_HZ|
    (plus a tick) at any tick. `error_bound_s` is that bound's largest value over the ticks the
    segment has seen, [first_ticks, last_ticks]. A segment without syncs has `synced` False."""

    first_seq: int
    synced: bool
    ticks0: int = 0
    utc0: float = 0.0
    b: float = TICK_S
    first_ticks: int = 0
    last_ticks: int = 0
    consistent: bool = True
    error_bound_s: float = math.inf
    band: tuple[tuple[float, float], ...] = ()

    @property
    def a(self) -> float:
        """UTC of unwrapped tick 0, s (UTC = a + b * ticks)."""
        return self.utc0 - self.b * self.ticks0

    @property
    def drift_ppm(self) -> float:
        return (TICK_S / self.b - 1.0) * 1e6

    def unwrap(self, ticks32: int, near: float | None = None) -> int:
        """Unwrapped ticks: nearest the ticks at UTC `near` if given, else the latest seen."""
        if near is None:
            return unwrap(ticks32, self.last_ticks)
        return unwrap(ticks32, self.ticks0 + round((near - self.utc0) / self.b))

    def utc(self, ticks: int) -> float:
        """UTC (Unix s) of unwrapped `ticks`."""
        return self.utc0 + self.b * (ticks - self.ticks0)

    def bound(self, ticks: int) -> float:
        """Largest possible error (s) of `utc(ticks)` under the model's assumptions."""
        x = (ticks - self.ticks0) * TICK_S
        return max((abs(dc + dd * x) for dc, dd in self.band), default=math.inf) + TICK_S


@dataclass(frozen=True, slots=True)
class ClockModel:
    """A snapshot of a sensor session's clock model for re-stamping stored ticks; plain data
    (`as_dict`/`from_dict` for JSON)."""

    segments: tuple[ClockSegment, ...]
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(s.first_seq for s in self.segments))

    def segment(self, seq: int) -> ClockSegment:
        """The segment packet `seq` belongs to; LookupError if it has no syncs."""
        i = bisect.bisect_right(self._starts, seq) - 1
        if not self.segments or not self.segments[max(i, 0)].synced:
            raise LookupError("no time sync for this part of the device clock")
        return self.segments[max(i, 0)]

    def to_utc(self, ticks32: int, seq: int, near: float | None = None) -> float:
        """UTC (Unix s) of a device tick reading carried by packet `seq`; `near`: a UTC within
        18 h of it (e.g. the time stamped at ingest), to pick its u32 wrap."""
        seg = self.segment(seq)
        return seg.utc(seg.unwrap(ticks32, near))

    def seconds_per_sample(self, rate_hz: float, seq: int) -> float:
        return self.segment(seq).b * TICK_HZ / rate_hz

    def error_bound_s(self, ticks32: int, seq: int, near: float | None = None) -> float:
        seg = self.segment(seq)
        return seg.bound(seg.unwrap(ticks32, near))

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (an unbounded error as None)."""
        return {"segments": [
            {**asdict(s), "error_bound_s": s.error_bound_s if math.isfinite(s.error_bound_s)
             else None} for s in self.segments]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClockModel:
        return cls(tuple(ClockSegment(**{
            **s, "band": tuple((float(o), float(r)) for o, r in s["band"]),
            "error_bound_s": math.inf if s["error_bound_s"] is None else s["error_bound_s"]})
            for s in data["segments"]))


class _Envelope:
    """The convex chain of bound points that can be active: for upper bounds (the line passes
    below them) their lower hull, for lower bounds their upper hull. Sorted by x."""

    __slots__ = ("sign", "tags", "thinned", "xs", "ys")

    def __init__(self, upper_bounds: bool) -> None:
        self.sign = 1.0 if upper_bounds else -1.0  # ys hold sign * y: always a lower hull
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.tags: list[Arrival | None] = []
        self.thinned = False  # set when bounds were dropped to stay within the cap

    def add(self, x: float, y: float, tag: Arrival | None) -> bool:
        """Add a bound; False if the others imply it (it is then forgotten)."""
        y *= self.sign
        xs, ys, tags = self.xs, self.ys, self.tags
        i = bisect.bisect_left(xs, x)
        if i < len(xs) and xs[i] == x:
            if ys[i] <= y:
                return False
            del xs[i], ys[i], tags[i]
        elif 0 < i < len(xs):
            x0, y0, x1, y1 = xs[i - 1], ys[i - 1], xs[i], ys[i]
            if (y - y0) * (x1 - x0) >= (y1 - y0) * (x - x0):
                return False  # on or above the chord of its neighbours
        xs.insert(i, x)
        ys.insert(i, y)
        tags.insert(i, tag)
        while i >= 2 and _turn(xs[i - 2], ys[i - 2], xs[i - 1], ys[i - 1], x, y) <= 0:
            del xs[i - 1], ys[i - 1], tags[i - 1]
            i -= 1
        while i + 2 < len(xs) and _turn(x, y, xs[i + 1], ys[i + 1], xs[i + 2], ys[i + 2]) <= 0:
            del xs[i + 1], ys[i + 1], tags[i + 1]
        if len(xs) > MAX_ENVELOPE_POINTS:
            keep = [*range(0, len(xs) - 1, 2), len(xs) - 1]
            self.xs, self.ys, self.tags = ([v[k] for k in keep] for v in (xs, ys, tags))
            self.thinned = True
        return True

    def middle_slope(self) -> float | None:
        """Slope of the chain's edge over the middle of its x range: the supporting line of the
        bounds there (None with fewer than two points)."""
        xs, ys = self.xs, self.ys
        if len(xs) < 2:
            return None
        i = min(bisect.bisect_right(xs, (xs[0] + xs[-1]) / 2) - 1, len(xs) - 2)
        return self.sign * (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array(self.xs), self.sign * np.array(self.ys)


def _turn(x0: float, y0: float, x1: float, y1: float, x2: float, y2: float) -> float:
    """> 0 when (x0, y0) -> (x1, y1) -> (x2, y2) turns left (convex from below)."""
    return (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)


def _candidates(xl: np.ndarray, yl: np.ndarray, xu: np.ndarray, yu: np.ndarray,
                lo: float, hi: float) -> np.ndarray:
    """Slopes where the margin's piecewise-linear pieces meet (edges of both chains) in
    [lo, hi], with lo and hi: the margin is linear between them."""
    edges = [np.diff(y) / np.diff(x) for x, y in ((xl, yl), (xu, yu)) if len(x) > 1]
    d = np.concatenate([[lo, hi], *edges])
    return np.unique(d[(d >= lo) & (d <= hi)])


def _sides(xl: np.ndarray, yl: np.ndarray, xu: np.ndarray, yu: np.ndarray,
           d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each slope in `d`: the highest line offset below every upper bound, and the lowest
    above every lower bound."""
    top = (yu[None, :] - d[:, None] * xu[None, :]).min(axis=1)
    bottom = (yl[None, :] - d[:, None] * xl[None, :]).max(axis=1)
    return top, bottom


class _Polygon:
    """The feasible lines y = c + d * x: for each of the sorted `slopes`, offsets from `bottom`
    to `top` (linear in between), every bound widened by `widen` on each side."""

    def __init__(self, slopes: np.ndarray, top: np.ndarray, bottom: np.ndarray, widen: float,
                 bounds: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
        self.slopes = slopes
        self.top = top + widen
        self.bottom = bottom - widen
        self.widen = widen
        self.bounds = bounds  # xl, yl, xu, yu
        self.offsets = np.concatenate([self.top, self.bottom])  # vertex lines
        self.vertex_slopes = np.concatenate([slopes, slopes])
        self._top = list(zip(self.top.tolist(), slopes.tolist(), strict=True))
        self._bottom = list(zip(self.bottom.tolist(), slopes.tolist(), strict=True))

    @property
    def consistent(self) -> bool:
        return self.widen == 0.0

    def mean_slope(self, lo: float, hi: float) -> float | None:
        """The mean slope over the polygon's area with slopes in [lo, hi] (None if it has no
        area there): top and bottom are linear between slopes, so Simpson's rule is exact."""
        s = self.slopes
        lo, hi = max(lo, float(s[0])), min(hi, float(s[-1]))
        if not hi > lo:
            return None
        s = np.unique(np.concatenate([[lo, hi], s[(s > lo) & (s < hi)]]))
        mid = (s[:-1] + s[1:]) / 2
        top, bottom = _sides(*self.bounds, s)
        w = top - bottom + 2 * self.widen
        top, bottom = _sides(*self.bounds, mid)
        wm = top - bottom + 2 * self.widen
        step = np.diff(s) / 6
        area = float(np.sum(step * (w[:-1] + 4 * wm + w[1:])))
        if not area > 0:
            return None
        return float(np.sum(step * (s[:-1] * w[:-1] + 4 * mid * wm + s[1:] * w[1:]))) / area

    def cut_by(self, x: float, y: float, upper: bool) -> bool:
        """Whether a new bound at (x, y) excludes some of these lines (the highest lie on the
        top chain, the lowest on the bottom one)."""
        if upper:
            return max(c + d * x for c, d in self._top) > y
        return min(c + d * x for c, d in self._bottom) < y


class _Segment:
    """One stretch of the device clock without jumps: its bounds and fitted line.

    Coordinates: x = (ticks - ticks0) / TICK_HZ device seconds since the first sync, y = UTC -
    utc_ref - x; the line is y = c + d * x."""

    def __init__(self, first_seq: int) -> None:
        self.first_seq = first_seq
        self.syncs: list[Sync] = []
        self.ticks0 = 0
        self.utc_ref = 0.0
        self.first_ticks = self.last_ticks = 0
        self.lower = _Envelope(upper_bounds=False)
        self.upper = _Envelope(upper_bounds=True)
        self.trace = _Envelope(upper_bounds=True)  # live packet bounds only: for the rate
        self.span = (math.inf, -math.inf)  # x of the first and last sync
        self.traced: float | None = None  # the rate the last fit took from the packets
        self.c = self.d = 0.0
        self.dirty = True
        self._polygon: _Polygon | None = None
        self.held: deque[Raw] = deque(maxlen=MAX_HELD)  # before a sync
        self.suspect_arrivals: deque[Raw] = deque(maxlen=MAX_HELD)
        self.suspect_syncs: list[Sync] = []
        self.newest_seq = -1  # the newest packet taken as a bound
        self.trusted_seq = -1  # the newest packet before the pending suspect syncs
        self.forced_from: int | None = None  # index of the first sync taken despite suspicion

    # -- adding bounds ---------------------------------------------------------------------------

    def predict_ticks(self, utc: float) -> int:
        """Unwrapped ticks at host UTC `utc` by the current line (refitted or not)."""
        x = (utc - self.utc_ref - self.c) / (1.0 + self.d)
        return self.ticks0 + round(x * TICK_HZ)

    def add_sync(self, ticks32: int, sent: float, received: float) -> Sync:
        if not self.syncs:
            sync = Sync(ticks32, sent, received)
            self.insert_sync(sync)
            held, self.held = list(self.held), deque(maxlen=MAX_HELD)
            for raw in held:
                self.add_arrival(*raw)
            return sync
        sync = Sync(unwrap(ticks32, self.predict_ticks((sent + received) / 2)), sent, received)
        x = (sync.ticks - self.ticks0) * TICK_S
        if self._suspect(x, sent - TICK_S - self.utc_ref - x, received - self.utc_ref - x):
            if not self.suspect_syncs:
                self.trusted_seq = self.newest_seq
            self.suspect_syncs.append(sync)
            if len(self.suspect_syncs) >= SUSPECT_RUN:
                if self.forced_from is None:
                    self.forced_from = len(self.syncs)
                for s in self.suspect_syncs:
                    self.insert_sync(s)
                self.suspect_syncs = []
            return sync
        self.suspect_syncs = []  # readings this sync contradicts were not a jump
        self.insert_sync(sync)
        return sync

    def insert_sync(self, sync: Sync) -> None:
        if not self.syncs:
            self.ticks0, self.utc_ref = sync.ticks, sync.sent
            self.first_ticks = self.last_ticks = sync.ticks
        self.syncs.append(sync)
        x = (sync.ticks - self.ticks0) * TICK_S
        self._seen(sync.ticks)
        span = self.span[1] - self.span[0]
        self.span = (min(self.span[0], x), max(self.span[1], x))
        if (span < MIN_SLOPE_SPAN_S) != (self.span[1] - self.span[0] < MIN_SLOPE_SPAN_S):
            self.dirty = True
        self._bound(self.lower, x, sync.sent - TICK_S - self.utc_ref - x, None)
        self._bound(self.upper, x, sync.received - self.utc_ref - x, None)

    def add_arrival(self, seq: int, ticks32: int, arrival: float, prompt: bool) -> None:
        """A packet whose sample at `ticks32` (u32) was taken before host UTC `arrival`."""
        if not self.syncs:
            self.held.append((seq, ticks32, arrival, prompt))
            return
        ticks = unwrap(ticks32, self.predict_ticks(arrival))
        x = (ticks - self.ticks0) * TICK_S
        y = arrival - self.utc_ref - x
        if self.c + self.d * x - y > SUSPECT_MARGIN_S and self._suspect(x, None, y):
            self.suspect_arrivals.append((seq, ticks32, arrival, prompt))
            return
        self.insert_arrival(Arrival(seq, ticks, arrival, prompt and y - self._top(x) <= PROMPT_S))

    def insert_arrival(self, a: Arrival) -> None:
        self.newest_seq = max(self.newest_seq, a.seq)
        x = (a.ticks - self.ticks0) * TICK_S
        self._seen(a.ticks)
        y = a.arrival - self.utc_ref - x
        self._bound(self.upper, x, y, a)
        if a.prompt and self.trace.add(x, y, a) and not self.dirty:
            self.dirty = self._traced() != self.traced

    def _top(self, x: float) -> float:
        """The highest feasible line at x: never below the truth, so a packet judged late
        against it is late (judged against the fitted line, a line off by more than PROMPT_S
        would count every packet late, and the rate they trace could never correct it)."""
        poly = self.polygon()
        return float((poly.offsets + poly.vertex_slopes * x).max())

    def _seen(self, ticks: int) -> None:
        self.first_ticks = min(self.first_ticks, ticks)
        self.last_ticks = max(self.last_ticks, ticks)

    def _bound(self, env: _Envelope, x: float, y: float, tag: Arrival | None) -> None:
        if not env.add(x, y, tag):
            return
        poly = self._polygon
        if poly is None or env.thinned or poly.cut_by(x, y, env.sign > 0):
            self._polygon = None  # (a thinned envelope lost bounds: refit too)
            self.dirty = True
            env.thinned = False

    def _suspect(self, x: float, lower: float | None, upper: float | None) -> bool:
        """Whether a bound misses every feasible line by more than SUSPECT_MARGIN_S."""
        line = self.c + self.d * x
        if (lower is None or lower - line <= SUSPECT_MARGIN_S) and (
                upper is None or line - upper <= SUSPECT_MARGIN_S):
            return False
        poly = self.polygon()
        values = poly.offsets + poly.vertex_slopes * x
        return bool((lower is not None and lower - values.max() > SUSPECT_MARGIN_S)
                    or (upper is not None and values.min() - upper > SUSPECT_MARGIN_S))

    # -- fitting ---------------------------------------------------------------------------------

    def fit(self) -> None:
        """The line (see module docstring), if a bound changed it."""
        if not self.dirty or not self.syncs:
            return
        poly = self.polygon()
        self.traced = self._traced()
        slope = self.traced
        if slope is None and self.span[1] - self.span[0] >= MIN_SLOPE_SPAN_S:
            if not poly.consistent:
                slope = self._least_violating()  # the bounds disagree: violate them least
            else:
                slope = poly.mean_slope(_D_PRIOR_LO, _D_PRIOR_HI)
                if slope is None:
                    slope = poly.mean_slope(_D_LO, _D_HI)
        self.d = min(max(slope or 0.0, float(poly.slopes[0])), float(poly.slopes[-1]))
        self.c = self._centre(self.d)
        self.dirty = False

    def _traced(self) -> float | None:
        """The rate the live packets trace, once they span MIN_SLOPE_SPAN_S: the slope of
        their envelope's edge over its middle (their quickest deliveries follow the clock)."""
        xs = self.trace.xs
        if len(xs) > 1 and xs[-1] - xs[0] >= MIN_SLOPE_SPAN_S:
            return self.trace.middle_slope()
        return None

    def _least_violating(self) -> float:
        """The slope of the widest band between the bounds (the least violation if negative),
        the middle one if several are as wide."""
        xl, yl = self.lower.arrays()
        xu, yu = self.upper.arrays()
        d = _candidates(xl, yl, xu, yu, _D_LO, _D_HI)
        top, bottom = _sides(xl, yl, xu, yu, d)
        width = top - bottom
        level = d[width >= width.max() - 1e-9]
        return float(level[0] + level[-1]) / 2

    def _centre(self, slope: float) -> float:
        """The offset centred between the bounds for this slope."""
        xl, yl = self.lower.arrays()
        xu, yu = self.upper.arrays()
        top, bottom = _sides(xl, yl, xu, yu, np.array([slope]))
        return float(top[0] + bottom[0]) / 2

    def polygon(self) -> _Polygon:
        """The lines meeting every bound, over the full drift range (cached until a bound cuts
        it); if none do, those within twice the least possible violation of every bound."""
        if self._polygon is not None:
            return self._polygon
        xl, yl = self.lower.arrays()
        xu, yu = self.upper.arrays()
        d = _candidates(xl, yl, xu, yu, _D_LO, _D_HI)
        top, bottom = _sides(xl, yl, xu, yu, d)
        margin = top - bottom
        best = float(margin.max())
        widen = 0.0 if best >= 0 else -best  # on each side: the band then is |best| wide
        margin += 2 * widen
        inside = np.flatnonzero(margin >= 0)
        i, j = int(inside[0]), int(inside[-1])
        ends = []
        for k, n in ((i, i - 1), (j, j + 1)):  # where the margin reaches 0 between candidates
            if 0 <= n < len(d) and margin[k] > 0:
                ends.append(d[k] + (d[n] - d[k]) * margin[k] / (margin[k] - margin[n]))
        slopes = np.unique(np.concatenate([d[i:j + 1], ends]))
        self._polygon = _Polygon(slopes, *_sides(xl, yl, xu, yu, slopes), widen,
                                 (xl, yl, xu, yu))
        return self._polygon

    # -- reading ---------------------------------------------------------------------------------

    def utc(self, ticks: int) -> float:
        self.fit()
        return self.utc_ref + self.c + (1.0 + self.d) * ((ticks - self.ticks0) * TICK_S)

    def snapshot(self) -> ClockSegment:
        if not self.syncs:
            return ClockSegment(self.first_seq, synced=False)
        self.fit()
        poly = self.polygon()
        band = tuple(zip((poly.offsets - self.c).tolist(), (poly.vertex_slopes - self.d).tolist(),
                         strict=True))
        seg = ClockSegment(
            self.first_seq, True, self.ticks0, self.utc_ref + self.c, (1.0 + self.d) * TICK_S,
            self.first_ticks, self.last_ticks, poly.consistent, math.inf, band)
        return replace(seg, error_bound_s=max(seg.bound(self.first_ticks),
                                              seg.bound(self.last_ticks)))

    def arrivals(self) -> list[Arrival]:
        """The packet bounds on either envelope (the others are implied by them)."""
        kept = {id(t): t for t in (*self.upper.tags, *self.trace.tags) if t is not None}
        return sorted(kept.values(), key=lambda a: (a.seq, a.arrival))

    def split(self, first_seq: int) -> tuple[_Segment, list[Sync], list[Raw]]:
        """After a clock jump at packet `first_seq`: this segment without what belongs after it
        (suspect and forced syncs, arrivals of packets >= first_seq), and those syncs and raw
        arrivals."""
        cut = len(self.syncs) if self.forced_from is None else self.forced_from
        after = self.syncs[cut:] + self.suspect_syncs
        queued = [*self.held, *self.suspect_arrivals]
        kept = [a for a in self.arrivals() if a.seq < first_seq]
        raw = [_raw(a) for a in self.arrivals() if a.seq >= first_seq]
        raw += [r for r in queued if r[0] >= first_seq]
        if not after and not raw:
            return self, [], []
        fresh = _Segment(self.first_seq)
        for s in self.syncs[:cut]:
            fresh.insert_sync(s)
        if fresh.syncs and fresh.ticks0 == self.ticks0:
            for a in kept:
                fresh.insert_arrival(a)
        else:
            fresh.held.extend(_raw(a) for a in kept)
        fresh.held.extend(r for r in self.held if r[0] < first_seq)
        fresh.suspect_arrivals.extend(r for r in self.suspect_arrivals if r[0] < first_seq)
        return fresh, after, raw


class DeviceClock:
    """The clock model of one sensor session (see module docstring)."""

    def __init__(self) -> None:
        self._segments: list[_Segment] = []
        self._starts: list[int] = []

    @property
    def ready(self) -> bool:
        return bool(self._segments and self._segments[-1].syncs)

    @property
    def drift_ppm(self) -> float:
        """The device clock's rate error, ppm (positive: it runs fast); latest segment."""
        if not self.ready:
            return 0.0
        seg = self._segments[-1]
        seg.fit()
        return (1.0 / (1.0 + seg.d) - 1.0) * 1e6

    def new_segment(self, first_seq: int) -> None:
        """The device clock jumped at packet `first_seq`: later packets need new syncs. Syncs
        and packet bounds already taken that belong after the jump move to the new segment."""
        if first_seq in self._starts:
            return
        i = bisect.bisect_right(self._starts, first_seq)
        seg = _Segment(first_seq)
        syncs: list[Sync] = []
        raw: list[Raw] = []
        if i > 0:
            self._segments[i - 1], syncs, raw = self._segments[i - 1].split(first_seq)
        self._segments.insert(i, seg)
        self._starts.insert(i, first_seq)
        for s in syncs:
            seg.add_sync(s.ticks % WRAP, s.sent, s.received)
        for r in raw:
            seg.add_arrival(*r)

    def add_sync(self, ticks32: int, sent: float, received: float) -> Sync:
        """A TIME_SYNC exchange: written at host UTC `sent`, the reply with the device's ticks
        (u32) received at `received`. Returns it with the ticks unwrapped."""
        if not self._segments:
            self.new_segment(0)
        return self._segments[-1].add_sync(int(ticks32), float(sent), float(received))

    def add_arrival(self, ticks32: int, seq: int, arrival: float, n_samples: int = 1,
                    rate_hz: float | None = None, *, live: bool = True) -> None:
        """Packet `seq`, first sample at device `ticks32` (u32), `n_samples` at nominal
        `rate_hz`, arrived at host UTC `arrival`: live (it traces the rate) or, `live` False,
        from flash (a bound only)."""
        if not self._segments:
            self.new_segment(0)
        last = ticks32
        if n_samples > 1:
            if rate_hz is None:
                raise ValueError("rate_hz is needed for a packet of several samples")
            last = (ticks32 + round((n_samples - 1) * TICK_HZ / rate_hz)) % WRAP
        self._segment(seq).add_arrival(int(seq), int(last), float(arrival), live)

    def unwrapped(self, ticks32: int, seq: int, near: float | None = None) -> int:
        """The unwrapped ticks of a reading carried by packet `seq`: the ticks that `to_utc`
        maps and `model()` re-stamps (nearest the latest seen, or the ticks at UTC `near`)."""
        seg = self._synced(seq)
        seg.fit()
        return unwrap(ticks32, seg.last_ticks if near is None else seg.predict_ticks(near))

    def to_utc(self, ticks32: int, seq: int, near: float | None = None) -> float:
        """UTC (Unix s) of a device tick reading carried by packet `seq`."""
        return self._synced(seq).utc(self.unwrapped(ticks32, seq, near))

    def error_bound_s(self, ticks32: int, seq: int, near: float | None = None) -> float:
        """Largest possible error (s) of `to_utc` for this reading (see module docstring)."""
        seg = self._synced(seq).snapshot()
        return seg.bound(seg.unwrap(ticks32, near))

    def seconds_per_sample(self, rate_hz: float, seq: int) -> float:
        """UTC seconds between two samples at the device's nominal `rate_hz`."""
        seg = self._segment(seq)
        seg.fit()
        return (1.0 + seg.d) / rate_hz

    def ready_for(self, seq: int) -> bool:
        """Whether packet `seq` can be stamped now: its segment has syncs, and no pending
        suspect sync (a likely clock jump whose CLOCK_SET packet has not arrived) makes a packet
        newer than those before it doubtful; hold such packets until the next sync."""
        if not self._segments:
            return False
        seg = self._segment(seq)
        return bool(seg.syncs) and not (seg.suspect_syncs and seq > seg.trusted_seq)

    def model(self) -> ClockModel:
        """A frozen snapshot of every segment, to re-stamp stored ticks."""
        return ClockModel(tuple(seg.snapshot() for seg in self._segments))

    def _segment(self, seq: int) -> _Segment:
        i = bisect.bisect_right(self._starts, seq) - 1
        return self._segments[max(i, 0)]

    def _synced(self, seq: int) -> _Segment:
        seg = self._segment(seq) if self._segments else None
        if seg is None or not seg.syncs:
            raise LookupError("no time sync yet for this part of the device clock")
        return seg

    def syncs(self) -> list[tuple[int, Sync]]:
        """(segment first seq, sync) pairs, to persist and restore the model."""
        return [(seg.first_seq, s) for seg in self._segments for s in seg.syncs]

    def arrivals(self) -> list[tuple[int, Arrival]]:
        """(segment first seq, packet bound) pairs still on the envelopes, to persist."""
        return [(seg.first_seq, a) for seg in self._segments for a in seg.arrivals()]

    @classmethod
    def restore(cls, syncs: Iterable[tuple[int, Sync]],
                arrivals: Iterable[tuple[int, Arrival]] = ()) -> DeviceClock:
        clock = cls()
        for first_seq, s in syncs:
            if first_seq not in clock._starts:
                clock.new_segment(first_seq)
            clock._segments[clock._starts.index(first_seq)].insert_sync(s)
        for first_seq, a in arrivals:
            if first_seq in clock._starts:
                seg = clock._segments[clock._starts.index(first_seq)]
                if seg.syncs:
                    seg.insert_arrival(a)
        return clock
