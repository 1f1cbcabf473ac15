"""A store for the dashboard's browser tests and benchmark: a demo-like night (the demo rig's
scenario and seed, two legs, with 10 minutes lost from the left leg) as the latest of 14
analysed nights (the 13 before it shorter, of several scenarios), and a young baby's night,
each analysed by the analysis service once its data is in, as on the morning after."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from test_store import SIDES, T0, sim_chunks

from api.auth import make_token
from firmware_sim.night import simulate_night
from firmware_sim.scenario import load_scenario
from limbwatch.store.records import SensorAssignment, Subject
from limbwatch.store.samples import Chunk
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore
from worker.service import AnalysisService

ZONE = "Europe/London"
KID = Subject("kid", "Sam", date(2018, 11, 1), ZONE,  # 8 years old, as in mild_plms
              (SensorAssignment("LW0001L", "left"), SensorAssignment("LW0002R", "right")))
BABY = Subject("baby", "Ada", date(2026, 10, 5), ZONE,  # about 6 weeks old on the night
               (SensorAssignment("LW0003L", "left"), SensorAssignment("LW0004R", "right")))
GAP = (T0 + 2 * 3600.0, T0 + 2 * 3600.0 + 600.0)  # lost from the demo night's left leg
EARLIER = ("mild_plms", "healthy_child", "mild_plms", "unilateral_tremor", "mild_plms",
           "fragmented_sleep", "mild_plms", "healthy_child", "severe_plms", "mild_plms",
           "nonwear_one_sensor", "mild_plms", "healthy_child")  # newest first


@dataclass
class DashboardWorld:
    path: Path
    night: int  # the demo-like night
    night_end: float  # Unix s of its last sample
    baby_night: int
    tokens: dict[str, str]  # caregiver (of kid), clinician (kid shared), admin -> secret


def _chunks(subject: Subject, scenario: str, seed: int, start: float, hours: float,
            session: int) -> list[Chunk]:
    sim = simulate_night(load_scenario(scenario), seed, start=start, duration_h=hours)
    serial = {s.side: s.serial for s in subject.sensors}
    out = []
    for side in SIDES:
        if side in sim.legs:
            out += sim_chunks(sim.legs[side], side, subject=subject.id, device=serial[side],
                              session=session)
    return out


def build_dashboard_world(path: Path, hours: float = 9.0,
                          earlier_hours: float = 2.0) -> DashboardWorld:
    """The demo-like night lasts `hours`, the 13 nights before it `earlier_hours` each."""
    samples, records = SqliteSampleStore(path), SqliteRecordStore(path)
    for subject in (KID, BABY):
        records.put_subject(subject)
    now = T0 + 3 * 86400.0
    service = AnalysisService(samples, records, now=lambda: now)

    def night_of(chunks: list[Chunk]) -> None:
        """Store one night's data and let the service analyse it, as on the morning after."""
        samples.write_chunks(chunks)
        service.poll()
        for subject in (KID, BABY):
            for n in records.nights(subject.id, limit=1):
                records.mark_ended(n.id)
        service.poll()

    for k, scenario in reversed(list(enumerate(EARLIER, start=1))):
        night_of(_chunks(KID, scenario, k, T0 - k * 86400.0, earlier_hours, 1 + k))
    night_of([c for c in _chunks(KID, "mild_plms", 7, T0, hours, 1)
              if not (c.side == "left" and GAP[0] <= c.t0 < GAP[1])])
    night_of(_chunks(BABY, "healthy_infant", 3, T0, 2.0, 1))
    nights = records.nights("kid") + records.nights("baby")
    assert len(nights) == len(EARLIER) + 2
    assert all(n.status == "ready" for n in nights), [(n.date, n.status) for n in nights]
    latest = records.nights("kid", limit=1)[0]
    tokens = {}
    for name, role, subject in (("caregiver", "caregiver", "kid"), ("dr-lee", "clinician", None),
                                ("admin", "admin", None)):
        secret, token = make_token(name, role, subject, now)  # type: ignore[arg-type]
        records.put_token(token)
        tokens[name] = secret
    records.put_share("kid", "dr-lee")
    world = DashboardWorld(path, latest.id, latest.end, records.nights("baby")[0].id, tokens)
    samples.close()
    records.close()
    return world
