"""The findings of one night in numbers, and everything made from them.

`analysis.night.analyze_night` returns a `NightResult`: times are Unix seconds, durations
minutes, rates per hour of sleep. The contract report (`to_report`), the trend row
(`figures`), the event list (`events`), the terminal summary (`summary`) and the picture
(`analysis.figure.draw_night`) all read it, so none of them parses ISO strings back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.episodes import JerkCluster, SettlingPeriod
from analysis.movement import MIN_REST_S
from analysis.plm import PlmSeries, PlmSummary, Rules
from analysis.sleep import EPOCH_S, METHOD, SleepSummary
from analysis.tremor import TremorEpisode
from limbwatch.events import EVENT_KINDS, NightEvent
from limbwatch.recording import Side
from limbwatch.report import (
    Distribution,
    Flag,
    ImiHistogram,
    Intensity,
    Interval,
    JerkClusterOut,
    LegMovementOut,
    NightReport,
    Plm,
    RecordingSpan,
    Sensor,
    Series,
    Settling,
    SettlingPeriodOut,
    Sleep,
    TremorByState,
    iso_ms,
)
from limbwatch.report import TremorEpisode as TremorEpisodeOut

DISCLAIMER = (
    "limbwatch measures movement at the ankle. It supports, and does not replace, assessment by a "
    "clinician; actigraphy must not be used in place of EMG to diagnose PLMD (AASM 2018)."
)

Interval_s = tuple[float, float]  # (start, end), Unix s


@dataclass(frozen=True, slots=True)
class LegMovementResult:
    """One leg's LM (>= 0.5 s), as scored across both legs."""

    start: float  # Unix s
    end: float  # Unix s
    in_sleep: bool  # onset in a sleep epoch
    periodic: bool  # part of a PLM series
    bilateral_group: int | None  # id shared by the two legs' LMs of one bilateral LM
    candidate: bool  # candidate LM (CLM) under the scoring rules
    peak_g: float = 0.0  # peak dynamic acceleration (high-passed vector magnitude), g
    mean_g: float = 0.0  # mean dynamic acceleration over the LM, g


@dataclass(frozen=True, slots=True)
class Jerk:
    """A movement shorter than 0.5 s on one leg."""

    start: float  # Unix s
    end: float  # Unix s
    in_sleep: bool  # onset in a sleep epoch


@dataclass(frozen=True, slots=True)
class LegNight:
    """One leg's findings over the night."""

    side: Side
    sample_rate_hz: float  # the sensor's rate, before any decimation
    coverage: float  # 0-1: share of the recording (both legs' span) with data from this leg
    lms: tuple[LegMovementResult, ...]  # sorted by start
    jerks: tuple[Jerk, ...]  # sorted by start
    nonwear: tuple[Interval_s, ...]  # sensor off the ankle
    gaps: tuple[Interval_s, ...]  # no data for longer than `analysis.grid.MAX_BRIDGE_S`


@dataclass(frozen=True, slots=True)
class NightFigures:
    """One night's row of the trends (contract section 4), rounded as in the report."""

    plm_index: float  # PLMs in sleep per hour of sleep
    periodicity_index: float | None  # Ferri, 0-1; None when too few LMs
    total_sleep_min: float  # min
    efficiency: float  # 0-1: sleep epochs / scored epochs
    waso_min: float  # min awake after sleep onset
    awakenings: int  # wake bouts of >= 1 min after sleep onset
    tremor_min: float  # min of tremor episodes (a bilateral episode counts once)
    nonwear_min: float  # min of sensor off the ankle, summed over the legs
    coverage: float  # 0-1: mean over the legs present of each leg's coverage


