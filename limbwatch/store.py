"""The store interface: what the ingester writes and the analysis and API read.

Raw samples are kept as int16 counts in chunks (one BLE packet, or more), never a row per sample
(`../shared/notes/storage.md`). A chunk is named for good by (device, session, seq): writing the
same chunk twice stores it once, so replaying a hand-off after a crash cannot duplicate data.
Implementations: `limbwatch.sqlite_store.SqliteStore` (embedded default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from limbwatch.recording import Side


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or written now; nothing was stored. Retry later."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive samples of one sensor, on UTC."""

    subject: str
    side: Side
    device: str  # sensor identity (its serial number)
    session: int  # the sensor's session (changes when its flash is erased)
    seq: int  # the packet sequence number of the first sample
    t0: float  # Unix s of the first sample
    dt: float  # s between samples (1 / rate, corrected for the sensor clock's drift)
    counts: np.ndarray  # int16 (n, 3)
    counts_per_g: int


@dataclass(frozen=True, slots=True)
class Samples:
    """Samples of one leg read back from the store, in time order, duplicates impossible."""

    time: np.ndarray  # float64 Unix s
    accel: np.ndarray  # float32 (n, 3) g
    fs: float  # nominal rate, Hz


@dataclass(frozen=True, slots=True)
class Night:
    subject: str
    start: float  # Unix s of the first sample of the night (any leg)
    end: float  # Unix s of the last
    sides: tuple[Side, ...]


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to a sensor or the ingester: a gap, a drop, a bad packet..."""

    subject: str
    side: Side | None
    time: float  # Unix s
    kind: str  # e.g. "gap", "disconnected", "connected", "bad_packet", "backfill"
    detail: dict[str, float | int | str | None]


class Store(Protocol):
    def write_chunks(self, chunks: Sequence[Chunk]) -> None:
        """Store chunks, all or none; chunks already stored are skipped. StoreUnavailable."""

    def read_samples(self, subject: str, side: Side, start: float, end: float) -> Samples:
        """All samples of a leg with start <= time < end."""

    def nights(self, subject: str) -> list[Night]:
        """The subject's nights: recordings split where no leg has data for `NIGHT_GAP_S`."""

    def stored_seqs(self, device: str, session: int) -> list[int]:
        """Every packet seq stored for a device session, ascending (to resume after a restart)."""

    def write_report(self, subject: str, night_start: float, report_json: str) -> None: ...

    def read_report(self, subject: str, night_start: float) -> str | None: ...

    def write_events(self, events: Sequence[Event]) -> None: ...

    def read_events(self, subject: str, start: float, end: float) -> list[Event]: ...

    def close(self) -> None: ...


NIGHT_GAP_S = 4 * 3600.0


def split_nights(starts: np.ndarray, ends: np.ndarray) -> list[tuple[float, float]]:
    """Merge chunk spans (sorted by start) into nights separated by > `NIGHT_GAP_S` without data."""
    nights: list[tuple[float, float]] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if nights and s - nights[-1][1] <= NIGHT_GAP_S:
            nights[-1] = (nights[-1][0], max(nights[-1][1], e))
        else:
            nights.append((s, e))
    return nights


def counts_to_g(counts: np.ndarray, counts_per_g: int) -> np.ndarray:
    return (counts.astype(np.float32) / np.float32(counts_per_g)).astype(np.float32)


def chunk_times(chunk: Chunk) -> np.ndarray:
    return chunk.t0 + np.arange(len(chunk.counts)) * chunk.dt

