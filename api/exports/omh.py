"""Open mHealth `omh:sleep-episode` 1.1 data point (header and body) for the night's main sleep.

Property names and units follow `schema/omh/sleep-episode-1.1.json` of openmhealth/schemas
(commit 36078a8, 2024): `effective_time_frame` (required; a `time_interval` from the first sleep
epoch to the end of the last one: "initial sleep onset" to "final awakening"),
`latency_to_sleep_onset`, `total_sleep_time`, `wake_after_sleep_onset` (duration-unit-values in
`min`), `number_of_awakenings`, `is_main_sleep`, `sleep_maintenance_efficiency_percentage`
(unit `%`: sleep time over the episode's duration). The header follows `header-1.2.json`.

What stands in for what the sensor cannot know: bedtime is taken as the first epoch with worn
data (so the latency is "sensor on to sleep"); `latency_to_arising` is left out. The episode is
the night's one sleep period (onset to final awakening), so `is_main_sleep` is true; naps are
not split off.
"""

from __future__ import annotations

import json
import uuid

from analysis.result import NightResult
from analysis.sleep import EPOCH_S
from limbwatch.errors import Conflict
from limbwatch.report import iso_ms
from limbwatch.store.records import Subject

SCHEMA_ID = {"namespace": "omh", "name": "sleep-episode", "version": "1.1"}


def sleep_episode_json(result: NightResult, *, subject: Subject, algorithm_version: str,
                       created: float) -> str:
    """The data point as JSON text; `created` (Unix s) is its creation time.

    The header id is a UUID derived from the subject, the night's start and the algorithm
    version, so exporting the same night again gives the same id. Conflict if no sleep was
    scored.
    """
    s = result.sleep
    if s.onset_epoch is None or s.offset_epoch is None:
        raise Conflict("no sleep was scored in this night, so there is no sleep episode")
    onset = result.start + s.onset_epoch * EPOCH_S
    wake = result.start + (s.offset_epoch + 1) * EPOCH_S
    worn = next(k for k, c in enumerate(result.epochs) if c != "N")
    body = {
        "effective_time_frame": {
            "time_interval": {"start_date_time": iso_ms(onset), "end_date_time": iso_ms(wake)},
        },
        "latency_to_sleep_onset": _minutes((s.onset_epoch - worn) * EPOCH_S / 60),
        "total_sleep_time": _minutes(s.total_sleep_min),
        "wake_after_sleep_onset": _minutes(s.waso_min),
        "number_of_awakenings": s.awakenings,
        "is_main_sleep": True,
        "sleep_maintenance_efficiency_percentage": {
            "value": round(100 * s.total_sleep_min * 60 / (wake - onset), 1), "unit": "%",
        },
    }
    name = f"limbwatch:{subject.id}:{iso_ms(result.start)}:sleep-episode:{algorithm_version}"
    header = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "creation_date_time": iso_ms(created),
        "schema_id": SCHEMA_ID,
        "acquisition_provenance": {"source_name": f"limbwatch {algorithm_version}",
                                   "modality": "sensed"},
        "user_id": subject.id,
    }
    return json.dumps({"header": header, "body": body}, indent=2) + "\n"


def _minutes(value: float) -> dict[str, float | str]:
    return {"value": round(value, 1), "unit": "min"}
