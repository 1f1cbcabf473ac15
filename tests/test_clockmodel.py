"""The clock model as plain data: mapping, its inverse, the vectorised re-stamp, JSON."""

from __future__ import annotations

import numpy as np
import pytest

from limbwatch.clockmodel import ClockModel, ClockSegment
from limbwatch.wire import TICK_HZ

T0 = 1795203000.0
JUMPED = ClockModel((
    ClockSegment(0, T0 - 1e5, 1 / (TICK_HZ * (1 + 45e-6))),
    ClockSegment(500, T0 + 3600.0, 1 / (TICK_HZ * (1 - 30e-6))),
))


def test_segments_hold_from_their_first_seq_and_restamp_agrees() -> None:
    seqs = np.array([0, 1, 499, 500, 10_000])
    ticks = np.array([10, 20, 30, 40, 50])
    t0, dt = JUMPED.restamp(ticks, seqs, np.full(5, 50.0))
    assert t0.tolist() == [JUMPED.to_utc(int(t), int(q)) for t, q in zip(ticks, seqs, strict=True)]
    assert JUMPED.segment(499).first_seq == 0 and JUMPED.segment(500).first_seq == 500
    assert dt[0] == pytest.approx(0.02 / (1 + 45e-6)) and dt[3] == pytest.approx(0.02 / (1 - 30e-6))
    late = ClockModel((ClockSegment(7, T0, 1 / TICK_HZ),))
    assert late.to_utc(TICK_HZ, 3) == T0 + 1  # a seq before the first segment: the first one


def test_json_round_trip_is_exact_and_junk_says_what_is_wrong() -> None:
    assert ClockModel.from_json(JUMPED.to_json()) == JUMPED
    for junk in ("", "[]", '{"segments": 3}', '{"segments": [[0, 1.0]]}',
                 '{"segments": [[0, 1.0, -1.0]]}', '{"segments": []}',
                 '{"segments": [[5, 1.0, 1e-5], [5, 2.0, 1e-5]]}'):
        with pytest.raises(ValueError, match="not a clock model"):
            ClockModel.from_json(junk)
