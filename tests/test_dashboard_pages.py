"""The dashboard's pages and files over ASGI (no browser): log-in redirects, headers, the
vendored files, and the shares list the sharing page reads."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_world import NOW, World, build_world
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import COOKIE
from api.dashboard import STATIC
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("pages") / "limbwatch.db")


@pytest.fixture
def app_client(world: World, tmp_path: Path) -> Iterator[TestClient]:
    path = tmp_path / "limbwatch.db"
    shutil.copy(world.path, path)
    samples, records = SqliteSampleStore(path), SqliteRecordStore(path)
    yield TestClient(create_app(samples, records, now=lambda: NOW), follow_redirects=False)
    samples.close()
    records.close()


@pytest.mark.parametrize(("path", "target"), [
    ("/", "/login?next=%2F"), ("/live", "/login?next=%2Flive"),
    ("/specialist?subject=kid&night=1", "/login?next=%2Fspecialist%3Fsubject%3Dkid%26night%3D1"),
])
def test_pages_without_a_session_go_to_log_in(app_client: TestClient, path: str,
                                              target: str) -> None:
    answer = app_client.get(path)
    assert answer.status_code == 303 and answer.headers["location"] == target
    app_client.cookies.set(COOKIE, "not a token")
    assert app_client.get(path).headers["location"] == target


def test_a_page_knows_who_is_looking_and_allows_only_this_origin(app_client: TestClient,
                                                                 world: World) -> None:
    app_client.cookies.set(COOKIE, world.tokens["clinician_shared"])
    page = app_client.get("/specialist")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'data-role="clinician"' in page.text and 'data-own-subject=""' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe" not in policy
    assert "/static/vendor/uplot/uPlot.iife.min.js" in page.text
    assert "uPlot" not in app_client.get("/").text  # the morning view stays light


@pytest.mark.parametrize(("asked", "kept"), [
    ("/live", "/live"), ("//evil.example/x", "/"), ("https://evil.example/", "/"),
    ("/\\evil.example", "/"),
])
def test_log_in_returns_only_to_this_site(app_client: TestClient, asked: str, kept: str) -> None:
    page = app_client.get("/login", params={"next": asked})
    assert page.status_code == 200 and f'data-next="{kept}"' in page.text


def test_static_files_are_vendored_with_their_licence_and_gzipped(app_client: TestClient) -> None:
    uplot = app_client.get("/static/vendor/uplot/uPlot.iife.min.js",
                           headers={"Accept-Encoding": "gzip"})
    assert uplot.status_code == 200 and uplot.headers["content-encoding"] == "gzip"
    assert uplot.text.startswith("/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
    assert "MIT License" in (STATIC / "vendor" / "uplot" / "LICENSE").read_text()
    assert "1.6.32" in (STATIC / "vendor" / "README.md").read_text()
    for module in (STATIC / "js").glob("*.js"):  # no module reaches outside this origin
        text = module.read_text().replace('"http://www.w3.org/2000/svg"', "")
        assert "http://" not in text and "https://" not in text, module.name


def test_shares_are_listed_to_who_may_change_them(app_client: TestClient, world: World) -> None:
    def shares(who: str) -> tuple[int, object]:
        got = app_client.get("/api/v1/subjects/kid/shares",
                             headers={"Authorization": f"Bearer {world.tokens[who]}"})
        return got.status_code, got.json()

    assert shares("caregiver") == (200, [{"subject_id": "kid",
                                         "token_name": "clinician_shared"}])
    assert shares("admin")[0] == 200
    assert shares("clinician_shared")[0] == 403  # may read the child, not its sharing
    assert shares("other_caregiver")[0] == 403
    app_client.delete("/api/v1/subjects/kid/shares/clinician_shared",
                      headers={"Authorization": f"Bearer {world.tokens['caregiver']}"})
    assert shares("caregiver") == (200, [])
