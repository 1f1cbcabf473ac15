"""Night simulator: scenarios, physics, truth, radio delivery, CSV export."""

from __future__ import annotations

import json
import math
import re
import tomllib
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.csv as pacsv
import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.export import write_night
from firmware_sim.night import (
    EPOCH_S,
    SimulatedNight,
    Truth,
    coverage,
    merge_intervals,
    simulate_night,
    subtract_intervals,
)
from firmware_sim.scenario import (
    SCENARIO_DIR,
    Scenario,
    ScenarioError,
    list_scenarios,
    load_scenario,
    parse_scenario,
)

REQUIRED_SCENARIOS = {
    "healthy_infant",
    "healthy_child",
    "mild_plms",
    "severe_plms",
    "unilateral_tremor",
    "fragmented_sleep",
    "nonwear_one_sensor",
    "noisy_100hz",
    "rule_boundaries",
    "held_out_mixed",
    "settling_kicks",
    "jerk_clusters",
}


@cache
def night(name: str, seed: int = 7, hours: float = 1.5) -> SimulatedNight:
    return simulate_night(load_scenario(name), seed, duration_h=hours)


def scenario_data(name: str) -> dict[str, Any]:
    return tomllib.loads((SCENARIO_DIR / f"{name}.toml").read_text())


def variant(name: str, tmp_path: Path, edit: dict[str, dict[str, Any]]) -> Scenario:
    """A bundled scenario with some keys of some sections replaced."""
    data = scenario_data(name)
    for section, values in edit.items():
        data[section].update(values)
    return parse_scenario(data, tmp_path / f"{name}_variant.toml")


# -- scenarios ---------------------------------------------------------------------------------


def test_bundled_scenarios_are_listed() -> None:
    assert set(list_scenarios()) >= REQUIRED_SCENARIOS


@pytest.mark.parametrize("name", list_scenarios())
def test_every_scenario_loads(name: str) -> None:
    scn = load_scenario(name)
    assert scn.name == name
    assert scn.description
    assert 8.0 <= scn.duration_h <= 10.0
    assert scn.sides in {("left", "right"), ("left",), ("right",)}


def test_scenario_specifics() -> None:
    assert load_scenario("nonwear_one_sensor").sides == ("right",)
    mixed = load_scenario("held_out_mixed")
    assert {s.side: s.fs for s in mixed.sensors} == {"left": 100.0, "right": 50.0}
    assert mixed.sensors[0].noise_g != mixed.sensors[1].noise_g
    noisy = load_scenario("noisy_100hz").sensors[0]
    assert (noisy.counts_per_g, noisy.range_g, noisy.noise_g) == (2048, 16.0, 0.01)
    assert load_scenario(str(SCENARIO_DIR / "mild_plms.toml")).name == "mild_plms"


def write_bad(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


def bundled_text(name: str) -> str:
    return (SCENARIO_DIR / f"{name}.toml").read_text()


def test_missing_key_is_named(tmp_path: Path) -> None:
    path = write_bad(tmp_path, re.sub(r"(?m)^age_months = .*$", "", bundled_text("mild_plms")))
    with pytest.raises(ScenarioError, match=r"bad\.toml.*'age_months'.*missing"):
        load_scenario(str(path))


def test_wrong_type_is_named(tmp_path: Path) -> None:
    text = bundled_text("mild_plms").replace("imi_median_s = 28.0", 'imi_median_s = "long"')
    with pytest.raises(ScenarioError, match=r"bad\.toml.*'plm\.imi_median_s'.*number"):
        load_scenario(str(write_bad(tmp_path, text)))


def test_bad_range_and_unknown_key_are_named(tmp_path: Path) -> None:
    text = bundled_text("healthy_child").replace(
        "onset_latency_min = [10, 30]", "onset_latency_min = [30, 10]"
    )
    with pytest.raises(ScenarioError, match=r"'sleep\.onset_latency_min'.*above"):
        load_scenario(str(write_bad(tmp_path, text)))
    text = bundled_text("healthy_child").replace("[jerks]\n", "[jerks]\nper_hr = 3\n")
    with pytest.raises(ScenarioError, match=r"'jerks\.per_hr'.*unknown"):
        load_scenario(str(write_bad(tmp_path, text)))


def test_invalid_toml_and_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"bad\.toml.*invalid TOML"):
        load_scenario(str(write_bad(tmp_path, "age_months = = 3")))
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario("no_such_scenario")


