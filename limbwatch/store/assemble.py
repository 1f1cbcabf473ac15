"""Samples from stored chunk rows, shared by the sample stores: re-stamping with a clock model,
joining consecutive packets, and one leg's samples in time order (`samples_from_rows`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from limbwatch.clockmodel import ClockModel
from limbwatch.recording import SNAP_TOLERANCE
from limbwatch.store.samples import Samples
from limbwatch.wire import RATES_HZ


def nominal_rate(dt: np.ndarray) -> float:
    """Nominal rate, Hz, of chunk sample periods `dt` (s): round(1 / median), snapped to a rate
    the sensor offers (25, 50, 100 Hz) when within 2 %."""
    raw = 1.0 / float(np.median(dt))
    nearest = min(RATES_HZ, key=lambda rate: abs(raw - rate))
    if abs(raw - nearest) <= SNAP_TOLERANCE * nearest:
        return float(nearest)
    return float(round(raw))


def join_consecutive(t0: np.ndarray, dt: np.ndarray, n: np.ndarray, devices: tuple[str, ...],
                      sessions: tuple[int, ...], seqs: tuple[int, ...]) -> np.ndarray:
    """Start times (chunks ordered by t0) where a packet that follows its predecessor in one
    sensor session but starts before it ended is moved to just after it."""
    seq = np.array(seqs, dtype=np.int64)
    same = (np.array(devices[1:]) == np.array(devices[:-1])) & (
        np.array(sessions[1:]) == np.array(sessions[:-1])) & (seq[1:] == seq[:-1] + 1)
    t0 = t0.copy()
    last = t0 + (n - 1) * dt
    todo = sorted((np.flatnonzero(same & (t0[1:] <= last[:-1])) + 1).tolist())
    while todo:
        i = todo.pop(0)
        shift = last[i - 1] + dt[i] - t0[i]
        if shift > 0:
            t0[i] += shift
            last[i] += shift
            if i + 1 < t0.size and same[i] and t0[i + 1] <= last[i] and i + 1 not in todo:
                todo.insert(0, i + 1)
    return t0


def restamped(rows: list[tuple[Any, ...]], models: Mapping[tuple[str, int], ClockModel]
               ) -> tuple[np.ndarray, np.ndarray]:
    """(t0, dt) of stored chunk rows: from their ticks with their session's clock model, else
    as stamped live."""
    t0 = np.array([r[5] for r in rows], dtype=np.float64)
    dt = np.array([r[6] for r in rows], dtype=np.float64)
    for (device, session), model in models.items():
        sel = [i for i, r in enumerate(rows)
               if r[0] == device and r[1] == session and r[9] is not None and r[10] is not None]
        if sel:
            ticks = np.array([rows[i][9] for i in sel], dtype=np.int64)
            seqs = np.array([rows[i][2] for i in sel], dtype=np.int64)
            rates = np.array([rows[i][10] for i in sel], dtype=np.float64)
            t0[sel], dt[sel] = model.restamp(ticks, seqs, rates)
    return t0, dt


def samples_from_rows(good: list[tuple[Any, ...]], models: Mapping[tuple[str, int], ClockModel],
                      start: float, end: float, damaged: int) -> Samples:
    """All samples of intact chunk rows (`limbwatch.store.sqlite.ChunkRow`, in (t0, device,
    session, seq) order) with start <= time < end, in time order (see
    `SqliteSampleStore.read_samples`); `damaged` is passed on."""
    if not good:
        return Samples(np.empty(0), np.empty((0, 3), dtype=np.float32), 0.0, damaged)
    t0, dt = restamped(good, models)
    order = np.argsort(t0, kind="stable")  # the stored order unless a model changed it
    good = [good[i] for i in order]
    t0, dt = t0[order], dt[order]
    devices, sessions, seqs, _, _, _, _, ns, cpgs, _, _, blobs = list(zip(*good, strict=True))[:12]
    n = np.array(ns, dtype=np.int64)
    t0 = join_consecutive(t0, dt, n, devices, sessions, seqs)
    first = np.cumsum(n) - n
    k = np.arange(int(n.sum())) - np.repeat(first, n)
    time = np.repeat(t0, n) + k * np.repeat(dt, n)
    counts = np.frombuffer(b"".join(blobs), dtype="<i2").reshape(-1, 3)
    scale = np.repeat(np.array(cpgs, dtype=np.float32), n)[:, None]
    accel = (counts.astype(np.float32) / scale).astype(np.float32)
    steps = np.diff(time)
    if len(steps) and not (steps > 0).all():
        order = np.argsort(time, kind="stable")
        time, accel = time[order], accel[order]
        keep = np.concatenate(([True], np.diff(time) > 0))
        time, accel = time[keep], accel[keep]
    i0, i1 = np.searchsorted(time, (start, end), side="left")
    inside = (t0 < end) & (t0 + (n - 1) * dt >= start)  # not only read for the margin
    fs = nominal_rate(dt[inside]) if inside.any() else 0.0
    return Samples(time[i0:i1], accel[i0:i1], fs, damaged)
