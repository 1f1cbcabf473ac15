"""deploy/grafana/limbwatch.json charts only what the services export: every Prometheus metric
its queries name is one the gateway, the worker or the API serves, and every InfluxDB field one
the analysis service writes to the `nights` measurement."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry

import api.metrics
import worker.service
from analysis.result import NightFigures
from ingest.central import SensorStatus
from ingest.metrics import GatewayCollector

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "limbwatch.json"
assert api.metrics and worker.service  # their metrics are registered on import


def exported() -> set[str]:
    """The sample names of every limbwatch metric family (a histogram's _bucket, _count and
    _sum even before its first observation)."""
    gateway = CollectorRegistry()
    gateway.register(GatewayCollector(lambda: [SensorStatus("kid", "left", "LW1")], lambda: 0,
                                      lambda: 0.0))
    suffixes = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("_total",),
                "gauge": ("",)}
    return {family.name + suffix for registry in (REGISTRY, gateway)
            for family in registry.collect() if family.name.startswith("limbwatch_")
            for suffix in suffixes.get(family.type, ("",))}


def test_every_panel_queries_what_the_services_export() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    targets = [(p["datasource"]["type"], t) for p in dashboard["panels"] for t in p["targets"]]
    prometheus = [t["expr"] for kind, t in targets if kind == "prometheus"]
    influx = [t["query"] for kind, t in targets if kind == "influxdb"]
    assert len(prometheus) >= 10 and len(influx) >= 3
    names = exported()
    used = {n for expr in prometheus for n in re.findall(r"limbwatch_[a-z_]+", expr)}
    assert used and used <= names, used - names
    for family in ("gateway_packets", "gateway_spool_backlog", "gateway_store_write",
                   "analysis_duration", "analysis_failures", "http_request_duration"):
        assert any(family in n for n in used), family
    fields = {f.name for f in dataclasses.fields(NightFigures)}
    for query in influx:
        (field,) = re.findall(r'SELECT "(\w+)" FROM "nights"', query)
        assert field in fields, field
