"""Put one sensor's delivered samples on a regular processing grid without inventing data.

Samples are placed by rounding their time to the nominal sample period. Rates above
`MAX_PROCESSING_FS` are reduced by an integer block mean (a boxcar anti-alias filter): leg
movements and tremor (3-12 Hz) need nothing faster, and it halves the work at 100 Hz.
Gaps up to `MAX_BRIDGE_S` (lost BLE packets) are bridged by linear interpolation so that filters
run through them; they stay marked as not observed and never count as data. Longer gaps stay NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from limbwatch.recording import Recording, Side

MAX_PROCESSING_FS = 50.0  # Hz
MAX_BRIDGE_S = 1.0  # longest gap bridged by interpolation, s


@dataclass(frozen=True, slots=True)
class LegGrid:
    """One leg on a regular grid: slot i is at ``t0 + i / fs``."""

    side: Side
    t0: float  # Unix s
    fs: float  # processing rate, Hz
    source_fs: float  # the sensor's rate, Hz
    accel: np.ndarray  # float32 (n, 3), g; short gaps bridged, long gaps NaN
    observed: np.ndarray  # bool (n,): at least one real sample fell in the slot

    @property
    def n(self) -> int:
        return int(self.observed.size)

    @property
    def gap(self) -> np.ndarray:
        """bool (n,): slots in a long (unbridged) gap."""
        return np.isnan(self.accel[:, 0])


def decimation_factor(fs: float) -> int:
    """Integer block size that brings `fs` to at most about `MAX_PROCESSING_FS`."""
    return max(1, round(fs / MAX_PROCESSING_FS))


def to_grid(rec: Recording) -> LegGrid:
    """Place `rec` on its processing grid (see module docstring)."""
    q = decimation_factor(rec.fs)
    slot = np.rint((rec.time - rec.time[0]) * rec.fs).astype(np.int64) // q
    n = int(slot[-1]) + 1
    counts = np.bincount(slot, minlength=n)
    observed = counts > 0
    accel = np.empty((n, 3), dtype=np.float32)
    with np.errstate(invalid="ignore"):  # empty slots: 0 / 0 = NaN, as wanted
        for k in range(3):
            accel[:, k] = np.bincount(slot, weights=rec.accel[:, k], minlength=n) / counts
    _bridge_short_gaps(accel, observed, max_slots=int(MAX_BRIDGE_S * rec.fs / q))
    return LegGrid(
        side=rec.side, t0=float(rec.time[0]), fs=rec.fs / q, source_fs=rec.fs,
        accel=accel, observed=observed,
    )


def _bridge_short_gaps(accel: np.ndarray, observed: np.ndarray, max_slots: int) -> None:
    """Linearly interpolate, in place, runs of unobserved slots no longer than `max_slots`."""
    starts, ends = runs(~observed)
    short = (ends - starts) <= max_slots
    for s, e in zip(starts[short], ends[short], strict=True):
        if s == 0 or e == observed.size:
            continue
        w = np.arange(1, e - s + 1, dtype=np.float32)[:, None] / (e - s + 1)
        accel[s:e] = accel[s - 1] * (1 - w) + accel[e] * w


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) indices of the runs of True in a 1-D bool mask."""
    edges = np.diff(mask.astype(np.int8), prepend=0, append=0)
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
