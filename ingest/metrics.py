"""The gateway's Prometheus metrics (`limbwatch ingest --metrics-port P`).

Per sensor (labels subject, side, serial), read from `Ingester.status()` at each scrape, so
nothing is counted twice: packets received, duplicates, bad packets, backfilled packets, gaps
still asked for and packets lost for good, connects, connected, battery, the clock's drift and
the age of the newest sample (on the gateway's clock). For the gateway: the spool backlog
(chunks waiting for the store) and the store write latency (`STORE_WRITE`, observed by
`ingest.spool.drain` for every batch it writes, failed ones included).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:  # ingest.spool imports STORE_WRITE from here
    from ingest.central import SensorStatus

STORE_WRITE = Histogram(
    "limbwatch_gateway_store_write_seconds",
    "Writes of a batch of chunks (and pending clock models) from the spool into the store, "
    "by outcome: ok, unavailable (retried), refused (bad data, dropped)",
    ["outcome"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
for _outcome in ("ok", "unavailable", "refused"):
    STORE_WRITE.labels(_outcome)

_LABELS = ["subject", "side", "serial"]
_COUNTERS = (  # (metric name, SensorStatus field, help)
    ("limbwatch_gateway_packets", "packets", "Data packets received (live and backfilled)"),
    ("limbwatch_gateway_duplicate_packets", "duplicates", "Packets received again (dropped)"),
    ("limbwatch_gateway_bad_packets", "bad_packets", "Packets that failed to decode (dropped; "
     "asked for again from the sensor's flash)"),
    ("limbwatch_gateway_backfilled_packets", "backfilled", "Packets fetched from flash"),
    ("limbwatch_gateway_lost_packets", "gaps_lost", "Packets the sensor no longer had"),
    ("limbwatch_gateway_connects", "connects", "Connections made to the sensor"),
)


class GatewayCollector(Collector):
    """Metrics of one running gateway: `status()` gives its sensors, `backlog()` the chunks in
    its spool, `now()` the gateway's clock (Unix s)."""

    def __init__(self, status: Callable[[], list[SensorStatus]], backlog: Callable[[], int],
                 now: Callable[[], float]) -> None:
        self._status, self._backlog, self._now = status, backlog, now

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        sensors = self._status()
        now = self._now()
        for name, field, text in _COUNTERS:
            family = CounterMetricFamily(name, text, labels=_LABELS)
            for s in sensors:
                family.add_metric([s.subject, s.side, s.serial], getattr(s, field))
            yield family
        gauges = (
            ("limbwatch_gateway_gaps_open", "Packets missing and still being asked for",
             lambda s: s.gaps_open),
            ("limbwatch_gateway_connected", "1 while the sensor is connected",
             lambda s: int(s.connected)),
            ("limbwatch_gateway_battery_percent", "The sensor's battery (NaN before its first "
             "status)", lambda s: float("nan") if s.battery_pct is None else s.battery_pct),
            ("limbwatch_gateway_clock_drift_ppm", "The sensor clock's rate error as fitted "
             "(positive: fast)", lambda s: s.drift_ppm),
            ("limbwatch_gateway_newest_sample_age_seconds", "Seconds since the newest sample "
             "received (NaN before the first)", lambda s: float("nan")
             if s.last_packet_time is None else now - s.last_packet_time),
        )
        for name, text, value in gauges:
            gauge = GaugeMetricFamily(name, text, labels=_LABELS)
            for s in sensors:
                gauge.add_metric([s.subject, s.side, s.serial], value(s))
            yield gauge
        yield GaugeMetricFamily("limbwatch_gateway_spool_backlog_chunks",
                                "Chunks in the spool, waiting for the store", value=self._backlog())
