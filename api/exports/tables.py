"""CSV of a night's events and of its 30-s epochs, for spreadsheets and scripts.

Each file opens with a block of lines starting with ``#`` that names the night and documents
every column and unit, then one ordinary CSV header row and the rows (`csv` module, ``\\n``
line ends). Times are ISO 8601 UTC with milliseconds, as in the night report; yes/no columns
are 1/0; an empty cell means "does not apply".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

import numpy as np

from analysis.result import NightResult
from analysis.sleep import EPOCH_S
from limbwatch.report import iso_ms
from limbwatch.store.records import Note, Subject

EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("type", "lm (leg movement >= 0.5 s, one row per leg), plm_series, tremor, jerk (movement "
             "< 0.5 s), nonwear (sensor off the ankle), gap (no data > 1 s), journal (a note)"),
    ("start", "ISO 8601 UTC"),
    ("end", "ISO 8601 UTC (= start for a note)"),
    ("duration_s", "s"),
    ("side", "left, right, bilateral (tremor on both legs); empty: not tied to a leg"),
    ("in_sleep", "(lm, jerk) 1 if it starts in a sleep epoch"),
    ("periodic", "(lm) 1 if part of a PLM series"),
    ("bilateral_group", "(lm) id shared by the two legs' rows of one bilateral LM"),
    ("count", "(plm_series) number of LMs (a bilateral LM counts once)"),
    ("frequency_hz", "(tremor) median dominant frequency, Hz"),
    ("note_id", "(journal) the note's id"),
    ("kind", "(journal) feeding, fever, medication, supplement, shaking_seen, "
             "stopped_when_held, woke, lights_out, other"),
    ("text", "(journal) the caregiver's words"),
)

#: Per-leg epoch columns: name prefix -> meaning; the leg's side is appended (``lm_left``).
LEG_EPOCH_COLUMNS: tuple[tuple[str, str], ...] = (
    ("lm", "LMs starting in the epoch"),
    ("plm", "of those, LMs in a PLM series"),
    ("lm_s", "s of the epoch inside an LM"),
    ("jerk", "brief jerks (< 0.5 s) starting in the epoch"),
    ("tremor_s", "s of the epoch inside a tremor episode on this leg (or both legs)"),
    ("nonwear_s", "s of the epoch with the sensor off the ankle"),
    ("gap_s", "s of the epoch without data (gaps > 1 s)"),
)


def events_csv(result: NightResult, *, notes: Sequence[Note] = (), subject: Subject,
               algorithm_version: str) -> str:
    """Every event of the night (`NightResult.events`) and every note given, by start."""
    rows = [
        [e.kind, iso_ms(e.start), iso_ms(e.end), f"{e.end - e.start:.3f}", e.side or "",
         *(_cell(e.detail.get(k)) for k in ("in_sleep", "periodic", "bilateral_group", "count",
                                             "frequency_hz")), "", "", ""]
        for e in result.events()
    ]
    rows += [["journal", iso_ms(n.time), iso_ms(n.time), "0.000", "", "", "", "", "", "",
              str(n.id), n.kind, n.text] for n in notes]
    rows.sort(key=lambda row: row[1])
    return _csv(_preamble("events", result, subject, algorithm_version, EVENT_COLUMNS),
                [name for name, _ in EVENT_COLUMNS], rows)


def epochs_csv(result: NightResult, *, subject: Subject, algorithm_version: str) -> str:
    """One row per 30-s epoch of the report: its state and what each leg did in it."""
    n = len(result.epochs)
    edges = result.start + np.arange(n + 1) * EPOCH_S
    columns: list[np.ndarray] = []
    for leg in result.legs:
        tremor = [(t.start, t.end) for t in result.tremor if t.side in (leg.side, "bilateral")]
        columns += [
            _starts_per_epoch([m.start for m in leg.lms], edges),
            _starts_per_epoch([m.start for m in leg.lms if m.periodic], edges),
            _seconds_per_epoch([(m.start, m.end) for m in leg.lms], edges),
            _starts_per_epoch([j.start for j in leg.jerks], edges),
            _seconds_per_epoch(tremor, edges),
            _seconds_per_epoch(leg.nonwear, edges),
            _seconds_per_epoch(leg.gaps, edges),
        ]
    rows = [[iso_ms(float(edges[k])), state,
             *(str(c[k]) if c.dtype.kind == "i" else f"{c[k]:.2f}" for c in columns)]
            for k, state in enumerate(result.epochs)]
    legs = [(f"{prefix}_{leg.side}", f"({leg.side}) {meaning}")
            for leg in result.legs for prefix, meaning in LEG_EPOCH_COLUMNS]
    described = (("start", "ISO 8601 UTC, epochs of 30 s from the recording start"),
                 ("state", "S sleep, W wake, N no data or sensor off (as the report's epochs)"),
                 *legs)
    return _csv(_preamble("epochs", result, subject, algorithm_version, described),
                [name for name, _ in described], rows)


def _starts_per_epoch(starts: Sequence[float], edges: np.ndarray) -> np.ndarray:
    """How many `starts` (Unix s) fall in each epoch [edges[k], edges[k + 1])."""
    k = np.searchsorted(edges, np.asarray(starts, dtype=np.float64), side="right") - 1
    return np.bincount(k[(k >= 0) & (k < edges.size - 1)], minlength=edges.size - 1)


def _seconds_per_epoch(spans: Iterable[tuple[float, float]], edges: np.ndarray) -> np.ndarray:
    """Seconds of the (non-overlapping) `spans` (Unix s) inside each epoch, exactly."""
    iv = np.asarray(list(spans), dtype=np.float64).reshape(-1, 2)
    covered = np.clip(edges[:, None] - iv[None, :, 0], 0.0, iv[None, :, 1] - iv[None, :, 0])
    return np.diff(covered.sum(axis=1))


def _preamble(what: str, result: NightResult, subject: Subject, algorithm_version: str,
              columns: Iterable[tuple[str, str]]) -> list[str]:
    return [
        f"limbwatch {what} of one night: subject {subject.id}, recording {iso_ms(result.start)} "
        f"to {iso_ms(result.end)}, algorithm {algorithm_version}, rules {result.rules}",
        "Times ISO 8601 UTC with milliseconds; 1/0 for yes/no; empty: does not apply.",
        "Columns:",
        *(f"  {name}: {meaning}" for name, meaning in columns),
    ]


def _csv(preamble: Sequence[str], header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    out = io.StringIO()
    out.writelines(f"# {line}\n" for line in preamble)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _cell(value: bool | int | float | str | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if isinstance(value, bool) else str(value)
