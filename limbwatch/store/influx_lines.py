"""Line protocol out, InfluxQL CSV in: the pure half of the InfluxDB sample store.

Schema (docs/influxdb.md), all times in microseconds (`PRECISION`):
- `samples`: a point per sample, tags `sensor`, `side`, `subject` (bounded: never night or
  event ids), integer fields `x`, `y`, `z` (raw counts; the scale is in the chunk's point), at
  the time stamped live (`sample_us`).
- `chunks`: a point per chunk (one BLE packet, or more) at the time of its first sample, same
  tags, integer fields `session`, `seq`, `n`, `cpg` (counts per g), `ticks`, `rate` and `crc`
  (CRC-32 of the contents, `chunk_crc`) and the float field `dt` (s). Reads rebuild the chunks
  from it, re-stamp them from their ticks with the session's clock model, and check each
  against its CRC.
- `clock_models` (derived database): the newest clock model of a sensor session, at the time
  `session` us, so that a newer model of the session overwrites the old one.
- `nights` (derived database): the trend row of a night's report at the night's noon, so that
  re-analysis overwrites it.
Series are (measurement, tags); a point written again with the same time and fields is a no-op,
hence writing a chunk twice stores it once.
"""

from __future__ import annotations

import csv
import io
import math
import zlib
from collections.abc import Mapping

import numpy as np

from limbwatch.store.samples import Chunk

PRECISION = "u"  # timestamps in microseconds: 0.5 us rounding, 3 digits shorter than ns
_ESCAPE_TAG = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\=", "\\": "\\\\"})


def tag(value: str) -> str:
    """A tag value escaped for line protocol; ValueError for one that cannot be a tag."""
    if not value or "\n" in value:
        raise ValueError(f"{value!r} cannot be an InfluxDB tag value (empty or multi-line)")
    return value.translate(_ESCAPE_TAG)


def string_field(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_ident(name: str) -> str:
    """An InfluxQL identifier (database, measurement) in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_literal(value: str) -> str:
    """An InfluxQL string literal (a tag value in WHERE)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def to_us(t: float) -> int:
    """Unix s -> integer microseconds."""
    return round(t * 1e6)


def sample_us(t0_us: int, dt: float, n: int) -> np.ndarray:
    """The integer us times of a chunk's samples, from the time of its point and its dt (s):
    the same on writing and reading, since both come from the stored values."""
    return t0_us + np.rint(np.arange(n) * (dt * 1e6)).astype(np.int64)


def chunk_crc(chunk: Chunk) -> int:
    """CRC-32 of what a chunk is (its key, leg, scale, ticks, rate and counts); its times are
    estimates and not part of it."""
    return contents_crc(chunk.device, chunk.subject, chunk.side, chunk.session, chunk.seq,
                        chunk.counts_per_g, chunk.ticks, chunk.rate_hz,
                        np.ascontiguousarray(chunk.counts, dtype="<i2").tobytes())


def contents_crc(device: str, subject: str, side: str, session: int, seq: int, cpg: int,
                 ticks: int | None, rate: int | None, blob: bytes) -> int:
    """`chunk_crc` from a chunk's fields and its counts as little-endian int16 bytes."""
    head = (f"{len(device)}:{device}|{len(subject)}:{subject}|{side}|{session}|{seq}|"
            f"{len(blob) // 6}|{cpg}|{ticks}|{rate}").encode()
    return zlib.crc32(blob, zlib.crc32(head))


def series_key(measurement: str, subject: str, side: str, device: str) -> str:
    """`measurement,sensor=..,side=..,subject=..` (tags in sorted order, as InfluxDB keeps them)."""
    return f"{measurement},sensor={tag(device)},side={tag(side)},subject={tag(subject)}"


def chunk_lines(chunk: Chunk) -> tuple[str, str]:
    """(the chunk's point, its samples' points) as line protocol, each line ending in \\n."""
    t0 = to_us(chunk.t0)
    n = len(chunk.counts)
    fields = [f"session={chunk.session}i", f"seq={chunk.seq}i", f"n={n}i",
              f"cpg={chunk.counts_per_g}i", f"dt={chunk.dt!r}", f"crc={chunk_crc(chunk)}i"]
    if chunk.ticks is not None:
        fields.append(f"ticks={chunk.ticks}i")
    if chunk.rate_hz is not None:
        fields.append(f"rate={chunk.rate_hz}i")
    head = series_key("chunks", chunk.subject, chunk.side, chunk.device)
    index = f"{head} {','.join(fields)} {t0}\n"
    values = np.empty((n, 4), dtype=np.int64)
    values[:, :3] = chunk.counts
    values[:, 3] = sample_us(t0, chunk.dt, n)
    fmt = series_key("samples", chunk.subject, chunk.side, chunk.device) + \
        " x=%di,y=%di,z=%di %d\n"
    return index, (fmt * n) % tuple(values.ravel().tolist())


def model_line(device: str, session: int, model_json: str) -> str:
    return (f"clock_models,sensor={tag(device)} session={session}i,"
            f"model={string_field(model_json)} {session}\n")


def night_line(subject: str, noon: float, fields: Mapping[str, float | int | str | None]) -> str:
    """The trend row of a night as one point of `nights` at its noon (None values left out)."""
    parts = []
    for key, value in sorted(fields.items()):
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue
        if isinstance(value, int):  # bool too
            parts.append(f"{key}={int(value)}i")
        elif isinstance(value, float):
            parts.append(f"{key}={value!r}")
        else:
            parts.append(f"{key}={string_field(str(value))}")
    return f"nights,subject={tag(subject)} {','.join(parts)} {to_us(noon)}\n"


def parse_samples(body: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(time int64 us, counts int64 (n, 3)) of an InfluxQL CSV answer to
    `SELECT x, y, z FROM samples WHERE ...` of one series (columns name,tags,time,x,y,z)."""
    text = body.decode()
    start = text.find("\n")
    if start < 0 or start == len(text) - 1:
        return np.empty(0, dtype=np.int64), np.empty((0, 3), dtype=np.int64)
    table = np.loadtxt(io.StringIO(text[start + 1:]), delimiter=",", usecols=(2, 3, 4, 5),
                       dtype=np.int64, ndmin=2)
    return table[:, 0], table[:, 1:]


def parse_rows(body: bytes) -> list[dict[str, str]]:
    """The rows of a (small) InfluxQL CSV answer as dicts of column -> cell ("" where the
    field is absent); header rows of later series are skipped."""
    rows = list(csv.reader(io.StringIO(body.decode())))
    if not rows:
        return []
    header = rows[0]
    return [dict(zip(header, row, strict=True)) for row in rows[1:] if row and row != header]
