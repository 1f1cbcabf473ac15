"""The analysis service: notices nights that have ended and analyses each once.

Each round (`AnalysisService.poll`):
1. refresh every subject's nights from the samples (`limbwatch.store.nights.refresh_nights`);
2. a night is *over* when a caregiver said so, when it has had no new data for `quiet_s`
   (measured on the service's clock: the store's time, simulated in compressed demos), or when
   the morning sync of every leg with data is complete (the gateway's "synced" event);
3. an over night without a report, with data newer than its report, or with a re-analysis asked
   for, is analysed from the samples; the report, its figures, flags and events
   (`NightResult.events`) are stored in one transaction (the previous report stays until then);
   a failure is recorded with its reason;
4. the live-status upkeep (`worker.live_status`): a sensor whose gateway went silent is
   reported away, and old snapshots are pruned.

All state is in the record store, so a restart repeats no finished work and loses none pending.

Metrics (Prometheus, the process's default registry: `GET /metrics` of `limbwatch serve`, or
`limbwatch worker --metrics-port`): `limbwatch_analysis_duration_seconds` (each analysis,
stored or failed), `limbwatch_analysis_failures_total{reason}` (`failed`: the night was marked
failed; `unavailable`: the store could not be used, retried later) and
`limbwatch_nights_analysed_total` (reports stored).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from datetime import time as datetime_time
from zoneinfo import ZoneInfo

from prometheus_client import Counter, Histogram

from analysis import ALGORITHM_VERSION
from analysis.plm import Rules
from analysis.result import NightResult
from analysis.stored import analyse_stored_night
from limbwatch.errors import LimbwatchError, Unavailable
from limbwatch.store.nights import refresh_nights
from limbwatch.store.records import NightRecord, RecordStore, Subject
from limbwatch.store.samples import FiguresSink, SampleStore
from worker.live_status import LiveStatusUpkeep

log = logging.getLogger(__name__)

QUIET_S = 30 * 60.0  # no new data for this long: the night is over (a sensor away for 5-10 min
# in the night must not end it; a morning sync follows within minutes of waking)
POLL_S = 10.0
MAX_BACKOFF_S = 60.0

ANALYSIS_DURATION = Histogram(
    "limbwatch_analysis_duration_seconds", "Analyses of a night from the stored samples "
    "(reading, analysing, storing the report), stored or failed",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0))
ANALYSIS_FAILURES = Counter(
    "limbwatch_analysis_failures", "Analyses that stored no report, by reason: failed (the "
    "night is marked failed, with why) or unavailable (the store could not be used; retried)",
    ["reason"])
NIGHTS_ANALYSED = Counter("limbwatch_nights_analysed", "Nights analysed and their report stored")
for _reason in ("failed", "unavailable"):
    ANALYSIS_FAILURES.labels(_reason)  # every series exported from the start, at 0


@dataclass
class AnalysisService:
    samples: SampleStore
    records: RecordStore
    now: Callable[[], float]  # Unix s on the store's clock
    quiet_s: float = QUIET_S
    rules: Rules = "wasm2016"  # for the nights it analyses (`analyse` may say otherwise)
    # the age assumed for a subject without a birth date (None: unknown, the child thresholds)
    default_age_months: float | None = None

    def __post_init__(self) -> None:
        self.live_status = LiveStatusUpkeep(self.records, self.now)

    def is_over(self, night: NightRecord) -> bool:
        """A caregiver said so, no new data for `quiet_s`, or (for a night still recording) the
        morning sync of every leg is complete (`synced`)."""
        now = self.now()
        return night.ended or (now - night.end >= self.quiet_s
                               and now - night.data_changed >= self.quiet_s) or (
            night.status == "recording" and self.synced(night))

    def synced(self, night: NightRecord) -> bool:
        """Whether every leg with data in the night has had its morning sync completed since
        the night's last sample (the gateway's "synced" device event: its sensor stopped
        sampling and all it took is stored)."""
        extent = self.samples.extent(night.subject_id, night.start,
                                     math.nextafter(night.end, math.inf))
        if extent is None:
            return False
        done = {e.side for e in self.records.device_events(night.subject_id, night.end, math.inf)
                if e.kind == "synced"}
        return set(extent.sides) <= done

    def poll(self) -> list[int]:
        """One round (see the module docstring); the ids of the nights analysed."""
        done = []
        for subject in self.records.subjects():
            before = {n.id: n.data_changed for n in self.records.nights(subject.id)}
            for night in refresh_nights(self.samples, self.records, subject, self.now()):
                grew = before.get(night.id, night.data_changed) != night.data_changed
                over = self.is_over(night)
                if night.status == "recording" and over:
                    self.records.set_status(night.id, "waiting")
                elif grew and night.status in ("ready", "failed"):
                    self.records.set_status(night.id, "waiting" if over else "recording")
            for night in self.records.nights(subject.id):
                # "analysing" is left behind only by a service that died mid-analysis
                if night.reanalyse or night.status in ("waiting", "analysing"):
                    self.analyse(night)
                    done.append(night.id)
        self.live_status.run()
        return done

    def analyse(self, night: NightRecord, *, age_months: float | None = None,
                rules: Rules | None = None, fs: float | None = None) -> NightResult | None:
        """Analyse one night from the samples and store its report, or record why not (and
        return None).

        `age_months` (default: from the subject's birth date, else the service's
        `default_age_months`), `rules` (default: the service's)
        and `fs` (default: the stored rate) as for `analyze_night`. Its log lines carry the
        night's id, the correlation id of a night (`limbwatch.logs`)."""
        started = time.perf_counter()
        try:
            result = self._analyse(night, age_months=age_months, rules=rules or self.rules,
                                   fs=fs)
        except Unavailable:
            ANALYSIS_FAILURES.labels("unavailable").inc()
            raise
        finally:
            ANALYSIS_DURATION.observe(time.perf_counter() - started)
        if result is None:
            ANALYSIS_FAILURES.labels("failed").inc()
        else:
            NIGHTS_ANALYSED.inc()
        return result

    def _analyse(self, night: NightRecord, *, age_months: float | None, rules: Rules,
                 fs: float | None) -> NightResult | None:
        subject = self.records.subject(night.subject_id)
        if age_months is None and (subject is None or subject.birth_date is None):
            age_months = self.default_age_months
        self.records.set_status(night.id, "analysing")
        try:
            result = analyse_stored_night(self.samples, self.records, night,
                                          age_months=age_months, rules=rules, fs=fs)
        except Unavailable as exc:
            self.records.set_status(night.id, "waiting")
            log.warning("night %d (%s %s): the store is unavailable, analysis postponed: %s",
                        night.id, night.subject_id, night.date, exc, extra=_about(night))
            raise
        except (LimbwatchError, ValueError) as exc:
            log.warning("night %d (%s %s) failed: %s", night.id, night.subject_id, night.date,
                        exc, extra=_about(night))
            self.records.set_status(night.id, "failed", str(exc))
            return None
        report = result.to_report().model_copy(update={"warnings": list(night.warnings)})
        self.records.put_report(night.id, ALGORITHM_VERSION, report.model_dump_json(),
                                asdict(result.figures()), [f.code for f in report.flags],
                                self.now(), result.events())
        log.info("night %d (%s %s) analysed (%s rules)", night.id, night.subject_id,
                 night.date, rules, extra=_about(night))
        if isinstance(self.samples, FiguresSink):
            self._put_figures(self.samples, night, subject, asdict(result.figures()))
        return result

    @staticmethod
    def _put_figures(sink: FiguresSink, night: NightRecord, subject: Subject | None,
                     figures: dict[str, float | int | str | None]) -> None:
        """The night's trend row beside the samples (for Grafana), at the night's local noon;
        a failure is logged, not fatal: the report is stored, and re-analysis writes it again."""
        tz = ZoneInfo(subject.time_zone if subject is not None else "UTC")
        noon = datetime.combine(night.date, datetime_time(12), tz).timestamp()
        try:
            sink.put_night_figures(night.subject_id, noon, {
                **figures, "night_id": night.id, "algorithm_version": ALGORITHM_VERSION})
        except LimbwatchError as exc:
            log.warning("night %d: its figures were not written beside the samples: %s",
                        night.id, exc, extra=_about(night))


def _about(night: NightRecord) -> dict[str, object]:
    """The context of a log line about a night (`limbwatch.logs`)."""
    return {"night": night.id, "subject": night.subject_id}


async def run_service(service: AnalysisService, stop: asyncio.Event,
                      poll_s: float = POLL_S) -> None:
    """Poll until `stop` is set; a store that is down is retried with backoff, and no single
    night's failure ends the service."""
    delay = poll_s
    while not stop.is_set():
        try:
            await asyncio.to_thread(service.poll)
            delay = poll_s
        except Unavailable as exc:
            log.warning("%s; retrying in %.0f s", exc, delay)
            delay = min(2 * delay, MAX_BACKOFF_S)
        except Exception:  # a bug in one round must not end the service
            log.exception("analysis round failed; retrying in %.0f s", delay)
            delay = min(2 * delay, MAX_BACKOFF_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
