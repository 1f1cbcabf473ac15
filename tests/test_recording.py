"""Tests for limbwatch.recording: the Recording type and the CSV import contract."""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from limbwatch.recording import (
    MAX_ABS_G,
    Recording,
    RecordingError,
    check_overlap,
    infer_sample_rate,
    read_recording_csv,
    recording_from_arrays,
)

START_S = 1_795_203_000.0  # 2026-11-20T19:30:00Z
Times = npt.NDArray[np.float64]
Accel = npt.NDArray[np.float32]


def night(fs: float = 50.0, seconds: float = 90.0, start: float = START_S) -> tuple[Times, Accel]:
    """A gap-free recording: times at `fs` Hz rounded to ms, accel near gravity (4 decimals)."""
    n = round(seconds * fs)
    time = np.round(start + np.arange(n) / fs, 3)
    rng = np.random.default_rng(1)
    accel = rng.normal([0.02, -0.44, 0.89], 0.05, size=(n, 3)).round(4).astype(np.float32)
    return time, accel


def unix_text(t: float) -> str:
    return f"{t:.3f}"


def iso_text(t: float, offset_h: int = 0) -> str:
    """ISO 8601 with milliseconds, in UTC ('Z') or at a fixed offset ('+01:00')."""
    zone = UTC if offset_h == 0 else timezone(timedelta(hours=offset_h))
    stamp = datetime.fromtimestamp(round(t, 3), zone).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def csv_lines(
    time: Times, accel: Accel, time_text: Callable[[float], str] = unix_text
) -> list[str]:
    """Header and data lines of a contract CSV file (no line endings)."""
    rows = [
        f"{time_text(float(t))},{a[0]:.4f},{a[1]:.4f},{a[2]:.4f}"
        for t, a in zip(time, accel, strict=True)
    ]
    return ["time,x,y,z", *rows]


def write(path: Path, lines: list[str], *, final_newline: bool = True) -> Path:
    path.write_text("\n".join(lines) + ("\n" if final_newline else ""), encoding="utf-8")
    return path


def error_of(path: Path, fs: float | None = None) -> str:
    with pytest.raises(RecordingError) as caught:
        read_recording_csv(path, "left", fs=fs)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message


def bad_file(tmp_path: Path, data_row: int, line: str) -> Path:
    """A valid 90-s 50-Hz file with data row `data_row` (0-based; file line data_row + 2)
    replaced."""
    lines = csv_lines(*night())
    lines[data_row + 1] = line
    return write(tmp_path / "left.csv", lines)


# --- reading valid files -------------------------------------------------------------------------


def test_reads_contract_example_as_float64_seconds_and_float32_g(tmp_path: Path) -> None:
    time, accel = night()
    rec = read_recording_csv(write(tmp_path / "left.csv", csv_lines(time, accel)), "left")
    assert rec.side == "left"
    assert rec.source == str(tmp_path / "left.csv")
    assert rec.fs == 50.0
    assert rec.time.dtype == np.float64
    assert rec.accel.dtype == np.float32
    assert rec.accel.shape == (len(time), 3)
    np.testing.assert_array_equal(rec.time, time)
    np.testing.assert_array_equal(rec.accel, accel)


def test_numeric_and_iso_times_give_the_same_unix_floats(tmp_path: Path) -> None:
    time, accel = night(fs=100.0)
    numeric = read_recording_csv(write(tmp_path / "a.csv", csv_lines(time, accel)), "left")
    utc = read_recording_csv(write(tmp_path / "b.csv", csv_lines(time, accel, iso_text)), "left")
    plus_one = read_recording_csv(
        write(tmp_path / "c.csv", csv_lines(time, accel, lambda t: iso_text(t, 1))), "left"
    )
    assert iso_text(START_S, 1) == "2026-11-20T20:30:00.000+01:00"
    np.testing.assert_array_equal(numeric.time, time)
    np.testing.assert_array_equal(utc.time, numeric.time)
    np.testing.assert_array_equal(plus_one.time, numeric.time)
    np.testing.assert_array_equal(plus_one.accel, numeric.accel)


