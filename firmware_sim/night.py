"""Compose a simulated night: schedule events from scenario + seed, render each leg, build truth.

Steps (each random component has its own stream derived from the seed, so changing, say, the jerk
rate of a scenario does not move its PLM series):

1. **Sleep architecture**: awake during the sleep-onset latency, then sleep with wake bouts, then a
   final awakening. Awake periods are filled with dense voluntary movement (exponential quiet gaps
   of mean ~10 s, never more than ``quiet_max_s``), some of which leave a new posture.
2. **Blocks that later events avoid**: non-wear episodes (with their take-off and put-back
   movements), scheduled tremor episodes, and long calm stretches in sleep (30-70 min in which no
   leg moves at all, so that non-wear detectors can be tested against a motionless child).
3. **Events in sleep**: boundary cases, posture shifts (every 20-60 min, both legs usually),
   PLM series, isolated / long / weak LMs, brief jerks, random jitteriness bouts.
   Events on one leg never overlap and keep at least 1.5 s of rest between them (0.8 s between
   deliberate boundary cases). A candidate that does not fit is moved or dropped, so the truth is
   always what was actually rendered. Events that a leg without a sensor would make are dropped
   (a one-sensor night's truth holds only what that sensor could see).
4. **Rendering** per leg with :func:`firmware_sim.motion.render_leg` (continuous, quantised), then
   **radio delivery**: packets of ``packet_samples`` lost independently with ``packet_loss``,
   disconnections removing whole packet-aligned spans, optional timestamp jitter (Gaussian,
   clipped to +-0.45 sample so rows stay in order). Missing samples are simply absent.
5. **Truth**: events (one per leg), non-wear and gap intervals, and a 30-s epoch string: ``W`` if
   at least half the epoch is awake, else ``S``; ``N`` if no leg has worn, delivered data for at
   least half of it. Non-wear is the time the sensor lies still off the ankle, between the end of
   the take-off movement and the start of the put-back movement.

Times inside the planner are seconds since the start of the recording; everything exposed in
:class:`Truth` and :class:`LegSignal` is Unix seconds. ``duration_h`` may shorten a night: counts
per night scale with its length, times given as ``at_h`` scale proportionally, and long durations
(onset latency, non-wear, tremor, calm stretches, disconnections) are clipped to a share of it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from firmware_sim.motion import (
    JERK_BAND_HZ,
    LM_BAND_HZ,
    Breathing,
    LegModel,
    Movement,
    Tremor,
    lying_gravity,
    random_unit,
    render_leg,
    surface_gravity,
    tremor_mean_frequency,
)
from firmware_sim.scenario import JerkSpec, PlmSpec, Scenario
from limbwatch.recording import Side, as_side

Interval = tuple[float, float]

DEFAULT_START = 1795203000.0  # Unix s
EPOCH_S = 30.0
REST_S = 1.5  # minimum rest between two events on one leg
BOUNDARY_REST_S = 0.8
LM_MIN_S = 0.5
LM_AMPLITUDE_G = (0.04, 0.35)  # log-uniform
WEAK_NOISE_FACTOR = (2.5, 3.5)  # weak LM amplitude = factor * sigma_axis * sqrt(3)
LM_SWING_DEG = (3.0, 20.0)
WEAK_SWING_DEG = (0.3, 1.0)
WAKE_SWING_DEG = (5.0, 30.0)
JERK_SWING_DEG = (1.0, 5.0)
BILATERAL_ONSET_S = 0.3  # onsets of the two legs of a bilateral LM differ by at most this
POSTURE_DEG = (20.0, 90.0)
POSTURE_DURATION_S = (2.0, 6.0)
POSTURE_AMPLITUDE_G = (0.1, 0.5)
POSTURE_BOTH_LEGS_P = 0.8
TRANSITION_S = (1.0, 3.0)  # taking the sensor off / putting it back
TRANSITION_AMPLITUDE_G = (0.3, 1.0)
TREMOR_AMPLITUDE_G = (0.03, 0.2)
TREMOR_DRIFT_PERIOD_S = (20.0, 120.0)
TREMOR_AM_PERIOD_S = (5.0, 30.0)
BREATH_AMPLITUDE_G = (0.0015, 0.003)
INFANT_BREATH_HZ = (0.5, 0.8)  # age < 12 months
CHILD_BREATH_HZ = (0.25, 0.45)
BREATH_DRIFT_PERIOD_S = (300.0, 1800.0)
WAKE_DURATION_SIGMA = 0.8  # lognormal shape of wake movement durations
PLACEMENT_TRIES = 30

_STREAMS = (
    "architecture",
    "nonwear",
    "tremor",
    "calm",
    "boundary",
    "posture",
    "plm",
    "wake",
    "isolated",
    "jerks",
    "bouts",
    "legs",
    "disconnect",
    "settling",
    "clusters",
)


@dataclass(frozen=True, slots=True)
class TrueEvent:
    """One scheduled event on one leg (a bilateral event appears once per leg)."""

    start: float  # Unix s
    end: float  # Unix s
    side: Side
    kind: str  # "lm" (>= 0.5 s), "jerk" (< 0.5 s), "tremor"
    source: str  # plm, isolated, weak, posture, wake, startle, boundary, tremor, nonwear_transition
    weak: bool = False  # LM amplitude near the noise floor
    frequency_hz: float | None = None  # tremor only, mean over the episode

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {
            "start": self.start,
            "end": self.end,
            "side": self.side,
            "kind": self.kind,
            "source": self.source,
            "weak": self.weak,
            "frequency_hz": self.frequency_hz,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrueEvent:
        """Inverse of :meth:`to_json`."""
        freq = d.get("frequency_hz")
        return cls(
            start=float(d["start"]),
            end=float(d["end"]),
            side=as_side(str(d["side"])),
            kind=str(d["kind"]),
            source=str(d["source"]),
            weak=bool(d.get("weak", False)),
            frequency_hz=None if freq is None else float(freq),
        )


@dataclass(frozen=True, slots=True)
class LegSignal:
    """What one ankle sensor delivered."""

    side: Side
    fs: float  # nominal sample rate, Hz
    time: np.ndarray  # float64 Unix s of the delivered samples (gaps removed)
    accel: np.ndarray  # float32 (n, 3) in g, quantised and clipped
    counts_per_g: int
    range_g: float
    nonwear: list[Interval]  # true off-ankle intervals, Unix s
    gaps: list[Interval]  # intervals without delivered samples, Unix s


@dataclass(frozen=True, slots=True)
class Truth:
    """Ground truth of a simulated night."""

    scenario: str
    seed: int
    age_months: float
    start: float  # Unix s, recording span
    end: float
    epochs: str  # one char per 30-s epoch from start: S sleep, W wake, N no worn data
    events: list[TrueEvent]  # sorted by start
    nonwear: dict[str, list[Interval]]
    gaps: dict[str, list[Interval]]
    sleep_onset: float | None = None  # Unix s: the child falls asleep for the first time
    settling: list[Interval] = field(default_factory=list)  # rhythmic kicking while awake
    clusters: list[Interval] = field(default_factory=list)  # jerk clusters: first onset, last end

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able dict (times as Unix seconds)."""
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "age_months": self.age_months,
            "start": self.start,
            "end": self.end,
            "epoch_s": EPOCH_S,
            "epochs": self.epochs,
            "events": [e.to_json() for e in self.events],
            "nonwear": {k: [list(iv) for iv in v] for k, v in self.nonwear.items()},
            "gaps": {k: [list(iv) for iv in v] for k, v in self.gaps.items()},
            "sleep_onset": self.sleep_onset,
            "settling": [list(iv) for iv in self.settling],
            "clusters": [list(iv) for iv in self.clusters],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Truth:
        """Inverse of :meth:`to_json`."""

        def intervals(m: dict[str, Any]) -> dict[str, list[Interval]]:
            return {k: [(float(a), float(b)) for a, b in v] for k, v in m.items()}

        return cls(
            scenario=str(d["scenario"]),
            seed=int(d["seed"]),
            age_months=float(d["age_months"]),
            start=float(d["start"]),
            end=float(d["end"]),
            epochs=str(d["epochs"]),
            events=[TrueEvent.from_json(e) for e in d["events"]],
            nonwear=intervals(d["nonwear"]),
            gaps=intervals(d["gaps"]),
            sleep_onset=None if d.get("sleep_onset") is None else float(d["sleep_onset"]),
            settling=[(float(a), float(b)) for a, b in d.get("settling", [])],
            clusters=[(float(a), float(b)) for a, b in d.get("clusters", [])],
        )


