"""Short simulated nights for the export tests, and checks that they hold what the tests need.

- `plms`: mild PLMS, two legs at 50 Hz (+-8 g), 1 h; the left sensor starts 20 s late and the
  right one loses 3 min (a gap), so the EDF must fill and mark both.
- `mixed`: two legs at 100 Hz and 50 Hz with tremor on one leg, 1 h, the next night.
- `nonwear`: one sensor at 25 Hz that comes off the ankle, 1.5 h, the night after.

Each has the same four journal notes, placed from its own start (one before it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache

import numpy as np

from analysis.night import analyze_night
from analysis.result import NightResult
from firmware_sim.night import DEFAULT_START, simulate_night
from firmware_sim.scenario import load_scenario
from limbwatch.recording import Side, recording_from_arrays
from limbwatch.store.records import Note, Subject
from limbwatch.store.samples import Samples

SUBJECT = Subject("child-1", "Zoë Müller", date(2018, 3, 4), "Europe/Berlin")
VERSION = "1.0.0"
LATE_START_S = 20.0  # the plms night's left sensor starts this late
CUT = (1200.0, 1380.0)  # s from the start: the plms night's right sensor loses these


@dataclass(frozen=True)
class Night:
    result: NightResult
    legs: dict[Side, Samples]
    full_scale_g: float
    notes: tuple[Note, ...]


def _night(scenario: str, seed: int, hours: float, age_months: float | None, day: int,
           edit: bool = False) -> Night:
    sim = simulate_night(load_scenario(scenario), seed, duration_h=hours,
                         start=DEFAULT_START + day * 86400)
    legs: dict[Side, Samples] = {}
    for side, leg in sim.legs.items():
        keep = np.ones(leg.time.size, dtype=bool)
        t = leg.time - sim.truth.start
        if edit and side == "left":
            keep &= t >= LATE_START_S
        if edit and side == "right":
            keep &= (t < CUT[0]) | (t > CUT[1])
        legs[leg.side] = Samples(leg.time[keep], leg.accel[keep], leg.fs)
    result = analyze_night(
        [recording_from_arrays(s.time, s.accel, side, fs=s.fs, source=side)
         for side, s in sorted(legs.items())], age_months=age_months)
    t0 = sim.truth.start
    notes = (
        Note(1, SUBJECT.id, t0 - 3600, "feeding", "bottle, 180 ml"),  # before the recording
        Note(2, SUBJECT.id, t0 + 600.25, "fever", "38,5 °C; gave\tparacetamol"),
        Note(3, SUBJECT.id, t0 + 1800, "shaking_seen", "the right leg shook for a minute and "
             "stopped when I held it; she did not wake up and went on sleeping quietly"),
        Note(4, SUBJECT.id, t0 + 2400, "woke", ""),
    )
    full_scale = {leg.range_g for leg in sim.legs.values()}
    assert len(full_scale) == 1
    return Night(result, legs, full_scale.pop(), notes)


@cache
def night(name: str) -> Night:
    if name == "plms":
        return _night("mild_plms", 1, 1.0, 96.0, 0, edit=True)
    if name == "mixed":
        return _night("held_out_mixed", 4, 1.0, 30.0, 1)
    if name == "nonwear":
        return _night("nonwear_one_sensor", 1, 1.5, None, 2)
    raise KeyError(name)


NIGHTS = ("plms", "mixed", "nonwear")


def test_the_nights_hold_every_kind_of_event_the_exports_mark() -> None:
    kinds = {e.kind for name in NIGHTS for e in night(name).result.events()}
    assert kinds == {"lm", "plm_series", "tremor", "jerk", "nonwear", "gap"}
    plms = night("plms")
    assert plms.result.legs[1].gaps  # the cut
    assert plms.legs["left"].time[0] - plms.result.start >= LATE_START_S
    rates = {leg.sample_rate_hz for name in NIGHTS for leg in night(name).result.legs}
    assert rates == {25.0, 50.0, 100.0}
