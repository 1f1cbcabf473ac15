"""A store for the API tests: two children with an analysed simulated hour each, a night
without a report, and a token of every kind the authorisation matrix needs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from test_store import SIDES, T0, leg_chunks, sim_chunks

from api.auth import make_token
from firmware_sim.night import simulate_night
from firmware_sim.scenario import load_scenario
from limbwatch.store.nights import refresh_nights
from limbwatch.store.records import SensorAssignment, Subject
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore
from worker.service import AnalysisService

NOW = T0 + 3 * 86400.0  # the store's clock in the tests
KID = Subject("kid", "Kid", None, "UTC",
              (SensorAssignment("LW-left", "left"), SensorAssignment("LW-right", "right")))
OTHER = Subject("other", "Other", None, "UTC")
WHO = ("caregiver", "other_caregiver", "clinician_shared", "clinician_unshared", "revoked",
       "admin", "gateway")


@dataclass
class World:
    path: Path
    night: int  # kid's analysed night
    waiting: int  # kid's later night, without a report
    other_night: int  # the other child's analysed night
    tokens: dict[str, str]  # WHO -> secret


def build_world(path: Path) -> World:
    samples, records = SqliteSampleStore(path), SqliteRecordStore(path)
    records.put_subject(KID)
    records.put_subject(OTHER)
    sim = simulate_night(load_scenario("mild_plms"), 4, duration_h=1.0)
    for side in SIDES:
        chunks = sim_chunks(sim.legs[side], side)
        samples.write_chunks(chunks)
        samples.write_chunks([dataclasses.replace(c, subject="other", device=f"LW-o-{side}")
                              for c in chunks])
    service = AnalysisService(samples, records, now=lambda: NOW)
    service.poll()
    (night,) = records.nights("kid")
    (other,) = records.nights("other")
    records.mark_ended(night.id)
    records.mark_ended(other.id)
    assert sorted(service.poll()) == [night.id, other.id]
    samples.write_chunks(leg_chunks("left", 100, t0=T0 + 86400.0, session=2))

    (waiting,) = [n for n in refresh_nights(samples, records, KID, NOW) if n.id != night.id]
    roles = {"caregiver": ("caregiver", "kid"), "other_caregiver": ("caregiver", "other"),
             "clinician_shared": ("clinician", None), "clinician_unshared": ("clinician", None),
             "revoked": ("caregiver", "kid"), "admin": ("admin", None),
             "gateway": ("gateway", None)}
    tokens = {}
    for who, (role, subject) in roles.items():
        secret, token = make_token(who, role, subject, NOW)  # type: ignore[arg-type]
        records.put_token(token)
        tokens[who] = secret
    records.put_share("kid", "clinician_shared")
    records.put_share("kid", "gateway")  # kid's home gateway
    records.revoke_token("revoked", NOW)
    samples.close()
    records.close()
    return World(path, night.id, waiting.id, other.id, tokens)
