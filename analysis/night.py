"""The night pipeline: one or two legs' recordings in, a `NightResult` out.

Steps per leg: grid -> high-pass -> envelope -> noise floor and thresholds -> tremor -> non-wear
-> movements (LMs, long movements, brief jerks). Then across legs: bilateral merge and PLM series
(`analysis.plm`), sleep/wake, PLMS figures, flags. Everything here is computed from the arrays;
the report, picture and summary are made from the result (`analysis.result`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis import episodes, flags, movement, nonwear, plm, sleep, tremor
from analysis.grid import LegGrid, runs, to_grid
from analysis.result import Interval_s, Jerk, LegMovementResult, LegNight, NightResult
from limbwatch.recording import Recording, Side, check_overlap

RESOLUTION_S = 0.1  # time resolution of per-epoch movement bookkeeping


@dataclass(frozen=True, slots=True)
class LegResult:
    """One leg's findings, times in Unix s."""

    grid: LegGrid
    thresholds: movement.Thresholds
    lms: list[Interval_s]  # >= 0.5 s, complete (not cut by a gap)
    lm_intensity: list[tuple[float, float]]  # per LM: peak and mean dynamic acceleration, g
    other_movement: list[Interval_s]  # cut by a gap: moving, but of unknown length
    jerks: list[Interval_s]  # < 0.5 s
    tremor: list[tremor.TremorEpisode]
    nonwear: list[Interval_s]
    gaps: list[Interval_s]  # long gaps (no data)

    @property
    def side(self) -> Side:
        return self.grid.side


def analyze_leg(rec: Recording) -> LegResult:
    """Everything that can be found on one leg alone."""
    grid = to_grid(rec)
    hp = movement.high_pass(grid)
    mag = movement.magnitude(hp)
    env = movement.envelope(mag, grid.fs)
    chg = movement.change(grid.accel)
    thr = movement.thresholds(env, chg, grid.fs)
    trem = tremor.detect(hp, env, grid.fs, thr.onset, grid.t0, grid.side)
    del hp
    trem = [_with_intensity(mag, grid, t) for t in trem]
    off = nonwear.detect(grid.accel, env, grid.fs, thr.onset)
    found = movement.split_jerk_runs(movement.detect(env, mag, chg, grid.fs, thr), chg,
                                     grid.fs, thr)

    def times(s: np.ndarray, e: np.ndarray) -> list[Interval_s]:
        return list(zip((grid.t0 + s / grid.fs).tolist(), (grid.t0 + e / grid.fs).tolist(),
                        strict=True))

    off_s = times(np.array([a for a, _ in off], dtype=np.int64),
                  np.array([b for _, b in off], dtype=np.int64))
    spans = times(found.start, found.end)
    masked = [
        _overlaps(iv, [(t.start, t.end) for t in trem]) or _overlaps(iv, off_s) for iv in spans
    ]
    dur = found.durations(grid.fs)
    peak, mean = movement.intensity(mag, found)
    lms, other, jerks, strength = [], [], [], []
    for iv, d, cut, hidden, pk, mn in zip(spans, dur.tolist(), found.truncated.tolist(), masked,
                                          peak.tolist(), mean.tolist(), strict=True):
        if hidden:
            continue
        if cut:
            other.append(iv)
        elif d >= movement.MIN_LM_S:
            lms.append(iv)
            strength.append((pk, mn))
        else:
            jerks.append(iv)
    gs, ge = runs(grid.gap)
    return LegResult(
        grid=grid, thresholds=thr, lms=lms, lm_intensity=strength, other_movement=other,
        jerks=jerks, tremor=trem,
        nonwear=off_s, gaps=times(gs, ge),
    )


def _overlaps(iv: Interval_s, others: Sequence[Interval_s]) -> bool:
    return any(a < iv[1] and iv[0] < b for a, b in others)