@dataclass(frozen=True, slots=True)
class NightResult:
    """One night from one or two legs: what `analyze_night` found, in numbers."""

    start: float  # Unix s: first sample over all legs
    end: float  # Unix s: last sample over all legs
    legs: tuple[LegNight, ...]  # sorted by side
    plm: PlmSummary  # PLMS count, index (/h of sleep), periodicity index, IMI histogram
    plm_series: tuple[PlmSeries, ...]  # over the whole recording, sorted by start
    tremor: tuple[TremorEpisode, ...]  # both legs merged (overlapping: bilateral); by start
    epochs: str  # one of S (sleep), W (wake), N (no data) per 30-s epoch from `start`
    sleep: SleepSummary
    flags: tuple[Flag, ...]  # most severe first
    rules: Rules
    age_months: float | None  # as given by the caller
    jerk_clusters: tuple[JerkCluster, ...] = ()  # clusters of brief jerks, both legs, by start
    settling: tuple[SettlingPeriod, ...] = ()  # first settling, then each return to sleep
    lights_out: float | None = None  # Unix s: the caregiver's note sleep-onset latency counts from
    plmw_index: float | None = None  # periodic LMs in wake per hour of wake; None if no wake

    def __repr__(self) -> str:
        lms = sum(len(leg.lms) for leg in self.legs)
        return (
            f"NightResult({iso_ms(self.start)} to {iso_ms(self.end)}, "
            f"{'+'.join(leg.side for leg in self.legs)}, {lms} LMs, "
            f"PLMS index {self.figures().plm_index:.1f}/h, "
            f"sleep {self.sleep.total_sleep_min:g} min, "
            f"flags {[f.code for f in self.flags]})"
        )

    @property
    def brief_jerks(self) -> int:
        """Jerks starting in sleep; jerks less than 0.5 s apart (both legs) are one startle."""
        count, last_end = 0, -np.inf
        for jerk in sorted((j for leg in self.legs for j in leg.jerks),
                           key=lambda j: (j.start, j.end)):
            if jerk.start - last_end >= MIN_REST_S and jerk.in_sleep:
                count += 1
            last_end = max(last_end, jerk.end)
        return count

    @property
    def isolated_jerks(self) -> int:
        """`brief_jerks` without those inside jerk clusters."""
        count, last_end = 0, -np.inf
        spans = [(c.start, c.end) for c in self.jerk_clusters]
        for jerk in sorted((j for leg in self.legs for j in leg.jerks),
                           key=lambda j: (j.start, j.end)):
            if (jerk.start - last_end >= MIN_REST_S and jerk.in_sleep
                    and not any(a <= jerk.start <= b for a, b in spans)):
                count += 1
            last_end = max(last_end, jerk.end)
        return count

    @property
    def first_settling(self) -> SettlingPeriod | None:
        return next((p for p in self.settling if p.first), None)

    def intensity(self) -> Intensity:
        """Distributions of dynamic acceleration over the night's LMs and tremor (g)."""
        lms = [m for leg in self.legs for m in leg.lms]
        return Intensity(
            lm_peak_g=_distribution([m.peak_g for m in lms]),
            lm_sleep_peak_g=_distribution([m.peak_g for m in lms if m.in_sleep]),
            plm_peak_g=_distribution([m.peak_g for m in lms if m.in_sleep and m.periodic]),
            tremor_amplitude_g=_distribution(
                [t.amplitude_g for t in self.tremor if t.amplitude_g is not None]),
        )

    def tremor_by_state(self) -> TremorByState:
        awake = [t for t in self.tremor if t.state != "asleep"]
        asleep = [t for t in self.tremor if t.state == "asleep"]
        return TremorByState(
            awake_min=round(sum(t.duration_s for t in awake) / 60, 2),
            asleep_min=round(sum(t.duration_s for t in asleep) / 60, 2),
            episodes_awake=len(awake), episodes_asleep=len(asleep),
        )

    def settling_report(self) -> Settling:
        first = self.first_settling
        from_lights = first is not None and self.lights_out is not None
        return Settling(
            lights_out=None if self.lights_out is None else iso_ms(self.lights_out),
            latency_from="lights_out" if from_lights else "first_worn_epoch",
            sleep_onset_latency_min=None if first is None else round(first.minutes, 2),
            first=None if first is None else _settling_out(first),
            returns=[_settling_out(p) for p in self.settling if not p.first],
        )

    def to_report(self) -> NightReport:
        """The night report of contract section 3 (schema 1)."""
        s = self.sleep
        lms = sorted(((leg.side, m) for leg in self.legs for m in leg.lms),
                     key=lambda sm: (sm[1].start, sm[0]))
        return NightReport(
            recording=RecordingSpan(start=iso_ms(self.start), end=iso_ms(self.end)),
            sensors=[
                Sensor(side=leg.side, sample_rate_hz=leg.sample_rate_hz, coverage=leg.coverage,
                       nonwear=[Interval(start=iso_ms(a), end=iso_ms(b)) for a, b in leg.nonwear])
                for leg in self.legs
            ],
            sleep=Sleep(
                epochs=self.epochs,
                onset=self._epoch_time(s.onset_epoch),
                offset=self._epoch_time(s.offset_epoch),
                total_sleep_min=s.total_sleep_min,
                efficiency=s.efficiency,
                waso_min=s.waso_min,
                awakenings=s.awakenings,
                method=METHOD,
            ),
            leg_movements=[
                LegMovementOut(start=iso_ms(m.start), end=iso_ms(m.end), side=side,
                               in_sleep=m.in_sleep, periodic=m.periodic,
                               bilateral_group=m.bilateral_group, candidate=m.candidate,
                               peak_g=_g(m.peak_g), mean_g=_g(m.mean_g))
                for side, m in lms
            ],
            plm=Plm(
                count=self.plm.count,
                index=_per_h(self.plm.index),
                periodicity_index=self.plm.periodicity_index,
                series=[Series(start=iso_ms(x.start), end=iso_ms(x.end), count=x.count)
                        for x in self.plm_series],
                imi_histogram=ImiHistogram(edges_s=self.plm.imi_edges_s,
                                           counts=self.plm.imi_counts),
                rules=self.rules,
                lm_index=_per_h(self.plm.lm_index),
                plmw_index=None if self.plmw_index is None else _per_h(self.plmw_index),
            ),
            tremor_episodes=[
                TremorEpisodeOut(start=iso_ms(ep.start), end=iso_ms(ep.end), side=ep.side,
                                 frequency_hz=_hz(ep),
                                 state="asleep" if ep.state == "asleep" else "awake",
                                 peak_g=_g(ep.peak_g), mean_g=_g(ep.mean_g),
                                 amplitude_g=_g(ep.amplitude_g))
                for ep in self.tremor
            ],
            brief_jerks=self.brief_jerks,
            flags=list(self.flags),
            age_months=self.age_months,
            disclaimer=DISCLAIMER,
            intensity=self.intensity(),
            settling=self.settling_report(),
            tremor_by_state=self.tremor_by_state(),
            jerk_clusters=[
                JerkClusterOut(start=iso_ms(c.start), end=iso_ms(c.end), count=c.count,
                               duration_s=round(c.duration_s, 2),
                               rate_per_min=round(c.rate_per_min, 2),
                               side=c.sides,  # type: ignore[arg-type]
                               sleep_share=round(c.sleep_share, 3))
                for c in self.jerk_clusters
            ],
            isolated_jerks=self.isolated_jerks,
        )

    def figures(self) -> NightFigures:
        """The trend row: the same numbers as the report."""
        s = self.sleep
        return NightFigures(
            plm_index=_per_h(self.plm.index),
            periodicity_index=self.plm.periodicity_index,
            total_sleep_min=s.total_sleep_min,
            efficiency=s.efficiency,
            waso_min=s.waso_min,
            awakenings=s.awakenings,
            tremor_min=sum(ep.duration_s for ep in self.tremor) / 60,
            nonwear_min=sum(b - a for leg in self.legs for a, b in leg.nonwear) / 60,
            coverage=sum(leg.coverage for leg in self.legs) / len(self.legs),
        )

    def events(self) -> list[NightEvent]:
        """Every LM (one per leg), PLM series, tremor episode, jerk, non-wear period and long gap.

        Sorted by start (then end, kind, side). Jerks are listed per leg, all night; the report's
        `brief_jerks` counts those in sleep, both legs' within 0.5 s as one.
        """
        found = [
            *(NightEvent("plm_series", x.start, x.end, None, {"count": x.count})
              for x in self.plm_series),
            *(NightEvent("tremor", ep.start, ep.end, ep.side, {"frequency_hz": _hz(ep)})
              for ep in self.tremor),
        ]
        for leg in self.legs:
            found += [
                NightEvent("lm", m.start, m.end, leg.side, {
                    "in_sleep": m.in_sleep, "periodic": m.periodic,
                    "bilateral_group": m.bilateral_group,
                })
                for m in leg.lms
            ]
            found += [NightEvent("jerk", j.start, j.end, leg.side, {"in_sleep": j.in_sleep})
                      for j in leg.jerks]
            found += [NightEvent("nonwear", a, b, leg.side, {}) for a, b in leg.nonwear]
            found += [NightEvent("gap", a, b, leg.side, {}) for a, b in leg.gaps]
        rank = {kind: i for i, kind in enumerate(EVENT_KINDS)}
        return sorted(found, key=lambda e: (e.start, e.end, rank[e.kind], e.side or ""))

    def summary(self) -> str:
        """A few lines of plain text that sum up the night (for the terminal)."""
        s, p, fig = self.sleep, self.plm, self.figures()
        pi = "n/a (too few movements)" if p.periodicity_index is None else (
            f"{p.periodicity_index:.2f}")
        legs = ", ".join(
            f"{x.side} {x.sample_rate_hz:g} Hz ({x.coverage:.0%} data)" for x in self.legs
        )
        lines = [
            f"Night {iso_ms(self.start)} to {iso_ms(self.end)}; sensors: {legs}",
            f"Sleep: {s.total_sleep_min / 60:.1f} h, efficiency {s.efficiency:.0%}, "
            f"awake after sleep onset {s.waso_min:.0f} min, {s.awakenings} awakenings",
            f"Leg movements: {sum(len(leg.lms) for leg in self.legs)} detected; PLMS {p.count} "
            f"({fig.plm_index:.1f}/h of sleep, {self.rules}); periodicity index {pi}; "
            f"brief jerks in sleep: {self.brief_jerks}",
            f"Tremor episodes: {len(self.tremor)}"
            + "".join(
                f"\n  {iso_ms(t.start)} to {iso_ms(t.end)} {t.side} {_hz(t):.1f} Hz"
                for t in self.tremor
            ),
        ]
        first = self.first_settling
        if first is not None:
            returns = [p for p in self.settling if not p.first]
            lines.append(
                f"Settling: asleep after {first.minutes:.0f} min ({first.lms} LMs, "
                f"{first.kicking_min:.0f} min of rhythmic kicking); returns to sleep: "
                f"{len(returns)}, {sum(p.kicking_min for p in returns):.0f} min of kicking in them")
        tbs = self.tremor_by_state()
        if self.tremor:
            lines.append(f"Tremor: {tbs.awake_min:.1f} min awake, {tbs.asleep_min:.1f} min asleep")
        if self.jerk_clusters:
            lines.append(
                f"Jerk clusters: {len(self.jerk_clusters)} ("
                + ", ".join(f"{c.count} jerks in {c.duration_s:.0f} s"
                            for c in self.jerk_clusters[:5])
                + (", ..." if len(self.jerk_clusters) > 5 else "") + ")")
        peak = self.intensity().lm_sleep_peak_g
        if peak.count:
            lines.append(f"LM strength in sleep (peak g): median {peak.median:.3f}, "
                         f"90th percentile {peak.p90:.3f}, max {peak.max:.3f}")
        lines.append("Flags: " + ("none" if not self.flags else ""))
        lines += [f"  [{f.severity}] {f.code}: {f.message}" for f in self.flags]
        return "\n".join(lines)

    def _epoch_time(self, k: int | None) -> str | None:
        return None if k is None else iso_ms(self.start + k * EPOCH_S)


