"""`InfluxSampleStore`: the `SampleStore` on an InfluxDB server (1.x, 2.x, 3.x), for deployments.

Schema and its reasons: `limbwatch.store.influx_lines` and docs/influxdb.md. In short, a point
per sample (integer counts, tags sensor/side/subject) at the time stamped live, and a point per
chunk (its key, ticks, rate, scale and CRC-32) at the time of its first sample. Samples are
re-stamped at read time, like the SQLite store's: the chunk points keep the device ticks, the
derived database keeps the newest clock model of each sensor session, and reads map ticks to
UTC with it. So a better clock model (the night's final fit) costs one small write, not a
rewrite of the night's points.

Writes: line protocol in requests of about `BATCH_LINES` lines, synchronous, each chunk's
samples before its chunk point (a chunk is visible to reads only once its samples are stored).
Writing the same chunk again writes the same points, which InfluxDB keeps once: a write cut
short (server down mid-way: `StoreUnavailable`) is completed by writing it again, which is what
the gateway's spool does. Unlike SQLite a write is not atomic, but idempotent.
A request the server refuses as bad data is split until the refused chunks are found; the rest
is stored and `StoreRejected` names those (the spool reports and drops them: sending them
again cannot help).

Reads: InfluxQL through `/query` as CSV, in time slices fetched two at a time (the server
renders one while this process parses the other), parsed straight into numpy. A chunk whose
samples are missing or fail its CRC is skipped and counted in `Samples.damaged`. Two chunk
points with the same (sensor, session, seq) and other contents (a sensor that reused its seqs)
are both kept; reads use the earlier one, `conflicts()` lists the others.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Self

import numpy as np

from limbwatch.clockmodel import ClockModel
from limbwatch.recording import Side, as_side
from limbwatch.store.assemble import restamped, samples_from_rows
from limbwatch.store.http_status import StoreMissing, StoreRejected
from limbwatch.store.influx_http import InfluxSettings, Transport, transport
from limbwatch.store.influx_lines import (
    chunk_lines,
    contents_crc,
    model_line,
    night_line,
    parse_rows,
    parse_samples,
    quote_ident,
    quote_literal,
    to_us,
)
from limbwatch.store.samples import Chunk, Extent, Samples
from limbwatch.store.sqlite import RESTAMP_MARGIN_S, ChunkRow, check_chunk, chunk_from_row

log = logging.getLogger(__name__)

BATCH_LINES = 10_000  # lines per write request (../shared/notes/storage.md: 5-10k)
MAX_CHUNK_S = 3600.0  # a chunk may span this much at most: reads look this far back for it
READ_SLICE_S = 1800.0  # samples are fetched in slices this long, READS_IN_FLIGHT at a time
READS_IN_FLIGHT = 2
WRITES_IN_FLIGHT = 2
_MATCH_US = 1  # a sample point is a chunk's when its time is within this of the expected one
_SIDES: tuple[Side, Side] = ("left", "right")
_CHUNK_FIELDS = ("session", "seq", "n", "dt", "cpg", "crc")  # what every chunk point has


@dataclass(frozen=True, slots=True)
class _IndexRow:
    """A chunk point read back."""

    device: str
    subject: str
    side: Side
    t0_us: int
    session: int
    seq: int
    n: int
    dt: float
    cpg: int
    ticks: int | None
    rate: int | None
    crc: int


class InfluxSampleStore:
    """The samples of a limbwatch store on InfluxDB (see the module docstring).

    `settings` from the store URL (`InfluxSettings.from_url`); `io` replaces the HTTP transport
    (tests that capture what is sent). Opening does not contact the server, so a service can
    start before it; the first call checks that the databases exist (`StoreMissing` otherwise)."""

    def __init__(self, settings: InfluxSettings, *, io: Transport | None = None) -> None:
        self.settings = settings
        self._io = io if io is not None else transport(settings)
        self._checked = False
        self._where = f"InfluxDB {settings.base_url}/{settings.bucket}"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._io.close()

    def _check(self) -> None:
        """StoreMissing unless both databases exist (once per store; StoreUnavailable when the
        server cannot be reached)."""
        if self._checked:
            return
        names = {row.get("name", "") for row in parse_rows(self._io.query("", "SHOW DATABASES"))}
        missing = [db for db in (self.settings.bucket, self.settings.derived) if db not in names]
        if missing:
            raise StoreMissing(f"{self._where}: no database/bucket {', '.join(missing)} (create "
                               "it with `limbwatch store init --store URL`)")
        self._checked = True

    def _query(self, db: str, q: str) -> bytes:
        self._check()
        return self._io.query(db, q)

    # --- writing ---------------------------------------------------------------------------

    def write_chunks(self, chunks: Sequence[Chunk]) -> None:
        """Store chunks (see the module docstring: idempotent, not atomic). ValueError for a
        malformed chunk (nothing stored); StoreRejected naming the chunks the server refused
        (the others are stored)."""
        for chunk in chunks:
            check_chunk(chunk)
            if (len(chunk.counts) - 1) * chunk.dt > MAX_CHUNK_S:
                raise ValueError(f"chunk {chunk.device}/{chunk.session}/{chunk.seq}: spans over "
                                 f"{MAX_CHUNK_S:.0f} s (split it)")
        if not chunks:
            return
        self._check()
        refused: list[str] = []
        # up to WRITES_IN_FLIGHT requests at once: the server parses one while this process
        # formats the next (the GIL is released while a request waits)
        with ThreadPoolExecutor(max_workers=WRITES_IN_FLIGHT) as pool:
            pending: list[Future[None]] = []
            for group in _groups(chunks):
                if len(pending) >= WRITES_IN_FLIGHT:
                    pending.pop(0).result()
                pending.append(pool.submit(self._write_group, _body(group), group, refused))
            for future in pending:
                future.result()
        if refused:
            raise StoreRejected(f"{self._where}: refused {len(refused)} chunks (the others are "
                                f"stored): {'; '.join(refused[:5])}")

    def _write_group(self, body: bytes, group: Sequence[Chunk], refused: list[str]) -> None:
        """Write one request; if the server refuses it as bad data, halves until the refused
        chunks are found (each logged and named in `refused`)."""
        try:
            self._io.write(self.settings.bucket, body)
        except StoreRejected as exc:
            if len(group) > 1:
                half = len(group) // 2
                for part in (group[:half], group[half:]):
                    self._write_group(_body(part), part, refused)
                return
            chunk = group[0]
            log.error("chunk %s/%s/%s refused: %s", chunk.device, chunk.session, chunk.seq, exc)
            refused.append(f"{chunk.device}/{chunk.session}/{chunk.seq}: {exc}")

    def put_clock_models(self, models: Mapping[tuple[str, int], ClockModel]) -> None:
        """Store the newest clock model of each (device, session), replacing the previous one."""
        if not models:
            return
        self._check()
        body = "".join(model_line(device, int(session), model.to_json())
                       for (device, session), model in models.items())
        self._io.write(self.settings.derived, body.encode())

    def put_night_figures(self, subject: str, noon: float,
                          figures: Mapping[str, float | int | str | None]) -> None:
        """The trend row of a night's report as a point of `nights` in the derived database, at
        the night's noon (Unix s): analysing the night again overwrites it (for Grafana)."""
        self._check()
        self._io.write(self.settings.derived, night_line(subject, noon, figures).encode())

    # --- reading ---------------------------------------------------------------------------

    def _index(self, where: str, start: float = -math.inf, end: float = math.inf
               ) -> list[_IndexRow]:
        """Chunk points matching an InfluxQL condition with start <= time < end, in (time,
        sensor, session, seq) order."""
        q = f"SELECT * FROM chunks WHERE {where}{_time_range(start, end)} GROUP BY sensor"
        found = []
        devices: dict[str, str] = {}  # the tags cell of a series -> its sensor
        for row in parse_rows(self._query(self.settings.bucket, q)):
            if not all(row.get(key) for key in _CHUNK_FIELDS):
                continue  # a point being written: not every field of it is visible yet
            tags = row["tags"]
            device = devices.get(tags)
            if device is None:
                device = devices[tags] = _tag(tags, "sensor")
            found.append(_IndexRow(
                device=device, subject=row["subject"],
                side=as_side(row["side"]), t0_us=int(row["time"]), session=int(row["session"]),
                seq=int(row["seq"]), n=int(row["n"]), dt=float(row["dt"]), cpg=int(row["cpg"]),
                ticks=int(row["ticks"]) if row.get("ticks") else None,
                rate=int(row["rate"]) if row.get("rate") else None, crc=int(row["crc"])))
        found.sort(key=lambda r: (r.t0_us, r.device, r.session, r.seq))
        return found

    def _samples(self, index: list[_IndexRow]
                 ) -> dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]]:
        """(time us, counts) of the sample points of each (sensor, subject, side) in `index`,
        over the span of its chunks, fetched in slices, READS_IN_FLIGHT at a time."""
        spans: dict[tuple[str, str, str], tuple[int, int]] = {}
        for r in index:
            key: tuple[str, str, str] = (r.device, r.subject, r.side)
            first, last = spans.get(key, (r.t0_us, r.t0_us))
            spans[key] = (min(first, r.t0_us), max(last, _last_us(r)))
        jobs = [(key, lo, min(lo + int(READ_SLICE_S * 1e6), hi + 1))
                for key, (first, hi) in spans.items()
                for lo in range(first, hi + 1, int(READ_SLICE_S * 1e6))]

        def fetch(job: tuple[tuple[str, str, str], int, int]) -> tuple[np.ndarray, np.ndarray]:
            (device, subject, side), lo, hi = job
            q = (f"SELECT x, y, z FROM samples WHERE sensor = {quote_literal(device)} AND "
                 f"subject = {quote_literal(subject)} AND side = {quote_literal(side)} AND "
                 f"time >= {lo}u AND time < {hi}u")
            return parse_samples(self._query(self.settings.bucket, q))

        with ThreadPoolExecutor(max_workers=READS_IN_FLIGHT) as pool:
            parts = list(pool.map(fetch, jobs))
        out: dict[tuple[str, str, str], list[tuple[np.ndarray, np.ndarray]]] = {}
        for (key, _, _), part in zip(jobs, parts, strict=True):
            out.setdefault(key, []).append(part)
        return {key: (np.concatenate([t for t, _ in p]), np.concatenate([c for _, c in p]))
                for key, p in out.items()}

    def _rows(self, index: list[_IndexRow], what: str) -> tuple[list[ChunkRow], int]:
        """Chunk rows (`limbwatch.store.sqlite.ChunkRow`) of the intact chunks of `index` (the
        first of a key only), and how many were damaged (logged)."""
        self._check()
        points = self._samples(index)
        rows: list[ChunkRow] = []
        damaged: list[str] = []
        seen: set[tuple[str, int, int]] = set()
        for series, chunks in _by_series(index).items():
            blobs, found = _blobs(points.get(series), chunks)
            for r, blob, ok in zip(chunks, blobs, found, strict=True):
                key = (r.device, r.session, r.seq)
                if key in seen:
                    continue  # a conflicting copy: conflicts()
                if not ok or contents_crc(r.device, r.subject, r.side, r.session, r.seq, r.cpg,
                                          r.ticks, r.rate, blob) != r.crc:
                    damaged.append("/".join(map(str, key)))
                    continue
                seen.add(key)
                rows.append((r.device, r.session, r.seq, r.subject, r.side, r.t0_us / 1e6, r.dt,
                             r.n, r.cpg, r.ticks, r.rate, blob))
        rows.sort(key=lambda row: (row[5], row[0], row[1], row[2]))
        if damaged:
            log.warning("%s: skipped %d damaged chunks (samples missing or failing their CRC: "
                        "collect them again or restore the database): %s", what, len(damaged),
                        ", ".join(damaged[:20]) + (" ..." if len(damaged) > 20 else ""))
        return rows, len(damaged)

    def _models(self, devices: set[str]) -> dict[tuple[str, int], ClockModel]:
        models = {}
        for device in sorted(devices):
            q = (f"SELECT session, model FROM clock_models WHERE sensor = "
                 f"{quote_literal(device)}")
            for row in parse_rows(self._query(self.settings.derived, q)):
                try:
                    models[(device, int(row["session"]))] = ClockModel.from_json(row["model"])
                except ValueError as exc:
                    log.warning("clock model of %s/%s is damaged, its chunks keep their live "
                                "times: %s", device, row["session"], exc)
        return models

    def read_samples(self, subject: str, side: Side, start: float, end: float) -> Samples:
        """All samples of a leg with start <= time < end (Unix s), in time order, re-stamped
        and joined as by `SqliteSampleStore.read_samples`."""
        index = self._index(f"subject = {quote_literal(subject)} AND side = {quote_literal(side)}",
                            start - RESTAMP_MARGIN_S - MAX_CHUNK_S, end + RESTAMP_MARGIN_S)
        reach = to_us(start - RESTAMP_MARGIN_S)  # chunks that end before cannot be re-stamped in
        index = [r for r in index if _last_us(r) >= reach]
        rows, damaged = self._rows(index, f"{subject} {side}")
        models = self._models({r.device for r in index})
        return samples_from_rows(rows, models, start, end, damaged)

    def read_chunks(self, device: str) -> list[Chunk]:
        """Every chunk of a sensor, in (session, seq) order, timed like `read_samples`."""
        index = self._index(f"sensor = {quote_literal(device)}")
        rows, _ = self._rows(index, f"sensor {device}")
        rows.sort(key=lambda r: (r[1], r[2]))
        t0, dt = restamped(rows, self._models({device}))
        return [replace(chunk_from_row(r), t0=float(a), dt=float(b))
                for r, a, b in zip(rows, t0, dt, strict=True)]

    def clock_model(self, device: str, session: int) -> ClockModel | None:
        return self._models({device}).get((device, int(session)))

    def conflicts(self) -> list[Chunk]:
        """Chunks stored under a key stored before (earlier) with other contents."""
        index = self._index("time >= 0")
        first: dict[tuple[str, int, int], _IndexRow] = {}
        later = []
        for r in index:
            key = (r.device, r.session, r.seq)
            if key not in first:
                first[key] = r
            elif r.crc != first[key].crc:
                later.append(r)
        found = []
        for r in later:
            counts = _counts(self._samples([r]).get((r.device, r.subject, r.side)), r)
            if counts is not None:
                found.append(_chunk(r, counts))
        return found

    def extent(self, subject: str, start: float = -math.inf,
               end: float = math.inf) -> Extent | None:
        """The subject's chunks with start <= t0 < end (Unix s): first and last sample time,
        the legs seen and how many chunks; None when there are none."""
        where = f"subject = {quote_literal(subject)}{_time_range(start, end)}"
        counts = {row["tags"]: int(row["count"]) for row in parse_rows(self._query(
            self.settings.bucket, f"SELECT count(n) FROM chunks WHERE {where} GROUP BY side"))}
        sides = [side for side in _SIDES if counts.get(f"side={side}", 0) > 0]
        if not sides:
            return None
        firsts = [int(row["time"]) for row in parse_rows(self._query(
            self.settings.bucket, f"SELECT first(n) FROM chunks WHERE {where} GROUP BY side"))]
        lasts = parse_rows(self._query(
            self.settings.bucket,
            f"SELECT n, dt FROM chunks WHERE {where} GROUP BY side ORDER BY time DESC LIMIT 20"))
        # a point being written may show some fields only (the server does not read a point's
        # fields atomically while it is stored): then its first sample bounds the extent
        last = max(int(r["time"]) / 1e6 + ((int(r["n"]) - 1) * float(r["dt"])
                                           if r.get("n") and r.get("dt") else 0.0) for r in lasts)
        return Extent(min(firsts) / 1e6, last, tuple(sides), sum(counts.values()))

    def devices(self, subject: str | None = None) -> list[str]:
        """The sensors with chunks stored (of `subject`, or of everyone), sorted."""
        where = "" if subject is None else f" WHERE subject = {quote_literal(subject)}"
        q = f"SHOW TAG VALUES FROM chunks WITH KEY = sensor{where}"
        return sorted({row["value"] for row in parse_rows(self._query(self.settings.bucket, q))})

    def stored_seqs(self, device: str, session: int) -> list[int]:
        """Every chunk seq stored for a device session, ascending."""
        q = (f"SELECT seq FROM chunks WHERE sensor = {quote_literal(device)} AND "
             f"session = {int(session)}")
        return sorted({int(row["seq"]) for row in
                       parse_rows(self._query(self.settings.bucket, q))})


