"""Multi-night summary of the PLMS index."""

from __future__ import annotations

from analysis.nights import NightIndex, summarize_nights


def nights(*indices: float | None, sleep: float = 480.0) -> list[NightIndex]:
    return [NightIndex(x, sleep) for x in indices]


def test_mean_median_range_and_nights_above_the_childrens_threshold() -> None:
    s = summarize_nights(nights(6.0, 7.0, 9.5, 6.5), age_months=84)
    assert (s.nights, s.nights_used, s.mean, s.median, s.min, s.max) == (4, 4, 7.25, 6.75, 6.0,
                                                                        9.5)
    assert (s.threshold_per_h, s.nights_above, s.disagree) == (5.0, 4, False)
    assert "agree" in s.note


def test_nights_on_both_sides_of_the_threshold_disagree() -> None:
    s = summarize_nights(nights(2.0, 7.5, 3.0), age_months=60)
    assert s.disagree and s.nights_above == 1 and "disagree" in s.note
    wide = summarize_nights(nights(16.0, 30.0), age_months=60)  # both above, range > 5/h
    assert wide.disagree and wide.nights_above == 2
    adult = summarize_nights(nights(16.0, 30.0), age_months=240)
    assert adult.threshold_per_h == 15.0 and adult.nights_above == 2 and not adult.disagree


def test_one_night_is_not_enough_and_nights_without_sleep_are_left_out() -> None:
    s = summarize_nights([*nights(4.0), *nights(None, 20.0, sleep=30.0)])
    assert (s.nights, s.nights_used, s.mean) == (3, 1, 4.0) and "One night only" in s.note
    none = summarize_nights(nights(None))
    assert none.mean is None and none.nights_used == 0
    assert set(none.to_dict()) >= {"mean", "median", "min", "max", "nights_above", "note"}
