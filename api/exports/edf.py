"""EDF+ of a night (edfio) and its Luna `.annot` sidecar.

Signals: each leg's acceleration as three signals, ``Accel X left`` ... ``Accel Z right``, in g
(sensor frame, gravity included), at the leg's own sample rate (EDF gives every signal its own
number of samples per data record, so nothing is resampled). Physical range +-full scale of the
sensor, never taken from the data; digital range +-32767, so 0 g is digital 0 and one step is
full scale / 32767 (0.24 mg at 8 g). Data records last 1 s (or the fewest whole seconds that hold
a whole number of every leg's samples: 2 s at 12.5 Hz).

Time: the file starts at the whole second at or before the night's first sample, so no reader
has to handle a sub-second start. The header's start date and time are the subject's local
clock time, as EDF asks; the recording field names the UTC offset (``UTC+01:00``). Each sample
goes to the slot nearest its time (slot k at start + k / rate; two samples in one slot, from a
sensor clock running fast, are averaged).

Gaps: one continuous file (EDF+C). Holes of up to 1 s (lost BLE packets; `analysis.grid`
bridges the same ones) are interpolated linearly, or hold the nearest sample at a leg's ends.
Longer holes, including before a leg's first and after its last sample, are filled with 0 g (an
accelerometer at rest never reads 0 g on all axes) and annotated ``BAD_gap:<side>``. Why not
EDF+D: MNE reads EDF+D as if continuous, so everything after a gap would sit at the wrong time;
edfio writes only EDF+C; holes shorter than a data record cannot be EDF+D at all; and the two
legs' gaps differ while a file has one time axis.

Annotations (`api.exports.marks`): ``LM:left`` / ``LM:right`` for every LM (one per leg, as in
the report), ``PLM_series``, ``tremor:<side>``, ``jerk:<side>``, ``BAD_nonwear:<side>``,
``BAD_gap:<side>`` and ``journal:<kind> <text>`` (notes inside the file's span only).
How readers see them:

- EDFbrowser: the annotation list and markers over all signals; a gap reads as a flat 0 g line.
- MNE (`mne.io.read_raw_edf`): `raw.annotations` with these descriptions; those starting with
  ``BAD`` are left out by ``reject_by_annotation`` (epochs and most functions), on all channels.
  Legs of different rates are upsampled to the highest on reading.
- Luna: by default only ``N1 N2 N3 R W ? arousal LM NR`` become classes (its `nsrr-remap.cpp`);
  everything else, ``LM:left`` included, becomes an instance of class ``edf_annot``. Attach the
  sidecar (`luna_annot`) for classes ``LM`` (instance: side), ``PLM_series``, ``tremor``, ``jerk``,
  ``BAD_nonwear``, ``BAD_gap``, ``journal`` with their figures as meta data (e.g.
  ``MASK if=BAD_gap``). Plain ``LM`` in the EDF would lose the side in EDFbrowser and MNE and
  make Luna count every LM twice once the sidecar is attached.
"""

from __future__ import annotations

import io
import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
from edfio import Edf, EdfAnnotation, EdfSignal, Patient, Recording

from analysis.grid import MAX_BRIDGE_S, runs
from analysis.result import NightResult
from api.exports.marks import CLASSES, Mark, night_marks
from limbwatch.errors import BadInput
from limbwatch.recording import Side
from limbwatch.store.records import Note, Subject
from limbwatch.store.samples import Samples

DIGITAL_MAX = 32767  # symmetric 16-bit range: 0 g is digital 0
GAP_FILL_G = 0.0
MAX_RECORD_S = 10  # longest data record tried for rates that are not whole Hz
AXES = ("X", "Y", "Z")


@dataclass(frozen=True, slots=True)
class _Layout:
    """The file's time axis: `n_records` records of `record_s` from Unix second `t0`."""

    t0: int  # Unix s
    record_s: int
    n_records: int
    rates: Mapping[Side, float]  # Hz, per leg

    @property
    def end(self) -> float:
        return self.t0 + self.record_s * self.n_records

    def slots(self, side: Side) -> int:
        return round(self.rates[side] * self.record_s * self.n_records)


def night_edf(result: NightResult, legs: Mapping[Side, Samples], *, full_scale_g: float,
              subject: Subject, notes: Sequence[Note] = (), algorithm_version: str) -> bytes:
    """The night as EDF+C bytes (see the module docstring for every rule).

    `legs` holds the samples of each leg in `result` (time Unix s, accel g); `full_scale_g` is
    the sensor's range (e.g. 8 for +-8 g); `notes` are the subject's journal notes.
    """
    if not full_scale_g > 0:
        raise BadInput(f"full scale must be > 0 g, got {full_scale_g}")
    layout = _layout(result, legs)
    signals, gaps = [], {}
    for side, fs in layout.rates.items():
        slots = _LegSlots.of(legs[side], layout, side)
        gaps[side] = slots.gap_times(layout.t0, fs)
        for k, axis in enumerate(AXES):  # one axis at a time: a 10-h 100-Hz leg is 29 MB each
            signals.append(EdfSignal(
                np.clip(slots.column(legs[side].accel[:, k]), -full_scale_g, full_scale_g),
                fs, label=f"Accel {axis} {side}",
                transducer_type=f"ankle accelerometer {side}, sensor frame",
                physical_dimension="g", physical_range=(-full_scale_g, full_scale_g),
                digital_range=(-DIGITAL_MAX, DIGITAL_MAX), prefiltering="none"))
    marks = night_marks(result, gaps, notes, layout.t0, layout.end)
    edf = Edf(
        signals,
        patient=_patient(subject),
        recording=_recording(layout.t0, subject.time_zone, algorithm_version),
        starttime=datetime.fromtimestamp(layout.t0, ZoneInfo(subject.time_zone)).time(),
        data_record_duration=layout.record_s,
        annotations=[EdfAnnotation(m.onset, m.duration or None, m.edf_text) for m in marks],
    )
    out = io.BytesIO()
    edf.write(out)
    return out.getvalue()