def init_store(settings: InfluxSettings, *, retention_days: float | None = None,
               io: Transport | None = None) -> list[str]:
    """Create the raw and derived databases/buckets when missing (raw samples kept
    `retention_days`, default forever; derived forever); what was done, line by line."""
    if settings.api == "v2":
        from limbwatch.store.influx_buckets import init_buckets

        return init_buckets(settings, retention_days=retention_days)
    own = io is None
    conn = transport(settings) if io is None else io
    try:
        names = {row.get("name", "") for row in parse_rows(conn.query("", "SHOW DATABASES"))}
        done = []
        for db, days in ((settings.bucket, retention_days), (settings.derived, None)):
            if db in names:
                done.append(f"database {db}: exists")
                continue
            duration = "INF" if days is None else f"{round(days * 24)}h"
            conn.query("", f"CREATE DATABASE {quote_ident(db)} WITH DURATION {duration}")
            done.append(f"database {db}: created (retention {duration})")
        return done
    finally:
        if own:
            conn.close()


def _groups(chunks: Sequence[Chunk]) -> Iterator[Sequence[Chunk]]:
    """Consecutive chunks in groups of about `BATCH_LINES` lines."""
    start, lines = 0, 0
    for i, chunk in enumerate(chunks):
        lines += len(chunk.counts) + 1
        if lines >= BATCH_LINES:
            yield chunks[start:i + 1]
            start, lines = i + 1, 0
    if start < len(chunks):
        yield chunks[start:]


