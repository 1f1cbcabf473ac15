"""Flag rules: age-aware thresholds, severities, and the evidence behind each flag."""

from __future__ import annotations

import dataclasses

import pytest

from analysis.flags import ClusterFigure, FlagInputs, SettlingFigure, TremorFigure, raise_flags

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


def test_short_bilateral_tremor_raises_nothing_under_4_months_and_long_bilateral_warns() -> None:
    young = dataclasses.replace(CALM, age_months=2)
    short = dataclasses.replace(young, tremor=(TremorFigure("bilateral", 179, 9.0, False),))
    assert codes(short) == {}
    long = dataclasses.replace(young, tremor=(TremorFigure("bilateral", 180, 9.0, False),))
    assert codes(long) == {"PROLONGED_TREMOR": "warning"}


def test_from_4_months_short_tremor_that_adds_up_is_mentioned_for_the_next_visit() -> None:
    spells = (TremorFigure("bilateral", 12, 7.0, False), TremorFigure("left", 20, 7.0, False))
    assert codes(dataclasses.replace(CALM, age_months=3.9, tremor=spells)) == {}
    (flag,) = raise_flags(dataclasses.replace(CALM, age_months=4, tremor=spells))
    assert (flag.code, flag.severity) == ("PROLONGED_TREMOR", "info")
    assert "next visit" in flag.message and flag.evidence["tremor_total_s"] == 32
    one = (TremorFigure("bilateral", 10, 7.0, False),)  # a stray detection is not persistent
    assert codes(dataclasses.replace(CALM, age_months=24, tremor=one)) == {}
    assert codes(dataclasses.replace(CALM, age_months=None, tremor=spells)) == {}


@pytest.mark.parametrize("age", [1, 30])
def test_tremor_in_sleep_is_urgent_at_any_age(age: float) -> None:
    fig = dataclasses.replace(CALM, age_months=age,
                              tremor=(TremorFigure("bilateral", 70, 6.0, False, asleep=True),))
    (flag,) = raise_flags(fig)
    assert (flag.code, flag.severity) == ("PROLONGED_TREMOR", "urgent")
    assert "in sleep" in flag.message and "straight away" in flag.message
    awake = dataclasses.replace(fig, tremor=(TremorFigure("bilateral", 70, 6.0, False),))
    assert codes(awake) == ({} if age < 4 else {"PROLONGED_TREMOR": "info"})


def test_difficult_settling_is_an_observation_with_its_evidence() -> None:
    calm_settling = (SettlingFigure(True, 40, 4, 12, 6.0), SettlingFigure(False, 8, 6, 20, 40))
    assert codes(dataclasses.replace(CALM, settling=calm_settling)) == {}
    hard = (SettlingFigure(True, 34, 22, 60, 70.0),)
    (flag,) = raise_flags(dataclasses.replace(CALM, settling=hard))
    assert (flag.code, flag.severity) == ("DIFFICULT_SETTLING", "info")
    assert "34 minutes" in flag.message and "not a diagnosis" in flag.message
    assert flag.evidence["kicking_min"] == 22 and flag.evidence["first_settling"] == 1
    assert codes(dataclasses.replace(CALM, settling=(SettlingFigure(True, 30, 30, 60, 70),))
                 ) == {}  # more than 30 min


def test_jerk_clusters_in_sleep_are_usually_benign_and_red_flags_make_it_worth_a_call() -> None:
    baby = dataclasses.replace(CALM, age_months=2,
                               clusters=(ClusterFigure(30, 40.0, "bilateral", 1.0),))
    (flag,) = raise_flags(baby)
    assert (flag.code, flag.severity) == ("JERK_CLUSTERS", "info")
    assert "usually harmless" in flag.message and "Call the doctor if" in flag.message
    for fig in (dataclasses.replace(baby, clusters=(ClusterFigure(30, 40.0, "bilateral", 0.2),)),
                dataclasses.replace(baby, clusters=(ClusterFigure(30, 40.0, "left", 1.0),)),
                dataclasses.replace(baby, age_months=7)):
        (flag,) = raise_flags(fig)
        assert flag.severity == "warning" and "worth a call" in flag.message
    assert codes(CALM) == {}


def test_one_sided_tremor_needs_the_other_leg_worn_for_asymmetry() -> None:
    fig = dataclasses.replace(CALM, tremor=(TremorFigure("left", 90, 6.0, False),))
    assert "ASYMMETRIC_MOVEMENT" not in codes(fig)
    fig = dataclasses.replace(CALM, tremor=(TremorFigure("left", 60, 6.0, True),))
    assert codes(fig) == {"ASYMMETRIC_MOVEMENT": "urgent", "PROLONGED_TREMOR": "info"}  # 7 y
    young = dataclasses.replace(fig, age_months=2)
    assert codes(young) == {"ASYMMETRIC_MOVEMENT": "urgent"}


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
