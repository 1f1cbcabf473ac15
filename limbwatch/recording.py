"""One sensor's recording, and the reader for the CSV import contract (night-report.md section 1).

A CSV file is read on a fast path (pyarrow.csv's streaming reader, blocks parsed on its thread
pool, straight into preallocated numpy arrays). Only when that fails, or when a
vectorised check on the arrays finds a bad row, is the file scanned line by line in Python, so that
the error can name the first offending line (1-based file lines; the header is line 1).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from limbwatch.errors import BadInput

Side = Literal["left", "right"]

MIN_FS_HZ = 10.0
MAX_FS_HZ = 1000.0
MAX_ABS_G = 16.0
MIN_DURATION_S = 60.0

#: Nominal rates of common accelerometers, Hz; an inferred rate within 2 % snaps to the nearest.
COMMON_RATES_HZ = (
    *(10.0, 12.5, 16.0, 20.0, 25.0, 26.0, 30.0, 32.0, 40.0, 50.0, 52.0, 60.0, 64.0),
    *(100.0, 104.0, 120.0, 125.0, 128.0, 200.0, 208.0, 250.0, 256.0, 400.0, 416.0, 500.0),
    *(512.0, 800.0, 833.0, 1000.0),
)
SNAP_TOLERANCE = 0.02
BLOCK_BYTES = 1 << 20  # CSV read in blocks of this many bytes (`_read_arrays`): pyarrow reads
# ahead, so its buffers peak at about 40x this (80x at 2 MB); larger blocks are no faster
THREADS = True  # pyarrow parses blocks on its thread pool

_COLUMNS = ("time", "x", "y", "z")
_AXES = ("x", "y", "z")
_ISO_EXAMPLE = "2026-11-20T19:30:00.020Z"
# What pyarrow accepts as an ISO 8601 timestamp (the zone is checked separately).
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?"
)


G_MS2 = 9.80665  # 1 g in m/s^2


class RecordingError(BadInput):
    """Bad input. Its str() is one line naming the file, the line (when there is one) and the
    problem, e.g. "left.csv line 17: x is not a number ('abc')"."""

    def __init__(self, source: str, problem: str, line: int | None = None) -> None:
        where = source if line is None else f"{source} line {line}"
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.problem = problem
        self.line = line

    def __reduce__(self) -> tuple[type[RecordingError], tuple[str, str, int | None]]:
        return (RecordingError, (self.source, self.problem, self.line))


@dataclass(frozen=True, slots=True, eq=False)
class Recording:
    """One sensor's samples as delivered: strictly increasing times, possibly with gaps.

    Build it with read_recording_csv or recording_from_arrays, which validate; the arrays are
    read-only. Equality is identity (arrays have no single truth value).
    """

    side: Side
    time: npt.NDArray[np.float64]  # Unix seconds, strictly increasing, shape (n,)
    accel: npt.NDArray[np.float32]  # g, shape (n, 3), gravity included, sensor frame
    fs: float  # nominal sample rate, Hz
    source: str  # file name (or other label) used in messages


def read_recording_csv(path: Path | str, side: Side, *, fs: float | None = None) -> Recording:
    """Read one sensor's CSV file (header time,x,y,z; see the contract) into a validated Recording.

    `time` is Unix seconds or ISO 8601 *with* a zone (Z or +HH:MM; zone-less times are rejected
    because the night could not be placed in UTC); x, y, z are g. `fs` (Hz) overrides the rate
    inferred from the times. Raises RecordingError naming the file, the first bad line and why.
    """
    path = Path(path)
    source = str(path)
    header = _read_header(path, source)
    columns = _column_positions(header, source)
    first = next(_data_rows(path, source), None)
    if first is None:
        raise RecordingError(source, "no data rows after the header")
    first_time = first[1][columns["time"]] if columns["time"] < len(first[1]) else ""
    iso = not _is_number(first_time)
    try:
        time, accel = _read_arrays(path, len(header), columns, iso)
    except pa.ArrowException as exc:
        _raise_first_bad_line(path, source, len(header), columns, iso)
        arrow_message = " ".join(str(exc).split())
        raise RecordingError(source, f"could not be read as CSV ({arrow_message})") from exc
    finally:
        pa.default_memory_pool().release_unused()
    return _validated(time, accel, side, fs, _FileRows(path, source, columns))


def recording_from_arrays(
    time: npt.ArrayLike,
    accel: npt.ArrayLike,
    side: Side,
    *,
    fs: float | None = None,
    source: str = "arrays",
) -> Recording:
    """Validate copies of `time` (Unix s, shape (n,)) and `accel` (g, shape (n, 3)) as a Recording.

    Same checks as read_recording_csv; messages name the sample index (from 0) instead of a line.
    """
    time_s = np.array(time, dtype=np.float64)
    with np.errstate(over="ignore"):  # out-of-range values become inf and are reported below
        accel_g = np.array(accel, dtype=np.float32)
    if time_s.ndim != 1:
        raise RecordingError(source, f"time must be one-dimensional, not of shape {time_s.shape}")
    if accel_g.shape != (len(time_s), 3):
        raise RecordingError(
            source, f"accel must have shape ({len(time_s)}, 3) to match time, not {accel_g.shape}"
        )
    return _validated(time_s, accel_g, side, fs, _ArrayRows(source, time_s, accel_g))


def infer_sample_rate(time: npt.NDArray[np.float64]) -> float:
    """Nominal sample rate (Hz) of increasing Unix times (s), robust to gaps and jitter.

    The sample period is the median of the positive time differences, refined as the median of
    those below 1.5 times that first estimate (so lost rows, i.e. double steps, do not bias it).
    1 / period then snaps to the nearest rate in COMMON_RATES_HZ if within SNAP_TOLERANCE (2 %),
    else it is rounded to 0.1 Hz. Raises ValueError without two increasing times.
    """
    steps = np.diff(time)
    steps = steps[steps > 0]
    if len(steps) == 0:
        raise ValueError("need at least two increasing times to infer a sample rate")
    first = np.median(steps)
    raw = 1.0 / float(np.median(steps[steps < 1.5 * first]))
    nearest = min(COMMON_RATES_HZ, key=lambda rate: abs(raw - rate) / rate)
    if abs(raw - nearest) <= SNAP_TOLERANCE * nearest:
        return nearest
    return round(raw, 1)


def check_overlap(a: Recording, b: Recording) -> None:
    """Raise RecordingError, naming both files, unless the two legs overlap for MIN_DURATION_S."""
    overlap = min(a.time[-1], b.time[-1]) - max(a.time[0], b.time[0])
    if overlap >= MIN_DURATION_S:
        return
    spans = "; ".join(f"{r.source}: {_utc(r.time[0])} to {_utc(r.time[-1])}" for r in (a, b))
    if overlap <= 0:
        problem = "the two recordings do not overlap in time"
    else:
        problem = f"the two recordings overlap for only {overlap:.1f} s (need {MIN_DURATION_S:g} s)"
    raise RecordingError(f"{a.source} and {b.source}", f"{problem} ({spans})")


def _utc(t: float) -> str:
    """Unix seconds as an ISO 8601 UTC string with milliseconds."""
    stamp = datetime.fromtimestamp(float(t), UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


# --- reading -------------------------------------------------------------------------------------


def _read_header(path: Path, source: str) -> list[str]:
    """The header's column names, stripped and lower-cased."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), None)
    except FileNotFoundError:
        raise RecordingError(source, "file not found") from None
    except IsADirectoryError:
        raise RecordingError(source, "is a directory, not a CSV file") from None
    except UnicodeDecodeError:
        raise RecordingError(source, "is not a UTF-8 text (CSV) file") from None
    except (OSError, csv.Error) as exc:
        raise RecordingError(source, f"cannot be read ({getattr(exc, 'strerror', exc)})") from None
    if header is None:
        raise RecordingError(source, "file is empty")
    if not header:
        raise RecordingError(source, "is empty; expected a header line such as time,x,y,z", 1)
    return [name.strip().lower() for name in header]


