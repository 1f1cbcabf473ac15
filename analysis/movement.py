"""Leg-movement detection from ankle acceleration.

The movement signal is the vector magnitude of the high-passed acceleration (gravity and slow
posture removed), smoothed to a `ENVELOPE_S` moving RMS: the envelope, in g. Its resting level,
the noise floor, is estimated per recording, and the two thresholds are multiples of it: the
accelerometer analogue of the EMG rule "+8 uV above rest for onset, <= +2 uV for offset"
(AASM / WASM 2016). A movement starts where the envelope crosses the onset threshold and ends at
the start of the first period of at least `MIN_REST_S` (0.5 s) at or below the offset threshold,
so same-leg movements less than 0.5 s apart are one movement, as both rule sets require.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from analysis.grid import LegGrid, runs

HIGH_PASS_HZ = 1.5  # first order: removes gravity and slow posture change, rings least
ENVELOPE_S = 0.25  # moving-RMS window of the envelope, s
MIN_REST_S = 0.5  # offset: start of >= 0.5 s at or below the offset threshold (AASM/WASM)
ONSET_FACTOR = 2.2  # onset threshold = floor x this
OFFSET_FACTOR = 1.5  # offset threshold = floor x this
MIN_ONSET_G = 0.004  # never detect below 4 mg, however quiet the sensor
MIN_LM_S = 0.5  # shorter movements are brief jerks, not LMs (AASM/WASM)
FLOOR_PERCENTILE = 25  # resting share of a night is well above 25 %
CHANGE_FACTOR = 3.0  # the change signal's threshold for "still moving" = its floor x this
# Runs of brief jerks. A myoclonic jerk lasts < 100 ms (science.md section 5, MedLink); jerks of
# a cluster come 0.2-1 s apart (1-5 Hz, benign neonatal sleep myoclonus, same section), closer
# than the 0.5-s offset rule can separate once the envelope has smeared them, so the rule would
# make one "LM" of several jerks. A movement whose sample-to-sample change falls to the noise for
# >= JERK_REST_S between bursts, every burst shorter than MIN_LM_S and sharp (peak change >=
# JERK_PEAK_FACTOR x the change threshold), is a run of jerks, not an LM. Set on the simulator's
# tuning nights (jerk_clusters seeds 1-2): sustained LMs never fall quiet for 0.15 s.
JERK_REST_S = 0.15
JERK_PEAK_FACTOR = 3.0
# The onset is searched on the magnitude from half the envelope window before the envelope's
# crossing, where the noise alone crosses the onset threshold now and then (3-axis noise of
# sigma 3 mg against an onset of ~10 mg). It is the first sample above the threshold that is
# joined to the movement, i.e. to the first such sample at or after the crossing, by samples
# above the threshold less than ONSET_JOIN_S apart. A lone noise sample 0.1-0.2 s before the
# movement had put the onset that much early and made jerks of 0.35-0.4 s "LMs" of 0.5 s
# (issue 9: every false LM on healthy_infant seeds 1-2); a weak LM, hovering near the threshold,
# keeps its first crossings.
ONSET_JOIN_S = 0.1


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Per-recording levels, g: of the envelope, and of the sample-to-sample change."""

    floor: float
    onset: float
    offset: float
    change: float


@dataclass(frozen=True, slots=True)
class Movements:
    """Movements on one leg, as slot indices into its grid (end exclusive)."""

    start: np.ndarray  # int64
    end: np.ndarray  # int64
    truncated: np.ndarray  # bool: touches a long gap or the recording edge, duration unknown

    def durations(self, fs: float) -> np.ndarray:
        return (self.end - self.start) / fs

    def select(self, keep: np.ndarray) -> Movements:
        return Movements(self.start[keep], self.end[keep], self.truncated[keep])


def high_pass(grid: LegGrid) -> np.ndarray:
    """float32 (n, 3) g: the grid's acceleration without gravity; NaN in long gaps.

    Each stretch between long gaps is filtered on its own, started at rest on its first sample.
    """
    sos = signal.butter(1, HIGH_PASS_HZ, "highpass", fs=grid.fs, output="sos").astype(np.float32)
    zi = signal.sosfilt_zi(sos).astype(np.float32)
    out = np.full(grid.accel.shape, np.nan, dtype=np.float32)
    starts, ends = runs(~grid.gap)
    for s, e in zip(starts, ends, strict=True):
        x = grid.accel[s:e]
        out[s:e], _ = signal.sosfilt(sos, x, axis=0, zi=zi[:, :, None] * x[0][None, None, :])
    return out