# -- determinism -------------------------------------------------------------------------------


def test_same_seed_same_night_different_seed_different() -> None:
    scn = load_scenario("healthy_child")
    a = simulate_night(scn, 3, duration_h=0.5)
    b = simulate_night(scn, 3, duration_h=0.5)
    c = simulate_night(scn, 4, duration_h=0.5)
    assert a.truth == b.truth
    for side in a.legs:
        np.testing.assert_array_equal(a.legs[side].time, b.legs[side].time)
        np.testing.assert_array_equal(a.legs[side].accel, b.legs[side].accel)
    assert a.truth.events != c.truth.events
    left_a, left_c = a.legs["left"].accel, c.legs["left"].accel
    assert left_a.shape != left_c.shape or not np.array_equal(left_a, left_c)


# -- physics -----------------------------------------------------------------------------------


def rest_mask(sim: SimulatedNight, side: str, margin_s: float = 3.0) -> np.ndarray:
    """Delivered samples of ``side`` far from any event and on the ankle."""
    t = sim.legs[side].time
    busy = np.zeros(len(t), dtype=bool)
    for e in sim.truth.events:
        if e.side == side:
            busy[np.searchsorted(t, e.start - margin_s) : np.searchsorted(t, e.end + margin_s)] = (
                True
            )
    for a, b in sim.truth.nonwear[side]:
        busy[np.searchsorted(t, a) : np.searchsorted(t, b)] = True
    return ~busy


def test_magnitude_is_one_g_at_rest() -> None:
    sim = night("healthy_child")
    for side, leg in sim.legs.items():
        mag = np.linalg.norm(leg.accel[rest_mask(sim, side)].astype(np.float64), axis=1)
        assert len(mag) > 10_000
        assert abs(float(np.median(mag)) - 1.0) < 0.003
        assert np.percentile(np.abs(mag - 1.0), 99) < 0.02


def test_movements_stand_out_from_the_rest_before_them() -> None:
    sim = night("mild_plms")
    leg = sim.legs["left"]
    a, t = leg.accel.astype(np.float64), leg.time

    def spread(mask: np.ndarray) -> float:
        return float(np.sqrt(np.sum(np.var(a[mask], axis=0))))

    lms = [
        e
        for e in sim.truth.events
        if e.side == "left" and e.kind == "lm" and not e.weak and e.end - e.start > 0.8
    ]
    assert len(lms) > 10
    ratios = []
    for e in lms:
        inside = (t >= e.start) & (t <= e.end)
        before = (t >= e.start - 1.4) & (t <= e.start - 0.1)
        if inside.sum() > 20 and before.sum() > 20:
            ratios.append(spread(inside) / spread(before))
    assert np.mean(np.array(ratios) > 3.0) > 0.9


def test_quantised_and_clipped(tmp_path: Path) -> None:
    clipped = variant("healthy_child", tmp_path, {"sensor": {"range_g": 1.0, "counts_per_g": 256}})
    for name, sim in [
        ("noisy", night("noisy_100hz")),
        ("clipped", simulate_night(clipped, 1, duration_h=0.5)),
    ]:
        for leg in sim.legs.values():
            assert leg.accel.dtype == np.float32
            counts = leg.accel.astype(np.float64) * leg.counts_per_g
            np.testing.assert_allclose(counts, np.rint(counts), atol=1e-3, err_msg=name)
            assert np.abs(leg.accel).max() <= leg.range_g
    leg = simulate_night(clipped, 1, duration_h=0.5).legs["left"]
    assert np.any(np.abs(leg.accel) == 1.0)


