"""What the API keeps between requests never outlives a change: tokens, shares and reports are
remembered by the record store only while the file is unchanged (`PRAGMA data_version`), so a
change made through another connection (`limbwatch token revoke`, another server process, the
analysis service) counts on the very next request; answers are compressed for a client that
asks, and the signal's numbers are written short."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_world import NOW, World, build_world
from fastapi.testclient import TestClient
from starlette.requests import Request

from api.app import create_app
from api.context import Settings
from api.encoding import accepts_gzip
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore

PLAIN = {"Accept-Encoding": "identity"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("cache") / "limbwatch.db")


@pytest.fixture
def path(world: World, tmp_path: Path) -> Path:
    path = tmp_path / "limbwatch.db"
    shutil.copy(world.path, path)
    return path


@pytest.fixture
def client(path: Path) -> Iterator[TestClient]:
    samples, records = SqliteSampleStore(path), SqliteRecordStore(path)
    app = create_app(samples, records, now=lambda: NOW,
                     settings=Settings(auth_failures_per_min=10_000))
    with TestClient(app) as c:
        yield c
    samples.close()
    records.close()


def auth(world: World, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[who]}"}


def test_a_token_revoked_elsewhere_is_refused_on_the_next_request(
        client: TestClient, world: World, path: Path) -> None:
    url = f"/api/v1/nights/{world.night}/report"
    for _ in range(3):  # remembered by now
        assert client.get(url, headers=auth(world, "caregiver")).status_code == 200
    with SqliteRecordStore(path) as other:  # as `limbwatch token revoke` does
        other.revoke_token("caregiver", NOW)
    assert client.get(url, headers=auth(world, "caregiver")).status_code == 401


def test_a_share_taken_back_elsewhere_counts_on_the_next_request(
        client: TestClient, world: World, path: Path) -> None:
    url = f"/api/v1/nights/{world.night}"
    assert client.get(url, headers=auth(world, "clinician_shared")).status_code == 200
    assert client.get(url, headers=auth(world, "clinician_shared")).status_code == 200
    with SqliteRecordStore(path) as other:  # another server process
        other.delete_share("kid", "clinician_shared")
    assert client.get(url, headers=auth(world, "clinician_shared")).status_code == 404
    with SqliteRecordStore(path) as other:
        other.put_share("kid", "clinician_shared")
    assert client.get(url, headers=auth(world, "clinician_shared")).status_code == 200


def test_a_share_taken_back_through_this_api_counts_at_once(
        client: TestClient, world: World) -> None:
    url = f"/api/v1/nights/{world.night}"
    assert client.get(url, headers=auth(world, "clinician_shared")).status_code == 200
    assert client.delete("/api/v1/subjects/kid/shares/clinician_shared",
                         headers=auth(world, "caregiver")).status_code == 204
    assert client.get(url, headers=auth(world, "clinician_shared")).status_code == 404


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_report_stored_elsewhere_is_served_on_the_next_request(
        client: TestClient, world: World, path: Path, encoding: str) -> None:
    url = f"/api/v1/nights/{world.night}/report"
    headers = {**auth(world, "caregiver"), "Accept-Encoding": encoding}
    first = client.get(url, headers=headers)
    assert first.status_code == 200 and client.get(url, headers=headers).json() == first.json()
    with SqliteRecordStore(path) as other:  # the analysis service in its own process
        stored = other.report(world.night)
        night = other.night(world.night)
        assert stored is not None and night is not None
        report = {**json.loads(stored[1]), "note": "re-analysed"}
        other.put_report(world.night, "9.9.9", json.dumps(report), night.figures, night.flags,
                         NOW)
    again = client.get(url, headers=headers).json()
    assert again == {"algorithm_version": "9.9.9", **report}


def test_answers_are_gzip_for_a_client_that_asks(client: TestClient, world: World) -> None:
    for url in (f"/api/v1/nights/{world.night}/report",
                f"/api/v1/nights/{world.night}/signal?side=left&points=500"):
        plain = client.get(url, headers={**auth(world, "caregiver"), **PLAIN})
        assert "content-encoding" not in plain.headers
        packed = client.get(url, headers={**auth(world, "caregiver"),
                                          "Accept-Encoding": "gzip"})
        assert packed.headers["content-encoding"] == "gzip"
        assert packed.headers["vary"] == plain.headers["vary"] == "Accept-Encoding"
        assert int(packed.headers["content-length"]) < len(plain.content) / 3
        assert packed.json() == plain.json()  # httpx took the gzip off


def test_signal_numbers_are_written_to_four_decimals(client: TestClient, world: World) -> None:
    got = client.get(f"/api/v1/nights/{world.night}/signal?side=left&points=500",
                     headers={**auth(world, "caregiver"), **PLAIN})
    body = got.content.decode()
    numbers = re.findall(r"-?\d+\.\d+", body.split('"min"', 1)[1])
    assert numbers and max(len(n.split(".")[1]) for n in numbers) <= 4
    data = got.json()
    assert len(data["min"]) == len(data["time"]) and len(data["min"][0]) == 3


@pytest.mark.parametrize(("header", "expected"), [
    ("", False), ("gzip", True), ("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8", True),
    ("gzip;q=0", False), ("identity", False), ("*", True), ("deflate", False),
    ("GZIP", True), ("gzip;q=x", True),
])
def test_accept_encoding(header: str, expected: bool) -> None:
    request = Request({"type": "http", "headers": [(b"accept-encoding", header.encode())]})
    assert accepts_gzip(request) is expected


def test_the_gzip_is_a_plain_gzip_stream(client: TestClient, world: World) -> None:
    """What a client that decodes by hand gets: one gzip member, the same JSON inside."""
    url = f"/api/v1/nights/{world.night}/report"
    plain = client.get(url, headers={**auth(world, "caregiver"), **PLAIN}).content
    with client.stream("GET", url, headers={**auth(world, "caregiver"),
                                            "Accept-Encoding": "gzip"}) as packed:
        raw = b"".join(packed.iter_raw())
    assert gzip.decompress(raw) == plain
