"""Leg-movement (LM) scoring: bilateral merging, PLM series, PLMS index, periodicity index, IMIs.

Pure functions on monolateral LMs already detected per leg (each >= 0.5 s). Times are seconds on
any common origin. Rules: WASM 2016 (Ferri et al., Sleep Med 2016;26:86; default) or AASM (v2.x,
as quoted in the CHAT manual 6.8.4). Reference implementation consulted: Steph-Fulda/PLMScoRe
(R/lm_score.R, R/lm_output.R); older-rule handling from rlslabgit/MATPLM (periodic_lms.m).

Decisions where the rules leave room:

* WASM chaining (PLMScoRe ``lm_bil``): a combination grows while the next LM of either leg starts
  < 0.5 s after the combined offset. Same-leg LMs < 0.5 s apart that reach us anyway are joined
  into one monolateral LM (PLMScoRe ``lm_unil``) before the > 4 component count and the 10-s
  check, so they neither split nor inflate a combination.
* WASM: a bilateral LM containing a monolateral LM > 10 s is non-CLM even if it lasts <= 15 s
  (PLMScoRe ``lm_bil`` takes the maximum nonCLM flag of its components).
* WASM short IMI (< 10 s) ends the series at the earlier LM; the later LM may start a new series
  (PLMScoRe ``plm``: the counter restarts at it). MATPLM ``candidate_lms_rev1`` instead isolates it.
* AASM: movements > 10 s are not LMs: never merged, never candidates, never periodic, and they do
  not break a series (the manual only bounds LM duration; the "non-CLM breaks" rule is WASM's).
* AASM bilateral rule (LMs of the two legs with onsets < 5 s apart are one LM) is anchored, not
  chained: from the earliest LM not yet grouped, every LM starting < 5 s after it joins it if
  one of them is on the other leg. Every merged LM then has an other-leg partner < 5 s away, and
  legs alternating every 4 s are not fused into one long LM. PLMScoRe has no AASM merge.
* AASM IMI < 5 s: the later LM is still an LM but is skipped for the series, which continues with
  the next IMI measured from the last kept LM (MATPLM ``removeShortIMI``, "older standards"; Ferri
  et al. 2015, Sleep Med 16:1229: only their "Alt2" lets short-IMI LMs interrupt a series).
* IMI histogram bins are right-closed (lo, hi], as R ``cut(..., seq(0, 90, 2))`` in PLMScoRe
  ``imi_plot``; an IMI of 0 goes into the first bin.
* Durations and intervals are compared after rounding to 1 us (``TIME_DECIMALS``), so float error
  in times built as ``t0 + i * dt`` cannot flip a boundary (e.g. 6.4 -> 16.4 gives 9.999...998).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from limbwatch.recording import Side

Rules = Literal["wasm2016", "aasm"]

TIME_DECIMALS = 6
"""Durations and IMIs are rounded to 1 us before comparison with the rule limits."""

MIN_LM_DURATION_S = 0.5
"""WASM 2016 and AASM A.1: an LM lasts at least 0.5 s (shorter jerks are handled upstream)."""
MAX_MONOLATERAL_LM_S = 10.0
"""WASM 2016: monolateral CLM 0.5-10 s (10 s inclusive). AASM A.2: an LM lasts at most 10 s."""
MAX_BILATERAL_CLM_S = 15.0
"""WASM 2016: a bilateral LM lasting > 15 s is non-CLM."""
MAX_BILATERAL_COMPONENTS = 4
"""WASM 2016: a bilateral LM combining > 4 monolateral LMs is non-CLM."""
MERGE_GAP_S = 0.5
"""WASM 2016: LMs overlapping or with offset-to-onset separation < 0.5 s are one LM."""
AASM_BILATERAL_ONSET_S = 5.0
"""AASM B.4: LMs on the two legs with onsets < 5 s apart count as a single LM."""

MIN_SERIES_LMS = 4
"""WASM 2016 and AASM B.1: a PLM series has at least 4 consecutive (C)LMs."""
MIN_IMI_S: dict[Rules, float] = {"wasm2016": 10.0, "aasm": 5.0}
"""Minimum onset-to-onset IMI inside a series: WASM 2016 >= 10 s; AASM B.2 >= 5 s."""
MAX_IMI_S = 90.0
"""WASM 2016 and AASM B.3: maximum IMI inside a series, 90 s inclusive."""

PI_IMI_FLOOR_S = 10.0
"""Ferri 2006 periodicity index: an IMI is periodic when 10 < IMI <= 90 s (floor exclusive)."""
PI_MIN_RUN_IMIS = 3
"""Ferri 2006: periodic IMIs count only in uninterrupted runs of >= 3 (i.e. >= 4 LMs)."""
PI_MIN_IMIS = 10
"""Below 10 IMIs the periodicity index is not reported (a ratio of a handful is noise)."""
PI_MIN_LM_RATE_PER_H = 10.0
"""Drakatos 2021 (PMC8662505): the periodicity index is unreliable below ~10 LM/h."""

LOCAL_PI_WINDOW_S = 150.0
"""Surroundings of a series for its local periodicity index: 2.5 min either side (as long as
the window of the sleep scoring's wake region, `analysis.sleep.REGION_EPOCHS`)."""
SETTLED_MIN_PI = 0.86
"""A series whose local periodicity index reaches 0.86 is periodic whatever its length: the
mean PI of RLS patients with PLMS > 15/h (Shin et al., JCSM 2016, PMC4957186)."""
SETTLED_MIN_LMS = 8
"""A series of >= 8 LMs is periodic whatever its surroundings: the median series in true sleep
on the tuning nights had 8 LMs, one in an awakening scored sleep 4-5 (issue 9, `fragmented_plms`
seeds 4-40). Allowing 8 read a severe-PLMS episode as wake (`severe_plms` seed 2)."""

IMI_BIN_S = 2.0
"""PLMScoRe imi_plot: IMI histogram in 2-s bins from 0 to 90 s."""
IMI_HIST_EDGES_S = np.arange(0.0, MAX_IMI_S + IMI_BIN_S, IMI_BIN_S)


@dataclass(frozen=True, slots=True)
class LegMovement:
    """One leg's movement; times in seconds on any common origin."""

    start: float
    end: float
    side: Side


@dataclass(frozen=True, slots=True)
class ScoredMovement:
    """One LM after bilateral merging (monolateral or bilateral)."""

    start: float
    end: float
    members: tuple[int, ...]  # indices into the input LegMovement sequence, in onset order
    bilateral: bool
    candidate: bool  # CLM in WASM terms (AASM: LM counted at all)
    periodic: bool  # part of a PLM series


@dataclass(frozen=True, slots=True)
class PlmSeries:
    """A PLM series: onset of its first LM, offset of its last LM, number of LMs."""

    start: float
    end: float
    count: int


@dataclass(frozen=True, slots=True)
class PlmScoring:
    """Scored movements (sorted by start), PLM series, and the rules and breaks used."""

    movements: tuple[ScoredMovement, ...]
    series: tuple[PlmSeries, ...]
    rules: Rules
    breaks: tuple[tuple[float, float], ...] = ()  # merged, sorted intervals without data

    def bilateral_group(self) -> list[int | None]:
        """Per input LM: an id (1, 2, ...) shared by the members of one bilateral LM, else None."""
        groups: list[int | None] = [None] * self._input_count()
        bilateral = (m for m in self.movements if m.bilateral)
        for group_id, movement in enumerate(bilateral, start=1):
            for i in movement.members:
                groups[i] = group_id
        return groups

    def periodic_legs(self) -> list[bool]:
        """Per input LM: whether its scored movement is periodic."""
        periodic = [False] * self._input_count()
        for movement in self.movements:
            for i in movement.members:
                periodic[i] = movement.periodic
        return periodic

    def local_periodicity(self, window_s: float = LOCAL_PI_WINDOW_S) -> list[float]:
        """Per series (as `self.series`): its periodicity index in its surroundings, 0-1.

        Ferri 2006 PI over the movements whose onset lies within `window_s` (s) of the series,
        its own LMs included: the share of their IMIs that sit in runs of >= 3 consecutive IMIs
        in (10, 90] s between candidates. IMIs across a break are not counted; an IMI to or
        from a non-candidate is counted and not periodic. A long series in quiet sleep is near
        1; a short PLM-like run among a waking child's other movements is low.
        """
        onsets = np.array([m.start for m in self.movements], dtype=float)
        candidate = np.array([m.candidate for m in self.movements], dtype=bool)
        started, ended = _break_counts(onsets, self.breaks)
        imis = np.round(np.diff(onsets), TIME_DECIMALS)
        counted = started[1:] <= ended[:-1]
        in_range = (counted & candidate[:-1] & candidate[1:] & (imis > PI_IMI_FLOOR_S)
                    & (imis <= MAX_IMI_S))
        out = []
        for series in self.series:
            lo = int(np.searchsorted(onsets, series.start - window_s, side="left"))
            hi = int(np.searchsorted(onsets, series.end + window_s, side="right"))
            edges = np.diff(np.concatenate(([0], in_range[lo:hi - 1].astype(np.int8), [0])))
            run_lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
            periodic = int(run_lengths[run_lengths >= PI_MIN_RUN_IMIS].sum())
            out.append(periodic / max(1, int(np.count_nonzero(counted[lo:hi - 1]))))
        return out

    def settled_series(self) -> list[bool]:
        """Per series (as `self.series`): whether it is periodic in its surroundings.

        That is a series of at least `SETTLED_MIN_LMS` LMs, or one whose local periodicity
        index (`local_periodicity`) reaches `SETTLED_MIN_PI`. The other series, short and
        among non-periodic movement, are PLM-like runs that a waking child's voluntary
        movements make as readily as PLMS do (issue 9, `fragmented_plms`).
        """
        return [series.count >= SETTLED_MIN_LMS or pi >= SETTLED_MIN_PI
                for series, pi in zip(self.series, self.local_periodicity(), strict=True)]

    def series_movements(self, series: PlmSeries) -> tuple[ScoredMovement, ...]:
        """The periodic movements of one of `self.series`, in onset order."""
        onsets = [m.start for m in self.movements]
        first = bisect.bisect_left(onsets, series.start)
        last = bisect.bisect_right(onsets, series.end)
        return tuple(m for m in self.movements[first:last] if m.periodic)

    def settled_legs(self) -> list[bool]:
        """Per input LM: whether it is in a settled series (`settled_series`)."""
        settled = [False] * self._input_count()
        for series, ok in zip(self.series, self.settled_series(), strict=True):
            for movement in self.series_movements(series) if ok else ():
                for i in movement.members:
                    settled[i] = True
        return settled

    def _input_count(self) -> int:
        return sum(len(m.members) for m in self.movements)


@dataclass(frozen=True, slots=True)
class PlmSummary:
    """Sleep figures for the night report (`plm.*`)."""

    count: int  # periodic movements whose onset is in sleep
    index: float  # count per hour of sleep (0.0 if no sleep)
    periodicity_index: float | None  # Ferri PI over sleep LMs; None when too few
    imi_edges_s: list[float]  # 0, 2, ..., 90
    imi_counts: list[int]  # len = len(edges) - 1
    lm_count_sleep: int  # candidate movements with onset in sleep
    lm_index: float  # per hour of sleep


def score_plm(
    lms: Sequence[LegMovement],
    *,
    rules: Rules = "wasm2016",
    breaks: Sequence[tuple[float, float]] = (),
) -> PlmScoring:
    """Merge the legs' LMs, flag candidates and find PLM series over the whole recording.

    `breaks` are intervals without data (gaps, non-wear): an IMI overlapping one breaks a series,
    since an LM may have happened unseen.
    """
    if rules not in get_args(Rules):
        raise ValueError(f"unknown rules {rules!r}; expected one of {get_args(Rules)}")
    _check_lms(lms)
    merged_breaks = _merge_breaks(breaks)
    order = sorted(range(len(lms)), key=lambda i: (lms[i].start, lms[i].end, i))
    rank = {i: r for r, i in enumerate(order)}
    groups = _chain(lms, order) if rules == "wasm2016" else _group_aasm(lms, order)
    groups = sorted((sorted(g, key=rank.__getitem__) for g in groups), key=lambda g: rank[g[0]])

    starts, ends = np.array([_span(lms, g) for g in groups], dtype=float).reshape(-1, 2).T
    candidate = [_is_candidate(lms, g, rules) for g in groups]
    runs = _find_series(starts, candidate, merged_breaks, rules)
    periodic = {i for run in runs for i in run}

    movements = tuple(
        ScoredMovement(
            start=float(starts[k]),
            end=float(ends[k]),
            members=tuple(g),
            bilateral=len({lms[i].side for i in g}) == 2,
            candidate=candidate[k],
            periodic=k in periodic,
        )
        for k, g in enumerate(groups)
    )
    series = tuple(
        PlmSeries(start=float(starts[r[0]]), end=float(ends[r[-1]]), count=len(r)) for r in runs
    )
    return PlmScoring(movements=movements, series=series, rules=rules, breaks=merged_breaks)


def summarize_sleep(
    scoring: PlmScoring, in_sleep: Sequence[bool], total_sleep_h: float
) -> PlmSummary:
    """PLMS count and index, periodicity index and IMI histogram over sleep.

    `in_sleep` has one bool per `scoring.movements` entry: whether its onset is in a sleep epoch.
    """
    sleep = np.asarray(in_sleep, dtype=bool)
    if sleep.shape != (len(scoring.movements),):
        raise ValueError(
            f"in_sleep has {sleep.size} entries for {len(scoring.movements)} scored movements"
        )
    if not total_sleep_h >= 0:
        raise ValueError(f"total_sleep_h must be >= 0, got {total_sleep_h}")
    candidate = np.array([m.candidate for m in scoring.movements], dtype=bool)
    periodic = np.array([m.periodic for m in scoring.movements], dtype=bool)
    count = int(np.count_nonzero(periodic & sleep))
    lm_count = int(np.count_nonzero(candidate & sleep))
    index = count / total_sleep_h if total_sleep_h > 0 else 0.0
    lm_index = lm_count / total_sleep_h if total_sleep_h > 0 else 0.0

    imis = _sleep_imis(scoring, sleep)
    in_hist = imis[imis <= MAX_IMI_S]  # NaN (not counted) compares False
    bins = np.clip(np.searchsorted(IMI_HIST_EDGES_S, in_hist, side="left") - 1, 0, None)
    counts = np.bincount(bins, minlength=len(IMI_HIST_EDGES_S) - 1)
    return PlmSummary(
        count=count,
        index=index,
        periodicity_index=_periodicity_index(imis, lm_index),
        imi_edges_s=[float(e) for e in IMI_HIST_EDGES_S],
        imi_counts=[int(c) for c in counts],
        lm_count_sleep=lm_count,
        lm_index=lm_index,
    )


def _r(seconds: float) -> float:
    """Round a duration or interval to the comparison resolution."""
    return round(seconds, TIME_DECIMALS)


def _check_lms(lms: Sequence[LegMovement]) -> None:
    for i, lm in enumerate(lms):
        if lm.side not in get_args(Side):
            raise ValueError(f"LM {i}: side must be 'left' or 'right', got {lm.side!r}")
        if not (math.isfinite(lm.start) and math.isfinite(lm.end)):
            raise ValueError(f"LM {i}: times must be finite")
        if _duration(lm) < MIN_LM_DURATION_S:
            raise ValueError(f"LM {i} lasts {lm.end - lm.start:.3f} s, below {MIN_LM_DURATION_S} s")


def _merge_breaks(breaks: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """Sort the break intervals and join overlapping or touching ones."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted((float(s), float(e)) for s, e in breaks):
        if not end >= start:
            raise ValueError(f"break ({start}, {end}) ends before it starts")
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def _chain(lms: Sequence[LegMovement], order: Sequence[int]) -> list[list[int]]:
    """Split `order` (sorted by onset) into LMs joined by the WASM 0.5-s rule.

    An LM joins the current combination when it starts < 0.5 s after the combination's offset.
    """
    groups: list[list[int]] = []
    offset = -math.inf
    for i in order:
        if groups and _r(lms[i].start - offset) < MERGE_GAP_S:
            groups[-1].append(i)
            offset = max(offset, lms[i].end)
        else:
            groups.append([i])
            offset = lms[i].end
    return groups


def _group_aasm(lms: Sequence[LegMovement], order: Sequence[int]) -> list[list[int]]:
    """AASM: LMs on the two legs with onsets < 5 s apart are one LM.

    Same-leg LMs < 0.5 s apart are first one LM (AASM A.5: an LM ends only after 0.5 s of rest).
    From the earliest LM not yet grouped, every LM starting < 5 s after it joins it, provided one
    of them is on the other leg; otherwise it stays alone. LMs > 10 s are not LMs under AASM and
    stay alone.
    """
    groups: list[list[int]] = []
    eligible: list[list[int]] = []
    for unit in sorted(_monolateral(lms, order), key=lambda u: (*_span(lms, u), u[0])):
        start, end = _span(lms, unit)
        (eligible if _r(end - start) <= MAX_MONOLATERAL_LM_S else groups).append(unit)
    pos = 0
    while pos < len(eligible):
        anchor = lms[eligible[pos][0]]  # a unit's first member is its earliest LM
        stop = pos + 1
        while (
            stop < len(eligible)
            and _r(lms[eligible[stop][0]].start - anchor.start) < AASM_BILATERAL_ONSET_S
        ):
            stop += 1
        if all(lms[unit[0]].side == anchor.side for unit in eligible[pos:stop]):
            stop = pos + 1
        groups.append([i for unit in eligible[pos:stop] for i in unit])
        pos = stop
    return groups


def _monolateral(lms: Sequence[LegMovement], order: Sequence[int]) -> list[list[int]]:
    """Per leg, the LMs of `order` (sorted by onset) joined by the 0.5-s rule."""
    return [
        unit
        for side in get_args(Side)
        for unit in _chain(lms, [i for i in order if lms[i].side == side])
    ]


def _is_candidate(lms: Sequence[LegMovement], group: Sequence[int], rules: Rules) -> bool:
    """WASM 2016 CLM / AASM LM test for one scored movement (`group` in onset order).

    Monolateral components are the group's same-leg LMs joined by the 0.5-s rule; each must last
    <= 10 s. Under WASM a bilateral LM must also combine <= 4 of them and last <= 15 s.
    """
    components = _monolateral(lms, group)
    spans = [_span(lms, component) for component in components]
    if any(_r(end - start) > MAX_MONOLATERAL_LM_S for start, end in spans):
        return False
    if rules == "aasm" or len({lms[i].side for i in group}) == 1:
        return True
    start, end = _span(lms, group)
    return len(components) <= MAX_BILATERAL_COMPONENTS and _r(end - start) <= MAX_BILATERAL_CLM_S


def _span(lms: Sequence[LegMovement], group: Sequence[int]) -> tuple[float, float]:
    """Onset of the group's first LM and offset of its last."""
    return min(lms[i].start for i in group), max(lms[i].end for i in group)


def _duration(lm: LegMovement) -> float:
    return _r(lm.end - lm.start)


def _break_counts(
    onsets: npt.NDArray[np.float64], breaks: tuple[tuple[float, float], ...]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Per onset t: breaks started before t, and breaks ended at or before t.

    With disjoint sorted breaks, the span between onsets a < b overlaps a break exactly when
    started[b] > ended[a].
    """
    b = np.asarray(breaks, dtype=float).reshape(-1, 2)
    started = np.searchsorted(b[:, 0], onsets, side="left")
    ended = np.searchsorted(b[:, 1], onsets, side="right")
    return started, ended


def _find_series(
    onsets: npt.NDArray[np.float64],
    candidate: Sequence[bool],
    breaks: tuple[tuple[float, float], ...],
    rules: Rules,
) -> list[list[int]]:
    """Runs of movement indices forming PLM series (>= 4 LMs, every IMI within the limits)."""
    started, ended = _break_counts(onsets, breaks)
    wasm = rules == "wasm2016"
    min_imi = MIN_IMI_S[rules]
    runs: list[list[int]] = [[]]
    for i, is_candidate in enumerate(candidate):
        run = runs[-1]
        if not is_candidate:
            if wasm and run:  # WASM: a non-CLM ends the series; AASM: not an LM, ignored
                runs.append([])
            continue
        if not run:
            run.append(i)
            continue
        prev = run[-1]
        imi = _r(onsets[i] - onsets[prev])
        if started[i] > ended[prev] or imi > MAX_IMI_S or (wasm and imi < min_imi):
            runs.append([i])  # WASM: the LM after a short IMI may start a new series
        elif imi >= min_imi:
            run.append(i)
        # else AASM IMI < 5 s: skip this LM; the next IMI is measured from `prev`
    return [run for run in runs if len(run) >= MIN_SERIES_LMS]


def _sleep_imis(scoring: PlmScoring, sleep: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """IMIs between consecutive movements of the series sequence, in order.

    The sequence is every movement (WASM) or every LM (AASM, where movements > 10 s are ignored).
    NaN where either end is not a candidate or not in sleep, or a break lies between the onsets.
    """
    onsets = np.array([m.start for m in scoring.movements], dtype=float)
    candidate = np.array([m.candidate for m in scoring.movements], dtype=bool)
    sequence = np.arange(len(onsets)) if scoring.rules == "wasm2016" else np.flatnonzero(candidate)
    a, b = sequence[:-1], sequence[1:]
    started, ended = _break_counts(onsets, scoring.breaks)
    counted = candidate[a] & candidate[b] & sleep[a] & sleep[b] & (started[b] <= ended[a])
    return np.where(counted, np.round(onsets[b] - onsets[a], TIME_DECIMALS), np.nan)


def _periodicity_index(imis: npt.NDArray[np.float64], lm_rate_per_h: float) -> float | None:
    """Ferri 2006 PI: share of counted IMIs in runs of >= 3 consecutive IMIs in (10, 90] s."""
    counted = int(np.count_nonzero(~np.isnan(imis)))
    if counted < PI_MIN_IMIS or lm_rate_per_h < PI_MIN_LM_RATE_PER_H:
        return None
    in_range = (imis > PI_IMI_FLOOR_S) & (imis <= MAX_IMI_S)  # NaN interrupts a run
    edges = np.diff(np.concatenate(([0], in_range.astype(np.int8), [0])))
    run_lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return int(run_lengths[run_lengths >= PI_MIN_RUN_IMIS].sum()) / counted