def _body(group: Sequence[Chunk]) -> bytes:
    """A request: the chunks' samples, then their chunk points (so that a chunk is found by
    reads only once its samples are stored)."""
    lines = [chunk_lines(chunk) for chunk in group]
    return ("".join(s for _, s in lines) + "".join(i for i, _ in lines)).encode()


def _time_range(start: float, end: float) -> str:
    parts = []
    if math.isfinite(start):
        parts.append(f" AND time >= {to_us(start)}u")
    if math.isfinite(end):
        parts.append(f" AND time < {to_us(end)}u")
    return "".join(parts)


def _tag(tags: str, key: str) -> str:
    """A tag's value from the `tags` cell of a CSV answer (`key=value,...`, escaped)."""
    for part in tags.split(","):
        name, _, value = part.partition("=")
        if name == key:
            return value.replace("\\ ", " ").replace("\\=", "=").replace("\\\\", "\\")
    raise ValueError(f"no tag {key!r} in {tags!r}")


def _by_series(index: list[_IndexRow]) -> dict[tuple[str, str, str], list[_IndexRow]]:
    """Chunks by their series' tags (sensor, subject, side), in order."""
    out: dict[tuple[str, str, str], list[_IndexRow]] = {}
    for r in index:
        out.setdefault((r.device, r.subject, r.side), []).append(r)
    return out


