"""Write a simulated night to disk: one contract CSV per leg (``left.csv`` / ``right.csv``) + truth.

CSV format (contract section 1): header ``time,x,y,z``; time in Unix seconds with 3 decimals;
x, y, z in g with 5 decimals; rows in time order; missing rows are gaps. Formatting is vectorised
through pyarrow: the values are quantised, so each axis is formatted through a lookup table of
the ``2 * range_g * counts_per_g + 1`` possible strings, and time as integer seconds plus a
lookup of the milliseconds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from firmware_sim.night import LegSignal, SimulatedNight

HEADER = b"time,x,y,z\n"
AXIS_DECIMALS = 5
_MILLIS = pa.array([f"{i:03d}" for i in range(1000)])


def format_time(time: np.ndarray) -> pa.Array:
    """Unix seconds as strings with exactly 3 decimals (``1795203000.020``)."""
    millis = np.rint(np.asarray(time, dtype=np.float64) * 1000.0).astype(np.int64)
    seconds = pa.array(millis // 1000).cast(pa.string())
    return pc.binary_join_element_wise(seconds, _MILLIS.take(pa.array(millis % 1000)), ".")


def format_axis(values: np.ndarray, counts_per_g: int, range_g: float) -> pa.Array:
    """Quantised accelerations (g) as strings with 5 decimals, through a table of all counts."""
    full = math.floor(range_g * counts_per_g)
    counts = np.rint(np.asarray(values, dtype=np.float64) * counts_per_g).astype(np.int64)
    table = pa.array([f"{c / counts_per_g:.{AXIS_DECIMALS}f}" for c in range(-full, full + 1)])
    return table.take(pa.array(np.clip(counts, -full, full) + full))


def write_leg_csv(leg: LegSignal, path: Path) -> Path:
    """Write one leg in the contract CSV format."""
    columns = {"time": format_time(leg.time)}
    for k, name in enumerate("xyz"):
        columns[name] = format_axis(leg.accel[:, k], leg.counts_per_g, leg.range_g)
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with path.open("wb") as f:
        f.write(HEADER)
        pacsv.write_csv(pa.table(columns), f, write_options=options)
    return path


def write_night(night: SimulatedNight, out_dir: Path) -> dict[str, Path]:
    """Write ``<side>.csv`` per leg and ``truth.json``; returns paths keyed by side and "truth"."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {side: write_leg_csv(leg, out_dir / f"{side}.csv") for side, leg in night.legs.items()}
    truth_path = out_dir / "truth.json"
    truth_path.write_text(json.dumps(night.truth.to_json(), indent=1), encoding="utf-8")
    paths["truth"] = truth_path
    return paths
