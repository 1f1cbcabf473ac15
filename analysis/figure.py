"""A picture of the night: hypnogram, movement per leg, PLM series, tremor, non-wear."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from limbwatch.report import NightReport, parse_iso

_COLOURS = {"S": "#3b6ea5", "W": "#e0a030", "N": "#bbbbbb"}


def draw_night(report: NightReport, path: Path) -> Path:
    """Write a PNG of the night to `path` (hours from the recording start on the x axis)."""
    t0 = parse_iso(report.recording.start)

    def h(stamp: str) -> float:
        return (parse_iso(stamp) - t0) / 3600

    sides = [s.side for s in report.sensors]
    fig, ax = plt.subplots(figsize=(12, 1.6 + 0.9 * len(sides)), constrained_layout=True)
    epoch_h = report.sleep.epoch_s / 3600
    for k, c in enumerate(report.sleep.epochs):
        ax.broken_barh([(k * epoch_h, epoch_h)], (0, 0.8), color=_COLOURS[c], linewidth=0)
    rows = {side: 1 + i for i, side in enumerate(sides)}
    for sensor in report.sensors:
        y = rows[sensor.side]
        for iv in sensor.nonwear:
            ax.broken_barh([(h(iv.start), h(iv.end) - h(iv.start))], (y, 0.8), color="#dddddd")
    for lm in report.leg_movements:
        colour = "#c0392b" if lm.periodic else ("#555555" if lm.candidate else "#8e44ad")
        ax.vlines(h(lm.start), rows[lm.side], rows[lm.side] + 0.8, color=colour, linewidth=0.6)
    for ep in report.tremor_episodes:
        legs = sides if ep.side == "bilateral" else [ep.side]
        for side in legs:
            if side in rows:
                ax.broken_barh([(h(ep.start), h(ep.end) - h(ep.start))], (rows[side], 0.8),
                               color="#27ae60", alpha=0.7)
    for series in report.plm.series:
        ax.hlines(len(sides) + 1.05, h(series.start), h(series.end), color="#c0392b", linewidth=3)
    ax.set_yticks([0.4, *(r + 0.4 for r in rows.values()), len(sides) + 1.05])
    ax.set_yticklabels(["sleep (blue) / wake", *rows, "PLM series"])
    ax.set_xlabel("hours from start of recording")
    ax.set_ylim(-0.2, len(sides) + 1.4)
    ax.set_title(
        f"Night of {report.recording.start[:10]}: PLMS index {report.plm.index:.1f}/h, "
        f"sleep {report.sleep.total_sleep_min / 60:.1f} h\nLMs: red periodic, grey other, "
        "purple longer than 10 s; green: tremor; light grey: sensor off"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