def _column_positions(header: list[str], source: str) -> dict[str, int]:
    """Position of each required column in the header, or RecordingError saying what is wrong."""
    if _is_number(header[0]) or _ISO.fullmatch(header[0]):
        raise RecordingError(
            source, "holds data, not a header; the first line must name the columns time,x,y,z", 1
        )
    positions: dict[str, int] = {}
    for name in _COLUMNS:
        found = [i for i, column in enumerate(header) if column == name]
        if len(found) > 1:
            raise RecordingError(source, f"header names column {name!r} more than once", 1)
        if found:
            positions[name] = found[0]
    missing = [name for name in _COLUMNS if name not in positions]
    if missing:
        names = ", ".join(repr(name) for name in missing)
        found_names = ", ".join(repr(name) for name in header)
        hint = "; columns must be separated by commas" if len(header) == 1 else ""
        raise RecordingError(
            source,
            f"header has no {names} column{'s' if len(missing) > 1 else ''} (found {found_names}; "
            f"expected time, x, y, z in any order{hint})",
            1,
        )
    return positions


def _read_arrays(
    path: Path, n_columns: int, columns: dict[str, int], iso: bool,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
    """The time (Unix s) and x, y, z (g) columns, read in blocks of `BLOCK_BYTES` into arrays
    allocated once for the rows the file size suggests (grown if it held more).

    Reading block by block keeps pyarrow's buffers to the blocks in flight instead of the whole
    file as float64 columns: for one leg's 10-h 50 Hz file (71 MB) the process peaks about
    110 MB above where it started (its arrays take 35 MB) instead of about 230 MB
    (`bench/bench_cli.py`).
    """
    names = [f"column {i}" for i in range(n_columns)]
    for name, position in columns.items():
        names[position] = name
    time_type = pa.timestamp("ns", tz="UTC") if iso else pa.float64()
    reader = pacsv.open_csv(
        pa.OSFile(str(path)),  # a plain file: a path would be memory-mapped into the RSS
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=BLOCK_BYTES,
                                       use_threads=THREADS),
        convert_options=pacsv.ConvertOptions(
            column_types={"time": time_type} | {axis: pa.float64() for axis in _AXES},
            include_columns=list(_COLUMNS),
            null_values=[],
        ),
    )
    capacity = _rows_estimate(path)
    time = np.empty(capacity, dtype=np.float64)
    accel = np.empty((capacity, 3), dtype=np.float32)
    n = 0
    with np.errstate(over="ignore"):  # out-of-range values become inf and are reported later
        for batch in reader:
            k = batch.num_rows
            if n + k > capacity:
                capacity = max(2 * capacity, n + k)
                time = np.resize(time, capacity)
                accel = np.resize(accel, (capacity, 3))
            column = batch.column(0)
            if iso:
                ns = _values(column.cast(pa.int64()), np.int64)
                whole_s = ns // 1_000_000_000
                time[n:n + k] = whole_s + (ns - whole_s * 1_000_000_000) / 1e9
            else:
                time[n:n + k] = _values(column, np.float64)
            for j in range(3):
                accel[n:n + k, j] = _values(batch.column(j + 1), np.float64)
            n += k
    if n < capacity // 2:  # a much shorter file than its size suggested: do not keep the rest
        return time[:n].copy(), accel[:n].copy()
    return time[:n], accel[:n]


