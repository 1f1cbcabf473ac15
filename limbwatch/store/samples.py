"""The sample store interface: raw samples, written by the gateway, read by analysis and exports.

Raw samples are kept as int16 counts in chunks (one BLE packet, or more), never a row per sample
(`../shared/notes/storage.md`). A chunk is named for good by (device, session, seq): writing the
same chunk twice stores it once, so replaying a hand-off after a crash cannot duplicate data.
Implementations: `limbwatch.store.sqlite.SqliteSampleStore` (embedded default) and
`limbwatch.store.influx.InfluxSampleStore` (InfluxDB, for deployments). Everything else
(subjects, nights, reports, events, tokens) is in the record store (`limbwatch.store.records`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, Self, runtime_checkable

import numpy as np

from limbwatch.clockmodel import ClockModel
from limbwatch.errors import Unavailable
from limbwatch.recording import Side


class StoreUnavailable(Unavailable):
    """The store cannot be reached or written now; nothing was stored. Retry later."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive samples of one sensor, on UTC."""

    subject: str
    side: Side
    device: str  # sensor identity (its serial number)
    session: int  # the sensor's session (changes when its flash is erased)
    seq: int  # the packet sequence number of the first sample
    t0: float  # Unix s of the first sample, as stamped live
    dt: float  # s between samples (1 / rate, corrected for the sensor clock's drift)
    counts: np.ndarray  # int16 (n, 3)
    counts_per_g: int
    # For re-stamping with a better clock model (`limbwatch.clockmodel`); None when not known
    ticks: int | None = None  # device clock at the first sample, unwrapped (32.768 kHz ticks)
    rate_hz: int | None = None  # the sensor's nominal sample rate


@dataclass(frozen=True, slots=True)
class Samples:
    """Samples of one leg read back from the store, in time order, duplicates impossible."""

    time: np.ndarray  # float64 Unix s
    accel: np.ndarray  # float32 (n, 3) g
    fs: float  # nominal rate, Hz
    damaged: int = 0  # chunks in the range that failed their integrity check: skipped


@dataclass(frozen=True, slots=True)
class Extent:
    """Where a subject has data: first and last sample time (Unix s) and the legs seen."""

    first: float
    last: float
    sides: tuple[Side, ...]
    chunks: int  # how many chunks: grows when a backfill fills a gap


class ChunkSink(Protocol):
    """What a gateway needs of a sample store: to write chunks and clock models, and to know
    what it has (a local store, or a central server's: `limbwatch.store.remote`)."""

    def write_chunks(self, chunks: Sequence[Chunk]) -> None:
        """Store chunks, all or none; chunks already stored are skipped, and one whose key is
        stored with other contents is kept apart (`conflicts`). StoreUnavailable."""

    def put_clock_models(self, models: Mapping[tuple[str, int], ClockModel]) -> None:
        """Store the newest clock model of each (device, session). StoreUnavailable."""

    def stored_seqs(self, device: str, session: int) -> list[int]:
        """Every packet seq stored for a device session, ascending (to resume after a restart)."""

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


class SampleStore(ChunkSink, Protocol):
    def read_samples(self, subject: str, side: Side, start: float, end: float) -> Samples:
        """All samples of a leg with start <= time < end, their times from the stored clock
        model of their session when there is one; damaged chunks are skipped and counted in
        `Samples.damaged`."""

    def conflicts(self) -> list[Chunk]:
        """Chunks that arrived under a stored key with other contents, kept apart."""

    def extent(self, subject: str, start: float = ..., end: float = ...) -> Extent | None:
        """The subject's data with start <= chunk start < end (default: all), None if none."""

    def devices(self, subject: str | None = None) -> list[str]:
        """The sensors with chunks stored (of `subject`, or of everyone), sorted."""

    def clock_model(self, device: str, session: int) -> ClockModel | None:
        """The clock model stored for a device session, None if none (or it is damaged)."""

    def read_chunks(self, device: str) -> list[Chunk]:
        """Every chunk of a sensor in (session, seq) order, timed like `read_samples` (checks,
        migration)."""


@runtime_checkable
class FiguresSink(Protocol):
    """A sample store that also keeps each night's trend figures beside the samples (InfluxDB,
    for Grafana); the analysis service gives them once a report is stored."""

    def put_night_figures(self, subject: str, noon: float,
                          figures: Mapping[str, float | int | str | None]) -> None: ...


def counts_to_g(counts: np.ndarray, counts_per_g: int) -> np.ndarray:
    return (counts.astype(np.float32) / np.float32(counts_per_g)).astype(np.float32)


def chunk_times(chunk: Chunk) -> np.ndarray:
    return chunk.t0 + np.arange(len(chunk.counts)) * chunk.dt