@dataclass(frozen=True, slots=True)
class SimulatedNight:
    """Delivered signals and ground truth."""

    truth: Truth
    legs: dict[str, LegSignal]  # "left"/"right"; one-sensor scenarios have one key


@dataclass(frozen=True, slots=True)
class NightPlan:
    """A scheduled night before rendering and radio delivery (times in s since ``start``)."""

    scenario: Scenario
    seed: int
    start: float  # Unix s
    duration_s: float
    wake: tuple[Interval, ...]
    legs: dict[str, LegModel]
    events: tuple[TrueEvent, ...]  # Unix s, sorted
    nonwear: dict[str, tuple[Interval, ...]]
    outages: dict[str, tuple[Interval, ...]]  # radio disconnections
    settling: tuple[Interval, ...] = ()  # Unix s: rhythmic kicking while awake
    clusters: tuple[Interval, ...] = ()  # Unix s: jerk clusters in sleep

    def leg_seed(self, side: str) -> np.random.SeedSequence:
        """Seed of the random parts of one leg's rendering."""
        return np.random.SeedSequence(self.seed, spawn_key=(1, _side_index(side)))

    def delivery_seed(self, side: str) -> np.random.SeedSequence:
        """Seed of one leg's packet loss and timestamp jitter."""
        return np.random.SeedSequence(self.seed, spawn_key=(2, _side_index(side)))


@dataclass(frozen=True, slots=True)
class _Item:
    """A scheduled event on one leg."""

    side: str
    source: str
    body: Movement | Tremor
    weak: bool = False


@dataclass(frozen=True, slots=True)
class _PlannedLm:
    """An LM of a group before placement (onset relative to the group's start, s)."""

    onset: float
    side: str
    duration: float
    bilateral: bool
    bounds: tuple[float, float]  # duration range of the other leg's half


class _Occupancy:
    """Busy intervals of one leg (s), sorted and disjoint."""

    __slots__ = ("_ends", "_starts")

    def __init__(self) -> None:
        self._starts: list[float] = []
        self._ends: list[float] = []

    def is_free(self, start: float, end: float, rest: float) -> bool:
        i = bisect.bisect_left(self._starts, end + rest)
        return i == 0 or self._ends[i - 1] + rest <= start

    def add(self, start: float, end: float) -> None:
        i = bisect.bisect_left(self._starts, start)
        self._starts.insert(i, start)
        self._ends.insert(i, end)


def _side_index(side: str) -> int:
    return ("left", "right").index(side)


def _other_side(side: str) -> str:
    return "right" if side == "left" else "left"


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def merge_intervals(intervals: list[Interval]) -> list[Interval]:
    """Sorted union of intervals."""
    out: list[Interval] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def subtract_intervals(base: list[Interval], holes: list[Interval]) -> list[Interval]:
    """Parts of ``base`` (sorted, disjoint) outside every hole."""
    out: list[Interval] = []
    merged = merge_intervals(holes)
    for s, e in base:
        cur = s
        for hs, he in merged:
            if he <= cur or hs >= e:
                continue
            if hs > cur:
                out.append((cur, hs))
            cur = max(cur, he)
        if cur < e:
            out.append((cur, e))
    return out