def _values(array: pa.Array, dtype: type[np.generic]) -> npt.NDArray[Any]:
    """A numeric arrow array without nulls as a numpy view of its data buffer (`to_numpy` on
    each block held about 50 MB more at the peak of a 10-h 50 Hz file)."""
    if array.null_count:
        return cast(npt.NDArray[Any], array.to_numpy(zero_copy_only=False))
    data = np.frombuffer(array.buffers()[1], dtype=dtype)
    return data[array.offset:array.offset + len(array)]


def _rows_estimate(path: Path) -> int:
    """Rows a CSV file holds, from its size and its first lines' length (a little over)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    lines = head.count(b"\n")
    if lines < 3:
        return 1024
    per_row = len(head[head.index(b"\n") + 1:head.rindex(b"\n") + 1]) / (lines - 1)
    return int(size / per_row * 1.02) + 1024


def _data_rows(path: Path, source: str) -> Iterator[tuple[int, list[str]]]:
    """(file line number, fields) of each non-empty row after the header, read in Python."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        try:
            next(reader, None)
            for fields in reader:
                if fields:
                    yield reader.line_num, fields
        except csv.Error as exc:
            raise RecordingError(source, f"is not valid CSV ({exc})", reader.line_num) from None


def _raise_first_bad_line(
    path: Path, source: str, n_columns: int, columns: dict[str, int], iso: bool
) -> None:
    """Scan the file in Python; raise RecordingError for the first line pyarrow could not take."""
    checks = [(name, columns[name]) for name in _COLUMNS]
    rows = _data_rows(path, source)
    for line, fields in rows:
        if len(fields) != n_columns:
            cut_short = len(fields) < n_columns and next(rows, None) is None
            hint = "; the file looks cut short" if cut_short else ""
            raise RecordingError(
                source, f"row has {len(fields)} fields, the header {n_columns}{hint}", line
            )
        for name, position in checks:
            problem = _value_problem(name, fields[position], iso)
            if problem is not None:
                raise RecordingError(source, problem, line)


