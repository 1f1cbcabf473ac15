"""Episodes made of several findings: clusters of brief jerks, and settling to sleep.

Jerk clusters. Brief jerks (< 0.5 s) of both legs are first joined into startles (both legs'
jerks less than `MIN_REST_S` apart are one, as for `brief_jerks`); startles whose onsets follow
each other within `CLUSTER_MAX_GAP_S` form a chain, and a chain of at least
`CLUSTER_MIN_JERKS` is a cluster episode: repetitive jerks over seconds to minutes, the pattern of
benign neonatal sleep myoclonus (science.md section 5: clusters of jerks at 1-5 Hz lasting
seconds, episodes of seconds to 20 min, up to 90 min; sleep only, stops on waking). A cluster is
one episode, not a set of LMs or of isolated startles.

Settling. The wake before the first sleep (from the first worn epoch, or from a caregiver's
"lights out" when given) and every awakening's wake until sleep returns: its length, its leg
movements, and its PLM-like series (the PLM rules applied over the whole night; a series whose
onset is in wake is PLMW, MATPLM `generate_report.m`: PLMW index per hour of wake). Rhythmic
kicking is the union of those series, series less than `KICKING_MERGE_S` apart joined (a
fussing movement between two kicks breaks a WASM series by its short IMI).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from analysis.movement import MIN_REST_S
from analysis.plm import MAX_IMI_S, PlmScoring

CLUSTER_MAX_GAP_S = 5.0  # onset to onset within a cluster: 1-5 Hz jerks (science.md section 5)
# with room for irregular spacing and a missed jerk (0.4-2.5 s apart on the simulator's nights)
CLUSTER_BRIDGE_S = 3.0  # LMs this short inside a cluster are jerks run together, not LMs
CLUSTER_MIN_JERKS = 5  # fewer is a few startles; isolated startles are minutes apart in sleep
KICKING_MERGE_S = MAX_IMI_S  # series closer than the longest IMI of a series are one stretch


@dataclass(frozen=True, slots=True)
class JerkCluster:
    """A cluster of brief jerks (both legs)."""

    start: float  # Unix s: first jerk's onset
    end: float  # Unix s: last jerk's end
    count: int  # startles (both legs' jerks < 0.5 s apart count once)
    sides: str  # left / right / bilateral
    sleep_share: float  # 0-1: share of the episode in sleep epochs

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def rate_per_min(self) -> float:
        return self.count / max(self.duration_s, 1.0) * 60.0


@dataclass(frozen=True, slots=True)
class SettlingPeriod:
    """Wake before a sleep onset: settling at the start of the night or after an awakening."""

    start: float  # Unix s: first worn epoch / lights out / start of the awakening
    end: float  # Unix s: sleep (re)onset
    first: bool  # the night's first settling (sleep-onset latency)
    lms: int  # scored LMs (bilateral LM once) with onset in this wake
    plm_series: int  # PLM-like series with onset in this wake
    periodic: int  # periodic LMs in this wake
    kicking: tuple[tuple[float, float], ...]  # rhythmic kicking stretches, Unix s

    @property
    def minutes(self) -> float:
        return (self.end - self.start) / 60.0

    @property
    def kicking_min(self) -> float:
        return sum(b - a for a, b in self.kicking) / 60.0

    @property
    def plmw_index(self) -> float:
        """Periodic LMs per hour of this wake."""
        return self.periodic / (self.minutes / 60.0) if self.minutes > 0 else 0.0


def find_clusters(jerks: Sequence[tuple[float, float, str]],
                  sleep_share: Callable[[float, float], float],
                  bridges: Sequence[tuple[float, float]] = ()) -> list[JerkCluster]:
    """Cluster episodes among `jerks` ((start, end, side), Unix s, any order, both legs).

    `bridges`: short LMs (<= `CLUSTER_BRIDGE_S`), which keep a chain going without counting: a
    few jerks of a cluster run together closer than the jerk-run split can separate.
    """
    items = [(a, b, side) for a, b, side in jerks] + [(a, b, "") for a, b in bridges]
    startles: list[list[float | set[str]]] = []  # [start, end, sides]
    for a, b, side in sorted(items):
        if startles and a - float(startles[-1][1]) < MIN_REST_S:  # type: ignore[arg-type]
            last = startles[-1]
            last[1] = max(float(last[1]), b)  # type: ignore[arg-type]
            last[2].add(side)  # type: ignore[union-attr]
        else:
            startles.append([a, b, {side}])
    out: list[JerkCluster] = []
    chain: list[list[float | set[str]]] = []

    def close() -> None:
        while chain and chain[-1][2] == {""}:
            chain.pop()
        count = sum(x[2] != {""} for x in chain)
        if count >= CLUSTER_MIN_JERKS:
            sides: set[str] = set().union(*(x[2] for x in chain)) - {""}  # type: ignore[arg-type]
            start, end = float(chain[0][0]), max(float(x[1]) for x in chain)  # type: ignore[arg-type]
            out.append(JerkCluster(
                start=start, end=end, count=count,
                sides=sides.pop() if len(sides) == 1 else "bilateral",
                sleep_share=sleep_share(start, end),
            ))

    for st in startles:
        if not chain and st[2] == {""}:
            continue
        if chain and float(st[0]) - float(chain[-1][0]) > CLUSTER_MAX_GAP_S:  # type: ignore[arg-type]
            close()
            chain = []
        chain.append(st)
    close()
    return out


def lights_out_before_sleep(epochs: str, t0: float, notes: Sequence[float]) -> float | None:
    """Of a caregiver's "lights out" notes (Unix s), the last from the recording's start `t0`
    to the first sleep epoch of `epochs`: where sleep-onset latency is counted from. None when
    no note lies there (a note after sleep onset is about a later awakening, not settling)."""
    from analysis.sleep import EPOCH_S

    if "S" not in epochs:
        return None
    first_sleep = t0 + epochs.index("S") * EPOCH_S
    return max((t for t in notes if t0 <= t <= first_sleep), default=None)


def settling_periods(
    epochs: str, t0: float, scoring: PlmScoring, *, lights_out: Sequence[float] = (),
) -> list[SettlingPeriod]:
    """The first settling (to the first sleep epoch) and every awakening's return to sleep.

    `epochs`: the S/W/N string from `t0`; `scoring`: the PLM scoring of the whole night. The
    first settling starts at the "lights out" note `lights_out_before_sleep` picks from
    `lights_out` (Unix s), else at the first worn epoch; an awakening is a wake run between
    sleep epochs.
    """
    from analysis.sleep import EPOCH_S

    if "S" not in epochs:
        return []
    first_sleep = epochs.index("S")
    worn = next((k for k, c in enumerate(epochs) if c != "N"), first_sleep)
    chosen = lights_out_before_sleep(epochs, t0, lights_out)
    start0 = t0 + worn * EPOCH_S if chosen is None else chosen
    spans = [(start0, t0 + first_sleep * EPOCH_S, True)]
    k = first_sleep
    n = len(epochs)
    while k < n:
        if epochs[k] == "W":
            e = k
            while e < n and epochs[e] != "S":
                e += 1
            if e < n:
                spans.append((t0 + k * EPOCH_S, t0 + e * EPOCH_S, False))
            k = e
        else:
            k += 1
    out = []
    for a, b, first in spans:
        mine = [m for m in scoring.movements if a <= m.start < b]
        series = [s for s in scoring.series if a <= s.start < b]
        kicking: list[tuple[float, float]] = []
        for s in series:
            end = min(s.end, b)
            if kicking and s.start - kicking[-1][1] <= KICKING_MERGE_S:
                kicking[-1] = (kicking[-1][0], max(kicking[-1][1], end))
            else:
                kicking.append((s.start, end))
        out.append(SettlingPeriod(
            start=a, end=b, first=first, lms=sum(m.candidate for m in mine),
            plm_series=len(series), periodic=sum(m.periodic for m in mine),
            kicking=tuple(kicking),
        ))
    return out