def luna_annot(result: NightResult, legs: Mapping[Side, Samples], *,
               notes: Sequence[Note] = ()) -> str:
    """The Luna `.annot` sidecar of `night_edf` for the same inputs: the same marks, tab-separated
    ``class instance channel start stop meta``, times in s from the EDF's start, meta as
    ``key=value`` pairs separated by ``;`` (``.`` when none)."""
    layout = _layout(result, legs)
    gaps = {side: _LegSlots.of(legs[side], layout, side).gap_times(layout.t0, fs)
            for side, fs in layout.rates.items()}
    lines = [" | ".join([f"# {cls}", desc, *([" ".join(f"{k}[{t}]" for k, t in meta.items())]
                                             if meta else [])])
             for cls, (desc, meta) in CLASSES.items()]
    lines.append("class\tinstance\tchannel\tstart\tstop\tmeta")
    lines += [_annot_row(m) for m in night_marks(result, gaps, notes, layout.t0, layout.end)]
    return "\n".join(lines) + "\n"


def _annot_row(m: Mark) -> str:
    meta = ";".join(f'{k}="{v}"' if isinstance(v, str) else f"{k}={v}"
                    for k, v in m.meta.items()) or "."
    return f"{m.cls}\t{m.instance}\t.\t{m.onset:.3f}\t{m.onset + m.duration:.3f}\t{meta}"


def _layout(result: NightResult, legs: Mapping[Side, Samples]) -> _Layout:
    rates = {leg.side: leg.sample_rate_hz for leg in result.legs}
    if set(legs) != set(rates):
        raise BadInput(f"samples for legs {sorted(legs)} but the night has {sorted(rates)}")
    record_s = next((d for d in range(1, MAX_RECORD_S + 1)
                     if all(math.isclose(fs * d, round(fs * d)) for fs in rates.values())), None)
    if record_s is None:
        raise BadInput(f"sample rates {sorted(rates.values())} Hz fit no EDF data record of "
                       f"1-{MAX_RECORD_S} s")
    t0 = math.floor(result.start)
    last = max(result.end + 1 / fs for fs in rates.values())
    return _Layout(t0, record_s, math.ceil((last - t0) / record_s), rates)


@dataclass(frozen=True, slots=True)
class _LegSlots:
    """Where one leg's samples fall on the file's slots (slot k at t0 + k / rate)."""

    slot: np.ndarray  # int64: the slot of each sample inside the file
    inside: np.ndarray | None  # bool per sample, None when all are inside
    count: np.ndarray  # int64 per slot: samples in it
    gaps: list[tuple[int, int]]  # [start, end) slots of holes longer than MAX_BRIDGE_S

    @classmethod
    def of(cls, samples: Samples, layout: _Layout, side: Side) -> _LegSlots:
        n, fs = layout.slots(side), layout.rates[side]
        slot = np.rint((samples.time - layout.t0) * fs).astype(np.int64)
        keep = (slot >= 0) & (slot < n)
        inside = None if keep.all() else keep
        if inside is not None:
            slot = slot[inside]
        if slot.size == 0:
            raise BadInput(f"no {side} samples inside the night")
        count = np.bincount(slot, minlength=n)
        starts, ends = runs(count == 0)
        long = (ends - starts) > MAX_BRIDGE_S * fs
        return cls(slot, inside, count,
                   list(zip(starts[long].tolist(), ends[long].tolist(), strict=True)))

    def column(self, values: np.ndarray) -> np.ndarray:
        """One axis (`values` per sample, g) on the slots, float64: the mean of a slot's
        samples; holes up to `MAX_BRIDGE_S` interpolated (the nearest sample at the ends);
        longer ones `GAP_FILL_G`."""
        if self.inside is not None:
            values = values[self.inside]
        seen = self.count > 0
        if self.count.max() == 1:  # the usual case: one sample per slot
            col = np.zeros(self.count.size)
            col[self.slot] = values
        else:
            total = np.bincount(self.slot, weights=values, minlength=self.count.size)
            col = np.divide(total, self.count, out=np.zeros_like(total), where=seen)
        empty = np.flatnonzero(~seen)
        if empty.size:
            full = np.flatnonzero(seen)
            col[empty] = np.interp(empty, full, col[full])
        for a, b in self.gaps:
            col[a:b] = GAP_FILL_G
        return col

    def gap_times(self, t0: int, fs: float) -> list[tuple[float, float]]:
        """The long holes as (start, end) Unix s."""
        return [(t0 + a / fs, t0 + b / fs) for a, b in self.gaps]


def _ascii(text: str) -> str:
    """An EDF+ header subfield: printable ASCII, spaces as underscores, X when empty."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "_".join(plain.split()) or "X"


def _patient(subject: Subject) -> Patient:
    return Patient(code=_ascii(subject.id), birthdate=subject.birth_date,
                   name=_ascii(subject.name))


def _recording(t0: int, time_zone: str, algorithm_version: str) -> Recording:
    start = datetime.fromtimestamp(t0, ZoneInfo(time_zone))
    offset = start.strftime("%z")
    return Recording(startdate=start.date(), equipment_code="limbwatch",
                     additional=(f"algorithm_{_ascii(algorithm_version)}",
                                 f"UTC{offset[:3]}:{offset[3:]}"))