def test_header_is_case_insensitive_order_free_and_extra_columns_are_ignored(
    tmp_path: Path,
) -> None:
    time, accel = night()
    lines = [" Z ,Time,battery,X,y"] + [
        f"{a[2]:.4f},{t:.3f},n/a,{a[0]:.4f},{a[1]:.4f}" for t, a in zip(time, accel, strict=True)
    ]
    rec = read_recording_csv(write(tmp_path / "left.csv", lines), "right")
    assert rec.side == "right"
    np.testing.assert_array_equal(rec.time, time)
    np.testing.assert_array_equal(rec.accel, accel)


def test_bom_crlf_quotes_and_blank_lines_are_accepted(tmp_path: Path) -> None:
    time, accel = night()
    lines = csv_lines(time, accel)
    lines[0] = '\ufeff"time","x","y","z"'
    lines.insert(500, "")
    path = tmp_path / "left.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n\r\n").encode())
    rec = read_recording_csv(path, "left")
    np.testing.assert_array_equal(rec.time, time)


def test_gaps_are_preserved_not_filled(tmp_path: Path) -> None:
    time, accel = night(fs=50.0)
    keep = np.ones(len(time), dtype=bool)
    keep[1000:1500] = False  # a 10-s disconnection
    keep[3000::7] = False  # packet loss
    rec = read_recording_csv(write(tmp_path / "l.csv", csv_lines(time[keep], accel[keep])), "left")
    np.testing.assert_array_equal(rec.time, time[keep])
    np.testing.assert_array_equal(rec.accel, accel[keep])
    assert np.diff(rec.time).max() == pytest.approx(10.02)
    assert rec.fs == 50.0


