"""Flag rules: age-aware thresholds, severities, and the evidence behind each flag."""

from __future__ import annotations

import dataclasses

import pytest

from analysis.flags import FlagInputs, TremorFigure, raise_flags

CALM = FlagInputs(
    age_months=84, sides=("left", "right"), plm_index=1.0, plm_count=8,
    total_sleep_min=540, waso_min=10, awakenings=1, recording_h=10, worn_h=10,
    nonwear_min={"left": 0.0, "right": 0.0}, lm_sleep_by_side={"left": 30, "right": 28},
)


def codes(fig: FlagInputs) -> dict[str, str]:
    return {f.code: f.severity for f in raise_flags(fig)}


def test_a_calm_night_raises_nothing() -> None:
    assert codes(CALM) == {}


@pytest.mark.parametrize(
    ("age", "plmi", "raised"),
    [(84, 5.0, False), (84, 5.1, True), (8, 5.1, True), (240, 14.9, False), (240, 15.1, True),
     (None, 5.1, True)],
)
def test_plmi_threshold_depends_on_age(age: float | None, plmi: float, raised: bool) -> None:
    fig = dataclasses.replace(CALM, age_months=age, plm_index=plmi)
    assert ("PLMI_ELEVATED" in codes(fig)) is raised


def test_infant_plmi_message_says_there_are_no_norms() -> None:
    (flag,) = raise_flags(dataclasses.replace(CALM, age_months=8, plm_index=9.0))
    assert "no normal values for babies" in flag.message
    assert "not a diagnosis" in flag.message
    assert flag.evidence["threshold_per_h"] == 5.0 and flag.evidence["age_group"] == "infant"


def test_prolonged_one_sided_tremor_is_urgent_and_asymmetric() -> None:
    fig = dataclasses.replace(CALM, tremor=(TremorFigure("left", 240, 6.0, True),))
    assert codes(fig) == {"PROLONGED_TREMOR": "urgent", "ASYMMETRIC_MOVEMENT": "urgent"}
    assert raise_flags(fig)[0].severity == "urgent"


def test_short_bilateral_tremor_raises_nothing_and_long_bilateral_warns() -> None:
    short = dataclasses.replace(CALM, tremor=(TremorFigure("bilateral", 179, 9.0, False),))
    assert codes(short) == {}
    long = dataclasses.replace(CALM, tremor=(TremorFigure("bilateral", 180, 9.0, False),))
    assert codes(long) == {"PROLONGED_TREMOR": "warning"}


def test_one_sided_tremor_needs_the_other_leg_worn_for_asymmetry() -> None:
    fig = dataclasses.replace(CALM, tremor=(TremorFigure("left", 90, 6.0, False),))
    assert "ASYMMETRIC_MOVEMENT" not in codes(fig)
    fig = dataclasses.replace(CALM, tremor=(TremorFigure("left", 60, 6.0, True),))
    assert codes(fig) == {"ASYMMETRIC_MOVEMENT": "urgent"}


def test_lm_count_asymmetry_needs_enough_movements() -> None:
    lopsided = dataclasses.replace(CALM, lm_sleep_by_side={"left": 40, "right": 9})
    assert codes(lopsided) == {"ASYMMETRIC_MOVEMENT": "warning"}
    few = dataclasses.replace(CALM, lm_sleep_by_side={"left": 15, "right": 2})
    assert codes(few) == {}
    one_sensor = dataclasses.replace(lopsided, sides=("left",))
    assert codes(one_sensor) == {}


def test_nonwear_coverage_and_fragmented_sleep() -> None:
    fig = dataclasses.replace(CALM, nonwear_min={"left": 75.0}, worn_h=7.0)
    assert codes(fig) == {"NONWEAR": "info", "LOW_COVERAGE": "warning"}
    assert codes(dataclasses.replace(CALM, worn_h=3.5, recording_h=4.0)) == {
        "LOW_COVERAGE": "warning"}
    assert codes(dataclasses.replace(CALM, waso_min=61)) == {"FRAGMENTED_SLEEP": "info"}
    assert codes(dataclasses.replace(CALM, awakenings=6)) == {"FRAGMENTED_SLEEP": "info"}
    infant = dataclasses.replace(CALM, age_months=6, waso_min=80, awakenings=7)
    assert codes(infant) == {}
