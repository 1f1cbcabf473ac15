"""Flags of the night report: plain words for a parent, the figures behind them for a clinician.

Wording rules: describe what was measured, never name a diagnosis, say when to see a doctor.
Thresholds and their sources are in `../shared/domain/science.md` (sections 1, 2, 5, 6).
The same function serves the analysis and the accuracy benchmark (applied to ground truth).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from limbwatch.report import Flag, Severity

INFANT_MAX_MONTHS = 12
ADULT_MIN_MONTHS = 18 * 12
PLMI_CHILD = 5.0  # /h, ICSD-3 PLMD threshold for children (also used for infants: no norms)
PLMI_ADULT = 15.0  # /h, ICSD-3 for adults
PROLONGED_TREMOR_S = 180.0  # contract: a tremor episode of 3 minutes or more
# From this age on, tremor of any length is worth mentioning at the next visit: issue 9's seed
# articles ("by 4 months no persistent tremor should be present"); not in science.md, whose
# section 5 has jitteriness in 44 % of term newborns and gone in 81 % by 9 months (Brain Dev
# 1994), so a finding after 4 months is uncommon but not alarming by itself.
TREMOR_PERSISTENT_FROM_MONTHS = 4.0
# "Persistent" on one night [INF]: episodes adding up to this much, so one stray detection of
# a few seconds does not raise it.
TREMOR_PERSISTENT_TOTAL_S = 30.0
# Tremor in sleep is a red flag (science.md section 5: jitteriness is stimulus-sensitive and
# awake; rhythmic movement in sleep and wake needs evaluation); an episode at least this long
# in sleep is urgent at any age [INF: the contract's 60 s of one-sided shaking, so a few
# seconds of misread movement is not urgent].
TREMOR_URGENT_S = 60.0
ASYMMETRIC_TREMOR_S = 60.0  # contract: rhythmic shaking on one leg only for 60 s or more
ASYMMETRIC_MIN_LMS = 20  # LMs in sleep over both legs before a count ratio means anything
ASYMMETRIC_RATIO = 0.25  # fewer LMs on one leg than this share of the other leg's
LOW_COVERAGE_SHARE = 0.75  # of the recording with worn data
LOW_COVERAGE_HOURS = 4.0  # of worn data at least
NONWEAR_MIN_MIN = 1.0  # report non-wear of at least a minute
# DIFFICULT_SETTLING [INF, not in science.md]: a sleep-onset latency of more than 30 min is the
# usual quantitative criterion of difficulty falling asleep in insomnia research (Lichstein et
# al., Behav Res Ther 2003: >= 31 min), also used for school-age children; and the wake must be
# "full of leg movement": rhythmic kicking (PLM-like series in wake, PLMW) for at least
# `SETTLING_KICKING_MIN`, the RLS-like picture of settling ("most noticeable at rest or at the
# onset of sleep", issue 9's articles; PLMW index per hour of wake, MATPLM).
SETTLING_LONG_MIN = 30.0
SETTLING_KICKING_MIN = 10.0
# Jerk clusters: benign neonatal sleep myoclonus starts in the first weeks and is gone by 2-3
# months, usually before 6 (science.md section 5); "BNSM-like jerks after 6 mo" is a red flag.
CLUSTERS_BENIGN_UNTIL_MONTHS = 6.0
CLUSTER_AWAKE_SHARE = 0.5  # a cluster with less than half of it in sleep counts as awake
FRAGMENTED_WASO_MIN = {"infant": 90.0, "child": 60.0, "adult": 60.0}
FRAGMENTED_AWAKENINGS = {"infant": 8, "child": 6, "adult": 6}

SEE_DOCTOR = "This is not a diagnosis; a doctor or sleep specialist can tell whether it matters."


@dataclass(frozen=True, slots=True)
class TremorFigure:
    side: str  # left / right / bilateral
    duration_s: float
    frequency_hz: float
    other_leg_worn: bool  # for one-sided episodes with two sensors: the other leg had data
    asleep: bool = False  # most of the episode in sleep


@dataclass(frozen=True, slots=True)
class SettlingFigure:
    """One settling period: the first one (sleep-onset latency) or an awakening's return."""

    first: bool
    minutes: float  # wake before sleep (re)onset
    kicking_min: float  # rhythmic kicking (PLM-like series) in it
    lms: int  # leg movements in it
    plmw_index: float  # periodic LMs per hour of it


