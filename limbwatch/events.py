"""Events of a night: what the API's `/nights/{id}/events` lists (contract section 4).

A closed set of kinds; `journal` events come from caregivers' notes, all others from the
analysis (`analysis.result.NightResult.events`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

EventKind = Literal["lm", "plm_series", "tremor", "jerk", "nonwear", "gap", "journal"]
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)
EventSide = Literal["left", "right", "bilateral"]
EventDetail = Mapping[str, float | int | str | bool | None]


@dataclass(frozen=True, slots=True)
class NightEvent:
    """One event; `detail` holds the kind's own figures (e.g. ``{"count": 5}`` for a series)."""

    kind: EventKind
    start: float  # Unix s
    end: float  # Unix s (== start for an instant)
    side: EventSide | None  # None: not tied to a leg (a PLM series of both legs, a note)
    detail: EventDetail
