"""Tests for analysis.plm: bilateral merging, PLM series, PLMS summary (WASM 2016 and AASM)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.plm import (
    LegMovement,
    PlmScoring,
    PlmSeries,
    Rules,
    Side,
    score_plm,
    summarize_sleep,
)


def lm(start: float, dur: float = 1.0, side: Side = "left") -> LegMovement:
    return LegMovement(start=start, end=start + dur, side=side)


def train(onsets: Sequence[float], dur: float = 1.0, side: Side = "left") -> list[LegMovement]:
    return [lm(t, dur, side) for t in onsets]


def cumulative(imis: npt.ArrayLike) -> list[float]:
    return [0.0, *np.cumsum(imis).tolist()]


def periodic(scoring: PlmScoring) -> list[bool]:
    return [m.periodic for m in scoring.movements]


def series_counts(scoring: PlmScoring) -> list[int]:
    return [s.count for s in scoring.series]


# --- LM duration and bilateral merging -------------------------------------------------------


@pytest.mark.parametrize("rules", ["wasm2016", "aasm"])
@pytest.mark.parametrize(("dur", "candidate"), [(0.5, True), (10.0, True), (10.01, False)])
def test_monolateral_duration_edges(rules: Rules, dur: float, candidate: bool) -> None:
    (movement,) = score_plm([lm(0.0, dur)], rules=rules).movements
    assert movement.candidate is candidate
    assert not movement.bilateral


def test_lm_shorter_than_half_second_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"below 0\.5 s"):
        score_plm([lm(0.0, 0.49)])


def test_unknown_rules_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown rules"):
        score_plm([], rules="coleman")  # type: ignore[arg-type]


@pytest.mark.parametrize(("n_components", "candidate"), [(4, True), (5, False)])
def test_bilateral_of_more_than_four_lms_is_non_clm(n_components: int, candidate: bool) -> None:
    # Alternating legs, each overlapping the next; same-leg LMs 1 s apart stay distinct.
    sides: list[Side] = ["left", "right"]
    lms = [lm(1.5 * k, 2.0, sides[k % 2]) for k in range(n_components)]
    (movement,) = score_plm(lms).movements
    assert movement.bilateral
    assert movement.end - movement.start <= 15.0
    assert movement.candidate is candidate


@pytest.mark.parametrize(("right_end", "candidate"), [(15.0, True), (15.01, False)])
def test_bilateral_lasting_over_15_s_is_non_clm(right_end: float, candidate: bool) -> None:
    lms = [LegMovement(0.0, 9.0, "left"), LegMovement(8.0, right_end, "right")]
    (movement,) = score_plm(lms).movements
    assert movement.bilateral
    assert movement.candidate is candidate


@pytest.mark.parametrize(("left_dur", "candidate"), [(10.0, True), (10.5, False)])
def test_bilateral_with_monolateral_over_10_s_is_non_clm(left_dur: float, candidate: bool) -> None:
    (movement,) = score_plm([lm(0.0, left_dur), lm(1.0, 2.0, "right")]).movements
    assert movement.bilateral
    assert movement.candidate is candidate


@pytest.mark.parametrize(("separation", "merged"), [(-1.0, True), (0.49, True), (0.5, False)])
def test_bilateral_merge_separation(separation: float, merged: bool) -> None:
    lms = [LegMovement(0.0, 2.0, "left"), lm(2.0 + separation, 1.0, "right")]
    movements = score_plm(lms).movements
    assert len(movements) == (1 if merged else 2)
    assert all(m.bilateral is merged for m in movements)


def test_chaining_grows_with_either_leg() -> None:
    lms = [LegMovement(0.0, 2.0, "left"), LegMovement(2.3, 4.0, "right"), lm(4.4, 1.0)]
    (movement,) = score_plm(lms).movements
    assert movement.members == (0, 1, 2)
    assert (movement.start, movement.end) == (0.0, 5.4)
    assert score_plm(lms).bilateral_group() == [1, 1, 1]


def test_same_leg_lms_closer_than_half_second_count_as_one_component() -> None:
    # Five inputs, but the first two left LMs are 0.2 s apart: four monolateral LMs -> CLM.
    lms = [
        LegMovement(0.0, 1.0, "left"),
        LegMovement(1.2, 2.0, "left"),
        LegMovement(1.5, 2.5, "right"),
        LegMovement(2.8, 4.0, "left"),
        LegMovement(3.5, 4.5, "right"),
    ]
    (movement,) = score_plm(lms).movements
    assert len(movement.members) == 5
    assert movement.candidate


@pytest.mark.parametrize("rules", ["wasm2016", "aasm"])
def test_same_leg_lms_joined_are_checked_as_one_monolateral_lm(rules: Rules) -> None:
    lms = [LegMovement(0.0, 6.0, "left"), LegMovement(6.2, 12.0, "left")]
    (movement,) = score_plm(lms, rules=rules).movements
    assert movement.members == (0, 1)
    assert not movement.bilateral
    assert not movement.candidate  # 12 s monolateral


# --- PLM series ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "imi", "is_series"),
    [
        ("wasm2016", 10.0, True),
        ("wasm2016", 9.99, False),
        ("wasm2016", 90.0, True),
        ("wasm2016", 90.01, False),
        ("aasm", 5.0, True),
        ("aasm", 4.99, False),
        ("aasm", 90.0, True),
        ("aasm", 90.01, False),
    ],
)
def test_series_imi_edges(rules: Rules, imi: float, is_series: bool) -> None:
    scoring = score_plm(train([k * imi for k in range(4)], dur=0.5), rules=rules)
    assert series_counts(scoring) == ([4] if is_series else [])
    assert all(flag is is_series for flag in periodic(scoring))


def test_three_lms_are_not_a_series_four_are() -> None:
    assert score_plm(train([0, 20, 40])).series == ()
    (series,) = score_plm(train([0, 20, 40, 60])).series
    assert (series.start, series.end, series.count) == (0.0, 61.0, 4)


def test_series_broken_by_non_clm() -> None:
    onsets = [0, 20, 40, 60, 80, 100]
    assert series_counts(score_plm(train(onsets))) == [6]
    scoring = score_plm([*train(onsets), lm(45.0, 12.0)])
    assert scoring.series == ()
    assert not any(periodic(scoring))


def test_local_periodicity_of_a_lone_series_is_one_and_it_is_settled() -> None:
    scoring = score_plm(train([0, 20, 40, 60]))
    assert scoring.local_periodicity() == [1.0]
    assert scoring.settled_legs() == [True] * 4


def _among_waking_movement(series: list[float]) -> list[LegMovement]:
    """The series bounded by long movements (non-CLM) and pairs of LMs 4 s apart around it."""
    end = series[-1]
    clutter = [-100, -96, -60, -56, end + 40, end + 44, end + 80, end + 84]
    return [*train(series), *train(clutter), lm(-20.0, 12.0), lm(end + 10.0, 12.0)]


def test_short_series_among_waking_movement_is_not_settled() -> None:
    scoring = score_plm(_among_waking_movement([0, 20, 40, 60]))
    assert series_counts(scoring) == [4]
    (pi,) = scoring.local_periodicity()
    assert pi == pytest.approx(3 / 13)  # 3 periodic IMIs of the 13 within 150 s of the series
    assert not any(scoring.settled_legs()) and scoring.settled_series() == [False]
    assert [m.start for m in scoring.series_movements(scoring.series[0])] == [0, 20, 40, 60]


def test_long_series_is_settled_whatever_its_surroundings() -> None:
    scoring = score_plm(_among_waking_movement([20.0 * k for k in range(8)]))
    assert series_counts(scoring) == [8]
    settled = scoring.settled_legs()
    assert sum(settled) == 8 and scoring.settled_series() == [True]
    assert settled == scoring.periodic_legs()


def test_aasm_ignores_movements_over_10_s() -> None:
    scoring = score_plm([*train([0, 20, 40, 60, 80, 100]), lm(45.0, 12.0)], rules="aasm")
    assert series_counts(scoring) == [6]
    long_movement = next(m for m in scoring.movements if m.start == 45.0)
    assert not long_movement.candidate
    assert not long_movement.periodic


def test_series_broken_by_break_interval() -> None:
    lms = train([0, 20, 40, 60, 80, 100])
    assert score_plm(lms, breaks=[(45.0, 50.0)]).series == ()
    assert series_counts(score_plm(lms, breaks=[(102.0, 500.0)])) == [6]
    assert score_plm(lms, rules="aasm", breaks=[(45.0, 50.0)]).series == ()
    # A break touching an onset from outside does not overlap the IMI between onsets.
    touching = [(-5.0, 0.0), (100.0, 130.0)]
    assert series_counts(score_plm(lms, breaks=touching)) == [6]


def test_overlapping_breaks_are_merged() -> None:
    scoring = score_plm([], breaks=[(10.0, 20.0), (12.0, 13.0), (20.0, 25.0), (0.0, 1.0)])
    assert scoring.breaks == ((0.0, 1.0), (10.0, 25.0))
    with pytest.raises(ValueError, match="ends before it starts"):
        score_plm([], breaks=[(5.0, 4.0)])


def test_wasm_short_imi_ends_series_and_next_lm_may_start_one() -> None:
    onsets = [0, 20, 40, 60, 65, 85, 105, 125]
    scoring = score_plm(train(onsets))
    assert [(s.start, s.count) for s in scoring.series] == [(0.0, 4), (65.0, 4)]
    assert all(periodic(scoring))
    # AASM accepts the 5-s IMI, so the same LMs form one series.
    assert series_counts(score_plm(train(onsets), rules="aasm")) == [8]


def test_wasm_short_imi_splits_a_run_below_four() -> None:
    scoring = score_plm(train([0, 20, 40, 45, 65, 85]))
    assert scoring.series == ()


def test_aasm_lm_after_short_imi_is_skipped_not_breaking() -> None:
    scoring = score_plm(train([0, 20, 24.99, 40, 60]), rules="aasm")
    assert series_counts(scoring) == [4]
    assert periodic(scoring) == [True, True, False, True, True]
    assert all(m.candidate for m in scoring.movements)
    # With an IMI of exactly 5 s that LM is kept and the next IMI is measured from it.
    assert series_counts(score_plm(train([0, 20, 25, 40, 60]), rules="aasm")) == [5]


def test_imi_from_sample_index_arithmetic_counts_as_10_s() -> None:
    onsets = [k * 0.04 for k in (160, 410, 660, 910)]  # 6.4, 16.4, ... built from sample indices
    assert any(b - a < 10.0 for a, b in pairwise(onsets))
    assert series_counts(score_plm(train(onsets))) == [4]


def test_histogram_of_imi_from_sample_index_arithmetic() -> None:
    onsets = [k * 0.1 for k in (1, 101)]
    assert onsets[1] - onsets[0] > 10.0  # 10.000000000000002
    scoring = score_plm(train(onsets, dur=0.5))
    counts = summarize_sleep(scoring, [True, True], 1.0).imi_counts
    assert counts[4] == 1  # (8, 10]


# --- AASM bilateral merge --------------------------------------------------------------------


@pytest.mark.parametrize(("right_onset", "merged"), [(4.99, True), (5.0, False)])
def test_aasm_merges_opposite_legs_with_onsets_under_5_s(right_onset: float, merged: bool) -> None:
    lms = [lm(0.0), lm(right_onset, side="right")]
    assert len(score_plm(lms, rules="aasm").movements) == (1 if merged else 2)
    assert len(score_plm(lms).movements) == 2  # WASM: 3.99 s offset-to-onset, separate


def test_aasm_merge_uses_onsets_not_offsets() -> None:
    lms = [LegMovement(0.0, 6.0, "left"), LegMovement(6.2, 7.2, "right")]
    assert len(score_plm(lms).movements) == 1
    assert len(score_plm(lms, rules="aasm").movements) == 2


def test_aasm_merge_is_anchored_on_first_onset() -> None:
    lms = [lm(0.0), lm(4.0, side="right"), lm(8.0), lm(12.0, side="right")]
    scoring = score_plm(lms, rules="aasm")
    assert [m.members for m in scoring.movements] == [(0, 1), (2, 3)]


def test_aasm_same_leg_alone_does_not_merge() -> None:
    scoring = score_plm([lm(0.0), lm(3.0)], rules="aasm")
    assert len(scoring.movements) == 2
    # With the other leg moving 4 s after the first onset, all three are one LM.
    scoring = score_plm([lm(0.0), lm(3.0), lm(4.0, side="right")], rules="aasm")
    assert [m.members for m in scoring.movements] == [(0, 1, 2)]


def test_aasm_long_movement_is_not_merged() -> None:
    scoring = score_plm([lm(0.0, 12.0), lm(1.0, side="right")], rules="aasm")
    assert [(m.members, m.candidate, m.bilateral) for m in scoring.movements] == [
        ((0,), False, False),
        ((1,), True, False),
    ]


# --- Per-input views -------------------------------------------------------------------------


def test_bilateral_group_ids_shared_across_legs() -> None:
    lms = [
        LegMovement(100.0, 101.0, "right"),
        LegMovement(0.0, 1.0, "left"),
        LegMovement(200.0, 201.0, "left"),
        LegMovement(0.5, 1.5, "right"),
        LegMovement(100.2, 101.0, "left"),
    ]
    assert score_plm(lms).bilateral_group() == [2, 1, None, 1, 2]


def test_periodic_legs_marks_both_legs_of_a_periodic_bilateral_lm() -> None:
    onsets = [0, 20, 40, 60]
    lms = [*train(onsets), *train([t + 0.3 for t in onsets], side="right"), lm(500.0)]
    scoring = score_plm(lms)
    assert len(scoring.movements) == 5
    assert scoring.periodic_legs() == [True] * 8 + [False]
    assert scoring.bilateral_group() == [1, 2, 3, 4, 1, 2, 3, 4, None]


# --- Sleep summary ---------------------------------------------------------------------------


def test_plms_count_and_index_use_sleep_onsets() -> None:
    lms = [*train([0, 20, 40, 60, 80, 100]), lm(500.0), lm(800.0, 12.0)]
    scoring = score_plm(lms)
    in_sleep = [False, False, True, True, True, True, True, True]
    summary = summarize_sleep(scoring, in_sleep, total_sleep_h=0.5)
    assert summary.count == 4
    assert summary.index == pytest.approx(8.0)
    assert summary.lm_count_sleep == 5  # the 12-s non-CLM is not counted
    assert summary.lm_index == pytest.approx(10.0)


def test_no_sleep_gives_zero_indices() -> None:
    scoring = score_plm(train([20.0 * k for k in range(20)]))
    summary = summarize_sleep(scoring, [True] * 20, total_sleep_h=0.0)
    assert (summary.index, summary.lm_index, summary.periodicity_index) == (0.0, 0.0, None)


def test_summary_input_checks() -> None:
    scoring = score_plm(train([0, 20]))
    with pytest.raises(ValueError, match="2 scored movements"):
        summarize_sleep(scoring, [True], total_sleep_h=1.0)
    with pytest.raises(ValueError, match="total_sleep_h"):
        summarize_sleep(scoring, [True, True], total_sleep_h=-1.0)


def pi_of(onsets: Sequence[float], total_sleep_h: float = 0.5, **kwargs: object) -> float | None:
    lms = train(onsets, dur=0.5)
    scoring = score_plm(lms, **kwargs)  # type: ignore[arg-type]
    in_sleep = [True] * len(scoring.movements)
    return summarize_sleep(scoring, in_sleep, total_sleep_h).periodicity_index


def test_periodicity_index_perfect_sequence_is_one() -> None:
    assert pi_of([20.0 * k for k in range(30)]) == 1.0


def test_periodicity_index_lower_for_random_spacing() -> None:
    rng = np.random.default_rng(7)
    onsets = cumulative(1.0 + rng.exponential(8.0, size=60))  # Poisson-like, no rhythm
    pi = pi_of(onsets)
    assert pi is not None
    assert pi < 0.5  # ~0.5 separates RLS from controls (Ferri 2016)


def test_periodicity_index_counts_runs_of_at_least_three_imis() -> None:
    imis = [20, 20, 20, 5, 20, 20, 5, 20, 20, 20, 20]
    assert pi_of(cumulative(imis)) == pytest.approx(7 / 11)


def test_periodicity_index_excludes_imi_of_exactly_10_s() -> None:
    onsets = [10.0 * k for k in range(12)]
    assert series_counts(score_plm(train(onsets, dur=0.5))) == [12]  # WASM: 10 s is in
    assert pi_of(onsets) == 0.0  # Ferri: 10 < IMI


def test_periodicity_index_needs_ten_imis() -> None:
    assert pi_of([20.0 * k for k in range(10)]) is None
    assert pi_of([20.0 * k for k in range(11)]) == 1.0


def test_periodicity_index_needs_ten_lm_per_hour() -> None:
    onsets = [20.0 * k for k in range(30)]
    assert pi_of(onsets, total_sleep_h=3.0) == 1.0
    assert pi_of(onsets, total_sleep_h=3.01) is None


def test_periodicity_index_runs_interrupted_by_wake_and_breaks() -> None:
    scoring = score_plm(train([20.0 * k for k in range(13)], dur=0.5))
    in_sleep = [k != 3 for k in range(13)]
    assert summarize_sleep(scoring, in_sleep, 0.5).periodicity_index == pytest.approx(8 / 10)
    broken = score_plm(train([20.0 * k for k in range(13)], dur=0.5), breaks=[(45.0, 46.0)])
    assert summarize_sleep(broken, [True] * 13, 0.5).periodicity_index == pytest.approx(9 / 11)


def test_imi_histogram_bins() -> None:
    imis = [1, 2, 3, 10, 89.5, 90, 95]
    scoring = score_plm(train(cumulative(imis), dur=0.5))
    summary = summarize_sleep(scoring, [True] * len(scoring.movements), 1.0)
    assert summary.imi_edges_s == [2.0 * k for k in range(46)]
    expected = [0] * 45
    expected[0], expected[1], expected[4], expected[44] = 2, 1, 1, 2  # (0,2] (2,4] (8,10] (88,90]
    assert summary.imi_counts == expected


@pytest.mark.parametrize(("rules", "n_counted"), [("wasm2016", 2), ("aasm", 3)])
def test_imi_histogram_skips_wake_break_and_non_clm_pairs(rules: Rules, n_counted: int) -> None:
    lms = [*train([0, 20, 40, 60, 80, 100, 120]), lm(85.0, 12.0)]
    scoring = score_plm(lms, rules=rules, breaks=[(105.0, 106.0)])
    in_sleep = [m.start != 20.0 for m in scoring.movements]
    summary = summarize_sleep(scoring, in_sleep, 1.0)
    # Counted: 40->60 and 60->80 (and 80->100 under AASM, where the 12-s movement is no LM).
    assert summary.imi_counts[9] == n_counted
    assert sum(summary.imi_counts) == n_counted


# --- Properties ------------------------------------------------------------------------------

# Times on a 1/64-s grid stay exact under integer shifts, so invariance can be checked exactly.
grid_times = st.integers(0, 64 * 900).map(lambda k: k / 64)
durations = st.integers(32, 64 * 14).map(lambda k: k / 64)
SIDES: tuple[Side, ...] = ("left", "right")
RULES: tuple[Rules, ...] = ("wasm2016", "aasm")
sides = st.sampled_from(SIDES)
random_lms = st.lists(
    st.builds(lambda t, d, s: LegMovement(t, t + d, s), grid_times, durations, sides),
    max_size=20,
)


@st.composite
def recordings(draw: st.DrawFn) -> list[LegMovement]:
    """Random LMs plus a roughly periodic train, so series occur often."""
    period = draw(st.integers(64 * 4, 64 * 40)) / 64
    base = draw(grid_times)
    count = draw(st.integers(0, 10))
    trained = [
        LegMovement(base + k * period, base + k * period + draw(durations), draw(sides))
        for k in range(count)
    ]
    return trained + draw(random_lms)


Breaks = list[tuple[float, float]]
breaks_st = st.lists(
    st.tuples(grid_times, durations).map(lambda td: (td[0], td[0] + td[1])), max_size=2
)
rules_st = st.sampled_from(RULES)
fast = settings(max_examples=150, deadline=None)


def flags(scoring: PlmScoring) -> list[tuple[tuple[int, ...], bool, bool, bool]]:
    return [(m.members, m.bilateral, m.candidate, m.periodic) for m in scoring.movements]


def times(scoring: PlmScoring, shift: float = 0.0) -> list[tuple[float, float]]:
    return [(m.start + shift, m.end + shift) for m in scoring.movements]


@fast
@given(recordings(), breaks_st, rules_st)
def test_structure_invariants(lms: list[LegMovement], breaks: Breaks, rules: Rules) -> None:
    scoring = score_plm(lms, rules=rules, breaks=breaks)
    members = sorted(i for m in scoring.movements for i in m.members)
    assert members == list(range(len(lms)))
    starts = [m.start for m in scoring.movements]
    assert starts == sorted(starts)
    for m in scoring.movements:
        assert m.bilateral == (len({lms[i].side for i in m.members}) == 2)
        assert m.candidate or not m.periodic
        assert (m.start, m.end) == (
            min(lms[i].start for i in m.members),
            max(lms[i].end for i in m.members),
        )
    assert all(s.count >= 4 for s in scoring.series)
    assert sum(s.count for s in scoring.series) == sum(periodic(scoring))
    assert len(scoring.periodic_legs()) == len(scoring.bilateral_group()) == len(lms)


@fast
@given(recordings(), breaks_st, rules_st, st.integers(-(10**6), 2 * 10**9))
def test_shifting_all_times_changes_only_times(
    lms: list[LegMovement], breaks: Breaks, rules: Rules, shift: int
) -> None:
    before = score_plm(lms, rules=rules, breaks=breaks)
    after = score_plm(
        [LegMovement(m.start + shift, m.end + shift, m.side) for m in lms],
        rules=rules,
        breaks=[(a + shift, b + shift) for a, b in breaks],
    )
    assert flags(after) == flags(before)
    assert times(after) == times(before, shift)
    assert after.series == tuple(
        PlmSeries(s.start + shift, s.end + shift, s.count) for s in before.series
    )


@fast
@given(recordings(), breaks_st, rules_st)
def test_swapping_legs_keeps_everything_but_sides(
    lms: list[LegMovement], breaks: Breaks, rules: Rules
) -> None:
    other: dict[str, Side] = {"left": "right", "right": "left"}
    swapped = [LegMovement(m.start, m.end, other[m.side]) for m in lms]
    before = score_plm(lms, rules=rules, breaks=breaks)
    after = score_plm(swapped, rules=rules, breaks=breaks)
    assert flags(after) == flags(before)
    assert times(after) == times(before)
    assert after.series == before.series
    assert after.bilateral_group() == before.bilateral_group()


@fast
@given(recordings(), rules_st, st.randoms(use_true_random=False))
def test_input_order_does_not_matter(
    lms: list[LegMovement], rules: Rules, rnd: random.Random
) -> None:
    shuffled = list(lms)
    rnd.shuffle(shuffled)

    def content(scoring: PlmScoring, inputs: list[LegMovement]) -> Counter[tuple[object, ...]]:
        return Counter(
            (
                m.start,
                m.end,
                m.bilateral,
                m.candidate,
                m.periodic,
                tuple(sorted((inputs[i].start, inputs[i].end, inputs[i].side) for i in m.members)),
            )
            for m in scoring.movements
        )

    before = score_plm(lms, rules=rules)
    after = score_plm(shuffled, rules=rules)
    assert content(after, shuffled) == content(before, lms)
    assert after.series == before.series


@fast
@given(recordings(), breaks_st, st.tuples(grid_times, durations))
def test_wasm_adding_a_break_never_adds_periodic_lms(
    lms: list[LegMovement], breaks: Breaks, extra: tuple[float, float]
) -> None:
    before = score_plm(lms, breaks=breaks).periodic_legs()
    start, dur = extra
    after = score_plm(lms, breaks=[*breaks, (start, start + dur)]).periodic_legs()
    assert all(b or not a for a, b in zip(after, before, strict=True))


@fast
@given(recordings(), breaks_st, st.data())
def test_wasm_removing_a_non_periodic_lm_keeps_other_periodic_lms(
    lms: list[LegMovement], breaks: Breaks, data: st.DataObject
) -> None:
    before = score_plm(lms, breaks=breaks).periodic_legs()
    non_periodic = [i for i, flag in enumerate(before) if not flag]
    if not non_periodic:
        return
    removed = data.draw(st.sampled_from(non_periodic))
    kept = [i for i in range(len(lms)) if i != removed]
    after = score_plm([lms[i] for i in kept], breaks=breaks).periodic_legs()
    assert all(flag for i, flag in zip(kept, after, strict=True) if before[i])


@fast
@given(recordings(), breaks_st, rules_st, st.data())
def test_summary_invariants(
    lms: list[LegMovement], breaks: Breaks, rules: Rules, data: st.DataObject
) -> None:
    scoring = score_plm(lms, rules=rules, breaks=breaks)
    n = len(scoring.movements)
    in_sleep = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    summary = summarize_sleep(scoring, in_sleep, total_sleep_h=0.25)
    assert summary.count == sum(
        m.periodic and s for m, s in zip(scoring.movements, in_sleep, strict=True)
    )
    assert summary.count <= summary.lm_count_sleep
    assert summary.index == pytest.approx(4 * summary.count)
    assert sum(summary.imi_counts) <= max(n - 1, 0)
    assert summary.periodicity_index is None or 0.0 <= summary.periodicity_index <= 1.0