def analyze_night(
    recordings: Sequence[Recording], *, age_months: float | None = None,
    rules: plm.Rules = "wasm2016", lights_out: Sequence[float] = (),
) -> NightResult:
    """Analyse one night from one or two legs (at most one per side).

    `lights_out`: Unix s of a caregiver's "lights out" notes, if any: sleep-onset latency is
    counted from the last of them before the first sleep instead of from the first worn epoch
    (`analysis.episodes.lights_out_before_sleep`).
    """
    sides = [r.side for r in recordings]
    if not recordings or len(set(sides)) != len(sides):
        raise ValueError("give one recording per leg: left, right or both")
    if len(recordings) == 2:
        check_overlap(recordings[0], recordings[1])
    legs = sorted((analyze_leg(r) for r in recordings), key=lambda leg: leg.side)
    clusters = episodes.find_clusters(
        [(a, b, leg.side) for leg in legs for a, b in leg.jerks], lambda a, b: 0.0,
        [iv for leg in legs for iv in leg.lms if iv[1] - iv[0] <= episodes.CLUSTER_BRIDGE_S])
    if clusters:
        legs = [_without_cluster_lms(leg, clusters) for leg in legs]
    t0 = min(float(r.time[0]) for r in recordings)
    t_end = max(float(r.time[-1]) for r in recordings)
    n_ep = max(1, int(np.ceil((t_end - t0) / sleep.EPOCH_S)))

    lm_in = [plm.LegMovement(s, e, leg.grid.side) for leg in legs for s, e in leg.lms]
    breaks = [iv for leg in legs for iv in (*leg.gaps, *leg.nonwear)]
    scoring = plm.score_plm(lm_in, rules=rules, breaks=breaks)
    periodic = scoring.periodic_legs()
    settled = scoring.settled_legs()  # only these series' LMs are no wake evidence

    evidence, moving = [], []
    for leg in legs:
        mine = [i for i, m in enumerate(lm_in) if m.side == leg.side]
        free = [(lm_in[i].start, lm_in[i].end) for i in mine if not settled[i]]
        evidence.append(_seconds_per_epoch(_within_epochs([*free, *leg.other_movement], t0),
                                           t0, n_ep))
        moving.append(_seconds_per_epoch([*leg.lms, *leg.other_movement], t0, n_ep))
    data = np.max([_worn_share(leg, t0, n_ep) for leg in legs], axis=0)
    all_moving = np.array(sorted(
        [(m.start - t0, m.end - t0, float(p)) for m, p in zip(lm_in, periodic, strict=True)]
        + [(a - t0, b - t0, 0.0) for leg in legs for a, b in leg.other_movement]
    ), dtype=np.float64).reshape(-1, 3)
    loose = [np.array([m.start - t0 for m in scoring.series_movements(series)])
             for series, ok in zip(scoring.series, scoring.settled_series(), strict=True)
             if not ok]
    epochs = sleep.score(np.max(evidence, axis=0), np.max(moving, axis=0), data,
                         movements=all_moving, loose_runs=loose)
    summary = sleep.summarize(epochs)

    def asleep(t: float) -> bool:
        k = int((t - t0) // sleep.EPOCH_S)
        return 0 <= k < n_ep and epochs[k] == "S"

    in_sleep = [asleep(m.start) for m in scoring.movements]
    plms = plm.summarize_sleep(scoring, in_sleep, summary.total_sleep_min / 60)
    sleep_mask = np.frombuffer(epochs.encode(), dtype="S1") == b"S"

    def sleep_share(a: float, b: float) -> float:
        if b <= a:
            return float(asleep(a))
        return float(_seconds_per_epoch([(a, b)], t0, n_ep)[sleep_mask].sum() / (b - a))

    tremor_eps = [
        dataclasses.replace(ep, state="asleep" if sleep_share(ep.start, ep.end) >= 0.5
                            else "awake")
        for ep in tremor.merge_legs([ep for leg in legs for ep in leg.tremor])
    ]
    clusters = [dataclasses.replace(c, sleep_share=sleep_share(c.start, c.end))
                for c in clusters]
    settling = episodes.settling_periods(epochs, t0, scoring, lights_out=lights_out)
    lights_out_used = episodes.lights_out_before_sleep(epochs, t0, lights_out)
    wake_h = epochs.count("W") * sleep.EPOCH_S / 3600
    plmw = sum(m.periodic and not sl for m, sl in zip(scoring.movements, in_sleep, strict=True))
    plmw_index = plmw / wake_h if wake_h > 0 else None

    groups = scoring.bilateral_group()
    candidate = [False] * len(lm_in)
    for m in scoring.movements:
        for i in m.members:
            candidate[i] = m.candidate
    strength = [x for leg in legs for x in leg.lm_intensity]
    scored = [
        LegMovementResult(start=m.start, end=m.end, in_sleep=asleep(m.start),
                          periodic=periodic[i], bilateral_group=groups[i],
                          candidate=candidate[i], peak_g=strength[i][0],
                          mean_g=strength[i][1])
        for i, m in enumerate(lm_in)
    ]
    figures = flags.FlagInputs(
        age_months=age_months,
        sides=tuple(leg.side for leg in legs),
        plm_index=plms.index,
        plm_count=plms.count,
        total_sleep_min=summary.total_sleep_min,
        waso_min=summary.waso_min,
        awakenings=summary.awakenings,
        recording_h=(t_end - t0) / 3600,
        worn_h=float(np.sum(data)) * sleep.EPOCH_S / 3600,
        nonwear_min={leg.side: sum(b - a for a, b in leg.nonwear) / 60 for leg in legs},
        lm_sleep_by_side={
            side: sum(1 for m in lm_in if m.side == side and asleep(m.start))
            for side in ("left", "right")
        },
        tremor=tuple(_tremor_figure(ep, legs) for ep in tremor_eps),
        settling=tuple(
            flags.SettlingFigure(first=p.first, minutes=p.minutes, kicking_min=p.kicking_min,
                                 lms=p.lms, plmw_index=p.plmw_index)
            for p in settling
        ),
        clusters=tuple(
            flags.ClusterFigure(count=c.count, duration_s=c.duration_s, sides=c.sides,
                                sleep_share=c.sleep_share)
            for c in clusters
        ),
    )
    return NightResult(
        start=t0,
        end=t_end,
        legs=tuple(
            LegNight(
                side=leg.side,
                sample_rate_hz=leg.grid.source_fs,
                coverage=min(1.0, float(np.count_nonzero(leg.grid.observed))
                             / max(1.0, (t_end - t0) * leg.grid.fs)),
                lms=tuple(x for x, m in zip(scored, lm_in, strict=True) if m.side == leg.side),
                jerks=tuple(Jerk(s, e, asleep(s)) for s, e in leg.jerks),
                nonwear=tuple(leg.nonwear),
                gaps=tuple(leg.gaps),
            )
            for leg in legs
        ),
        plm=plms,
        plm_series=scoring.series,
        tremor=tuple(tremor_eps),
        epochs=epochs,
        sleep=summary,
        flags=tuple(flags.raise_flags(figures)),
        rules=rules,
        age_months=age_months,
        jerk_clusters=tuple(clusters),
        settling=tuple(settling),
        lights_out=lights_out_used,
        plmw_index=plmw_index,
    )


def _seconds_per_epoch(intervals: Sequence[Interval_s], t0: float, n_ep: int) -> np.ndarray:
    """Seconds covered by the union of `intervals` in each 30-s epoch from `t0`."""
    per_ep = round(sleep.EPOCH_S / RESOLUTION_S)
    n = n_ep * per_ep
    diff = np.zeros(n + 1, dtype=np.int32)
    if intervals:
        iv = np.asarray(intervals, dtype=np.float64)
        a = np.clip(np.rint((iv[:, 0] - t0) / RESOLUTION_S).astype(np.int64), 0, n)
        b = np.clip(np.rint((iv[:, 1] - t0) / RESOLUTION_S).astype(np.int64), 0, n)
        np.add.at(diff, a, 1)
        np.add.at(diff, b, -1)
    covered = np.cumsum(diff[:n]) > 0
    return covered.reshape(n_ep, per_ep).sum(axis=1) * RESOLUTION_S


def _within_epochs(intervals: Sequence[Interval_s], t0: float) -> list[Interval_s]:
    """Each movement of at most one epoch moved, whole, into the epoch of its midpoint.

    For the evidence that starts a wake period: a 12-s movement that straddles an epoch edge
    counts 12 s in one epoch, not 6 s in each (below `sleep.WAKE_SEED` both times). Otherwise
    a short awakening bracketed by two long movements, with a PLM-like run of voluntary
    movements between them (not evidence), depended on where the epoch grid fell: scored
    sleep, its movements became PLMS (issue 9's upward PLMS-index bias on broken nights,
    `fragmented_plms` seeds 1-2). One movement still makes at most one seed epoch.
    """
    out = []
    for a, b in intervals:
        d = b - a
        if d >= sleep.EPOCH_S:
            out.append((a, b))
            continue
        k = (0.5 * (a + b) - t0) // sleep.EPOCH_S
        lo = t0 + k * sleep.EPOCH_S
        start = min(max(a, lo), lo + sleep.EPOCH_S - d)
        out.append((start, start + d))
    return out


def _worn_share(leg: LegResult, t0: float, n_ep: int) -> np.ndarray:
    """Share of each epoch with real samples from this leg while it was worn."""
    g = leg.grid
    worn = g.observed.copy()
    for a, b in leg.nonwear:
        worn[round((a - g.t0) * g.fs): round((b - g.t0) * g.fs)] = False
    # Slot index where each epoch starts, clipped to this leg's grid.
    edges = np.ceil((t0 + np.arange(n_ep + 1) * sleep.EPOCH_S - g.t0) * g.fs - 1e-9)
    edges = np.clip(edges.astype(np.int64), 0, g.n)
    counts = np.diff(np.concatenate(([0], np.cumsum(worn, dtype=np.int64)))[edges])
    return np.minimum(counts / (sleep.EPOCH_S * g.fs), 1.0)


def _tremor_figure(ep: tremor.TremorEpisode, legs: Sequence[LegResult]) -> flags.TremorFigure:
    others = [leg for leg in legs if leg.side != ep.side]
    other_worn = ep.side != "bilateral" and any(
        not _overlaps((ep.start, ep.end), [*leg.nonwear, *leg.gaps]) for leg in others
    )
    return flags.TremorFigure(side=ep.side, duration_s=ep.duration_s,
                              frequency_hz=ep.frequency_hz, other_leg_worn=other_worn,
                              asleep=ep.state == "asleep")


def _with_intensity(mag: np.ndarray, grid: LegGrid,
                    ep: tremor.TremorEpisode) -> tremor.TremorEpisode:
    """The episode with the peak, mean and amplitude (sqrt 2 x RMS: a sinusoid's peak) of its
    dynamic acceleration (high-passed vector magnitude, g)."""
    a = max(0, round((ep.start - grid.t0) * grid.fs))
    b = min(mag.size, round((ep.end - grid.t0) * grid.fs))
    x = mag[a:b]
    x = x[np.isfinite(x)].astype(np.float64)
    if x.size == 0:
        return ep
    return dataclasses.replace(ep, peak_g=float(x.max()), mean_g=float(x.mean()),
                               amplitude_g=float(np.sqrt(2.0 * np.mean(x**2))))


def _without_cluster_lms(leg: LegResult, clusters: Sequence[episodes.JerkCluster]) -> LegResult:
    """The leg without the short LMs inside jerk clusters (jerks run together)."""
    def inside(iv: Interval_s) -> bool:
        return iv[1] - iv[0] <= episodes.CLUSTER_BRIDGE_S and any(
            c.start <= iv[0] and iv[1] <= c.end for c in clusters)

    keep = [k for k, iv in enumerate(leg.lms) if not inside(iv)]
    if len(keep) == len(leg.lms):
        return leg
    return dataclasses.replace(
        leg, lms=[leg.lms[k] for k in keep], lm_intensity=[leg.lm_intensity[k] for k in keep])
