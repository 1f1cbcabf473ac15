"""Every route x every kind of caller, with the status each must get (ASGI, no server)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_world import NOW, WHO, World, build_world
from fastapi.testclient import TestClient

from api.app import create_app
from api.context import Settings
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore

CSV = "time,x,y,z\n" + "".join(f"{1795203000 + i * 0.04:.2f},0,0,1\n" for i in range(2000))

# (method, path, body kind) -> expected status for WHO order plus "none"
R = 200
READ = {"none": 401, "caregiver": R, "other_caregiver": 403, "clinician_shared": R,
        "clinician_unshared": 403, "revoked": 401, "admin": R, "gateway": 403}


def _night(ok: int) -> dict[str, int]:
    """A night's route: a night the caller may not see is 404 (ids are sequential)."""
    return {**READ, "other_caregiver": 404, "clinician_unshared": 404, "gateway": 404,
            **{k: ok for k in ("caregiver", "clinician_shared", "admin")}}


def _write(ok: int, night: bool = False) -> dict[str, int]:
    hidden = 404 if night else 403
    return {**READ, "other_caregiver": hidden, "clinician_unshared": hidden,
            "gateway": hidden, "clinician_shared": 403, "caregiver": ok, "admin": ok}


def _ingest(ok: int) -> dict[str, int]:
    """A home gateway's route: only the gateway given the subject, and the admin."""
    return {"none": 401, "revoked": 401, "gateway": ok, "admin": ok,
            **{k: 403 for k in ("caregiver", "other_caregiver", "clinician_shared",
                                "clinician_unshared")}}


CHUNK = {"subject": "kid", "side": "left", "device": "LW-left", "session": 9, "seq": 0,
         "t0": 1795203000.0, "dt": 0.02, "counts_per_g": 4096, "ticks": None,
         "rate_hz": 50, "counts": "AAABAAIA"}  # one sample: 0, 1, 2
STATUS = {"serial": "LW-left", "subject_id": "kid", "side": "left", "time": 1795203000.0,
          "connected": True, "battery_pct": 90.0, "last_packet": None, "on_ankle": None,
          "last_movement": None}


ROUTES = [
    ("GET", "/api/v1/subjects", None, {**READ, "other_caregiver": R, "clinician_unshared": R,
                                       "gateway": R}),  # (those it may see: none)
    ("GET", "/api/v1/subjects/kid/nights", None, READ),
    ("GET", "/api/v1/nights/{night}", None, _night(R)),
    ("GET", "/api/v1/nights/{night}/report", None, _night(R)),
    ("GET", "/api/v1/nights/{night}/events", None, _night(R)),
    ("GET", "/api/v1/nights/{night}/signal?side=left&points=100", None, _night(R)),
    *[("GET", f"/api/v1/nights/{{night}}/{name}", None, _night(R))
      for name in ("export.edf", "events.csv", "epochs.csv", "report.pdf",
                   "sleep-episode.json")],
    ("POST", "/api/v1/nights/{night}/reanalyze", None, _write(202, night=True)),
    ("POST", "/api/v1/subjects/kid/night-ended", None, _write(202)),
    ("GET", "/api/v1/subjects/kid/trends?from=2026-11-01&to=2026-11-30", None, READ),
    ("GET", "/api/v1/subjects/kid/journal", None, READ),
    ("POST", "/api/v1/subjects/kid/journal", {"kind": "fever", "text": "38.2"}, _write(201)),
    ("GET", "/api/v1/subjects/kid/shares", None, _write(R)),
    ("POST", "/api/v1/subjects/kid/shares", {"token_name": "clinician_unshared"}, _write(201)),
    ("DELETE", "/api/v1/subjects/kid/shares/clinician_shared", None, _write(204)),
    ("GET", "/api/v1/live?once=1", None, {**READ, "other_caregiver": R,
                                          "clinician_unshared": R, "gateway": R}),
    # a clinician brings recordings from elsewhere into a shared subject, and writes nothing else
    ("POST", "/api/v1/imports", "csv", {**_write(201), "clinician_shared": 201}),
    ("DELETE", "/api/v1/session", None, {**READ, "other_caregiver": 204,
                                         "clinician_unshared": 204, "caregiver": 204,
                                         "clinician_shared": 204, "admin": 204,
                                         "gateway": 204}),
    ("GET", "/api/v1/gateway/subjects/kid", None, _ingest(R)),
    ("PUT", "/api/v1/gateway/subjects/kid/sensors", [{"serial": "LW-left", "side": "left"}],
     _ingest(204)),
    ("GET", "/api/v1/gateway/stored-seqs?device=LW-left&session=1", None, _ingest(R)),
    ("POST", "/api/v1/gateway/chunks", [CHUNK], _ingest(R)),
    ("PUT", "/api/v1/gateway/clock-models", [{"device": "LW-left", "session": 9, "model": {
        "segments": [[0, 1795203000.0, 1 / 32768]]}}], _ingest(204)),
    ("POST", "/api/v1/gateway/device-events", [{"subject": "kid", "side": None,
                                                "time": 1795203000.0, "kind": "gap",
                                                "detail": {}}], _ingest(R)),
    ("POST", "/api/v1/gateway/status", [STATUS], _ingest(R)),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("matrix") / "limbwatch.db")


@pytest.fixture
def client(world: World, tmp_path: Path) -> Iterator[TestClient]:
    path = tmp_path / "limbwatch.db"
    shutil.copy(world.path, path)  # writes of one case do not change the next
    samples, records = SqliteSampleStore(path), SqliteRecordStore(path)
    app = create_app(samples, records, now=lambda: NOW,
                     settings=Settings(auth_failures_per_min=10_000))
    with TestClient(app) as c:
        yield c
    samples.close()
    records.close()


@pytest.mark.parametrize("who", ["none", *WHO])
@pytest.mark.parametrize(("method", "path", "body", "expected"), ROUTES,
                         ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_authorisation_matrix(client: TestClient, world: World, who: str, method: str,
                              path: str, body: object, expected: dict[str, int]) -> None:
    headers = {} if who == "none" else {"Authorization": f"Bearer {world.tokens[who]}"}
    url = path.format(night=world.night)
    if body == "csv":
        got = client.post(url, headers=headers, data={"subject_id": "kid"},
                          files={"left": ("left.csv", CSV)})
    else:
        got = client.request(method, url, headers=headers, json=body)
    assert got.status_code == expected[who], got.text
    if got.status_code == 401:
        assert got.headers["WWW-Authenticate"].startswith("Bearer")


# routes that take no bearer token: the log-in itself (a token in the body, `test_api.py`) and
# what is served before it (health, metrics, the docs, the dashboard's pages and files)
UNGUARDED = {("POST", "/api/v1/session")}


def test_the_matrix_has_every_api_route(world: World) -> None:
    """A new /api/v1/ route cannot slip out of the matrix."""
    app = create_app(SqliteSampleStore(world.path), SqliteRecordStore(world.path))
    served = {(method.upper(), path) for path, methods in app.openapi()["paths"].items()
              if path.startswith("/api/v1/") for method in methods}

    def template(path: str) -> str:
        """A matrix path as its route's template: ids and query strings put back as names."""
        path = path.split("?")[0].replace("{night}", "{night_id}")
        return re.sub(r"/subjects/kid", "/subjects/{subject_id}",
                      re.sub(r"/shares/[a-z_]+$", "/shares/{token_name}", path))

    covered = {(m, template(p)) for m, p, _, _ in ROUTES} | UNGUARDED
    assert served - covered == set()
    assert covered - served == set()  # (and the templates above are right)