def test_tremor_frequency_and_side() -> None:
    sim = night("unilateral_tremor", hours=2.0)
    episode = max(
        (e for e in sim.truth.events if e.kind == "tremor"), key=lambda e: e.end - e.start
    )
    assert episode.side == "left"
    assert episode.frequency_hz is not None and 5.0 * 0.9 <= episode.frequency_hz <= 9.0 * 1.1
    assert episode.end - episode.start >= 240.0
    # the longest stretch of the episode in which the right leg does nothing
    right = [(e.start - 1.0, e.end + 1.0) for e in sim.truth.events if e.side == "right"]
    free = subtract_intervals([(episode.start + 1.0, episode.end - 1.0)], right)
    lo, hi = max(free, key=lambda iv: iv[1] - iv[0])
    assert hi - lo > 30.0
    powers = {}
    for side, leg in sim.legs.items():
        x = leg.accel[(leg.time >= lo) & (leg.time <= hi)].astype(np.float64)
        x -= x.mean(axis=0)
        freqs = np.fft.rfftfreq(len(x), 1.0 / leg.fs)
        power = np.sum(np.abs(np.fft.rfft(x, axis=0)) ** 2, axis=1) / len(x)
        band = np.abs(freqs - episode.frequency_hz) <= 0.12 * episode.frequency_hz
        powers[side] = float(power[band].sum())
        if side == "left":
            assert band[np.argmax(np.where(freqs > 2.0, power, 0.0))]
    assert powers["left"] > 20.0 * powers["right"], powers


# -- truth -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REQUIRED_SCENARIOS))
def test_truth_events_are_consistent(name: str) -> None:
    sim = night(name, hours=1.0)
    truth = sim.truth
    starts = [e.start for e in truth.events]
    assert starts == sorted(starts)
    assert math.isclose(truth.end - truth.start, 3600.0)
    assert len(truth.epochs) == math.ceil(3600.0 / EPOCH_S)
    assert set(truth.epochs) <= set("SWN")
    for e in truth.events:
        assert e.side in sim.legs
        assert truth.start <= e.start < e.end <= truth.end
        if e.kind == "lm":
            assert e.end - e.start >= 0.5 - 1e-9
        elif e.kind == "jerk":
            assert e.end - e.start < 0.5
        else:
            assert e.kind == "tremor" and e.frequency_hz is not None
    for side in sim.legs:
        mine = [e for e in truth.events if e.side == side]
        for prev, cur in pairwise(mine):
            rest = 0.1 if prev.source == cur.source == "cluster" else 0.8
            assert cur.start - prev.end >= rest - 1e-9, (prev, cur)
        for a, b in truth.nonwear[side]:
            assert not any(e.start < b and e.end > a for e in mine)


