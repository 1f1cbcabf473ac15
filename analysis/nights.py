"""Several nights together: the PLMS index over nights, for the trends and the printable report.

The PLMS index varies a lot from night to night (science.md section 2: in adults with RLS, single
nights exceed 5/10/15 per h in 70/52/34 % of cases, while over 5 nights at least one does in
91/81/63 %), so one night is not enough and the nights are summarised together: mean, median and
range of the index, how many nights were above the age threshold (`analysis.flags`), and a note
when the nights disagree a lot.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from analysis.flags import PLMI_ADULT, PLMI_CHILD, age_group

# Nights "disagree a lot" [INF] when some are above the threshold and some below, or when the
# range is more than this many times the threshold (e.g. 2/h and 8/h for a child).
WIDE_RANGE_THRESHOLDS = 1.0
MIN_SLEEP_MIN = 60.0  # a night with less sleep gives no usable index and is left out [INF]


@dataclass(frozen=True, slots=True)
class NightIndex:
    """One night's PLMS figures, as a trend row or a `NightResult.figures()` gives them."""

    plm_index: float | None  # PLMS per hour of sleep; None if the night had no sleep
    total_sleep_min: float


@dataclass(frozen=True, slots=True)
class MultiNightSummary:
    nights: int  # nights given
    nights_used: int  # nights with at least `MIN_SLEEP_MIN` of sleep
    mean: float | None  # PLMS index, /h (None without a usable night)
    median: float | None
    min: float | None
    max: float | None
    threshold_per_h: float  # the age group's PLMS-index threshold
    nights_above: int  # nights with an index above the threshold
    disagree: bool  # nights above and below the threshold, or a wide range
    note: str  # plain words for a parent

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize_nights(nights: Sequence[NightIndex], *,
                     age_months: float | None = None) -> MultiNightSummary:
    """The PLMS index over `nights` (any order), with the threshold of the age group."""
    limit = PLMI_ADULT if age_group(age_months) == "adult" else PLMI_CHILD
    used = [n.plm_index for n in nights
            if n.plm_index is not None and n.total_sleep_min >= MIN_SLEEP_MIN]
    if not used:
        return MultiNightSummary(len(nights), 0, None, None, None, None, limit, 0, False,
                                 "No night had enough sleep for a PLMS index.")
    above = sum(x > limit for x in used)
    lo, hi = min(used), max(used)
    disagree = len(used) > 1 and (0 < above < len(used) or hi - lo > WIDE_RANGE_THRESHOLDS * limit)
    mean = statistics.fmean(used)
    if len(used) == 1:
        note = ("One night only: the index changes a lot from night to night, so several "
                "nights give a truer picture.")
    elif disagree:
        note = (f"The nights disagree: from {lo:.1f} to {hi:.1f} per hour, {above} of "
                f"{len(used)} above {limit:.0f} per hour. This is common; the typical night is "
                "nearer the median, and more nights make the picture clearer.")
    else:
        note = (f"The nights agree: from {lo:.1f} to {hi:.1f} per hour, {above} of {len(used)} "
                f"above {limit:.0f} per hour.")
    return MultiNightSummary(
        nights=len(nights), nights_used=len(used), mean=round(mean, 2),
        median=round(statistics.median(used), 2), min=round(lo, 2), max=round(hi, 2),
        threshold_per_h=limit, nights_above=above, disagree=disagree, note=note,
    )
