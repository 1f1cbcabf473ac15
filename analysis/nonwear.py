"""Non-wear: the sensor lying off the ankle, told apart from calm sleep.

Stillness alone (van Hees, Choi) mistakes a calm sleeping child for a sensor on the table, the
commonest complaint about those methods in sleep studies. A worn sensor is never perfectly still:
breathing moves the legs a little, a steady line at 0.15-1 Hz in the spectrum that a sensor on a
table lacks. So a stretch is non-wear when it is

1. still: no second with movement (envelope above the LM onset threshold) for at least
   `MIN_NONWEAR_S` (30 min, the shortest window in science.md section 6), missing data allowed
   inside as long as the orientation is the same on both sides of it; and
2. without a breathing line: on every axis the highest Welch power in `BREATH_BAND_HZ` stays below
   `MIN_BREATH_RATIO` times the median power in `NOISE_BAND_HZ` (the sensor's own white noise).
   This test is relative to each sensor's noise, so it holds for quiet and noisy sensors, but a
   sensor whose noise hides breathing (or a child breathing very shallowly) fails it: then calm
   sleep longer than 30 min reads as non-wear. That is the method's limit; see README.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from analysis.grid import runs

MIN_NONWEAR_S = 30 * 60.0
BREATH_BAND_HZ = (0.15, 1.0)  # children 0.25-0.45 Hz, infants 0.5-0.8 Hz
NOISE_BAND_HZ = (3.0, 12.0)
MIN_BREATH_RATIO = 3.0
POSTURE_S = 10  # seconds averaged on each side of missing data to compare orientation
POSTURE_CHANGE_G = 0.05  # about 3 degrees of tilt
WELCH_SEGMENT_S = 40.0  # 0.025 Hz bins: a slow breathing line stands out of the noise


def detect(accel: np.ndarray, env: np.ndarray, fs: float, onset_g: float) -> list[tuple[int, int]]:
    """Non-wear stretches on one leg as grid slot ranges [start, end).

    accel: float32 (n, 3) g, NaN in long gaps; env: movement envelope, g; onset_g: LM onset, g.
    """
    per_s = max(1, round(fs))
    n_sec = env.size // per_s
    sec_env = env[: n_sec * per_s].reshape(n_sec, per_s)
    missing = np.isnan(sec_env).all(axis=1)
    moving = np.nanmax(np.where(np.isnan(sec_env), -1.0, sec_env), axis=1) > onset_g
    out: list[tuple[int, int]] = []
    for s, e in zip(*runs(~moving), strict=True):
        if e - s < MIN_NONWEAR_S:
            continue
        for a, b in _same_posture(s, e, missing, accel, per_s):
            kept = np.flatnonzero(~missing[a:b])
            if kept.size * 1.0 < MIN_NONWEAR_S:
                continue
            lo, hi = (a + kept[0]) * per_s, (a + kept[-1] + 1) * per_s
            if not _breathing(accel[lo:hi], fs):
                out.append((lo, hi))
    return out


def _same_posture(s: int, e: int, missing: np.ndarray, accel: np.ndarray,
                  per_s: int) -> list[tuple[int, int]]:
    """Split the still seconds [s, e) where data is missing and the sensor's orientation differs
    on the two sides: it may have been taken off (or put back) unseen."""
    pieces, start = [], s
    for a, b in zip(*runs(missing[s:e]), strict=True):
        before = accel[max(0, (s + a - POSTURE_S) * per_s):(s + a) * per_s]
        after = accel[(s + b) * per_s:(s + b + POSTURE_S) * per_s]
        if before.size and after.size and np.nanmax(
            np.abs(np.nanmean(before, axis=0) - np.nanmean(after, axis=0))
        ) > POSTURE_CHANGE_G:
            pieces.append((start, s + a))
            start = s + b
    pieces.append((start, e))
    return pieces


def _breathing(accel: np.ndarray, fs: float) -> bool:
    """Whether any axis shows a breathing line above its own noise floor."""
    nper = round(WELCH_SEGMENT_S * fs)
    ok = np.isfinite(accel[:, 0])
    best = 0.0
    for s, e in zip(*runs(ok), strict=True):
        if e - s < 2 * nper:
            continue
        f, p = signal.welch(accel[s:e].astype(np.float64), fs=fs, nperseg=nper, axis=0)
        breath = (f >= BREATH_BAND_HZ[0]) & (f <= BREATH_BAND_HZ[1])
        noise = (f >= NOISE_BAND_HZ[0]) & (f <= min(NOISE_BAND_HZ[1], 0.45 * fs))
        ratio = p[breath].max(axis=0) / np.maximum(np.median(p[noise], axis=0), 1e-30)
        best = max(best, float(ratio.max()))
    return best >= MIN_BREATH_RATIO