def magnitude(hp: np.ndarray) -> np.ndarray:
    """float32 (n,) g: vector magnitude of the high-passed acceleration; NaN in long gaps."""
    return np.sqrt(np.einsum("ij,ij->i", hp, hp)).astype(np.float32)


def envelope(mag: np.ndarray, fs: float) -> np.ndarray:
    """float32 (n,) g: centred moving RMS of the magnitude `mag`; NaN in long gaps."""
    power = mag.astype(np.float64) ** 2
    gap = np.isnan(power)
    power[gap] = 0.0
    w = max(1, round(ENVELOPE_S * fs))
    c = np.concatenate(([0.0], np.cumsum(power)))
    lo = np.clip(np.arange(power.size) - w // 2, 0, power.size)
    hi = np.clip(lo + w, 0, power.size)
    env = np.sqrt(np.maximum((c[hi] - c[lo]) / (hi - lo), 0.0)).astype(np.float32)
    env[gap] = np.nan
    return env


def noise_floor(env: np.ndarray, fs: float) -> float:
    """Resting envelope level, g: a low percentile of per-second mean envelope."""
    per_s = max(1, round(fs))
    n = env.size // per_s * per_s
    sec = env[:n].reshape(-1, per_s).mean(axis=1)
    sec = sec[np.isfinite(sec)]
    if sec.size == 0:
        return float("nan")
    return float(np.percentile(sec, FLOOR_PERCENTILE))


def change(accel: np.ndarray) -> np.ndarray:
    """float32 (n,) g: magnitude of the sample-to-sample change of the raw acceleration.

    It is the high-pass filter's input term, without the filter's exponential decay, so it
    falls to the noise level as soon as the leg stops moving; NaN in long gaps.
    """
    d = np.diff(accel, axis=0, prepend=accel[:1])
    return np.sqrt(np.einsum("ij,ij->i", d, d)).astype(np.float32)


def thresholds(env: np.ndarray, chg: np.ndarray, fs: float) -> Thresholds:
    """Levels from the resting floors of the envelope and of the change signal."""
    floor = noise_floor(env, fs)
    onset = max(floor * ONSET_FACTOR, MIN_ONSET_G)
    return Thresholds(floor=floor, onset=onset, offset=onset * OFFSET_FACTOR / ONSET_FACTOR,
                      change=noise_floor(chg, fs) * CHANGE_FACTOR)


def detect(env: np.ndarray, mag: np.ndarray, chg: np.ndarray, fs: float,
           thr: Thresholds) -> Movements:
    """All movements on one leg, of any duration (see module docstring).

    Found on the envelope `env`, whose window widens a movement by half its width at each end;
    the onset is then placed on the first sample of the magnitude `mag` above the onset threshold
    that is joined to the movement (`ONSET_JOIN_S`),
    and the offset after the last sample whose change `chg` is still above noise (the filtered
    magnitude decays for a while after the leg stops).
    """
    gap = np.isnan(env)
    low = (env <= thr.offset) | gap
    min_rest = round(MIN_REST_S * fs)
    rest_s, rest_e = runs(low)
    long_rest = (rest_e - rest_s) >= min_rest
    # Active stretches lie between consecutive long rests.
    seg_s = np.concatenate(([0], rest_e[long_rest]))
    seg_e = np.concatenate((rest_s[long_rest], [env.size]))
    nonempty = seg_e > seg_s
    seg_s, seg_e = seg_s[nonempty], seg_e[nonempty]
    above = np.flatnonzero(env > thr.onset)
    if above.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Movements(empty, empty, np.zeros(0, dtype=bool))
    k = np.searchsorted(above, seg_s)
    onset = above[np.minimum(k, above.size - 1)]
    real = (k < above.size) & (onset < seg_e)
    start, rest_from = onset[real], seg_e[real]
    # A movement whose rest before or after is cut by a gap or the edge has unknown extent.
    gap_c = np.concatenate(([0], np.cumsum(gap)))
    lo = np.clip(start - min_rest, 0, env.size)
    hi = np.clip(rest_from + min_rest, 0, env.size)
    truncated = (gap_c[hi] - gap_c[lo] > 0) | (start < min_rest) | (hi >= env.size)
    half = round(ENVELOPE_S * fs / 2)
    inst = np.flatnonzero(mag > thr.onset)
    if inst.size:
        # Each sample above the threshold, with the first sample of its chain (steps < join).
        new = np.concatenate(([True], np.diff(inst) >= max(1, round(ONSET_JOIN_S * fs))))
        chain = inst[np.flatnonzero(new)][np.cumsum(new) - 1]
        k_at = np.minimum(np.searchsorted(inst, start), inst.size - 1)
        k_lo = np.minimum(np.searchsorted(inst, start - half), inst.size - 1)
        joined = np.maximum(chain[k_at], inst[k_lo])
        lone = inst[k_lo]  # no sample above the threshold from the crossing on: the old rule
        first = np.where((inst[k_at] >= start) & (inst[k_at] < start + half), joined, lone)
        start = np.where((first >= start - half) & (first < start + half), first, start)
    # The magnitude's tail after the leg stops: half the window plus the filter's decay from the
    # movement's peak to the offset level; the offset moves back by at most that much.
    peak = np.maximum.reduceat(np.nan_to_num(env), start)[: start.size] if start.size else start
    tau = 1 / (2 * np.pi * HIGH_PASS_HZ)
    tail = half + fs * tau * np.log(np.maximum(peak, thr.offset) / thr.offset)
    moving = np.flatnonzero(chg > thr.change)
    end = rest_from
    if moving.size:
        k_last = np.searchsorted(moving, rest_from) - 1
        last = moving[np.maximum(k_last, 0)] + 1
        inside = (k_last >= 0) & (last > start)
        end = np.where(inside, np.maximum(last, rest_from - tail), rest_from)
    end = np.maximum(end, start + 1)
    return Movements(start.astype(np.int64), end.astype(np.int64), truncated)


def split_jerk_runs(found: Movements, chg: np.ndarray, fs: float, thr: Thresholds) -> Movements:
    """Replace every movement that is a run of brief jerks by its jerks (see JERK_REST_S).

    Only complete movements of at least `MIN_LM_S` are examined; the others are returned as they
    are. Sorted by start.
    """
    min_rest = max(1, round(JERK_REST_S * fs))
    peak_level = JERK_PEAK_FACTOR * thr.change
    dur = found.durations(fs)
    starts, ends, cut = [], [], []
    for k in np.flatnonzero((dur >= MIN_LM_S) & ~found.truncated).tolist():
        s, e = int(found.start[k]), int(found.end[k])
        active = chg[s:e] > thr.change
        a, b = runs(active)
        if a.size < 2:
            continue
        keep = np.concatenate(([True], a[1:] - b[:-1] >= min_rest))  # a new burst starts here
        first = np.flatnonzero(keep)
        p_s = a[first]
        p_e = b[np.concatenate((first[1:] - 1, [a.size - 1]))]
        if p_s.size < 2 or np.any((p_e - p_s) / fs >= MIN_LM_S):
            continue
        if np.any(np.maximum.reduceat(chg[s:e], p_s) < peak_level):
            continue
        starts.append(s + p_s)
        ends.append(s + p_e)
        cut.append(k)
    if not cut:
        return found
    keep_mask = np.ones(found.start.size, dtype=bool)
    keep_mask[cut] = False
    start = np.concatenate([found.start[keep_mask], *starts]).astype(np.int64)
    end = np.concatenate([found.end[keep_mask], *ends]).astype(np.int64)
    truncated = np.concatenate([found.truncated[keep_mask],
                                np.zeros(sum(x.size for x in starts), dtype=bool)])
    order = np.argsort(start, kind="stable")
    return Movements(start[order], end[order], truncated[order])


def intensity(mag: np.ndarray, found: Movements) -> tuple[np.ndarray, np.ndarray]:
    """Per movement: peak and mean of the dynamic acceleration `mag` (g, after the high-pass).

    The vector magnitude does not depend on how the sensor sits on the ankle.
    """
    if found.start.size == 0:
        return np.zeros(0), np.zeros(0)
    x = np.nan_to_num(mag.astype(np.float64))
    c = np.concatenate(([0.0], np.cumsum(x)))
    n = np.maximum(found.end - found.start, 1)
    mean = (c[found.end] - c[found.start]) / n
    peak = np.array([float(x[s:e].max()) if e > s else 0.0
                     for s, e in zip(found.start.tolist(), found.end.tolist(), strict=True)])
    return peak, mean