def coverage(intervals: list[Interval], edges: np.ndarray) -> np.ndarray:
    """Length (s) of the union of ``intervals`` inside each bin ``[edges[k], edges[k+1])``."""
    merged = merge_intervals(intervals)
    if not merged:
        return np.zeros(len(edges) - 1)
    iv = np.asarray(merged, dtype=np.float64)
    s, e = iv[:, 0], iv[:, 1]
    before = np.concatenate(([0.0], np.cumsum(e - s)))
    k = np.searchsorted(s, edges, side="right") - 1
    kk = np.maximum(k, 0)
    upto = np.where(k >= 0, before[kk] + np.clip(edges - s[kk], 0.0, e[kk] - s[kk]), 0.0)
    return np.diff(upto)


def epoch_string(
    duration_s: float, wake: list[Interval], missing_per_leg: list[list[Interval]]
) -> str:
    """One char per 30-s epoch: N if every leg misses >= half of it, else W if >= half awake, S."""
    n = max(1, math.ceil(duration_s / EPOCH_S - 1e-9))
    edges = np.minimum(np.arange(n + 1) * EPOCH_S, duration_s)
    length = np.maximum(np.diff(edges), 1e-9)
    state = np.where(coverage(wake, edges) / length >= 0.5, "W", "S")
    no_data = np.ones(n, dtype=bool)
    for missing in missing_per_leg:
        no_data &= coverage(missing, edges) / length >= 0.5
    state[no_data] = "N"
    return "".join(state.tolist())


