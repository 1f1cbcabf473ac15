"""The night's annotations for a signal file: one list for the EDF+ and its Luna `.annot` sidecar.

A mark has a Luna class and instance (the side, the note's kind, or "."), times in seconds from
the file's start, and the event's figures as meta data. Its EDF+ text is ``class:instance``
(``LM:left``, ``tremor:bilateral``, ``BAD_gap:right``), ``class`` alone when there is no instance
(``PLM_series``), and for a journal note ``journal:kind`` then the note's words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from analysis.result import NightResult
from limbwatch.events import EventKind
from limbwatch.recording import Side
from limbwatch.store.records import Note

MetaValue = int | float | str

#: Luna class of each event kind. `BAD_` makes MNE leave those spans out when epoching.
CLASS_OF: dict[EventKind, str] = {
    "lm": "LM", "plm_series": "PLM_series", "tremor": "tremor", "jerk": "jerk",
    "nonwear": "BAD_nonwear", "gap": "BAD_gap", "journal": "journal",
}

#: Luna class -> (description, meta keys with their Luna types), for the sidecar's header.
CLASSES: dict[str, tuple[str, dict[str, str]]] = {
    "LM": ("leg movement >= 0.5 s, one per leg; instance: side",
           {"in_sleep": "int", "periodic": "int", "bilateral_group": "int"}),
    "PLM_series": ("PLM series, both legs (WASM 2016 or AASM)", {"count": "int"}),
    "tremor": ("rhythmic 3-12.5 Hz shaking; instance: left, right or bilateral",
               {"frequency_hz": "num"}),
    "jerk": ("movement shorter than 0.5 s; instance: side", {"in_sleep": "int"}),
    "BAD_nonwear": ("sensor off the ankle; instance: side", {}),
    "BAD_gap": ("no samples for more than 1 s, filled with 0 g; instance: side", {}),
    "journal": ("caregiver's note; instance: its kind", {"text": "txt"}),
}


@dataclass(frozen=True, slots=True)
class Mark:
    """One annotation; times in s from the file's start, rounded to 1 ms."""

    cls: str  # a key of CLASSES
    instance: str  # side, note kind, or "."
    onset: float  # s from the file's start
    duration: float  # s; 0 for an instant (a note)
    meta: Mapping[str, MetaValue] = field(default_factory=dict)

    @property
    def edf_text(self) -> str:
        if self.cls == "journal":
            return f"journal:{self.instance} {self.meta.get('text', '')}".rstrip()
        return self.cls if self.instance == "." else f"{self.cls}:{self.instance}"


def night_marks(result: NightResult, gaps: Mapping[Side, Sequence[tuple[float, float]]],
                notes: Iterable[Note], t0: float, t_end: float) -> list[Mark]:
    """Every event of `result` but its gaps, the file's own `gaps` (Unix s, per leg), and the
    notes with t0 <= time <= t_end; onsets relative to `t0` (Unix s). Sorted by onset."""
    marks = [
        _mark(CLASS_OF[e.kind], e.side or ".", e.start - t0, e.end - e.start, e.detail)
        for e in result.events() if e.kind != "gap"
    ]
    marks += [_mark("BAD_gap", side, a - t0, b - a, {})
              for side, spans in gaps.items() for a, b in spans]
    marks += [_mark("journal", n.kind, n.time - t0, 0.0, {"text": one_line(n.text)})
              for n in notes if t0 <= n.time <= t_end]
    return sorted(marks, key=lambda m: (m.onset, m.duration, m.cls, m.instance))


def _mark(cls: str, instance: str, onset: float, duration: float,
          detail: Mapping[str, bool | int | float | str | None]) -> Mark:
    meta = {k: int(v) if isinstance(v, bool) else v for k, v in detail.items()
            if v is not None and v != ""}
    return Mark(cls, instance, round(onset, 3), round(duration, 3), meta)


def one_line(text: str) -> str:
    """Note text without control characters (EDF+ TAL separators, tabs, line breaks)."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())