def _is_number(text: str) -> bool:
    """Whether pyarrow reads `text` as a float64: what float() takes, less "_" and non-ASCII."""
    if not text.isascii() or "_" in text:
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def _value_problem(name: str, text: str, iso: bool) -> str | None:
    """Why `text` is not a valid value for column `name`, or None if it is."""
    if not text.strip():
        return f"{name} is empty"
    number = _is_number(text)
    if name != "time":
        return None if number else f"{name} is not a number ({text!r})"
    if not iso:
        if number:
            return None
        if _ISO.fullmatch(text):
            return f"time is ISO 8601 but the first row has Unix seconds; use one format ({text!r})"
        return f"time is not a number of Unix seconds ({text!r})"
    if number:
        return f"time is Unix seconds but the first row has ISO 8601; use one format ({text!r})"
    match = _ISO.fullmatch(text)
    if match is None:
        return f"time is neither Unix seconds nor ISO 8601 like {_ISO_EXAMPLE} ({text!r})"
    if match[7] is None:
        return f"ISO 8601 time has no zone; add Z (UTC) or an offset like +01:00 ({text!r})"
    year, month, day, hour, minute, second = (int(part) for part in match.groups("0")[:6])
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError:
        return f"time is not a valid date and time ({text!r})"
    return None


# --- validation ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Where:
    """Where a data row came from, for messages."""

    line: int | None  # 1-based file line, None for arrays
    label: str  # "line 17" or "sample 17"
    values: dict[str, str]  # column name -> the value as given


class _Origin(Protocol):
    @property
    def source(self) -> str: ...

    def locate(self, rows: Sequence[int]) -> list[_Where]: ...


@dataclass(frozen=True, slots=True)
class _FileRows:
    """Data rows of a CSV file, located by re-scanning it (only done to report an error)."""

    path: Path
    source: str
    columns: dict[str, int]

    def locate(self, rows: Sequence[int]) -> list[_Where]:
        wanted = set(rows)
        found: dict[int, _Where] = {}
        for row, (line, fields) in enumerate(_data_rows(self.path, self.source)):
            if row in wanted:
                values = {name: fields[i] for name, i in self.columns.items()}
                found[row] = _Where(line, f"line {line}", values)
                if len(found) == len(wanted):
                    break
        return [found.get(row, _Where(None, f"data row {row + 1}", {})) for row in rows]


@dataclass(frozen=True, slots=True)
class _ArrayRows:
    """Samples of in-memory arrays, located by index."""

    source: str
    time: npt.NDArray[np.float64]
    accel: npt.NDArray[np.float32]

    def locate(self, rows: Sequence[int]) -> list[_Where]:
        return [
            _Where(
                None,
                f"sample {row}",
                {"time": repr(float(self.time[row]))}
                | {axis: str(self.accel[row, j]) for j, axis in enumerate(_AXES)},
            )
            for row in rows
        ]


def as_side(value: str) -> Side:
    """`value` as a Side; ValueError if it is neither 'left' nor 'right'."""
    if value in ("left", "right"):
        return cast(Side, value)
    raise ValueError(f"side must be 'left' or 'right', not {value!r}")


