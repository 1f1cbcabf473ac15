"""Issue 11's operational signals over real HTTP: `GET /healthz` (no token; 503 with the
failing check when the store cannot be used, as the image's HEALTHCHECK sees it) and `GET
/metrics` (Prometheus text: request latency by route template and status, the analysis
service's duration, failures and nights analysed)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from api_world import NOW, World, build_world
from conftest import Influxd
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from limbwatch.store.open import open_records, open_samples
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore
from worker.service import AnalysisService

ROOT = Path(__file__).resolve().parent.parent
REPORT_ROUTE = "/api/v1/nights/{night_id}/report"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("ops") / "limbwatch.db")


@pytest.fixture
def served(world: World, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The app under uvicorn on a free loopback port, in a thread, on a copy of the world;
    (its URL, the store file)."""
    path = tmp_path / "limbwatch.db"
    shutil.copy(world.path, path)
    samples, records = SqliteSampleStore(path), SqliteRecordStore(path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(samples, records, now=lambda: NOW)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}", path
    srv.should_exit = True
    thread.join(5)
    samples.close()
    records.close()


def image_healthcheck(url: str) -> int:
    """The exit status of the Dockerfile's HEALTHCHECK command, pointed at `url`."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    (code,) = re.findall(r'HEALTHCHECK .*CMD \["python", "-c", "(.+)"\]', text)
    code = code.replace("http://127.0.0.1:8000", url)
    return subprocess.run([sys.executable, "-c", code], capture_output=True,
                          timeout=30).returncode


def samples_of(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """{sorted labels: value} of every sample called `name` in a Prometheus text page."""
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == name}


def test_healthz_answers_ok_and_503_once_the_store_is_gone(served: tuple[str, Path]) -> None:
    url, path = served
    ok = httpx.get(f"{url}/healthz")  # no token
    assert ok.status_code == 200
    assert ok.json() == {"status": "ok", "checks": {"records": "ok", "samples": "ok"}}
    assert image_healthcheck(url) == 0
    path.rename(path.with_name("moved.db"))  # the volume lost its file
    down = httpx.get(f"{url}/healthz")
    assert down.status_code == 503 and down.headers["retry-after"] == "5"
    body = down.json()
    assert body["status"] == "unavailable" and "deleted or replaced" in body["detail"]
    assert set(body["checks"]) == {"records", "samples"}
    assert all(why != "ok" for why in body["checks"].values())
    assert image_healthcheck(url) != 0


def test_metrics_count_requests_by_route_template_and_status(
        served: tuple[str, Path], world: World) -> None:
    url, _ = served
    auth = {"Authorization": f"Bearer {world.tokens['admin']}"}
    before = samples_of(httpx.get(f"{url}/metrics").text,
                        "limbwatch_http_request_duration_seconds_count")
    for _ in range(3):
        assert httpx.get(f"{url}/api/v1/nights/{world.night}/report",
                         headers=auth).status_code == 200
    assert httpx.get(f"{url}/api/v1/nights/999/report", headers=auth).status_code == 404
    assert httpx.get(f"{url}/no/such/page/{time.time()}").status_code == 404
    page = httpx.get(f"{url}/metrics")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    after = samples_of(page.text, "limbwatch_http_request_duration_seconds_count")

    def grew(route: str, status: str) -> float:
        key = (("method", "GET"), ("route", route), ("status", status))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew(REPORT_ROUTE, "200") == 3
    assert grew(REPORT_ROUTE, "404") == 1
    assert grew("<unmatched>", "404") == 1
    assert not any(dict(k)["route"].startswith("/no/") for k in after)  # templates only
    assert "/metrics" not in httpx.get(f"{url}/openapi.json").json()["paths"]


def test_metrics_show_the_analysis_service(served: tuple[str, Path], world: World) -> None:
    url, path = served
    names = ("limbwatch_analysis_duration_seconds_count", "limbwatch_nights_analysed_total",
             "limbwatch_analysis_failures_total")

    def figures() -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        text = httpx.get(f"{url}/metrics").text
        return {name: samples_of(text, name) for name in names}

    before = figures()
    with SqliteSampleStore(path) as samples, SqliteRecordStore(path) as records:
        service = AnalysisService(samples, records, now=lambda: NOW)
        night = records.night(world.night)
        assert night is not None
        assert service.analyse(night) is not None  # analysed again: a report stored
        assert service.analyse(night, fs=-1.0) is None  # a bad rate: the night fails
    after = figures()
    assert after[names[0]][()] - before[names[0]][()] == 2
    assert after[names[1]][()] - before[names[1]][()] == 1
    failed = (("reason", "failed"),)
    assert after[names[2]][failed] - before[names[2]][failed] == 1


def test_healthz_on_the_influxdb_store_names_the_part_that_is_down(
        own_influxd: Influxd, tmp_path: Path) -> None:
    """The compose stack's store: samples on InfluxDB, records in SQLite. With the server
    stopped, /healthz answers 503 and says that the samples cannot be read."""
    url = own_influxd.store_url(tmp_path / "records.db")
    samples, records = open_samples(url), open_records(url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(samples, records, now=lambda: NOW)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        while not srv.started:
            time.sleep(0.01)
        base = f"http://127.0.0.1:{port}"
        ok = httpx.get(f"{base}/healthz", timeout=60)
        assert ok.status_code == 200, ok.text
        assert ok.json()["checks"] == {"records": "ok", "samples": "ok"}
        own_influxd.stop()
        down = httpx.get(f"{base}/healthz", timeout=120)
        assert down.status_code == 503, down.text
        checks = down.json()["checks"]
        assert checks["records"] == "ok" and checks["samples"] != "ok"
    finally:
        srv.should_exit = True
        thread.join(5)
        samples.close()
        records.close()