def _per_h(rate: float) -> float:
    """A rate per hour as the report gives it (3 decimals)."""
    return round(rate, 3)


def _g(value: float | None) -> float | None:
    """An acceleration as the report gives it (0.1 mg)."""
    return None if value is None else round(value, 4)


def _distribution(values: list[float]) -> Distribution:
    """Count, median, 90th percentile and maximum (g, 0.1 mg)."""
    if not values:
        return Distribution(count=0, median=None, p90=None, max=None)
    x = np.asarray(values, dtype=np.float64)
    return Distribution(count=int(x.size), median=_g(float(np.median(x))),
                        p90=_g(float(np.percentile(x, 90))), max=_g(float(x.max())))


def _settling_out(p: SettlingPeriod) -> SettlingPeriodOut:
    return SettlingPeriodOut(
        start=iso_ms(p.start), end=iso_ms(p.end), minutes=round(p.minutes, 2), lms=p.lms,
        plm_series=p.plm_series, periodic_lms=p.periodic, plmw_index=_per_h(p.plmw_index),
        kicking_min=round(p.kicking_min, 2),
        kicking=[Interval(start=iso_ms(a), end=iso_ms(b)) for a, b in p.kicking],
    )


def _hz(ep: TremorEpisode) -> float:
    """A tremor frequency as the report gives it (0.01 Hz)."""
    return round(ep.frequency_hz, 2)
