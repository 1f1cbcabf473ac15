"""The export routes over the API: each file read back, 409 without a current report."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pyedflib
import pytest
from api_world import NOW, World, build_world
from fastapi.testclient import TestClient

from api.app import create_app
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("exports") / "limbwatch.db")


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    samples, records = SqliteSampleStore(world.path), SqliteRecordStore(world.path)
    with TestClient(create_app(samples, records, now=lambda: NOW)) as c:
        c.headers["Authorization"] = f"Bearer {world.tokens['clinician_shared']}"
        yield c
    samples.close()
    records.close()


def test_exports_agree_with_the_stored_report(client: TestClient, world: World,
                                              tmp_path: Path) -> None:
    base = f"/api/v1/nights/{world.night}"
    report = client.get(f"{base}/report").json()
    edf = client.get(f"{base}/export.edf")
    assert edf.status_code == 200 and edf.headers["content-type"] == "application/edf"
    assert "attachment" in edf.headers["content-disposition"]
    path = tmp_path / "night.edf"
    path.write_bytes(edf.content)
    with pyedflib.EdfReader(str(path)) as reader:
        labels = reader.getSignalLabels()
        onsets, _, texts = reader.readAnnotations()
    assert len(labels) == 6
    lm_marks = [t for t in texts if t.startswith("LM")]
    assert len(lm_marks) == len(report["leg_movements"])
    assert len(onsets) >= len(lm_marks)

    events = client.get(f"{base}/events.csv")
    assert events.status_code == 200 and events.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(line for line in io.StringIO(events.text)
                               if not line.startswith("#")))
    assert sum(r["type"] == "lm" for r in rows) == len(report["leg_movements"])
    epochs = client.get(f"{base}/epochs.csv").text
    epoch_rows = [line for line in epochs.splitlines() if line and not line.startswith("#")]
    assert len(epoch_rows) - 1 == len(report["sleep"]["epochs"])

    pdf = client.get(f"{base}/report.pdf", params={"page": "letter"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    omh = client.get(f"{base}/sleep-episode.json")
    assert omh.status_code == 200
    body = json.loads(omh.text)["body"]
    assert body["total_sleep_time"]["value"] == pytest.approx(report["sleep"]["total_sleep_min"])


def test_no_export_without_a_report_of_the_running_algorithm(
    client: TestClient, world: World,
) -> None:
    got = client.get(f"/api/v1/nights/{world.waiting}/export.edf")
    assert got.status_code == 409 and "no report yet" in got.json()["detail"]
    with SqliteRecordStore(world.path) as records:
        stored = records.report(world.night)
        assert stored is not None
        night = records.night(world.night)
        assert night is not None
        events = records.night_events(world.night)
        records.put_report(world.night, "0.9.0", stored[1], dict(night.figures),
                           list(night.flags), NOW, events)
        try:
            got = client.get(f"/api/v1/nights/{world.night}/events.csv")
            assert got.status_code == 409 and "re-analysis" in got.json()["detail"]
        finally:  # the other tests of the module see the current report again
            records.put_report(world.night, stored[0], stored[1], dict(night.figures),
                               list(night.flags), NOW, events)
