"""Tremor / jitteriness: sustained rhythmic oscillation at 3-12 Hz, found by frequency content.

Each `WINDOW_S` window (hop `HOP_S`) with movement in it gets a Hann-windowed spectrum of the
high-passed acceleration, summed over the three axes (so the direction of shaking does not
matter). A window is rhythmic when its strongest peak lies in the tremor band and the peak and its
two neighbouring bins hold at least `MIN_PEAK_SHARE` of the power above 1 Hz: a leg movement
spreads its power over many bins, a tremor concentrates it. Runs of rhythmic windows with a steady
frequency make an episode; episodes on both legs that overlap in time are one bilateral episode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from analysis.grid import runs

WINDOW_S = 2.0  # spectrum window, s (0.5 Hz resolution)
HOP_S = 1.0  # s
BAND_HZ = (3.0, 12.5)  # tremor / jitteriness band (science.md section 5), Hz
MIN_PEAK_SHARE = 0.6  # share of > 1 Hz power in the peak and its two neighbouring bins
MAX_STEP_HZ = 1.5  # frequency change allowed between consecutive rhythmic windows
MIN_EPISODE_WINDOWS = 3  # 3 windows with 1-s hop span 4 s
MAX_HOLE_WINDOWS = 2  # non-rhythmic windows tolerated inside an episode


TremorSide = Literal["left", "right", "bilateral"]


@dataclass(frozen=True, slots=True)
class TremorEpisode:
    start: float  # Unix s
    end: float  # Unix s
    side: TremorSide
    frequency_hz: float  # median dominant frequency
    state: str = ""  # "awake" / "asleep" (most of the episode), set once sleep is scored
    peak_g: float | None = None  # peak dynamic acceleration (high-passed magnitude), g
    mean_g: float | None = None  # mean dynamic acceleration, g
    amplitude_g: float | None = None  # sqrt(2) x RMS dynamic acceleration: the shaking's peak

    @property
    def duration_s(self) -> float:
        return self.end - self.start


def detect(hp: np.ndarray, env: np.ndarray, fs: float, onset_g: float, t0: float,
           side: TremorSide) -> list[TremorEpisode]:
    """Tremor episodes on one leg.

    hp: float32 (n, 3) high-passed acceleration, g (NaN in long gaps); env: its envelope, g;
    onset_g: the leg's LM onset threshold, g (windows mostly below it are skipped unexamined).
    """
    win, hop = round(WINDOW_S * fs), round(HOP_S * fs)
    n_win = (hp.shape[0] - win) // hop + 1
    if n_win < MIN_EPISODE_WINDOWS or BAND_HZ[0] >= fs / 2:
        return []
    starts = np.arange(n_win) * hop
    above = np.concatenate(([0], np.cumsum(env > onset_g)))
    busy = np.flatnonzero(above[starts + win] - above[starts] > win // 2)  # mostly moving
    freq_hz = np.full(n_win, np.nan)
    if busy.size:
        segs = np.stack([hp[s:s + win] for s in starts[busy]])  # (k, win, 3)
        ok = np.isfinite(segs).all(axis=(1, 2))
        f, share = _peak(np.nan_to_num(segs), fs)
        rhythmic = ok & (share >= MIN_PEAK_SHARE) & (f >= BAND_HZ[0]) & (f <= BAND_HZ[1])
        freq_hz[busy[rhythmic]] = f[rhythmic]
    return [
        TremorEpisode(
            start=t0 + s * HOP_S, end=t0 + (e - 1) * HOP_S + WINDOW_S, side=side,
            frequency_hz=float(np.nanmedian(freq_hz[s:e])),
        )
        for s, e in _episodes(freq_hz)
    ]


def _peak(segs: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Dominant frequency (Hz, centroid of the peak bins) and its power share per window."""
    win = segs.shape[1]
    spec = np.fft.rfft(segs * np.hanning(win)[None, :, None], axis=1)
    power = (spec.real**2 + spec.imag**2).sum(axis=2)  # (k, bins)
    freqs = np.fft.rfftfreq(win, 1 / fs)
    power[:, freqs < 1.0] = 0.0
    k = np.argmax(power, axis=1)
    idx = np.clip(k[:, None] + np.array([-1, 0, 1])[None, :], 0, freqs.size - 1)
    peak = np.take_along_axis(power, idx, axis=1)
    total = power.sum(axis=1)
    share = np.divide(peak.sum(axis=1), total, out=np.zeros_like(total), where=total > 0)
    f = (peak * freqs[idx]).sum(axis=1) / np.maximum(peak.sum(axis=1), 1e-30)
    return f, share


def _episodes(freq_hz: np.ndarray) -> list[tuple[int, int]]:
    """Window index ranges [s, e) of episodes: rhythmic runs, small holes closed, steady rate."""
    rhythmic = np.isfinite(freq_hz)
    s, e = runs(rhythmic)
    merged: list[list[int]] = []
    for a, b in zip(s.tolist(), e.tolist(), strict=True):
        if merged and a - merged[-1][1] <= MAX_HOLE_WINDOWS and abs(
            freq_hz[a] - freq_hz[merged[-1][1] - 1]
        ) <= MAX_STEP_HZ:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged if np.count_nonzero(rhythmic[a:b]) >= MIN_EPISODE_WINDOWS]


def merge_legs(episodes: list[TremorEpisode]) -> list[TremorEpisode]:
    """Episodes of both legs that overlap in time become one bilateral episode; sorted by start."""
    out: list[TremorEpisode] = []
    group: list[TremorEpisode] = []
    for ep in sorted(episodes, key=lambda e: e.start):
        if group and ep.start >= max(g.end for g in group):
            out.append(_combine(group))
            group = []
        group.append(ep)
    if group:
        out.append(_combine(group))
    return out


def _combine(group: list[TremorEpisode]) -> TremorEpisode:
    sides = {g.side for g in group}

    def most(name: str) -> float | None:
        values = [v for g in group if (v := getattr(g, name)) is not None]
        return max(values) if values else None

    return TremorEpisode(
        start=min(g.start for g in group),
        end=max(g.end for g in group),
        side=sides.pop() if len(sides) == 1 else "bilateral",
        frequency_hz=float(np.median([g.frequency_hz for g in group])),
        peak_g=most("peak_g"), mean_g=most("mean_g"), amplitude_g=most("amplitude_g"),
    )