def delivery_mask(
    n: int,
    fs: float,
    packet_samples: int,
    packet_loss: float,
    outages: tuple[Interval, ...],
    rng: np.random.Generator,
) -> np.ndarray:
    """Boolean (n,): samples that reach the receiver (lost packets and outages removed)."""
    n_packets = -(-n // packet_samples)
    kept = rng.random(n_packets) >= packet_loss
    for start, end in outages:
        p0 = math.floor(start * fs / packet_samples)
        p1 = math.ceil(end * fs / packet_samples)
        kept[max(p0, 0) : max(p1, 0)] = False
    return np.repeat(kept, packet_samples)[:n]


def missing_runs(delivered: np.ndarray, fs: float) -> list[Interval]:
    """Runs of undelivered samples as ``[first missing, next delivered)`` in s (nominal grid)."""
    flips = np.diff((~delivered).astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(flips == 1)
    ends = np.flatnonzero(flips == -1)
    return [(float(a) / fs, float(b) / fs) for a, b in zip(starts, ends, strict=True)]


class _Planner:
    """Schedules one night; every ``schedule_*`` step adds items and busy intervals."""

    def __init__(self, scenario: Scenario, seed: int, duration_s: float) -> None:
        self.scn = scenario
        self.duration = duration_s
        self.scale = duration_s / (scenario.duration_h * 3600.0)
        self.sides = scenario.sides
        self.noise = {s.side: s.noise_g for s in scenario.sensors}
        self.busy = {side: _Occupancy() for side in self.sides}
        self.items: list[_Item] = []
        self.rng = {
            name: np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, i)))
            for i, name in enumerate(_STREAMS)
        }
        self.wake: list[Interval] = []
        self.sleep: list[Interval] = []
        self.calm: list[Interval] = []
        self.nonwear: dict[str, list[Interval]] = {side: [] for side in self.sides}
        self.settling_periods: list[Interval] = []  # wake filled by settling, not ordinary wake
        self.kicking: list[Interval] = []  # first kick onset to last kick end per period
        self.clusters: list[Interval] = []
        self._last_cluster: list[_Item] = []

    # -- helpers ---------------------------------------------------------------------------

    @property
    def sleep_hours(self) -> float:
        return sum(e - s for s, e in self.sleep) / 3600.0

    @property
    def quiet_sleep(self) -> list[Interval]:
        """Sleep outside the calm stretches: where sleep events may go."""
        return subtract_intervals(self.sleep, self.calm)

    def count(self, rng: np.random.Generator, bounds: tuple[int, int]) -> int:
        """A per-night count drawn from ``bounds``, scaled to this night's length."""
        x = int(rng.integers(bounds[0], bounds[1] + 1)) * self.scale
        return math.floor(x) + int(rng.random() < x - math.floor(x))

    def at(self, at_h: float) -> float:
        """A scenario time (hours into the scenario's own night) scaled to this night, s."""
        return at_h / self.scn.duration_h * self.duration

    def sample_start(
        self, rng: np.random.Generator, regions: list[Interval], span: float
    ) -> float | None:
        """A start time such that ``[start, start + span]`` lies inside one region."""
        room = np.array([max(e - s - span, 0.0) for s, e in regions])
        if room.sum() <= 0.0:
            return None
        k = int(rng.choice(len(regions), p=room / room.sum()))
        return regions[k][0] + float(rng.uniform(0.0, room[k]))

    def present(self, items: list[_Item]) -> list[_Item]:
        """Items on legs that carry a sensor."""
        return [it for it in items if it.side in self.busy]

    def fits(self, items: list[_Item], rest: float) -> bool:
        return all(
            it.body.start >= 0.0
            and it.body.end <= self.duration
            and self.busy[it.side].is_free(it.body.start, it.body.end, rest)
            for it in items
        )

    def commit(self, items: list[_Item]) -> None:
        for it in items:
            self.busy[it.side].add(it.body.start, it.body.end)
        self.items.extend(items)

    def place(self, items: list[_Item], rest: float = REST_S) -> bool:
        """Commit ``items`` (on present legs) if they all fit; items of a group must not overlap."""
        items = self.present(items)
        if not items or not self.fits(items, rest):
            return False
        self.commit(items)
        return True

    def place_somewhere(
        self,
        rng: np.random.Generator,
        regions: list[Interval],
        span: float,
        build: Callable[[float], list[_Item]],
        rest: float = REST_S,
    ) -> bool:
        """Try random starts in ``regions`` for a group built by ``build(start)``."""
        for _ in range(PLACEMENT_TRIES):
            t = self.sample_start(rng, regions, span)
            if t is None:
                return False
            if self.place(build(t), rest):
                return True
        return False

    def lm(
        self,
        rng: np.random.Generator,
        side: str,
        duration: float,
        weak: bool,
        source: str,
        start: float,
    ) -> _Item:
        """A leg movement on one leg."""
        if weak:
            amp = rng.uniform(*WEAK_NOISE_FACTOR) * self.noise.get(side, 0.0) * math.sqrt(3.0)
            swing = rng.uniform(*WEAK_SWING_DEG)
        else:
            amp = _log_uniform(rng, LM_AMPLITUDE_G)
            swing = rng.uniform(*LM_SWING_DEG)
        body = Movement(
            start=start,
            end=start + duration,
            amplitude_g=float(amp),
            band_hz=LM_BAND_HZ,
            swing_axis=random_unit(rng),
            swing_deg=float(swing),
        )
        return _Item(side, source, body, weak)

    def lm_group(
        self, rng: np.random.Generator, lm: _PlannedLm, weak_p: float, source: str, start: float
    ) -> list[_Item]:
        """An LM on ``lm.side`` at ``start``, plus the other leg's half when bilateral."""
        items = [self.lm(rng, lm.side, lm.duration, rng.random() < weak_p, source, start)]
        if lm.bilateral:
            onset = start + rng.uniform(-BILATERAL_ONSET_S, BILATERAL_ONSET_S)
            other = float(np.clip(lm.duration * rng.uniform(0.7, 1.3), *lm.bounds))
            weak = rng.random() < weak_p
            items.append(self.lm(rng, _other_side(lm.side), other, weak, source, onset))
        return items

    def lm_sequence(
        self,
        rng: np.random.Generator,
        lms: list[_PlannedLm],
        weak_p: float,
        source: str,
        start: float,
    ) -> list[_Item]:
        """LMs (and their bilateral halves) at ``start + lm.onset``."""
        items: list[_Item] = []
        for lm in lms:
            items += self.lm_group(rng, lm, weak_p, source, start + lm.onset)
        return items

    def random_side(self, rng: np.random.Generator) -> str:
        return str(rng.choice(self.sides))

    # -- schedule --------------------------------------------------------------------------

    def schedule_architecture(self) -> None:
        rng, spec, d = self.rng["architecture"], self.scn.sleep, self.duration
        onset = min(rng.uniform(*spec.onset_latency_min) * 60.0, 0.15 * d)
        final = min(rng.uniform(*spec.final_wake_min) * 60.0, 0.10 * d)
        first, last = onset, d - final
        margin = min(300.0, 0.05 * (last - first))
        bouts: list[Interval] = []
        for _ in range(self.count(rng, spec.wake_bouts)):
            length = min(rng.uniform(*spec.wake_bout_min) * 60.0, 0.1 * d)
            for _ in range(PLACEMENT_TRIES):
                lo, hi = first + margin, last - margin - length
                if hi <= lo:
                    break
                t = float(rng.uniform(lo, hi))
                if all(t + length + margin <= s or t >= e + margin for s, e in bouts):
                    bouts.append((t, t + length))
                    break
        self.wake = merge_intervals([(0.0, onset), *bouts, (last, d)])
        self.sleep = subtract_intervals([(0.0, d)], self.wake)

    def schedule_nonwear(self) -> None:
        rng, d = self.rng["nonwear"], self.duration
        for spec in self.scn.nonwear:
            off_s = rng.uniform(*TRANSITION_S)
            on_s = rng.uniform(*TRANSITION_S)
            length = min(rng.uniform(*spec.duration_min) * 60.0, 0.35 * d)
            span = off_s + length + on_s
            surface, leg = surface_gravity(rng), lying_gravity(rng)
            amps = [rng.uniform(*TRANSITION_AMPLITUDE_G) for _ in range(2)]
            wanted = [self.at(spec.at_h)] if spec.at_h is not None else []
            tries = wanted + [rng.uniform(0.2 * d, max(0.2 * d, 0.8 * d - span)) for _ in range(9)]
            for t0 in tries:
                t0 = float(min(max(t0, 0.0), d - span))
                if t0 < 0.0 or not self.busy[spec.side].is_free(t0, t0 + span, REST_S):
                    continue
                t_on = t0 + off_s + length
                off = Movement(t0, t0 + off_s, amps[0], LM_BAND_HZ, target=surface)
                on = Movement(t_on, t_on + on_s, amps[1], LM_BAND_HZ, target=leg)
                self.items += [
                    _Item(spec.side, "nonwear_transition", off),
                    _Item(spec.side, "nonwear_transition", on),
                ]
                self.busy[spec.side].add(t0, t0 + span)
                self.nonwear[spec.side].append((t0 + off_s, t_on))
                break

    def tremor_items(
        self,
        rng: np.random.Generator,
        sides: list[str],
        length: float,
        f0: float,
        start: float,
    ) -> list[_Item]:
        """One tremor episode on ``sides``: shared frequency profile, own direction/amplitude."""
        drift_period = rng.uniform(*TREMOR_DRIFT_PERIOD_S)
        drift_phase = rng.uniform(0.0, 2.0 * math.pi)
        items = []
        for side in sides:
            body = Tremor(
                start=start,
                end=start + length,
                frequency_hz=f0,
                amplitude_g=float(rng.uniform(*TREMOR_AMPLITUDE_G)),
                direction=random_unit(rng),
                drift_period_s=float(drift_period),
                drift_phase=float(drift_phase),
                am_period_s=float(rng.uniform(*TREMOR_AM_PERIOD_S)),
                am_phase=float(rng.uniform(0.0, 2.0 * math.pi)),
                phase0=float(rng.uniform(0.0, 2.0 * math.pi)),
            )
            items.append(_Item(side, "tremor", body))
        return items

    def schedule_tremor_episodes(self) -> None:
        rng, d = self.rng["tremor"], self.duration
        for spec in self.scn.tremor.episodes:
            length = min(rng.uniform(*spec.duration_s), 0.25 * d)
            f0 = float(rng.uniform(*spec.frequency_hz))
            sides = list(self.sides) if spec.side == "bilateral" else [spec.side]
            wanted = [self.at(spec.at_h)] if spec.at_h is not None else []
            tries = wanted + [rng.uniform(0.0, d - length) for _ in range(PLACEMENT_TRIES)]
            for t0 in tries:
                t = float(min(max(t0, 0.0), d - length))
                if self.place(self.tremor_items(rng, sides, length, f0, t)):
                    break

    def schedule_calm(self) -> None:
        rng, spec = self.rng["calm"], self.scn.sleep
        for _ in range(self.count(rng, spec.calm_stretches)):
            length = min(rng.uniform(*spec.calm_stretch_min) * 60.0, 0.3 * self.duration)
            for _ in range(PLACEMENT_TRIES):
                t = self.sample_start(rng, self.quiet_sleep, length)
                if t is None:
                    break
                if all(b.is_free(t, t + length, REST_S) for b in self.busy.values()):
                    self.calm = merge_intervals([*self.calm, (t, t + length)])
                    for b in self.busy.values():
                        b.add(t, t + length)
                    break

    def schedule_boundary(self) -> None:
        """LM durations and IMIs right around the scoring limits; bilateral offset-to-onset gaps."""
        spec, rng = self.scn.boundary, self.rng["boundary"]
        if spec is None:
            return
        regions = self.quiet_sleep
        for duration in spec.lm_durations_s:
            for _ in range(spec.lm_repeats):
                lm = _PlannedLm(0.0, self.random_side(rng), duration, False, (duration, duration))
                build = partial(self.lm_sequence, rng, [lm], 0.0, "boundary")
                self.place_somewhere(rng, regions, duration, build, BOUNDARY_REST_S)
        for imi in spec.series_imis_s:
            for _ in range(spec.series_repeats):
                side = self.random_side(rng)
                top = max(0.6, min(3.0, imi - BOUNDARY_REST_S - 0.2))
                lms = [
                    _PlannedLm(
                        k * imi, side, float(rng.uniform(min(1.0, top), top)), False, (top, top)
                    )
                    for k in range(spec.series_lms)
                ]
                build = partial(self.lm_sequence, rng, lms, 0.0, "boundary")
                span = lms[-1].onset + lms[-1].duration
                self.place_somewhere(rng, regions, span, build, BOUNDARY_REST_S)
        if len(self.sides) < 2:
            return
        for gap in spec.bilateral_gaps_s:
            for _ in range(spec.bilateral_repeats):
                side = self.random_side(rng)
                d1, d2 = float(rng.uniform(1.0, 3.0)), float(rng.uniform(1.0, 3.0))
                lms = [
                    _PlannedLm(0.0, side, d1, False, (d1, d1)),
                    _PlannedLm(d1 + gap, _other_side(side), d2, False, (d2, d2)),
                ]
                build = partial(self.lm_sequence, rng, lms, 0.0, "boundary")
                self.place_somewhere(rng, regions, d1 + gap + d2, build, BOUNDARY_REST_S)

    def posture_items(self, rng: np.random.Generator, start: float, source: str) -> list[_Item]:
        """A posture shift: usually both legs, each turned 20-90 deg about a random axis."""
        first = self.random_side(rng)
        sides = [first]
        if rng.random() < POSTURE_BOTH_LEGS_P:
            sides.append(_other_side(first))
        items = []
        for k, side in enumerate(sides):
            onset = start + (rng.uniform(-1.0, 1.0) if k else 0.0)
            body = Movement(
                start=onset,
                end=onset + rng.uniform(*POSTURE_DURATION_S),
                amplitude_g=_log_uniform(rng, POSTURE_AMPLITUDE_G),
                band_hz=LM_BAND_HZ,
                turn_axis=random_unit(rng),
                turn_deg=float(rng.uniform(*POSTURE_DEG)),
            )
            items.append(_Item(side, source, body))
        return items

    def schedule_posture(self) -> None:
        rng, spec = self.rng["posture"], self.scn.sleep
        regions = self.quiet_sleep
        t = rng.uniform(*spec.posture_interval_min) * 60.0
        while t < self.duration:
            if any(s + 10.0 <= t <= e - 10.0 for s, e in regions):
                items = self.posture_items(rng, t, "posture")
                for shift in range(6):
                    if self.place([_shifted(it, 10.0 * shift) for it in items]):
                        break
            t += rng.uniform(*spec.posture_interval_min) * 60.0

    def schedule_plm(self) -> None:
        spec, rng = self.scn.plm, self.rng["plm"]
        if spec is None:
            return
        weights = np.array([spec.left_p, spec.right_p, spec.bilateral_p, spec.alternating_p])
        weights /= weights.sum()
        x = spec.series_per_hour * self.sleep_hours
        for _ in range(math.floor(x) + int(rng.random() < x - math.floor(x))):
            n = int(rng.integers(spec.lms_per_series[0], spec.lms_per_series[1] + 1))
            gaps = [*_draw_imis(rng, spec, n - 1), math.inf]
            onset, previous = 0.0, self.random_side(rng)
            lms = []
            for gap in gaps:
                mode = ("left", "right", "bilateral", "alternating")[int(rng.choice(4, p=weights))]
                side = {"alternating": _other_side(previous), "bilateral": previous}.get(mode, mode)
                top = min(spec.duration_s[1], gap - REST_S - 2.0 * BILATERAL_ONSET_S)
                bounds = (min(spec.duration_s[0], top), top)
                duration = _log_uniform(rng, bounds) if bounds[0] < bounds[1] else bounds[0]
                lms.append(_PlannedLm(onset, side, duration, mode == "bilateral", bounds))
                onset += gap
                previous = side
            build = partial(self.lm_sequence, rng, lms, spec.weak_p, "plm")
            span = lms[-1].onset + spec.duration_s[1] + 1.0
            self.place_somewhere(rng, self.quiet_sleep, span, build)

    def schedule_wake(self) -> None:
        rng, spec = self.rng["wake"], self.scn.wake
        for start, end in subtract_intervals(self.wake, self.settling_periods):
            t = start + rng.uniform(0.0, 5.0)
            while True:
                x = spec.duration_median_s * math.exp(WAKE_DURATION_SIGMA * rng.standard_normal())
                duration = float(np.clip(x, *spec.duration_s))
                if t + duration > end:
                    break
                first = self.random_side(rng)
                sides = [first]
                if rng.random() < spec.both_legs_p:
                    sides.append(_other_side(first))
                turn = rng.random() < spec.posture_p
                for k, side in enumerate(sides):
                    onset = max(start, t + (rng.uniform(-0.5, 0.5) if k else 0.0))
                    length = duration * (rng.uniform(0.6, 1.2) if k else 1.0)
                    body = Movement(
                        start=onset,
                        end=min(onset + max(length, 0.6), end),
                        amplitude_g=_log_uniform(rng, spec.amplitude_g),
                        band_hz=LM_BAND_HZ,
                        swing_axis=random_unit(rng),
                        swing_deg=float(rng.uniform(*WAKE_SWING_DEG)),
                        turn_axis=random_unit(rng),
                        turn_deg=float(rng.uniform(*POSTURE_DEG)) if turn else 0.0,
                    )
                    self.place([_Item(side, "wake", body)])
                gap = min(rng.exponential(spec.gap_mean_s), spec.quiet_max_s)
                t += duration + max(REST_S, gap)

    def schedule_settling(self) -> None:
        """Sleep-onset latency (and the end of some wake bouts) as RLS-like settling.

        Kicks come every ``kick_interval_s`` (onset to onset), now and then a pause; fussing
        movements (ordinary wake movements) fall between them wherever they fit.
        """
        spec, rng = self.scn.settling, self.rng["settling"]
        if spec is None or not self.wake:
            return
        first_sleep = self.sleep[0][0] if self.sleep else self.duration
        periods = [(s, e) for s, e in self.wake if s <= 0.0 and e <= first_sleep + 1e-9]
        for s, e in self.wake:
            if s > 0.0 and e < self.duration and rng.random() < spec.after_wake_p:
                periods.append((max(s, e - rng.uniform(*spec.after_wake_min) * 60.0), e))
        wake_spec = self.scn.wake
        for start, end in periods:
            self.settling_periods.append((start, end))
            t = start + rng.uniform(5.0, 20.0)
            kicks: list[Interval] = []
            while True:
                duration = _log_uniform(rng, spec.kick_duration_s)
                if t + duration > end - 2.0:
                    break
                first = self.random_side(rng)
                sides = [first, _other_side(first)] if rng.random() < spec.both_legs_p else [first]
                amp = _log_uniform(rng, spec.kick_amplitude_g)
                items = []
                for k, side in enumerate(sides):
                    onset = t + (rng.uniform(0.0, BILATERAL_ONSET_S) if k else 0.0)
                    body = Movement(
                        start=onset,
                        end=min(onset + duration * (rng.uniform(0.8, 1.2) if k else 1.0), end),
                        amplitude_g=amp * (rng.uniform(0.7, 1.3) if k else 1.0),
                        band_hz=LM_BAND_HZ,
                        swing_axis=random_unit(rng),
                        swing_deg=float(rng.uniform(*WAKE_SWING_DEG)),
                    )
                    items.append(_Item(side, "settling", body))
                if self.place(items):
                    kicks.append((t, max(it.body.end for it in items if it.side in self.busy)))
                gap = rng.uniform(*spec.kick_interval_s)
                if rng.random() < spec.pause_p:
                    gap += rng.uniform(*spec.pause_s)
                t += gap
            if kicks:
                self.kicking.append((kicks[0][0], kicks[-1][1]))
            t = start + rng.exponential(spec.fuss_gap_mean_s)
            while t < end:
                x = wake_spec.duration_median_s * math.exp(
                    WAKE_DURATION_SIGMA * rng.standard_normal())
                duration = float(np.clip(x, *wake_spec.duration_s))
                if t + duration <= end:
                    turn = rng.random() < wake_spec.posture_p
                    body = Movement(
                        start=t,
                        end=t + duration,
                        amplitude_g=_log_uniform(rng, wake_spec.amplitude_g),
                        band_hz=LM_BAND_HZ,
                        swing_axis=random_unit(rng),
                        swing_deg=float(rng.uniform(*WAKE_SWING_DEG)),
                        turn_axis=random_unit(rng),
                        turn_deg=float(rng.uniform(*POSTURE_DEG)) if turn else 0.0,
                    )
                    self.place([_Item(self.random_side(rng), "wake", body)])
                t += duration + REST_S + rng.exponential(spec.fuss_gap_mean_s)

    def cluster_items(self, rng: np.random.Generator, n: int, start: float) -> list[_Item]:
        """One cluster of ``n`` brief jerks from ``start``; each on one leg or both."""
        spec = self.scn.clusters
        assert spec is not None
        items: list[_Item] = []
        t = start
        for _ in range(n):
            first = self.random_side(rng)
            sides = [first, _other_side(first)] if rng.random() < spec.both_legs_p else [first]
            amp = _log_uniform(rng, spec.amplitude_g)
            for k, side in enumerate(sides):
                onset = t + (rng.uniform(0.0, 0.05) if k else 0.0)
                body = Movement(
                    start=onset,
                    end=onset + rng.uniform(*spec.duration_s),
                    amplitude_g=amp * (rng.uniform(0.7, 1.3) if k else 1.0),
                    band_hz=JERK_BAND_HZ,
                    swing_axis=random_unit(rng),
                    swing_deg=float(rng.uniform(*JERK_SWING_DEG)),
                )
                items.append(_Item(side, "cluster", body))
            t += rng.uniform(*spec.interval_s)
        self._last_cluster = items
        return items

    def schedule_clusters(self) -> None:
        spec, rng = self.scn.clusters, self.rng["clusters"]
        if spec is None:
            return
        for _ in range(int(rng.poisson(spec.per_hour * self.sleep_hours))):
            n = int(rng.integers(spec.jerks[0], spec.jerks[1] + 1))
            span = n * spec.interval_s[1] + 1.0
            if self.place_somewhere(rng, self.quiet_sleep, span,
                                    partial(self.cluster_items, rng, n)):
                placed = [it.body for it in self.present(self._last_cluster)]
                self.clusters.append((min(b.start for b in placed), max(b.end for b in placed)))

    def schedule_isolated(self) -> None:
        spec, rng = self.scn.isolated, self.rng["isolated"]
        if spec is None:
            return
        weak_bounds = (spec.duration_s[0], min(5.0, spec.duration_s[1]))
        kinds = (
            ("isolated", spec.per_hour, spec.duration_s, 0.0),
            ("isolated", spec.long_per_hour, spec.long_duration_s, 0.0),
            ("weak", spec.weak_per_hour, weak_bounds, 1.0),
        )
        for source, rate, bounds, weak_p in kinds:
            for _ in range(int(rng.poisson(rate * self.sleep_hours))):
                duration = _log_uniform(rng, bounds)
                bilateral = bool(rng.random() < spec.bilateral_p)
                lm = _PlannedLm(0.0, self.random_side(rng), duration, bilateral, bounds)
                build = partial(self.lm_sequence, rng, [lm], weak_p, source)
                span = duration + 2.0 * BILATERAL_ONSET_S
                self.place_somewhere(rng, self.quiet_sleep, span, build)

    def jerk_items(
        self, rng: np.random.Generator, spec: JerkSpec, sides: list[str], start: float
    ) -> list[_Item]:
        """A brief jerk / startle on ``sides`` (onsets within +-0.1 s)."""
        items = []
        for k, side in enumerate(sides):
            onset = start + (rng.uniform(-0.1, 0.1) if k else 0.0)
            body = Movement(
                start=onset,
                end=onset + rng.uniform(*spec.duration_s),
                amplitude_g=_log_uniform(rng, spec.amplitude_g),
                band_hz=JERK_BAND_HZ,
                swing_axis=random_unit(rng),
                swing_deg=float(rng.uniform(*JERK_SWING_DEG)),
            )
            items.append(_Item(side, "startle", body))
        return items

    def schedule_jerks(self) -> None:
        spec, rng = self.scn.jerks, self.rng["jerks"]
        if spec is None:
            return
        for _ in range(int(rng.poisson(spec.per_hour * self.sleep_hours))):
            first = self.random_side(rng)
            both = rng.random() < spec.both_legs_p
            sides = [first, _other_side(first)] if both else [first]
            build = partial(self.jerk_items, rng, spec, sides)
            self.place_somewhere(rng, self.quiet_sleep, 1.0, build)

    def schedule_wake_tremor(self) -> None:
        """Jitteriness bouts while awake (before the wake movements fill the wake periods)."""
        spec, rng = self.scn.tremor, self.rng["bouts"]
        if spec.wake_bouts_per_hour <= 0:
            return
        awake_h = sum(e - s for s, e in self.wake) / 3600.0
        for _ in range(int(rng.poisson(spec.wake_bouts_per_hour * awake_h))):
            length = float(rng.uniform(*spec.bout_s))
            f0 = float(rng.uniform(*spec.bout_frequency_hz))
            both = len(self.sides) == 2 and rng.random() < spec.bout_bilateral_p
            sides = list(self.sides) if both else [self.random_side(rng)]
            build = partial(self.tremor_items, rng, sides, length, f0)
            self.place_somewhere(rng, self.wake, length, build)

    def schedule_bouts(self) -> None:
        spec, rng = self.scn.tremor, self.rng["bouts"]
        regions = subtract_intervals([(0.0, self.duration)], self.calm)
        for _ in range(int(rng.poisson(spec.bouts_per_hour * self.duration / 3600.0))):
            length = min(rng.uniform(*spec.bout_s), 0.25 * self.duration)
            f0 = float(rng.uniform(*spec.bout_frequency_hz))
            first = self.random_side(rng)
            both = len(self.sides) == 2 and rng.random() < spec.bout_bilateral_p
            sides = list(self.sides) if both else [first]
            build = partial(self.tremor_items, rng, sides, length, f0)
            self.place_somewhere(rng, regions, length, build)

    def leg_models(self) -> dict[str, LegModel]:
        rng = self.rng["legs"]
        breath_hz = INFANT_BREATH_HZ if self.scn.age_months < 12 else CHILD_BREATH_HZ
        models = {}
        for sensor in self.scn.sensors:
            side = sensor.side
            mine = [it.body for it in self.items if it.side == side]
            breathing = Breathing(
                direction=random_unit(rng),
                amplitude_g=float(rng.uniform(*BREATH_AMPLITUDE_G)),
                frequency_hz=float(rng.uniform(*breath_hz)),
                drift_period_s=float(rng.uniform(*BREATH_DRIFT_PERIOD_S)),
                drift_phase=float(rng.uniform(0.0, 2.0 * math.pi)),
            )
            models[side] = LegModel(
                fs=sensor.fs,
                n_samples=round(self.duration * sensor.fs),
                noise_g=sensor.noise_g,
                counts_per_g=sensor.counts_per_g,
                range_g=sensor.range_g,
                initial_gravity=lying_gravity(rng),
                breathing=breathing,
                movements=tuple(
                    sorted((b for b in mine if isinstance(b, Movement)), key=lambda b: b.start)
                ),
                tremors=tuple(b for b in mine if isinstance(b, Tremor)),
                off_ankle=tuple(self.nonwear[side]),
            )
        return models

    def outages(self) -> dict[str, tuple[Interval, ...]]:
        rng, out = self.rng["disconnect"], {}
        for sensor in self.scn.sensors:
            spans: list[Interval] = []
            for _ in range(self.count(rng, sensor.disconnections)):
                length = min(rng.uniform(*sensor.disconnection_min) * 60.0, 0.2 * self.duration)
                for _ in range(PLACEMENT_TRIES):
                    t = float(rng.uniform(0.0, self.duration - length))
                    if all(t + length < s or t > e for s, e in spans):
                        spans.append((t, t + length))
                        break
            out[sensor.side] = tuple(sorted(spans))
        return out


