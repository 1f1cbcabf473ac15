"""The whole pipeline on simulated nights: end to end from CSV, and invariants (hypothesis)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.night import analyze_night
from app.cli import main
from firmware_sim.export import write_night
from firmware_sim.night import SimulatedNight, simulate_night
from firmware_sim.scenario import load_scenario
from limbwatch.recording import Recording, recording_from_arrays
from limbwatch.report import NightReport, parse_iso


@cache
def night(scenario: str, seed: int = 11, hours: float = 1.5) -> SimulatedNight:
    return simulate_night(load_scenario(scenario), seed, duration_h=hours)


def recordings(sim: SimulatedNight, shift_s: float = 0.0,
               swap: bool = False) -> list[Recording]:
    other = {"left": "right", "right": "left"}
    return [
        recording_from_arrays(leg.time + shift_s, leg.accel, other[side] if swap else side,  # type: ignore[arg-type]
                              fs=leg.fs, source=side)
        for side, leg in sorted(sim.legs.items())
    ]


def relative(report: NightReport) -> list[tuple[float, float, str, bool, bool]]:
    t0 = parse_iso(report.recording.start)
    return [
        (round(parse_iso(m.start) - t0, 3), round(parse_iso(m.end) - t0, 3), m.side, m.periodic,
         m.in_sleep)
        for m in report.leg_movements
    ]


def test_csv_to_report_end_to_end(tmp_path: Path) -> None:
    sim = night("severe_plms")
    files = write_night(sim, tmp_path)
    out = tmp_path / "report.json"
    status = main(["analyze", "--left", str(files["left"]), "--right", str(files["right"]),
                   "--age-months", "120", "-o", str(out)])
    assert status == 0
    report = NightReport.model_validate_json(out.read_text())
    assert report.schema_version == 1
    assert {s.side for s in report.sensors} == {"left", "right"}
    assert len(report.sleep.epochs) == pytest.approx(1.5 * 120, abs=1)
    # The severe scenario has PLM series: found, and flagged for a 10-year-old.
    assert report.plm.index > 15
    assert report.plm.series and all(s.count >= 4 for s in report.plm.series)
    assert "PLMI_ELEVATED" in {f.code for f in report.flags}
    groups = [m.bilateral_group for m in report.leg_movements if m.bilateral_group is not None]
    assert groups and all(groups.count(g) >= 2 for g in groups)
    # The same arrays analysed in memory give the same report, but for intensities (g) that
    # move in the last digit with the CSV's rounding of the samples.
    in_memory = analyze_night(recordings(sim), age_months=120).to_report()
    assert without_intensity(in_memory) == without_intensity(report)
    assert [m.peak_g for m in in_memory.leg_movements] == pytest.approx(
        [m.peak_g for m in report.leg_movements], abs=2e-3)
    assert report.intensity is not None and report.intensity.lm_peak_g.count == len(
        report.leg_movements)


def without_intensity(report: NightReport) -> dict[str, object]:
    d = report.model_dump(exclude={"intensity": True, "tremor_episodes": {"__all__": {
        "peak_g", "mean_g", "amplitude_g"}}, "leg_movements": {"__all__": {"peak_g", "mean_g"}}})
    return d


def test_report_from_stdout_is_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = write_night(night("nonwear_one_sensor", hours=2.5), tmp_path)
    assert main(["analyze", "--right", str(files["right"])]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["side"] for s in report["sensors"]] == ["right"]
    assert report["sensors"][0]["coverage"] < 1.0


def test_unilateral_tremor_is_found_and_flagged() -> None:
    sim = night("unilateral_tremor", hours=night_hours_covering_tremor())
    report = analyze_night(recordings(sim), age_months=sim.truth.age_months).to_report()
    long = [t for t in report.tremor_episodes
            if parse_iso(t.end) - parse_iso(t.start) >= 180]
    assert long and long[0].side in ("left", "right") and 3 <= long[0].frequency_hz <= 12
    assert {"PROLONGED_TREMOR", "ASYMMETRIC_MOVEMENT"} <= {f.code for f in report.flags}
    # No LM is reported inside the tremor episode.
    a, b = parse_iso(long[0].start), parse_iso(long[0].end)
    assert not [m for m in report.leg_movements
                if m.side == long[0].side and a < parse_iso(m.start) < b]


def test_sleep_onset_latency_counts_from_the_last_lights_out_note_before_sleep() -> None:
    sim = night("settling_kicks", seed=4, hours=1.5)
    recs = recordings(sim)
    plain = analyze_night(recs, age_months=sim.truth.age_months).to_report().settling
    assert plain.latency_from == "first_worn_epoch" and plain.lights_out is None
    t0 = min(float(r.time[0]) for r in recs)
    assert plain.sleep_onset_latency_min is not None and plain.sleep_onset_latency_min > 10
    first, second = t0 + 120.0, t0 + 300.0  # the child got up once after the first "lights out"
    later = t0 + (plain.sleep_onset_latency_min + 20) * 60  # after sleep onset: an awakening's
    before = t0 - 600.0  # before the sensor recorded: nothing to count from
    settling = analyze_night(recs, age_months=sim.truth.age_months,
                             lights_out=[later, second, before, first]).to_report().settling
    assert settling.latency_from == "lights_out"
    assert settling.lights_out is not None and parse_iso(settling.lights_out) == second
    assert settling.sleep_onset_latency_min == pytest.approx(
        plain.sleep_onset_latency_min - 5.0, abs=0.01)
    assert settling.first is not None and plain.first is not None
    assert settling.first.lms <= plain.first.lms
    unused = analyze_night(recs, age_months=sim.truth.age_months,
                           lights_out=[later, before]).to_report().settling
    assert unused == plain


def night_hours_covering_tremor() -> float:
    truth = simulate_night(load_scenario("unilateral_tremor"), 11).truth
    last = max(e.end for e in truth.events if e.kind == "tremor")
    return min((truth.end - truth.start) / 3600, (last - truth.start) / 3600 + 0.5)


SETTINGS = settings(max_examples=6, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(shift_ms=st.integers(min_value=-10**9, max_value=10**9))
def test_shifting_all_times_changes_only_times(shift_ms: int) -> None:
    sim = night("mild_plms")
    base = analyze_night(recordings(sim)).to_report()
    moved = analyze_night(recordings(sim, shift_s=shift_ms / 1000)).to_report()
    assert relative(moved) == relative(base)
    assert moved.sleep.epochs == base.sleep.epochs
    assert moved.plm.index == base.plm.index and moved.brief_jerks == base.brief_jerks


def test_swapping_the_legs_swaps_sides() -> None:
    sim = night("severe_plms")
    base = analyze_night(recordings(sim)).to_report()
    swapped = analyze_night(recordings(sim, swap=True)).to_report()
    other = {"left": "right", "right": "left"}
    assert sorted((s, e, other[side], p, z) for s, e, side, p, z in relative(base)) == sorted(
        relative(swapped))
    assert swapped.plm.count == base.plm.count and swapped.plm.index == base.plm.index


@SETTINGS
@given(start_frac=st.floats(0.05, 0.9), length_s=st.floats(1.5, 900.0),
       side=st.sampled_from(["left", "right"]))
def test_adding_a_gap_never_adds_leg_movements(start_frac: float, length_s: float,
                                                side: str) -> None:
    sim = night("mild_plms")
    recs = recordings(sim)
    base = analyze_night(recs).to_report()
    cut = []
    for rec in recs:
        if rec.side == side:
            a = rec.time[0] + start_frac * (rec.time[-1] - rec.time[0])
            keep = (rec.time < a) | (rec.time >= a + length_s)
            rec = recording_from_arrays(rec.time[keep], rec.accel[keep], rec.side, fs=rec.fs)
        cut.append(rec)
    gapped = analyze_night(cut).to_report()
    count = {s: sum(1 for m in r.leg_movements if m.side == s) for r in (base, gapped)
             for s in ("left", "right")}
    assert sum(1 for m in gapped.leg_movements if m.side == side) <= sum(
        1 for m in base.leg_movements if m.side == side), count
    assert np.isfinite(gapped.plm.index)