def _last_us(r: _IndexRow) -> int:
    """The time of a chunk's last sample point, as `sample_us` gives it."""
    return r.t0_us + round((r.n - 1) * (r.dt * 1e6))


def _blobs(points: tuple[np.ndarray, np.ndarray] | None, chunks: list[_IndexRow]
           ) -> tuple[list[bytes], list[bool]]:
    """Each chunk's counts as little-endian int16 bytes from its sensor's sample points (in
    time order), and whether all of its samples were found."""
    n = np.array([r.n for r in chunks], dtype=np.int64)
    if points is None or len(points[0]) == 0:
        return [b""] * len(chunks), [False] * len(chunks)
    times, counts = points
    first = np.cumsum(n) - n
    k = np.arange(int(n.sum())) - np.repeat(first, n)
    t0 = np.repeat(np.array([r.t0_us for r in chunks], dtype=np.int64), n)
    dt_us = np.repeat(np.array([r.dt for r in chunks]) * 1e6, n)
    expected = t0 + np.rint(k * dt_us).astype(np.int64)  # as `sample_us`, for all at once
    i = np.minimum(np.searchsorted(times, expected - _MATCH_US), len(times) - 1)
    hit = np.abs(times[i] - expected) <= _MATCH_US
    found = np.minimum.reduceat(hit, first).tolist() if len(first) else []
    data = counts[i].astype("<i2").tobytes()
    ends = (np.cumsum(n) * 6).tolist()
    starts = (first * 6).tolist()
    return [data[a:b] for a, b in zip(starts, ends, strict=True)], [bool(f) for f in found]


def _counts(points: tuple[np.ndarray, np.ndarray] | None, r: _IndexRow) -> np.ndarray | None:
    """One chunk's counts (int16 (n, 3)), None if any sample is missing."""
    blobs, found = _blobs(points, [r])
    return np.frombuffer(blobs[0], dtype="<i2").reshape(-1, 3).astype(np.int16) \
        if found[0] else None


def _chunk(r: _IndexRow, counts: np.ndarray) -> Chunk:
    return Chunk(r.subject, r.side, r.device, r.session, r.seq, r.t0_us / 1e6, r.dt, counts,
                 r.cpg, r.ticks, r.rate)
