"""Flags of the night report: plain words for a parent, the figures behind them for a clinician.

Wording rules: describe what was measured, never name a diagnosis, say when to see a doctor.
Thresholds and their sources are in `../shared/domain/science.md` (sections 1, 2, 5, 6).
The same function serves the analysis and the accuracy benchmark (applied to ground truth).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from limbwatch.report import Flag

INFANT_MAX_MONTHS = 12
ADULT_MIN_MONTHS = 18 * 12
PLMI_CHILD = 5.0  # /h, ICSD-3 PLMD threshold for children (also used for infants: no norms)
PLMI_ADULT = 15.0  # /h, ICSD-3 for adults
PROLONGED_TREMOR_S = 180.0  # contract: a tremor episode of 3 minutes or more
ASYMMETRIC_TREMOR_S = 60.0  # contract: rhythmic shaking on one leg only for 60 s or more
ASYMMETRIC_MIN_LMS = 20  # LMs in sleep over both legs before a count ratio means anything
ASYMMETRIC_RATIO = 0.25  # fewer LMs on one leg than this share of the other leg's
LOW_COVERAGE_SHARE = 0.75  # of the recording with worn data
LOW_COVERAGE_HOURS = 4.0  # of worn data at least
NONWEAR_MIN_MIN = 1.0  # report non-wear of at least a minute
FRAGMENTED_WASO_MIN = {"infant": 90.0, "child": 60.0, "adult": 60.0}
FRAGMENTED_AWAKENINGS = {"infant": 8, "child": 6, "adult": 6}

SEE_DOCTOR = "This is not a diagnosis; a doctor or sleep specialist can tell whether it matters."


@dataclass(frozen=True, slots=True)
class TremorFigure:
    side: str  # left / right / bilateral
    duration_s: float
    frequency_hz: float
    other_leg_worn: bool  # for one-sided episodes with two sensors: the other leg had data


@dataclass(frozen=True, slots=True)
class FlagInputs:
    """What the flags are decided on."""

    age_months: float | None
    sides: tuple[str, ...]
    plm_index: float
    plm_count: int
    total_sleep_min: float
    waso_min: float
    awakenings: int
    recording_h: float
    worn_h: float  # hours with worn data on at least one leg
    nonwear_min: dict[str, float] = field(default_factory=dict)
    lm_sleep_by_side: dict[str, int] = field(default_factory=dict)
    tremor: tuple[TremorFigure, ...] = ()


def age_group(age_months: float | None) -> str:
    if age_months is None:
        return "child"
    if age_months < INFANT_MAX_MONTHS:
        return "infant"
    return "adult" if age_months >= ADULT_MIN_MONTHS else "child"


def raise_flags(fig: FlagInputs) -> list[Flag]:
    """All flags that apply to a night, most severe first."""
    flags = [
        *_plmi(fig), *_tremor(fig), *_asymmetry(fig), *_nonwear(fig), *_coverage(fig),
        *_fragmented(fig),
    ]
    order = {"urgent": 0, "warning": 1, "info": 2}
    return sorted(flags, key=lambda f: order[f.severity])


def _plmi(fig: FlagInputs) -> list[Flag]:
    group = age_group(fig.age_months)
    limit = PLMI_ADULT if group == "adult" else PLMI_CHILD
    if fig.total_sleep_min <= 0 or fig.plm_index <= limit:
        return []
    caveat = {
        "infant": " There are no normal values for babies under one year, so the limit for "
        "children (5 per hour) is used as a rough guide only.",
        "child": "" if fig.age_months is not None else " No age was given, so the limit for "
        "children (5 per hour) is used.",
        "adult": "",
    }[group]
    message = (
        f"During sleep the legs moved in a repeating pattern {fig.plm_index:.1f} times per hour, "
        f"more than the {limit:.0f} per hour usually seen at this age.{caveat} One night can "
        "differ from the next; several nights give a truer picture. Repeating leg movements are "
        "sometimes linked to low iron stores. " + SEE_DOCTOR
    )
    return [Flag(code="PLMI_ELEVATED", severity="warning", message=message, evidence={
        "plm_index_per_h": round(fig.plm_index, 2), "threshold_per_h": limit,
        "plm_count": fig.plm_count, "total_sleep_min": round(fig.total_sleep_min, 1),
        "age_group": group,
    })]


def _tremor(fig: FlagInputs) -> list[Flag]:
    long = [t for t in fig.tremor if t.duration_s >= PROLONGED_TREMOR_S]
    if not long:
        return []
    worst = max(long, key=lambda t: t.duration_s)
    one_sided = any(t.side != "bilateral" and len(fig.sides) == 2 for t in long)
    where = "both legs" if worst.side == "bilateral" else f"the {worst.side} leg"
    message = (
        f"Rhythmic shaking of {where} lasted {worst.duration_s / 60:.1f} minutes "
        f"(about {worst.frequency_hz:.0f} times a second). Short spells of jitteriness are common "
        "in babies, but long spells should be shown to a doctor."
    )
    if one_sided:
        message += (
            " It was on one side only. If you see shaking on one side again, or with changes in "
            "breathing, colour, eye movements or responsiveness, seek medical help straight away."
        )
    return [Flag(
        code="PROLONGED_TREMOR", severity="urgent" if one_sided else "warning", message=message,
        evidence={
            "episodes": len(long), "longest_s": round(worst.duration_s, 1),
            "frequency_hz": round(worst.frequency_hz, 1), "side": worst.side,
        },
    )]


def _asymmetry(fig: FlagInputs) -> list[Flag]:
    if len(fig.sides) != 2:
        return []
    one_sided = [
        t for t in fig.tremor
        if t.side != "bilateral" and t.other_leg_worn and t.duration_s >= ASYMMETRIC_TREMOR_S
    ]
    if one_sided:
        worst = max(one_sided, key=lambda t: t.duration_s)
        return [Flag(
            code="ASYMMETRIC_MOVEMENT", severity="urgent",
            message=(
                f"Rhythmic shaking was seen on the {worst.side} leg only, for "
                f"{worst.duration_s / 60:.1f} minutes, while the other leg was still. Shaking on "
                "one side is worth showing to a doctor soon; if it happens again, or with "
                "changes in breathing, colour, eye movements or responsiveness, seek medical "
                "help straight away."
            ),
            evidence={"side": worst.side, "duration_s": round(worst.duration_s, 1),
                      "frequency_hz": round(worst.frequency_hz, 1)},
        )]
    counts = [fig.lm_sleep_by_side.get(s, 0) for s in ("left", "right")]
    if sum(counts) < ASYMMETRIC_MIN_LMS or min(counts) >= ASYMMETRIC_RATIO * max(counts):
        return []
    more = "left" if counts[0] > counts[1] else "right"
    return [Flag(
        code="ASYMMETRIC_MOVEMENT", severity="warning",
        message=(
            f"Most leg movements in sleep were on the {more} leg ({max(counts)} against "
            f"{min(counts)}). Check that both sensors sit snugly; if it is seen again, mention "
            "it to a doctor."
        ),
        evidence={"lm_left": counts[0], "lm_right": counts[1]},
    )]


def _nonwear(fig: FlagInputs) -> list[Flag]:
    off = {s: m for s, m in fig.nonwear_min.items() if m >= NONWEAR_MIN_MIN}
    if not off:
        return []
    text = " and ".join(f"{s} sensor {m:.0f} minutes" for s, m in sorted(off.items()))
    return [Flag(
        code="NONWEAR", severity="info",
        message=f"A sensor seems to have been off the ankle for part of the night ({text}). "
        "Figures cover only the time it was worn.",
        evidence={f"nonwear_{s}_min": round(m, 1) for s, m in sorted(off.items())},
    )]


def _coverage(fig: FlagInputs) -> list[Flag]:
    share = fig.worn_h / fig.recording_h if fig.recording_h > 0 else 0.0
    if share >= LOW_COVERAGE_SHARE and fig.worn_h >= LOW_COVERAGE_HOURS:
        return []
    return [Flag(
        code="LOW_COVERAGE", severity="warning",
        message=f"Only {fig.worn_h:.1f} hours of the night were recorded with a sensor worn, so "
        "tonight's figures may not be reliable.",
        evidence={"worn_h": round(fig.worn_h, 2), "recording_h": round(fig.recording_h, 2),
                  "worn_share": round(share, 3)},
    )]


def _fragmented(fig: FlagInputs) -> list[Flag]:
    group = age_group(fig.age_months)
    waso_limit, wake_limit = FRAGMENTED_WASO_MIN[group], FRAGMENTED_AWAKENINGS[group]
    if fig.waso_min <= waso_limit and fig.awakenings < wake_limit:
        return []
    return [Flag(
        code="FRAGMENTED_SLEEP", severity="info",
        message=f"Sleep was broken: {fig.awakenings} awakenings and {fig.waso_min:.0f} minutes "
        "awake after first falling asleep. An occasional restless night is normal; if it happens "
        "most nights, talk to a doctor.",
        evidence={"awakenings": fig.awakenings, "waso_min": round(fig.waso_min, 1),
                  "waso_limit_min": waso_limit, "awakenings_limit": wake_limit},
    )]
