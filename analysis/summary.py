"""A few lines of plain text that sum up a night report (for the terminal)."""

from __future__ import annotations

from limbwatch.report import NightReport


def text_summary(report: NightReport) -> str:
    s, p = report.sleep, report.plm
    pi = "n/a (too few movements)" if p.periodicity_index is None else f"{p.periodicity_index:.2f}"
    legs = ", ".join(
        f"{x.side} {x.sample_rate_hz:g} Hz ({x.coverage:.0%} data)" for x in report.sensors
    )
    lines = [
        f"Night {report.recording.start} to {report.recording.end}; sensors: {legs}",
        f"Sleep: {s.total_sleep_min / 60:.1f} h, efficiency {s.efficiency:.0%}, "
        f"awake after sleep onset {s.waso_min:.0f} min, {s.awakenings} awakenings",
        f"Leg movements: {len(report.leg_movements)} detected; PLMS {p.count} "
        f"({p.index:.1f}/h of sleep, {p.rules}); periodicity index {pi}; "
        f"brief jerks in sleep: {report.brief_jerks}",
        f"Tremor episodes: {len(report.tremor_episodes)}"
        + "".join(
            f"\n  {t.start} to {t.end} {t.side} {t.frequency_hz:.1f} Hz"
            for t in report.tremor_episodes
        ),
        "Flags: " + ("none" if not report.flags else ""),
    ]
    lines += [f"  [{f.severity}] {f.code}: {f.message}" for f in report.flags]
    return "\n".join(lines)