def test_settling_and_cluster_truth() -> None:
    sim = simulate_night(load_scenario("settling_kicks"), 1, duration_h=3.0)
    t = sim.truth
    assert t.sleep_onset is not None and 20 * 60 <= t.sleep_onset - t.start <= 40 * 60
    first = t.epochs.index("S")
    assert first == round((t.sleep_onset - t.start) / EPOCH_S)
    a, b = t.settling[0]
    assert a < t.sleep_onset and b <= t.sleep_onset
    kicks = [e for e in t.events if e.source == "settling"]
    assert kicks and all(e.kind == "lm" for e in kicks)
    onsets = sorted({round(e.start) for e in kicks if e.start < b})
    assert all(y - x >= 13 for x, y in pairwise(onsets) if y - x > 2)
    sim = simulate_night(load_scenario("jerk_clusters"), 1, duration_h=3.0)
    t = sim.truth
    assert t.clusters
    for a, b in t.clusters:
        inside = [e for e in t.events if e.source == "cluster" and a <= e.start < b]
        assert len({round(e.start, 1) for e in inside}) >= 12
        assert all(e.kind == "jerk" and e.end - e.start <= 0.2 + 1e-9 for e in inside)
        assert set(t.epochs[int((a - t.start) // EPOCH_S):int((b - t.start) // EPOCH_S)]) <= {
            "S"}


def test_boundary_cases_are_scheduled() -> None:
    events = night("rule_boundaries", hours=9.0).truth.events
    durations = sorted(round(e.end - e.start, 6) for e in events if e.source == "boundary")
    for d in (0.45, 0.55, 9.5, 10.5):
        assert durations.count(d) >= 4
    jerk = [e for e in events if e.source == "boundary" and e.kind == "jerk"]
    assert jerk and all(math.isclose(e.end - e.start, 0.45, abs_tol=1e-6) for e in jerk)


def test_plm_scenarios_have_series_and_healthy_ones_barely() -> None:
    def plm_per_hour(name: str) -> float:
        truth = night(name, hours=4.0).truth
        return sum(e.source == "plm" for e in truth.events) / 4.0

    assert plm_per_hour("severe_plms") > 3.0 * plm_per_hour("mild_plms") > 0.0
    assert plm_per_hour("healthy_child") < 3.0


def test_nonwear_epochs_and_gaps(tmp_path: Path) -> None:
    scn = variant(
        "nonwear_one_sensor",
        tmp_path,
        {"sensor": {"packet_loss": 0.05, "disconnections": [2, 2], "time_jitter_ms": 0.0}},
    )
    sim = simulate_night(scn, 2, duration_h=3.0)
    leg = sim.legs["right"]
    assert list(sim.legs) == ["right"]
    assert len(leg.nonwear) == 1 and leg.nonwear == sim.truth.nonwear["right"]
    a, b = leg.nonwear[0]
    assert b - a > 30 * 60
    first, last = math.ceil((a - sim.truth.start) / EPOCH_S), int((b - sim.truth.start) // EPOCH_S)
    assert set(sim.truth.epochs[first:last]) == {"N"}
    # off the ankle: lying still with one axis near 1 g
    off = leg.accel[(leg.time > a + 1.0) & (leg.time < b - 1.0)].astype(np.float64)
    assert np.max(np.abs(np.median(off, axis=0))) > 0.99
    assert np.all(np.std(off, axis=0) < 0.005)
    # delivered samples never fall inside a gap; gaps plus delivered samples make the whole grid
    assert len(leg.gaps) > 10
    t = leg.time
    for g0, g1 in leg.gaps:
        assert np.searchsorted(t, g0 - 1e-6) == np.searchsorted(t, g1 - 1e-6)
    missing = sum(round((g1 - g0) * leg.fs) for g0, g1 in leg.gaps)
    assert len(t) + missing == round(3.0 * 3600 * leg.fs)
    assert np.all(np.diff(t) > 0)
    assert sim.truth.gaps["right"] == leg.gaps


def test_time_jitter_keeps_order() -> None:
    leg = night("noisy_100hz").legs["left"]
    steps = np.diff(leg.time)
    assert np.all(steps > 0)
    assert np.std(steps[steps < 0.015]) > 0.001


def test_truth_json_round_trip() -> None:
    for name in ("held_out_mixed", "settling_kicks", "jerk_clusters"):
        truth = night(name).truth
        again = Truth.from_json(json.loads(json.dumps(truth.to_json())))
        assert again == truth


@given(
    st.lists(
        st.tuples(st.floats(0, 290, allow_nan=False), st.floats(0, 60, allow_nan=False)),
        max_size=8,
    )
)
def test_coverage_matches_a_fine_grid(raw: list[tuple[float, float]]) -> None:
    intervals = [(s, s + d) for s, d in raw]
    edges = np.arange(0.0, 331.0, 30.0)
    grid = np.arange(0.0, 330.0, 0.01) + 0.005
    inside = np.zeros(len(grid), dtype=bool)
    for s, e in merge_intervals(intervals):
        inside |= (grid >= s) & (grid < e)
    expected = np.add.reduceat(inside.astype(float), np.arange(0, len(grid), 3000)) * 0.01
    np.testing.assert_allclose(coverage(intervals, edges), expected, atol=0.02)


# -- export ------------------------------------------------------------------------------------


def test_csv_contract_and_round_trip(tmp_path: Path) -> None:
    sim = night("held_out_mixed", hours=0.5)
    paths = write_night(sim, tmp_path / "out")
    assert set(paths) == {"left", "right", "truth"}
    for side, leg in sim.legs.items():
        with paths[side].open() as f:
            lines = [next(f) for _ in range(3)]
        assert lines[0] == "time,x,y,z\n"
        assert re.fullmatch(r"\d+\.\d{3}(,-?\d+\.\d{5}){3}\n", lines[1])
        table = pacsv.read_csv(paths[side])
        assert table.column_names == ["time", "x", "y", "z"]
        assert table.num_rows == len(leg.time)
        np.testing.assert_allclose(table["time"].to_numpy(), leg.time, rtol=0, atol=5.1e-4)
        for k, axis in enumerate("xyz"):
            values = table[axis].to_numpy()
            np.testing.assert_allclose(values, leg.accel[:, k], rtol=0, atol=5.1e-6)
            np.testing.assert_array_equal(
                np.rint(values * leg.counts_per_g), np.rint(leg.accel[:, k] * leg.counts_per_g)
            )
    truth = Truth.from_json(json.loads(paths["truth"].read_text()))
    assert truth == sim.truth
