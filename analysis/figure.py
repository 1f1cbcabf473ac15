"""A picture of the night: hypnogram, movement per leg, PLM series, tremor, non-wear."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from analysis.result import NightResult
from analysis.sleep import EPOCH_S
from limbwatch.report import iso_ms

_COLOURS = {"S": "#3b6ea5", "W": "#e0a030", "N": "#bbbbbb"}


def draw_night(result: NightResult, path: Path) -> Path:
    """Write a PNG of the night to `path` (hours from the recording start on the x axis)."""

    def h(t: float) -> float:
        return (t - result.start) / 3600

    sides = [leg.side for leg in result.legs]
    fig, ax = plt.subplots(figsize=(12, 1.6 + 0.9 * len(sides)), constrained_layout=True)
    epoch_h = EPOCH_S / 3600
    for k, c in enumerate(result.epochs):
        ax.broken_barh([(k * epoch_h, epoch_h)], (0, 0.8), color=_COLOURS[c], linewidth=0)
    rows = {side: 1 + i for i, side in enumerate(sides)}
    for leg in result.legs:
        y = rows[leg.side]
        for a, b in leg.nonwear:
            ax.broken_barh([(h(a), h(b) - h(a))], (y, 0.8), color="#dddddd")
        for lm in leg.lms:
            colour = "#c0392b" if lm.periodic else ("#555555" if lm.candidate else "#8e44ad")
            ax.vlines(h(lm.start), y, y + 0.8, color=colour, linewidth=0.6)
    for ep in result.tremor:
        legs = sides if ep.side == "bilateral" else [ep.side]
        for side in legs:
            if side in rows:
                ax.broken_barh([(h(ep.start), h(ep.end) - h(ep.start))], (rows[side], 0.8),
                               color="#27ae60", alpha=0.7)
    for series in result.plm_series:
        ax.hlines(len(sides) + 1.05, h(series.start), h(series.end), color="#c0392b", linewidth=3)
    ax.set_yticks([0.4, *(r + 0.4 for r in rows.values()), len(sides) + 1.05])
    ax.set_yticklabels(["sleep (blue) / wake", *rows, "PLM series"])
    ax.set_xlabel("hours from start of recording")
    ax.set_ylim(-0.2, len(sides) + 1.4)
    ax.set_title(
        f"Night of {iso_ms(result.start)[:10]}: PLMS index {result.figures().plm_index:.1f}/h, "
        f"sleep {result.sleep.total_sleep_min / 60:.1f} h\nLMs: red periodic, grey other, "
        "purple longer than 10 s; green: tremor; light grey: sensor off"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