def _validated(
    time: npt.NDArray[np.float64],
    accel: npt.NDArray[np.float32],
    side: Side,
    fs: float | None,
    origin: _Origin,
) -> Recording:
    """Check the arrays against the contract and wrap them, read-only, in a Recording."""
    source = origin.source
    try:
        as_side(side)
    except ValueError as exc:
        raise RecordingError(source, str(exc)) from None
    if len(time) == 0:
        raise RecordingError(source, "no samples")
    _check_rows(time, accel, origin)
    if len(time) < 2:
        raise RecordingError(source, f"only one sample; need at least {MIN_DURATION_S:g} s")
    if fs is None:
        fs = infer_sample_rate(time)
        how = "inferred from the times"
    else:
        fs = float(fs)
        how = "given"
    if not MIN_FS_HZ <= fs <= MAX_FS_HZ:
        hint = " (the times look like milliseconds, not seconds)" if time[0] > 1e11 else ""
        raise RecordingError(
            source,
            f"sample rate {fs:g} Hz ({how}) is outside {MIN_FS_HZ:g}-{MAX_FS_HZ:g} Hz{hint}",
        )
    duration = float(time[-1] - time[0])
    if duration < MIN_DURATION_S:
        raise RecordingError(
            source,
            f"recording covers only {duration:.1f} s ({_utc(time[0])} to {_utc(time[-1])}); "
            f"need at least {MIN_DURATION_S:g} s",
        )
    time.flags.writeable = False
    accel.flags.writeable = False
    return Recording(side=side, time=time, accel=accel, fs=fs, source=source)


def _first(mask: npt.ArrayLike) -> int | None:
    """Index of the first True in `mask`, or None."""
    flags = np.asarray(mask, dtype=bool)
    return int(np.argmax(flags)) if flags.any() else None


def _check_rows(
    time: npt.NDArray[np.float64], accel: npt.NDArray[np.float32], origin: _Origin
) -> None:
    """RecordingError for the first row with a non-finite time, an axis that is NaN or beyond
    +/-MAX_ABS_G g, or a time not after the previous row's."""
    bad_time = _first(~np.isfinite(time))
    # Whole-array min and max first (NaN propagates); the row mask is only built when needed.
    in_range = accel.min() >= -MAX_ABS_G and accel.max() <= MAX_ABS_G
    bad_accel = None if in_range else _first(~(np.abs(accel) <= MAX_ABS_G).all(axis=1))
    bad_order = _first(~(np.diff(time) > 0))
    candidates = [
        (row, kind)
        for row, kind in (
            (bad_time, "time"),
            (bad_accel, "accel"),
            (None if bad_order is None else bad_order + 1, "order"),
        )
        if row is not None
    ]
    if not candidates:
        return
    row, kind = min(candidates, key=lambda candidate: candidate[0])
    if kind == "order":
        before, here = origin.locate([row - 1, row])
        now, then = here.values.get("time", "?"), before.values.get("time", "?")
        if time[row] == time[row - 1]:
            problem = f"time {now} repeats the time on {before.label}; times must increase"
        else:
            problem = f"time {now} is before {then} on {before.label}; rows must be in time order"
    elif kind == "time":
        (here,) = origin.locate([row])
        problem = f"time is not a finite number ({here.values.get('time', '?')!r})"
    else:
        (here,) = origin.locate([row])
        j = int(np.argmax(~(np.abs(accel[row]) <= MAX_ABS_G)))
        axis = _AXES[j]
        text = here.values.get(axis, "?")
        if np.isnan(accel[row, j]):
            problem = f"{axis} is not a number ({text!r})"
        else:
            problem = f"{axis} is {text} g, beyond the sensor range of +/-{MAX_ABS_G:g} g"
            still = float(np.nanmedian(np.linalg.norm(accel, axis=1)))
            if abs(still - G_MS2) < 1.5:  # gravity reads 9.8: the file is in m/s^2
                problem += (f" (the median |a| is {still:.1f}: the values look like m/s^2; "
                            "divide them by 9.80665)")
    prefix = "" if here.line is not None else f"{here.label}: "
    raise RecordingError(origin.source, prefix + problem, here.line)
