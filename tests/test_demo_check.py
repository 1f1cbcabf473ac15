"""The demo's check against the sensors' truth matches samples by (sensor, sample index)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from app.demo import compare_with_truth
from limbwatch.store.samples import Chunk

T0, DT, N, CPG = 1795203000.0, 0.02, 38, 4096


def night(packets: int) -> tuple[list[Chunk], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    counts = rng.integers(-8 * CPG, 8 * CPG, (packets * N, 3)).astype(np.int16)
    time = T0 + np.arange(packets * N) * DT
    chunks = [Chunk("kid", "left", "LW1", 3, q, float(time[q * N]), DT, counts[q * N:(q + 1) * N],
                    CPG) for q in range(packets)]
    return chunks, time, (counts / CPG).astype(np.float32)


def test_a_complete_night_matches_at_every_index() -> None:
    chunks, time, accel = night(50)
    check = compare_with_truth(chunks, time, accel)
    assert (check.taken, check.stored, check.matched, check.missing) == (1900, 1900, 1900, ())
    assert check.worst_error_s < 1e-6 and "1900 of 1900 samples stored" in check.line("left")


def test_a_packet_stamped_late_is_still_matched_by_index_and_its_error_shown() -> None:
    chunks, time, accel = night(50)
    chunks[10] = replace(chunks[10], t0=chunks[10].t0 + 3.0)  # sorted by time it would move
    check = compare_with_truth(chunks, time, accel)
    assert check.matched == 1900 and check.worst_error_s == pytest.approx(3.0)
    assert "worst timestamp error 3000.0 ms" in check.line("left")


def test_missing_and_wrong_packets_are_named() -> None:
    chunks, time, accel = night(50)
    wrong = replace(chunks[3], counts=chunks[3].counts[::-1].copy())
    kept = [*chunks[:3], wrong, *chunks[4:20], *chunks[23:40]]  # 20-22 lost, 40-49 never came
    check = compare_with_truth(kept, time, accel)
    assert check.missing == ((20, 22),) and check.unplaced == 17 * N
    assert check.matched == 19 * N + int((wrong.counts == chunks[3].counts).all(axis=1).sum())
    line = check.line("left")
    assert "packets not stored: 20-22" in line and "not checked" in line
