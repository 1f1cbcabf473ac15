"""Open mHealth sleep episode: the data point's required fields, and the report's figures.

Property names, units and required fields as in openmhealth/schemas `sleep-episode-1.1.json`,
`header-1.2.json`, `duration-unit-value-1.0.json` and `time-interval-1.0.json`.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import pytest
from test_exports_nights import NIGHTS, SUBJECT, VERSION, night

from analysis.result import NightResult
from analysis.sleep import EPOCH_S, summarize
from api.exports.omh import sleep_episode_json
from limbwatch.errors import Conflict
from limbwatch.report import parse_iso

DURATION_UNITS = {"ps", "ns", "us", "ms", "sec", "min", "h", "d", "wk", "Mo", "yr"}
BODY = {"effective_time_frame", "latency_to_sleep_onset", "latency_to_arising",
        "total_sleep_time", "wake_after_sleep_onset", "number_of_awakenings", "is_main_sleep",
        "sleep_maintenance_efficiency_percentage"}  # every property of sleep-episode 1.1


def episode(result: NightResult) -> dict[str, Any]:
    return json.loads(sleep_episode_json(result, subject=SUBJECT, algorithm_version=VERSION,
                                         created=result.end + 600))


@pytest.mark.parametrize("name", NIGHTS)
def test_the_data_point_has_the_required_fields_and_the_reports_figures(name: str) -> None:
    r = night(name).result
    point = episode(r)
    assert set(point) == {"header", "body"}
    header, body = point["header"], point["body"]
    assert {"id", "creation_date_time", "schema_id"} <= set(header)
    assert header["schema_id"] == {"namespace": "omh", "name": "sleep-episode", "version": "1.1"}
    uuid.UUID(header["id"])
    assert parse_iso(header["creation_date_time"]) == pytest.approx(r.end + 600, abs=1e-3)
    assert header["acquisition_provenance"]["source_name"]  # required there
    assert header["acquisition_provenance"]["modality"] in {"sensed", "self-reported"}
    assert header["user_id"] == SUBJECT.id

    assert set(body) <= BODY and "effective_time_frame" in body
    interval = body["effective_time_frame"]["time_interval"]
    report = r.to_report().sleep
    assert interval["start_date_time"] == report.onset
    assert report.offset is not None
    assert parse_iso(interval["end_date_time"]) == pytest.approx(parse_iso(report.offset)
                                                                 + EPOCH_S)
    for key in ("latency_to_sleep_onset", "total_sleep_time", "wake_after_sleep_onset"):
        assert body[key]["unit"] in DURATION_UNITS and isinstance(body[key]["value"], float)
    assert body["total_sleep_time"] == {"value": round(report.total_sleep_min, 1), "unit": "min"}
    assert body["wake_after_sleep_onset"]["value"] == round(report.waso_min, 1)
    assert body["number_of_awakenings"] == report.awakenings
    assert body["is_main_sleep"] is True
    span_min = (parse_iso(interval["end_date_time"]) - parse_iso(interval["start_date_time"])) / 60
    efficiency = body["sleep_maintenance_efficiency_percentage"]
    assert efficiency["unit"] == "%"
    assert efficiency["value"] == pytest.approx(100 * report.total_sleep_min / span_min, abs=0.05)
    first_worn = r.start + next(k for k, c in enumerate(r.epochs) if c != "N") * EPOCH_S
    assert body["latency_to_sleep_onset"]["value"] == pytest.approx(
        (parse_iso(report.onset) - first_worn) / 60, abs=0.05)


def test_the_same_night_gets_the_same_id_and_a_night_without_sleep_none() -> None:
    r = night("plms").result
    assert episode(r)["header"]["id"] == episode(r)["header"]["id"]
    awake = "W" * len(r.epochs)
    with pytest.raises(Conflict, match="no sleep"):
        episode(dataclasses.replace(r, epochs=awake, sleep=summarize(awake)))