def _draw_imis(rng: np.random.Generator, spec: PlmSpec, n: int) -> list[float]:
    """``n`` inter-movement intervals (onset to onset, s) of a PLM series."""
    out = []
    for _ in range(n):
        u = rng.random()
        if u < spec.short_imi_p:
            out.append(float(rng.uniform(*spec.short_imi_s)))
        elif u < spec.short_imi_p + spec.long_imi_p:
            out.append(float(rng.uniform(*spec.long_imi_s)))
        else:
            x = spec.imi_median_s * math.exp(spec.imi_sigma * rng.standard_normal())
            out.append(float(np.clip(x, *spec.imi_s)))
    return out


def _shifted(item: _Item, dt: float) -> _Item:
    body = item.body
    assert isinstance(body, Movement)
    moved = Movement(
        start=body.start + dt,
        end=body.end + dt,
        amplitude_g=body.amplitude_g,
        band_hz=body.band_hz,
        swing_axis=body.swing_axis,
        swing_deg=body.swing_deg,
        turn_axis=body.turn_axis,
        turn_deg=body.turn_deg,
        target=body.target,
    )
    return _Item(item.side, item.source, moved, item.weak)


def _true_event(item: _Item, start: float) -> TrueEvent:
    body = item.body
    if isinstance(body, Tremor):
        kind, freq = "tremor", tremor_mean_frequency(body)
    else:
        kind = "lm" if body.end - body.start >= LM_MIN_S - 1e-9 else "jerk"
        freq = None
    return TrueEvent(
        start=start + body.start,
        end=start + body.end,
        side=as_side(item.side),
        kind=kind,
        source=item.source,
        weak=item.weak,
        frequency_hz=freq,
    )