@pytest.mark.parametrize("fs", [25.0, 50.0, 100.0])
def test_sample_rate_is_inferred_despite_jitter_and_missing_rows(fs: float) -> None:
    rng = np.random.default_rng(int(fs))
    time = START_S + np.arange(round(600 * fs)) / fs
    time = np.round(time + rng.uniform(-0.15, 0.15, len(time)) / fs, 3)  # +/-15 % jitter, ms
    keep = rng.random(len(time)) > 0.2  # 20 % of rows lost
    keep[len(time) // 3 : len(time) // 2] = False  # and a long gap
    assert infer_sample_rate(time[keep]) == fs


def test_sample_rate_through_a_file_with_jitter_and_gaps(tmp_path: Path) -> None:
    time, accel = night(fs=25.0)
    time = np.round(time + np.random.default_rng(2).uniform(-0.003, 0.003, len(time)), 3)
    keep = np.arange(len(time)) % 5 != 0
    rec = read_recording_csv(write(tmp_path / "l.csv", csv_lines(time[keep], accel[keep])), "left")
    assert rec.fs == 25.0


def test_uncommon_rate_is_rounded_to_a_tenth_of_a_hertz() -> None:
    assert infer_sample_rate(START_S + np.arange(1000) / 37.34) == 37.3
    assert infer_sample_rate(START_S + np.arange(1000) / 101.0) == 100.0  # within 2 %: snapped


def test_infer_sample_rate_needs_two_increasing_times() -> None:
    with pytest.raises(ValueError, match="two increasing times"):
        infer_sample_rate(np.array([START_S]))


def test_fs_argument_overrides_inference(tmp_path: Path) -> None:
    path = write(tmp_path / "left.csv", csv_lines(*night(fs=50.0)))
    assert read_recording_csv(path, "left", fs=64).fs == 64.0


def test_recording_arrays_are_read_only(tmp_path: Path) -> None:
    rec = read_recording_csv(write(tmp_path / "left.csv", csv_lines(*night())), "left")
    with pytest.raises(ValueError, match="read-only"):
        rec.accel[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        rec.time[0] = 0.0


# --- bad files: each message names the file, the line where there is one, and the problem -------


def test_missing_file(tmp_path: Path) -> None:
    assert error_of(tmp_path / "left.csv") == f"{tmp_path / 'left.csv'}: file not found"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert "is a directory" in error_of(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "left.csv"
    path.write_bytes(b"")
    assert error_of(path).endswith("left.csv: file is empty")


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "left.csv"
    path.write_bytes(b"\xff\xfe\x00\x81binary")
    assert "not a UTF-8 text" in error_of(path)


def test_blank_first_line(tmp_path: Path) -> None:
    message = error_of(write(tmp_path / "left.csv", ["", *csv_lines(*night())]))
    assert message.endswith("left.csv line 1: is empty; expected a header line such as time,x,y,z")


def test_header_only(tmp_path: Path) -> None:
    assert error_of(write(tmp_path / "left.csv", ["time,x,y,z"])).endswith(
        "left.csv: no data rows after the header"
    )


def test_missing_column_is_named(tmp_path: Path) -> None:
    lines = [line.rsplit(",", 1)[0] for line in csv_lines(*night())]  # drop z
    message = error_of(write(tmp_path / "left.csv", lines))
    assert "left.csv line 1: header has no 'z' column (found 'time', 'x', 'y'" in message


def test_wrong_header_names_every_missing_column(tmp_path: Path) -> None:
    lines = csv_lines(*night())
    lines[0] = "t,ax,ay,az"
    message = error_of(write(tmp_path / "left.csv", lines))
    assert "left.csv line 1: header has no 'time', 'x', 'y', 'z' columns" in message


def test_semicolon_separated_header_gets_a_hint(tmp_path: Path) -> None:
    message = error_of(write(tmp_path / "left.csv", ["time;x;y;z", "1;2;3;4"]))
    assert "separated by commas" in message


def test_missing_header(tmp_path: Path) -> None:
    message = error_of(write(tmp_path / "left.csv", csv_lines(*night())[1:]))
    assert "left.csv line 1: holds data, not a header" in message


def test_duplicate_column(tmp_path: Path) -> None:
    message = error_of(write(tmp_path / "left.csv", ["time,x,y,z,X", "1,2,3,4,5"]))
    assert "left.csv line 1: header names column 'x' more than once" in message


def test_non_numeric_value_names_its_line(tmp_path: Path) -> None:
    message = error_of(bad_file(tmp_path, 15, f"{START_S + 0.3:.3f},abc,-0.44,0.89"))
    assert message.endswith("left.csv line 17: x is not a number ('abc')")


def test_line_numbers_count_blank_lines_and_ignore_extra_columns(tmp_path: Path) -> None:
    time, accel = night()
    lines = [f"{line},ok" for line in csv_lines(time, accel)]
    lines[0] = "time,x,y,z,note"
    lines[10] = f"{time[9]:.3f},0.02,-0.44,0.89,not a number either"  # extra column: ignored
    lines[40] = f"{time[39]:.3f},0.02,-0.44,nan,ok"
    lines[3:3] = ["", ""]  # two blank lines: the bad row moves to line 43
    assert error_of(write(tmp_path / "left.csv", lines)).endswith(
        "left.csv line 43: z is not a number ('nan')"
    )


def test_empty_value(tmp_path: Path) -> None:
    message = error_of(bad_file(tmp_path, 15, f"{START_S + 0.3:.3f},0.02,,0.89"))
    assert message.endswith("left.csv line 17: y is empty")


def test_nan_value(tmp_path: Path) -> None:
    message = error_of(bad_file(tmp_path, 40, f"{START_S + 0.8:.3f},0.02,nan,0.89"))
    assert message.endswith("left.csv line 42: y is not a number ('nan')")


def test_nan_time(tmp_path: Path) -> None:
    message = error_of(bad_file(tmp_path, 40, "nan,0.02,-0.44,0.89"))
    assert message.endswith("left.csv line 42: time is not a finite number ('nan')")


def test_value_beyond_16_g(tmp_path: Path) -> None:
    message = error_of(bad_file(tmp_path, 100, f"{START_S + 2:.3f},0.02,-0.44,17.0"))
    assert message.endswith("left.csv line 102: z is 17.0 g, beyond the sensor range of +/-16 g")


def test_huge_value_is_out_of_range_not_a_crash(tmp_path: Path) -> None:
    message = error_of(bad_file(tmp_path, 100, f"{START_S + 2:.3f},-1e300,-0.44,0.89"))
    assert "line 102: x is -1e300 g, beyond the sensor range" in message


def test_repeated_time_names_both_lines(tmp_path: Path) -> None:
    message = error_of(bad_file(tmp_path, 16, f"{START_S + 0.3:.3f},0.02,-0.44,0.89"))
    assert message.endswith(
        "left.csv line 18: time 1795203000.300 repeats the time on line 17; times must increase"
    )


def test_time_going_backwards_names_both_lines_and_times(tmp_path: Path) -> None:
    message = error_of(bad_file(tmp_path, 16, f"{START_S + 0.1:.3f},0.02,-0.44,0.89"))
    assert message.endswith(
        "left.csv line 18: time 1795203000.100 is before 1795203000.300 on line 17; "
        "rows must be in time order"
    )


def test_first_bad_line_wins_across_kinds_of_problem(tmp_path: Path) -> None:
    lines = csv_lines(*night())
    lines[30] = f"{START_S + 0.58:.3f},0.02,-0.44,20"  # line 31: out of range
    lines[20] = "nan,0.02,-0.44,0.89"  # line 21: earlier
    assert "line 21: time" in error_of(write(tmp_path / "left.csv", lines))


def test_rate_of_5_hz_is_too_low(tmp_path: Path) -> None:
    message = error_of(write(tmp_path / "left.csv", csv_lines(*night(fs=5.0))))
    assert message.endswith(
        "left.csv: sample rate 5 Hz (inferred from the times) is outside 10-1000 Hz"
    )


def test_rate_of_2000_hz_is_too_high(tmp_path: Path) -> None:
    time = START_S + np.arange(122_000) / 2000.0
    accel = np.zeros((len(time), 3), dtype=np.float32)
    lines = csv_lines(time, accel, lambda t: f"{t:.4f}")
    message = error_of(write(tmp_path / "left.csv", lines))
    assert re.search(
        r"left\.csv: sample rate 2000(\.\d)? Hz \(inferred from the times\) is outside 10-1000 Hz$",
        message,
    )


def test_given_rate_out_of_range(tmp_path: Path) -> None:
    message = error_of(write(tmp_path / "left.csv", csv_lines(*night())), fs=5.0)
    assert message.endswith("left.csv: sample rate 5 Hz (given) is outside 10-1000 Hz")


def test_millisecond_times_get_a_hint(tmp_path: Path) -> None:
    time, accel = night()
    lines = csv_lines(time, accel, lambda t: f"{t * 1000:.0f}")
    assert "look like milliseconds" in error_of(write(tmp_path / "left.csv", lines))


def test_recording_of_only_10_seconds(tmp_path: Path) -> None:
    message = error_of(write(tmp_path / "left.csv", csv_lines(*night(seconds=10.0))))
    assert "left.csv: recording covers only 10.0 s (2026-11-20T19:30:00.000Z to" in message
    assert message.endswith("need at least 60 s")


def test_single_row(tmp_path: Path) -> None:
    message = error_of(write(tmp_path / "left.csv", csv_lines(*night())[:2]))
    assert message.endswith("left.csv: only one sample; need at least 60 s")


def test_truncated_last_line(tmp_path: Path) -> None:
    lines = csv_lines(*night())
    lines[-1] = lines[-1][:16]
    message = error_of(write(tmp_path / "left.csv", lines, final_newline=False))
    assert message.endswith(
        f"left.csv line {len(lines)}: row has 2 fields, the header 4; the file looks cut short"
    )


def test_row_with_too_many_fields(tmp_path: Path) -> None:
    message = error_of(bad_file(tmp_path, 8, f"{START_S + 0.16:.3f},0.02,-0.44,0.89,1"))
    assert message.endswith("left.csv line 10: row has 5 fields, the header 4")


def test_iso_time_without_zone_is_rejected(tmp_path: Path) -> None:
    time, accel = night()
    lines = csv_lines(time, accel, lambda t: iso_text(t).removesuffix("Z"))
    message = error_of(write(tmp_path / "left.csv", lines))
    assert message.endswith(
        "left.csv line 2: ISO 8601 time has no zone; add Z (UTC) or an offset like +01:00 "
        "('2026-11-20T19:30:00.000')"
    )


def test_zone_less_iso_time_in_the_middle(tmp_path: Path) -> None:
    time, accel = night()
    lines = csv_lines(time, accel, iso_text)
    lines[300] = lines[300].replace("Z,", ",")
    message = error_of(write(tmp_path / "left.csv", lines))
    assert "left.csv line 301: ISO 8601 time has no zone" in message


def test_invalid_iso_date(tmp_path: Path) -> None:
    lines = csv_lines(*night(), iso_text)
    lines[5] = "2026-11-31T19:30:00.080Z,0.02,-0.44,0.89"
    message = error_of(write(tmp_path / "left.csv", lines))
    problem = f"time is not a valid date and time ({lines[5][:24]!r})"
    assert message.endswith(f"left.csv line 6: {problem}")


def test_mixed_numeric_and_iso_times(tmp_path: Path) -> None:
    time, accel = night()
    lines = csv_lines(time, accel)
    lines[50] = f"{iso_text(time[49])},0.02,-0.44,0.89"
    message = error_of(write(tmp_path / "left.csv", lines))
    assert "left.csv line 51: time is ISO 8601 but the first row has Unix seconds" in message
    lines = csv_lines(time, accel, iso_text)
    lines[50] = f"{time[49]:.3f},0.02,-0.44,0.89"
    message = error_of(write(tmp_path / "left.csv", lines))
    assert "left.csv line 51: time is Unix seconds but the first row has ISO 8601" in message


def test_empty_time_in_the_first_row(tmp_path: Path) -> None:
    message = error_of(bad_file(tmp_path, 0, ",0.02,-0.44,0.89"))
    assert message.endswith("left.csv line 2: time is empty")


def test_garbage_time(tmp_path: Path) -> None:
    message = error_of(bad_file(tmp_path, 0, "yesterday,0.02,-0.44,0.89"))
    assert message.endswith(
        "left.csv line 2: time is neither Unix seconds nor ISO 8601 like "
        "2026-11-20T19:30:00.020Z ('yesterday')"
    )


# --- two legs -----------------------------------------------------------------------------------


def test_overlapping_legs_pass(tmp_path: Path) -> None:
    left = read_recording_csv(write(tmp_path / "left.csv", csv_lines(*night())), "left")
    right_lines = csv_lines(*night(start=START_S + 20.0))
    right = read_recording_csv(write(tmp_path / "right.csv", right_lines), "right")
    check_overlap(left, right)


def test_legs_that_do_not_overlap(tmp_path: Path) -> None:
    left = read_recording_csv(write(tmp_path / "left.csv", csv_lines(*night())), "left")
    right_lines = csv_lines(*night(start=START_S + 3600.0))
    right = read_recording_csv(write(tmp_path / "right.csv", right_lines), "right")
    with pytest.raises(RecordingError) as caught:
        check_overlap(left, right)
    message = str(caught.value)
    assert message.startswith(
        f"{left.source} and {right.source}: the two recordings do not overlap"
    )
    assert "right.csv: 2026-11-20T20:30:00.000Z to 2026-11-20T20:31:29.980Z" in message


def test_legs_that_overlap_too_little(tmp_path: Path) -> None:
    left = read_recording_csv(write(tmp_path / "left.csv", csv_lines(*night())), "left")
    right_lines = csv_lines(*night(start=START_S + 60.0))
    right = read_recording_csv(write(tmp_path / "right.csv", right_lines), "right")
    with pytest.raises(RecordingError, match=r"overlap for only 30\.0 s \(need 60 s\)"):
        check_overlap(left, right)


# --- arrays and the error type ------------------------------------------------------------------


def test_recording_from_arrays_copies_validates_and_names_samples() -> None:
    time, accel = night()
    rec = recording_from_arrays(time, accel.astype(np.float64), "left", source="simulator")
    assert isinstance(rec, Recording)
    assert rec.fs == 50.0
    assert rec.time is not time
    time[5] = time[4]
    with pytest.raises(RecordingError) as caught:
        recording_from_arrays(time, accel, "left", source="simulator")
    assert str(caught.value) == (
        "simulator: sample 5: time 1795203000.08 repeats the time on sample 4; times must increase"
    )
    accel[7, 1] = MAX_ABS_G + 1
    with pytest.raises(RecordingError) as caught:
        recording_from_arrays(rec.time, accel, "left")
    assert str(caught.value) == "arrays: sample 7: y is 17.0 g, beyond the sensor range of +/-16 g"


@pytest.mark.parametrize(
    ("time", "accel", "problem"),
    [
        (np.zeros((2, 2)), np.zeros((2, 3)), "time must be one-dimensional"),
        (np.zeros(4), np.zeros((4, 2)), r"accel must have shape \(4, 3\)"),
        (np.zeros(0), np.zeros((0, 3)), "no samples"),
    ],
)
def test_recording_from_arrays_rejects_bad_shapes(time: Times, accel: Accel, problem: str) -> None:
    with pytest.raises(RecordingError, match=f"^arrays: {problem}"):
        recording_from_arrays(time, accel, "left")


def test_side_must_be_left_or_right() -> None:
    with pytest.raises(RecordingError, match="side must be 'left' or 'right'"):
        recording_from_arrays(*night(), "middle")  # type: ignore[arg-type]


def test_recording_error_fields_and_pickling() -> None:
    error = RecordingError("left.csv", "x is not a number ('abc')", 17)
    assert str(error) == "left.csv line 17: x is not a number ('abc')"
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.source, copy.problem, copy.line, str(copy)) == (
        "left.csv",
        "x is not a number ('abc')",
        17,
        str(error),
    )
    assert str(RecordingError("left.csv", "file is empty")) == "left.csv: file is empty"


# --- property: any valid table round-trips through CSV -------------------------------------------


@st.composite
def valid_tables(draw: st.DrawFn) -> tuple[Times, Accel, float]:
    """Times at a plausible rate with jitter and gaps covering >= 60 s, accel within +/-16 g."""
    fs = draw(st.sampled_from([10.0, 25.0, 50.0, 100.0, 128.0]))
    n = draw(st.integers(round(64 * fs), round(80 * fs)))
    seed = draw(st.integers(0, 2**32 - 1))
    start = draw(st.floats(0.0, 4e9, allow_nan=False))
    rng = np.random.default_rng(seed)
    steps = np.full(n - 1, 1.0 / fs) * rng.uniform(0.95, 1.05, n - 1)
    steps[rng.random(n - 1) < draw(st.floats(0.0, 0.2))] *= rng.integers(2, 50)  # gaps
    time = start + np.concatenate([[0.0], np.cumsum(steps)])
    scale = draw(st.sampled_from([1e-3, 1.0, MAX_ABS_G]))
    accel = np.clip(rng.normal(0.0, scale, (n, 3)), -MAX_ABS_G, MAX_ABS_G).astype(np.float32)
    return time, accel, fs


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(table=valid_tables(), order=st.permutations(["time", "x", "y", "z"]), upper=st.booleans())
def test_any_valid_table_round_trips_through_csv(
    tmp_path: Path, table: tuple[Times, Accel, float], order: list[str], upper: bool
) -> None:
    time, accel, fs = table
    columns = {"time": [repr(float(t)) for t in time]} | {
        axis: [repr(float(v)) for v in accel[:, j]] for j, axis in enumerate("xyz")
    }
    header = ",".join(name.upper() if upper else name for name in order)
    rows = [",".join(columns[name][i] for name in order) for i in range(len(time))]
    rec = read_recording_csv(write(tmp_path / "prop.csv", [header, *rows]), "left")
    np.testing.assert_array_equal(rec.time, time)
    np.testing.assert_array_equal(rec.accel, accel)
    assert rec.fs == pytest.approx(fs, rel=0.02)