@dataclass(frozen=True, slots=True)
class ClusterFigure:
    """One cluster of brief jerks."""

    count: int
    duration_s: float
    sides: str  # left / right / bilateral
    sleep_share: float  # 0-1


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
    settling: tuple[SettlingFigure, ...] = ()
    clusters: tuple[ClusterFigure, ...] = ()


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
        *_fragmented(fig), *_settling(fig), *_clusters(fig),
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
    """Long tremor at any age; from 4 months tremor of any length that adds up; in sleep or on
    one side (with two sensors), urgent."""
    two = len(fig.sides) == 2
    older = fig.age_months is not None and fig.age_months >= TREMOR_PERSISTENT_FROM_MONTHS
    total_s = sum(t.duration_s for t in fig.tremor)
    long = [t for t in fig.tremor if t.duration_s >= PROLONGED_TREMOR_S]
    in_sleep = [t for t in fig.tremor if t.asleep and t.duration_s >= TREMOR_URGENT_S]
    persistent = older and total_s >= TREMOR_PERSISTENT_TOTAL_S
    if not long and not in_sleep and not persistent:
        return []
    one_sided = [t for t in long if t.side != "bilateral" and two]
    urgent = bool(one_sided or in_sleep)
    shown = long + [t for t in in_sleep if t not in long] or list(fig.tremor)
    worst = max(shown, key=lambda t: t.duration_s)
    where = "both legs" if worst.side == "bilateral" else f"the {worst.side} leg"
    state = "in sleep" if worst.asleep else "while awake"
    if long or in_sleep:
        message = (
            f"Rhythmic shaking of {where} lasted {worst.duration_s / 60:.1f} minutes {state} "
            f"(about {worst.frequency_hz:.0f} times a second)."
        )
    else:
        message = (
            f"Short spells of rhythmic shaking were seen ({len(fig.tremor)}, "
            f"{total_s / 60:.1f} minutes in all, the longest {worst.duration_s:.0f} s {state})."
        )
    if urgent:
        if in_sleep:
            message += (
                " Jitteriness usually happens awake and settles with holding; shaking that goes "
                "on in sleep should be shown to a doctor soon."
            )
        if one_sided:
            message += " It was on one side only, which should be shown to a doctor soon."
        message += (
            " If you see it again, or with changes in breathing, colour, eye movements or "
            "responsiveness, seek medical help straight away."
        )
    elif long:
        message += (
            " From about 4 months of age shaking like this is no longer expected, and long "
            "spells should be shown to a doctor." if older else
            " Short spells of jitteriness are common in young babies, but long spells should be "
            "shown to a doctor."
        )
    else:
        message += (
            " From about 4 months of age shaking that keeps coming back is no longer expected; "
            "it is worth mentioning at the next visit, and sooner if it gets longer or is on one "
            "side only."
        )
    severity: Severity = "urgent" if urgent else "warning" if long else "info"
    return [Flag(
        code="PROLONGED_TREMOR", severity=severity, message=message,
        evidence={
            "episodes": len(long), "longest_s": round(worst.duration_s, 1),
            "frequency_hz": round(worst.frequency_hz, 1), "side": worst.side,
            "state": "asleep" if worst.asleep else "awake",
            "episodes_in_sleep": len(in_sleep), "tremor_total_s": round(total_s, 1),
            "tremor_episodes": len(fig.tremor), "age_months": fig.age_months,
            "persistent_from_months": TREMOR_PERSISTENT_FROM_MONTHS,
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


def _settling(fig: FlagInputs) -> list[Flag]:
    """Long settling (first or after an awakening) with rhythmic kicking: an observation."""
    hard = [p for p in fig.settling
            if p.minutes > SETTLING_LONG_MIN and p.kicking_min >= SETTLING_KICKING_MIN]
    if not hard:
        return []
    worst = max(hard, key=lambda p: (p.kicking_min, p.minutes))
    when = "Falling asleep" if worst.first else "Getting back to sleep after waking"
    message = (
        f"{when} took {worst.minutes:.0f} minutes, and for about {worst.kicking_min:.0f} of them "
        f"the legs kicked or moved in a regular rhythm ({worst.lms} leg movements while awake). "
        "Restless legs while settling can make it hard to fall asleep. If settling is like this "
        "on most nights, note it in the journal and mention it to a doctor. " + SEE_DOCTOR
    )
    return [Flag(code="DIFFICULT_SETTLING", severity="info", message=message, evidence={
        "settling_min": round(worst.minutes, 1), "kicking_min": round(worst.kicking_min, 1),
        "lms": worst.lms, "plmw_index_per_h": round(worst.plmw_index, 1),
        "first_settling": int(worst.first), "periods": len(hard),
        "settling_limit_min": SETTLING_LONG_MIN, "kicking_limit_min": SETTLING_KICKING_MIN,
    })]


def _clusters(fig: FlagInputs) -> list[Flag]:
    """Clusters of brief jerks: usually benign when only in sleep; the red flags raise it."""
    if not fig.clusters:
        return []
    awake = [c for c in fig.clusters if c.sleep_share < CLUSTER_AWAKE_SHARE]
    one_sided = len(fig.sides) == 2 and any(c.sides != "bilateral" for c in fig.clusters)
    older = fig.age_months is not None and fig.age_months >= CLUSTERS_BENIGN_UNTIL_MONTHS
    longest = max(fig.clusters, key=lambda c: c.duration_s)
    total = sum(c.count for c in fig.clusters)
    message = (
        f"Brief jerks came in {len(fig.clusters)} cluster(s) ({total} jerks; the longest "
        f"cluster lasted {longest.duration_s / 60:.1f} minutes). In young babies, clusters of "
        "jerks that happen only in sleep and stop when the baby wakes are usually harmless "
        "(benign sleep myoclonus) and go away by a few months of age."
    )
    seen = []
    if awake:
        seen.append(f"{len(awake)} cluster(s) happened while awake")
    if one_sided:
        seen.append("jerks were on one side only")
    if older:
        seen.append("they were seen after 6 months of age")
    if seen:
        message += " Tonight " + " and ".join(seen) + ", so it is worth a call to the doctor."
    message += (
        " Call the doctor if the jerks also happen awake, do not stop when the baby is woken, "
        "stay on one side, come with a stiff or floppy body, or continue beyond 6 months; seek "
        "help straight away if they come with changes in breathing, colour, eye movements or "
        "responsiveness."
    )
    return [Flag(
        code="JERK_CLUSTERS", severity="warning" if seen else "info", message=message,
        evidence={
            "clusters": len(fig.clusters), "jerks": total,
            "longest_s": round(longest.duration_s, 1), "clusters_awake": len(awake),
            "one_sided": int(one_sided), "age_months": fig.age_months,
        },
    )]