def plan_night(
    scenario: Scenario,
    seed: int,
    *,
    start: float = DEFAULT_START,
    duration_h: float | None = None,
) -> NightPlan:
    """Schedule a night (no rendering): sleep architecture, every event, leg models, outages."""
    hours = scenario.duration_h if duration_h is None else duration_h
    if not hours > 0:
        raise ValueError(f"duration_h must be positive, got {duration_h}")
    p = _Planner(scenario, seed, hours * 3600.0)
    p.schedule_architecture()
    p.schedule_nonwear()
    p.schedule_tremor_episodes()
    p.schedule_calm()
    p.schedule_boundary()
    p.schedule_posture()
    p.schedule_plm()
    p.schedule_settling()
    p.schedule_wake_tremor()
    p.schedule_wake()
    p.schedule_isolated()
    p.schedule_jerks()
    p.schedule_bouts()
    p.schedule_clusters()
    events = sorted(
        (_true_event(it, start) for it in p.items), key=lambda e: (e.start, e.side, e.end)
    )
    return NightPlan(
        scenario=scenario,
        seed=seed,
        start=start,
        duration_s=p.duration,
        wake=tuple(p.wake),
        legs=p.leg_models(),
        events=tuple(events),
        nonwear={side: tuple(sorted(v)) for side, v in p.nonwear.items()},
        outages=p.outages(),
        settling=tuple((start + a, start + b) for a, b in sorted(p.kicking)),
        clusters=tuple((start + a, start + b) for a, b in sorted(p.clusters)),
    )


