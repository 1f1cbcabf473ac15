"""Min/max decimation of one leg's samples for a zoomable view: each of at most `points` equal
time buckets keeps its per-axis minimum and maximum, so a brief spike (a jerk) stays visible
however far out the view is (M4/min-max; `../shared/notes/surfaces.md`)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def min_max_buckets(time: npt.NDArray[np.float64], accel: npt.NDArray[np.float32], start: float,
                    end: float, points: int
                    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32],
                               npt.NDArray[np.float32]]:
    """(bucket start times, per-axis min, per-axis max) of the non-empty buckets of [start, end)
    cut into `points` equal parts; `time` ascending within [start, end)."""
    if len(time) == 0 or end <= start:
        empty = np.empty((0, 3), dtype=np.float32)
        return np.empty(0), empty, empty
    width = (end - start) / points
    bucket = np.minimum(((time - start) / width).astype(np.int64), points - 1)
    first = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    lows = np.minimum.reduceat(accel, first, axis=0)
    highs = np.maximum.reduceat(accel, first, axis=0)
    return start + bucket[first] * width, lows, highs


def iso_ms_array(unix_s: npt.NDArray[np.float64]) -> list[str]:
    """Unix seconds -> ISO 8601 UTC with milliseconds and a Z, as `limbwatch.report.iso_ms`."""
    ms = np.round(unix_s * 1000.0).astype("datetime64[ms]")
    return [f"{text}Z" for text in np.datetime_as_string(ms, unit="ms")]
