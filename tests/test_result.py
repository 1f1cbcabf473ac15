"""NightResult: its report is the one the code gave before it existed, byte for byte, and its
trend figures and events say what the report says.

`tests/golden/` holds reports and summaries written by the report builder that preceded
NightResult (main at 3988f3f). Only when a change is meant to change what reports say: bump
`analysis.ALGORITHM_VERSION`, then rewrite them with `PYTHONPATH=. python tests/test_result.py`.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from analysis.figure import draw_night
from analysis.grid import MAX_BRIDGE_S
from analysis.movement import MIN_REST_S
from analysis.night import analyze_night
from analysis.plm import Rules
from analysis.result import NightFigures, NightResult
from firmware_sim.night import simulate_night
from firmware_sim.scenario import load_scenario
from limbwatch.events import EVENT_KINDS, NightEvent
from limbwatch.recording import Recording, Side, recording_from_arrays
from limbwatch.report import NightReport, iso_ms, parse_iso

GOLDEN = Path(__file__).parent / "golden"
# name: scenario, seed, hours, age in months, rules, legs. Between them: every kind of event the
# analysis gives, one-sided and bilateral tremor, both rules, one and two legs, no age.
NIGHTS: dict[str, tuple[str, int, float, float | None, Rules, tuple[Side, ...]]] = {
    "held_out_mixed-4": ("held_out_mixed", 4, 2.0, 6.0, "aasm", ("left", "right")),
    "severe_plms-6": ("severe_plms", 6, 1.0, None, "wasm2016", ("left", "right")),
    "unilateral_tremor-6": ("unilateral_tremor", 6, 1.0, 30.0, "wasm2016", ("right",)),
    "nonwear_one_sensor-1": ("nonwear_one_sensor", 1, 2.5, 96.0, "wasm2016", ("left", "right")),
}
TREND_ROW = ("plm_index", "periodicity_index", "total_sleep_min", "efficiency", "waso_min",
             "awakenings", "tremor_min", "nonwear_min", "coverage")  # contract section 4


def recordings(name: str) -> list[Recording]:
    scenario, seed, hours, _, _, sides = NIGHTS[name]
    sim = simulate_night(load_scenario(scenario), seed, duration_h=hours)
    return [recording_from_arrays(leg.time, leg.accel, side, fs=leg.fs, source=side)
            for side, leg in sorted(sim.legs.items()) if side in sides]


@cache
def result(name: str) -> NightResult:
    *_, age, rules, _ = NIGHTS[name]
    return analyze_night(recordings(name), age_months=age, rules=rules)


@cache
def report(name: str) -> NightReport:
    return result(name).to_report()


@pytest.mark.parametrize("name", NIGHTS)
def test_report_and_summary_are_the_old_ones(name: str) -> None:
    got = report(name).model_dump_json()
    want = gzip.decompress((GOLDEN / f"{name}.json.gz").read_bytes()).decode()
    assert json.loads(got) == json.loads(want)  # a readable difference first
    assert got == want
    assert result(name).summary() == (GOLDEN / f"{name}.txt").read_text()


@pytest.mark.parametrize("name", NIGHTS)
def test_figures_are_the_reports_numbers(name: str) -> None:
    fig, rep = result(name).figures(), report(name)
    assert tuple(f.name for f in dataclasses.fields(NightFigures)) == TREND_ROW
    assert (fig.plm_index, fig.periodicity_index) == (rep.plm.index, rep.plm.periodicity_index)
    s = rep.sleep
    assert (fig.total_sleep_min, fig.efficiency, fig.waso_min, fig.awakenings) == (
        s.total_sleep_min, s.efficiency, s.waso_min, s.awakenings)
    assert all(type(v) in (float, int) for v in dataclasses.astuple(fig) if v is not None)
    spans = [[(parse_iso(i.start), parse_iso(i.end)) for i in x.nonwear] for x in rep.sensors]
    assert fig.nonwear_min == pytest.approx(sum(b - a for leg in spans for a, b in leg) / 60,
                                            abs=1e-4)
    tremor_s = sum(parse_iso(t.end) - parse_iso(t.start) for t in rep.tremor_episodes)
    assert fig.tremor_min == pytest.approx(tremor_s / 60, abs=1e-4)
    assert fig.coverage == pytest.approx(np.mean([x.coverage for x in rep.sensors]))


def of_kind(events: list[NightEvent], kind: str) -> list[tuple[str, str, str | None]]:
    return [(iso_ms(e.start), iso_ms(e.end), e.side) for e in events if e.kind == kind]


@pytest.mark.parametrize("name", NIGHTS)
def test_events_are_what_the_report_lists(name: str) -> None:
    events, rep = result(name).events(), report(name)
    assert [(e.start, e.end) for e in events] == sorted((e.start, e.end) for e in events)
    assert {e.kind for e in events} <= set(EVENT_KINDS) - {"journal"}
    assert all(e.start <= e.end for e in events)

    lms = [e for e in events if e.kind == "lm"]
    assert len(lms) == len(rep.leg_movements)
    assert sorted(
        (iso_ms(e.start), iso_ms(e.end), e.side, e.detail["in_sleep"], e.detail["periodic"],
         e.detail["bilateral_group"]) for e in lms
    ) == sorted(
        (m.start, m.end, m.side, m.in_sleep, m.periodic, m.bilateral_group)
        for m in rep.leg_movements
    )
    series = [e for e in events if e.kind == "plm_series"]
    assert [(*x[:2], e.detail["count"]) for x, e in zip(of_kind(events, "plm_series"), series,
                                                        strict=True)] == [
        (s.start, s.end, s.count) for s in rep.plm.series]
    assert all(e.side is None for e in series)
    tremor = [e for e in events if e.kind == "tremor"]
    assert [(*x, e.detail["frequency_hz"]) for x, e in zip(of_kind(events, "tremor"), tremor,
                                                           strict=True)] == [
        (t.start, t.end, t.side, t.frequency_hz) for t in rep.tremor_episodes]
    assert sorted(of_kind(events, "nonwear")) == sorted(
        (i.start, i.end, x.side) for x in rep.sensors for i in x.nonwear)
    assert startles_in_sleep([e for e in events if e.kind == "jerk"]) == rep.brief_jerks

    sides = {x.side for x in rep.sensors}
    for gap in (e for e in events if e.kind == "gap"):
        assert gap.side in sides and gap.end - gap.start > MAX_BRIDGE_S
        assert not [m for m in lms if m.side == gap.side and m.start < gap.end
                    and gap.start < m.end], "an LM cut by a gap is dropped"


def startles_in_sleep(jerks: list[NightEvent]) -> int:
    """Jerk events starting in sleep, those less than 0.5 s after the previous one not again."""
    count, last_end = 0, -np.inf
    for e in sorted(jerks, key=lambda e: (e.start, e.end)):
        count += bool(e.detail["in_sleep"]) and e.start - last_end >= MIN_REST_S
        last_end = max(last_end, e.end)
    return count


def test_missing_data_longer_than_the_bridge_is_a_gap_event() -> None:
    recs = recordings("severe_plms-6")
    right = recs[1]
    t0 = float(right.time[0])
    long_cut, short_cut = (t0 + 1800.0, t0 + 1820.0), (t0 + 2400.0, t0 + 2400.5)
    keep = np.ones(right.time.size, dtype=bool)
    for a, b in (long_cut, short_cut):
        keep &= (right.time < a) | (right.time >= b)
    cut = recording_from_arrays(right.time[keep], right.accel[keep], "right", fs=right.fs)
    gaps = [(e.start, e.end) for e in analyze_night([recs[0], cut]).events()
            if e.kind == "gap" and e.side == "right"]
    assert [g for g in gaps if abs(g[0] - long_cut[0]) < 0.05 and abs(g[1] - long_cut[1]) < 0.05]
    assert not [g for g in gaps if g[0] < short_cut[1] and short_cut[0] < g[1]]


def test_result_is_frozen_short_and_draws(tmp_path: Path) -> None:
    res = result("unilateral_tremor-6")
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.start = 0.0  # type: ignore[misc]
    assert repr(res).startswith("NightResult(") and len(repr(res)) < 300
    png = draw_night(res, tmp_path / "night.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


if __name__ == "__main__":
    for name in NIGHTS:
        text = report(name).model_dump_json()
        (GOLDEN / f"{name}.json.gz").write_bytes(gzip.compress(text.encode(), mtime=0))
        (GOLDEN / f"{name}.txt").write_text(result(name).summary())
