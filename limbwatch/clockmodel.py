"""A sensor session's clock model as plain data: device ticks to UTC, for re-stamping samples.

The gateway fits each sensor's clock from time syncs all night (`ingest.clock`) and stamps
packets with the fit it has when they arrive. Early in a night that fit rests on few syncs, so
chunks keep their raw device ticks in the store, and every refit is written beside them as a
`ClockModel`: reads map ticks to UTC with the newest model, and the night's final fit corrects
what was stamped live.

A model is a tuple of segments, one per stretch of the device clock without jumps (a packet with
`Flag.CLOCK_SET` starts a new one). Segment k holds for packets with `first_seq` <= seq < the next
segment's `first_seq` (the first segment also for any seq before it), and maps unwrapped device
ticks linearly: UTC = a + b * ticks.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from dataclasses import dataclass

import numpy as np

from limbwatch.wire import TICK_HZ


@dataclass(frozen=True, slots=True)
class ClockSegment:
    first_seq: int  # the first packet on this stretch of the device clock
    a: float  # UTC of unwrapped tick 0, Unix s
    b: float  # UTC seconds per tick (1 / 32768 for a perfect crystal)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.a) and math.isfinite(self.b) and self.b > 0):
            raise ValueError(f"clock segment from seq {self.first_seq}: needs a finite a and "
                             f"b > 0, got a={self.a}, b={self.b}")


@dataclass(frozen=True, slots=True)
class ClockModel:
    segments: tuple[ClockSegment, ...]  # ascending first_seq

    def __post_init__(self) -> None:
        starts = [s.first_seq for s in self.segments]
        if not starts or starts != sorted(set(starts)):
            raise ValueError(f"a clock model needs segments with ascending first seqs, got "
                             f"{starts}")

    def segment(self, seq: int) -> ClockSegment:
        """The segment that packet `seq` was stamped on."""
        i = bisect_right([s.first_seq for s in self.segments], seq) - 1
        return self.segments[max(i, 0)]

    def to_utc(self, ticks: int, seq: int) -> float:
        """UTC (Unix s) of an unwrapped device tick reading carried by packet `seq`."""
        seg = self.segment(seq)
        return seg.a + seg.b * ticks

    def restamp(self, ticks: np.ndarray, seqs: np.ndarray,
                rate_hz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised `to_utc` for chunks: (t0, dt) in s of chunks whose first samples have
        unwrapped `ticks`, of packets `seqs`, sampled at nominal `rate_hz`."""
        starts = np.array([s.first_seq for s in self.segments], dtype=np.int64)
        i = np.maximum(np.searchsorted(starts, seqs, side="right") - 1, 0)
        a = np.array([s.a for s in self.segments])[i]
        b = np.array([s.b for s in self.segments])[i]
        return a + b * ticks.astype(np.float64), b * TICK_HZ / rate_hz

    def to_json(self) -> str:
        return json.dumps({"segments": [[s.first_seq, s.a, s.b] for s in self.segments]})

    @classmethod
    def from_json(cls, text: str) -> ClockModel:
        """The model `to_json` wrote; ValueError (saying what is wrong) for anything else."""
        try:
            rows = json.loads(text)["segments"]
            return cls(tuple(ClockSegment(int(q), float(a), float(b)) for q, a, b in rows))
        except (TypeError, KeyError, ValueError) as exc:  # JSONDecodeError is a ValueError
            raise ValueError(f"not a clock model ({exc}): {text[:80]!r}") from None
