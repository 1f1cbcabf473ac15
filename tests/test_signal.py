"""Signal steps on small synthetic signals whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from analysis import movement, nonwear, sleep, tremor
from analysis.grid import MAX_BRIDGE_S, to_grid
from limbwatch.recording import recording_from_arrays

FS = 50.0
T0 = 1795203000.0
REST = np.array([0.0, 0.6, 0.8], dtype=np.float32)


def quiet(seconds: float, fs: float = FS, noise_g: float = 0.003, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = round(seconds * fs)
    return (REST + rng.normal(0, noise_g, (n, 3))).astype(np.float32)


def add_burst(accel: np.ndarray, start_s: float, dur_s: float, amp_g: float = 0.1,
              fs: float = FS, seed: int = 1) -> None:
    """Band-limited movement (0.7-6 Hz) of vector RMS `amp_g` over [start, start + dur)."""
    rng = np.random.default_rng(seed)
    m = round(dur_s * fs)
    sos = signal.butter(2, (0.7, 6.0), "bandpass", fs=fs, output="sos")
    b = signal.sosfilt(sos, rng.normal(0, 1, (m + 200, 3)), axis=0)[200:]
    b *= amp_g / np.sqrt((b**2).sum(axis=1).mean())
    i = round(start_s * fs)
    accel[i:i + m] += b.astype(np.float32)


def detect(accel: np.ndarray, time: np.ndarray | None = None,
           fs: float = FS) -> movement.Movements:
    time = T0 + np.arange(len(accel)) / fs if time is None else time
    grid = to_grid(recording_from_arrays(time, accel, "left", fs=fs))
    mag = movement.magnitude(movement.high_pass(grid))
    env = movement.envelope(mag, grid.fs)
    chg = movement.change(grid.accel)
    return movement.detect(env, mag, chg, grid.fs, movement.thresholds(env, chg, grid.fs))


def leg_movements(accel: np.ndarray, fs: float = FS) -> list[tuple[float, float]]:
    found = detect(accel, fs=fs)
    return [(s / fs, e / fs) for s, e in zip(found.start, found.end, strict=True)]


def test_grid_decimates_100hz_and_bridges_only_short_gaps() -> None:
    accel = quiet(120, fs=100)
    time = T0 + np.arange(len(accel)) / 100
    keep = np.ones(len(accel), dtype=bool)
    keep[1000:1050] = False  # 0.5 s lost: bridged
    keep[5000:5500] = False  # 5 s lost: stays a gap
    grid = to_grid(recording_from_arrays(time[keep], accel[keep], "left", fs=100))
    assert grid.fs == 50.0 and grid.source_fs == 100.0
    assert grid.n == 6000
    assert not grid.observed[500:525].any()
    assert np.isfinite(grid.accel[500:525]).all()  # bridged
    assert grid.gap[2500:2750].all() and not grid.gap[:2500].any()
    assert MAX_BRIDGE_S == 1.0


def test_movement_onset_offset_and_duration() -> None:
    accel = quiet(300)
    add_burst(accel, 100.0, 3.0)
    add_burst(accel, 200.0, 0.3, amp_g=0.3)
    found = leg_movements(accel)
    assert len(found) == 2
    (s1, e1), (s2, e2) = found
    assert abs(s1 - 100.0) < 0.3 and abs((e1 - s1) - 3.0) < 0.4
    assert abs(s2 - 200.0) < 0.3 and (e2 - s2) < movement.MIN_LM_S


def test_movements_less_than_half_a_second_apart_are_one() -> None:
    accel = quiet(200)
    add_burst(accel, 100.0, 2.0, seed=2)
    add_burst(accel, 102.3, 2.0, seed=3)  # 0.3 s rest between: one movement
    add_burst(accel, 150.0, 2.0, seed=4)
    add_burst(accel, 153.5, 2.0, seed=5)  # 1.5 s rest between: two movements
    found = leg_movements(accel)
    assert len(found) == 3
    assert found[0][1] - found[0][0] > 4.0


def test_noise_alone_gives_no_movement_even_on_a_noisy_sensor() -> None:
    assert leg_movements(quiet(600, noise_g=0.010, seed=7)) == []


def test_movement_cut_by_a_long_gap_is_truncated() -> None:
    accel = quiet(200)
    add_burst(accel, 100.0, 4.0)
    time = T0 + np.arange(len(accel)) / FS
    keep = (time - T0 < 102.0) | (time - T0 > 110.0)
    found = detect(accel[keep], time[keep])
    assert found.truncated.tolist() == [True]


def test_tremor_found_with_its_frequency_and_legs_merge() -> None:
    accel = quiet(400)
    n = round(120 * FS)
    start = round(100 * FS)
    accel[start:start + n, 0] += 0.08 * np.sin(2 * np.pi * 7.0 * np.arange(n) / FS)
    add_burst(accel, 300.0, 6.0)  # an ordinary movement is not tremor
    grid = to_grid(recording_from_arrays(T0 + np.arange(len(accel)) / FS, accel, "left", fs=FS))
    hp = movement.high_pass(grid)
    env = movement.envelope(movement.magnitude(hp), FS)
    thr = movement.thresholds(env, movement.change(grid.accel), FS)
    eps = tremor.detect(hp, env, FS, thr.onset, T0, "left")
    assert len(eps) == 1
    assert abs(eps[0].start - (T0 + 100)) <= 2 and abs(eps[0].end - (T0 + 220)) <= 2
    assert eps[0].frequency_hz == pytest.approx(7.0, abs=0.3)
    right = tremor.TremorEpisode(T0 + 150, T0 + 250, "right", 7.2)
    merged = tremor.merge_legs([eps[0], right])
    assert [(m.side, m.start, m.end) for m in merged] == [("bilateral", eps[0].start, T0 + 250)]


def _still_night(minutes: float, breathing_g: float, seed: int = 0) -> np.ndarray:
    accel = quiet(minutes * 60, seed=seed)
    t = np.arange(len(accel)) / FS
    accel[:, 1] += (breathing_g * np.sin(2 * np.pi * 0.35 * t)).astype(np.float32)
    return accel


@pytest.mark.parametrize(("breathing_g", "expect_nonwear"), [(0.0, True), (0.002, False)])
def test_nonwear_needs_stillness_without_breathing(breathing_g: float,
                                                   expect_nonwear: bool) -> None:
    accel = _still_night(40, breathing_g)
    grid = to_grid(recording_from_arrays(T0 + np.arange(len(accel)) / FS, accel, "left", fs=FS))
    env = movement.envelope(movement.magnitude(movement.high_pass(grid)), FS)
    thr = movement.thresholds(env, movement.change(grid.accel), FS)
    found = nonwear.detect(grid.accel, env, FS, thr.onset)
    assert bool(found) is expect_nonwear


def test_nonwear_needs_thirty_minutes() -> None:
    accel = _still_night(25, 0.0)
    grid = to_grid(recording_from_arrays(T0 + np.arange(len(accel)) / FS, accel, "left", fs=FS))
    env = movement.envelope(movement.magnitude(movement.high_pass(grid)), FS)
    assert nonwear.detect(grid.accel, env, FS, 0.01) == []


def test_sleep_scoring_wake_needs_sustained_movement() -> None:
    n = 200
    moving = np.zeros(n)
    moving[50] = 8.0  # one isolated 8-s movement: still sleep
    moving[100:120] = 12.0  # 10 minutes of moving 40 % of the time: wake
    data = np.ones(n)
    data[180:] = 0.0
    epochs = sleep.score(moving, moving, data)
    assert epochs[50] == "S"
    assert set(epochs[101:119]) == {"W"}
    assert epochs[180:] == "N" * 20
    s = sleep.summarize(epochs)
    assert s.awakenings == 1 and s.total_sleep_min == epochs.count("S") / 2
    assert s.waso_min == epochs.count("W") / 2


def test_plm_series_alone_never_wakes_and_dense_movement_extends_wake() -> None:
    n = 120
    series = np.zeros(n)
    series[20:60] = 3.0  # a PLM series: 3 s of movement per epoch, not evidence of wake
    evidence = np.zeros(n)
    assert set(sleep.score(evidence, series, np.ones(n))) == {"S"}
    # Waking movement at epochs 14-19, followed by the series: the series stays sleep...
    evidence[14:20] = 12.0
    moving = series.copy()
    moving[14:20] = 12.0
    epochs = sleep.score(evidence, moving, np.ones(n))
    assert set(epochs[14:20]) == {"W"} and set(epochs[24:60]) == {"S"}
    # ...but movement as dense as a waking child's (6 s per epoch) continues the wake period.
    moving[20:30] = 6.0
    epochs = sleep.score(evidence, moving, np.ones(n))
    assert set(epochs[14:30]) == {"W"} and set(epochs[34:60]) == {"S"}


def test_a_loose_run_leading_into_an_awakening_is_its_start() -> None:
    n = 120
    evidence = np.zeros(n)
    evidence[60:70] = 12.0  # waking movement at epochs 60-69
    run = np.array([44.0, 47.0, 50.0, 53.0, 56.0, 59.0, 62.0]) * sleep.EPOCH_S + 5.0
    moving = evidence.copy()
    moving[run.astype(int) // 30] = np.maximum(moving[run.astype(int) // 30], 3.0)
    alone = sleep.score(evidence, moving, np.ones(n))
    assert alone[44:59] == "S" * 15 and alone[60:70] == "W" * 10
    # The same LMs as a loose PLM-like run (not periodic in its surroundings) that ends in the
    # wake period: the awakening starts at the run's first LM.
    led = sleep.score(evidence, moving, np.ones(n), loose_runs=[run])
    assert led[:44] == "S" * 44 and led[44:70] == "W" * 26 and led[70:] == alone[70:]
    # A run that ends in sleep (before the awakening) or lies wholly in it changes nothing.
    for onsets in (run[:4], run[:4] - 20 * sleep.EPOCH_S):
        assert sleep.score(evidence, moving, np.ones(n), loose_runs=[onsets]) == alone