def deliver(
    plan: NightPlan, side: str, accel: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[Interval]]:
    """Radio delivery of one leg's continuous signal: (Unix times, accel, gaps in s since start)."""
    sensor = next(s for s in plan.scenario.sensors if s.side == side)
    rng = np.random.default_rng(plan.delivery_seed(side))
    kept = delivery_mask(
        len(accel), sensor.fs, sensor.packet_samples, sensor.packet_loss, plan.outages[side], rng
    )
    index = np.flatnonzero(kept)
    time = plan.start + index / sensor.fs
    if sensor.time_jitter_s > 0.0:
        limit = 0.45 / sensor.fs
        time += np.clip(rng.normal(0.0, sensor.time_jitter_s, len(index)), -limit, limit)
    return time, accel[index], missing_runs(kept, sensor.fs)


def _first_sleep(plan: NightPlan) -> float | None:
    """Unix s at which the child first falls asleep (None: awake all night)."""
    t = 0.0
    for s, e in plan.wake:
        if s > t + 1e-9:
            break
        t = max(t, e)
    return None if t >= plan.duration_s - 1e-9 else plan.start + t


def simulate_night(
    scenario: Scenario,
    seed: int,
    *,
    start: float = DEFAULT_START,
    duration_h: float | None = None,
) -> SimulatedNight:
    """Simulate a whole night: delivered signals of every fitted leg and the ground truth."""
    plan = plan_night(scenario, seed, start=start, duration_h=duration_h)
    legs: dict[str, LegSignal] = {}
    gaps: dict[str, list[Interval]] = {}
    missing: list[list[Interval]] = []
    for side, model in plan.legs.items():
        continuous = render_leg(model, plan.leg_seed(side))
        time, accel, leg_gaps = deliver(plan, side, continuous)
        missing.append([*plan.nonwear[side], *leg_gaps])
        gaps[side] = [(start + a, start + b) for a, b in leg_gaps]
        legs[side] = LegSignal(
            side=as_side(side),
            fs=model.fs,
            time=time,
            accel=accel,
            counts_per_g=model.counts_per_g,
            range_g=model.range_g,
            nonwear=[(start + a, start + b) for a, b in plan.nonwear[side]],
            gaps=gaps[side],
        )
    truth = Truth(
        scenario=scenario.name,
        seed=seed,
        age_months=scenario.age_months,
        start=start,
        end=start + plan.duration_s,
        epochs=epoch_string(plan.duration_s, list(plan.wake), missing),
        events=list(plan.events),
        nonwear={side: leg.nonwear for side, leg in legs.items()},
        gaps=gaps,
        sleep_onset=_first_sleep(plan),
        settling=list(plan.settling),
        clusters=list(plan.clusters),
    )
    return SimulatedNight(truth=truth, legs=legs)


__all__ = [
    "LegSignal",
    "NightPlan",
    "Side",
    "SimulatedNight",
    "TrueEvent",
    "Truth",
    "plan_night",
    "simulate_night",
]
