"""What each route does, on a real store; the report and the live stream over real HTTP."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from api_world import NOW, World, build_world
from fastapi.testclient import TestClient
from test_store import T0

from api.app import create_app
from api.context import Settings
from api.signal import min_max_buckets
from limbwatch.report import iso_ms, parse_iso
from limbwatch.store.records import SensorStatus
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore
from worker.service import AnalysisService


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("api") / "limbwatch.db")


@pytest.fixture
def stores(world: World, tmp_path: Path) -> Iterator[tuple[SqliteSampleStore, SqliteRecordStore]]:
    path = tmp_path / "limbwatch.db"
    shutil.copy(world.path, path)
    samples, records = SqliteSampleStore(path), SqliteRecordStore(path)
    yield samples, records
    samples.close()
    records.close()


def client_on(stores: tuple[SqliteSampleStore, SqliteRecordStore], token: str,
              **settings: object) -> TestClient:
    app = create_app(*stores, now=lambda: NOW, settings=Settings(**settings))  # type: ignore[arg-type]
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def client(stores: tuple[SqliteSampleStore, SqliteRecordStore], world: World) -> TestClient:
    return client_on(stores, world.tokens["caregiver"])


@pytest.fixture
def server(stores: tuple[SqliteSampleStore, SqliteRecordStore]) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a thread."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(*stores, now=lambda: NOW, settings=Settings(live_poll_s=0.05))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(5)


def test_report_over_http_is_the_stored_report_with_its_version(
    server: str, world: World, stores: tuple[SqliteSampleStore, SqliteRecordStore],
) -> None:
    auth = {"Authorization": f"Bearer {world.tokens['caregiver']}"}
    got = httpx.get(f"{server}/api/v1/nights/{world.night}/report", headers=auth)
    stored = stores[1].report(world.night)
    assert got.status_code == 200 and stored is not None
    assert got.json() == {"algorithm_version": stored[0], **json.loads(stored[1])}
    before = httpx.get(f"{server}/api/v1/nights/{world.waiting}/report", headers=auth)
    assert before.status_code == 409 and "no report yet" in before.json()["detail"]
    assert httpx.get(f"{server}/healthz").json()["status"] == "ok"  # checks: test_ops.py


def test_night_summary_and_pages(client: TestClient, world: World) -> None:
    summary = client.get(f"/api/v1/nights/{world.night}").json()
    assert set(summary) == {"id", "subject_id", "date", "start", "end", "status", "coverage",
                            "total_sleep_min", "plm_index", "flags", "algorithm_version"}
    assert summary["status"] == "ready" and summary["plm_index"] is not None
    first = client.get("/api/v1/subjects/kid/nights?limit=1").json()
    assert [n["id"] for n in first["nights"]] == [world.waiting]  # newest first
    rest = client.get(f"/api/v1/subjects/kid/nights?limit=1&cursor={first['next_cursor']}")
    assert [n["id"] for n in rest.json()["nights"]] == [world.night]
    assert rest.json()["next_cursor"] is None
    assert client.get("/api/v1/subjects/kid/nights?cursor=%%%").status_code == 400
    assert client.get("/api/v1/subjects/kid/nights?limit=0").status_code == 422


def test_events_filter_by_type_and_time_and_include_the_journal(client: TestClient,
                                                                world: World) -> None:
    url = f"/api/v1/nights/{world.night}/events"
    every = client.get(url).json()
    assert {"lm", "jerk"} <= {e["type"] for e in every}
    lms = client.get(url, params={"type": "lm"}).json()
    assert lms and {e["type"] for e in lms} == {"lm"} and "in_sleep" in lms[0]
    assert len(lms) == sum(e["type"] == "lm" for e in every)
    assert client.get(url, params={"type": "dance"}).status_code == 422
    mid = lms[len(lms) // 2]["start"]
    later = client.get(url, params={"type": "lm", "start": mid}).json()
    assert 0 < len(later) < len(lms)
    bad = client.get(url, params={"start": "2026-11-21T00:00:00Z", "end": "2026-11-20T00:00:00Z"})
    assert bad.status_code == 400
    note = client.post("/api/v1/subjects/kid/journal",
                       json={"time": "2026-11-20T20:00:00.000Z", "kind": "shaking_seen",
                             "text": "left leg"})
    assert note.status_code == 201
    journal = client.get(url, params={"type": "journal"}).json()
    assert journal == [{"type": "journal", "start": "2026-11-20T20:00:00.000Z",
                        "end": "2026-11-20T20:00:00.000Z", "side": None,
                        "note_id": note.json()["id"], "kind": "shaking_seen", "text": "left leg"}]


def test_journal_round_trip_with_time_defaulting_to_now(client: TestClient) -> None:
    made = client.post("/api/v1/subjects/kid/journal", json={"kind": "supplement",
                                                           "text": "iron"}).json()
    assert made["time"] == time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(NOW))
    assert made in client.get("/api/v1/subjects/kid/journal").json()
    assert client.post("/api/v1/subjects/kid/journal", json={"kind": "x"}).status_code == 422


def test_a_lights_out_note_has_the_night_analysed_again_counting_latency_from_it(
    client: TestClient, stores: tuple[SqliteSampleStore, SqliteRecordStore], world: World,
) -> None:
    samples, records = stores
    report = client.get(f"/api/v1/nights/{world.night}/report").json()
    assert report["settling"]["latency_from"] == "first_worn_epoch"
    start = parse_iso(report["recording"]["start"])
    latency = report["settling"]["sleep_onset_latency_min"]
    client.post("/api/v1/subjects/kid/journal", json={"time": iso_ms(start + 30), "kind": "woke"})
    night = records.night(world.night)
    assert night is not None and not night.reanalyse  # other notes change no report
    at = start + min(60.0, latency * 30.0)
    made = client.post("/api/v1/subjects/kid/journal",
                       json={"time": iso_ms(at), "kind": "lights_out", "text": "in bed"})
    assert made.status_code == 201 and made.json()["kind"] == "lights_out"
    night = records.night(world.night)
    assert night is not None and night.reanalyse
    waiting = records.night(world.waiting)
    assert waiting is not None and not waiting.reanalyse  # another date, and no report yet
    assert world.night in AnalysisService(samples, records, now=lambda: NOW).poll()
    settling = client.get(f"/api/v1/nights/{world.night}/report").json()["settling"]
    assert settling["latency_from"] == "lights_out"
    assert parse_iso(settling["lights_out"]) == pytest.approx(at, abs=1e-3)
    assert settling["sleep_onset_latency_min"] == pytest.approx(latency - (at - start) / 60,
                                                                abs=0.01)


def test_signal_keeps_a_brief_spike_visible() -> None:
    t = T0 + np.arange(100_000) * 0.02
    accel = np.zeros((len(t), 3), np.float32)
    accel[:, 2] = 1.0
    accel[54_321, 0] = 3.5  # one sample: a jerk
    times, lows, highs = min_max_buckets(t, accel, T0, T0 + 2000.0, 500)
    assert len(times) == 500 and highs[:, 0].max() == np.float32(3.5)
    assert lows[:, 0].min() == 0.0


def test_signal_route_decimates_one_leg(client: TestClient, world: World,
                                        stores: tuple[SqliteSampleStore, SqliteRecordStore]
                                        ) -> None:
    got = client.get(f"/api/v1/nights/{world.night}/signal",
                     params={"side": "left", "points": 200}).json()
    assert got["side"] == "left" and 0 < len(got["time"]) <= 200
    assert len(got["min"]) == len(got["max"]) == len(got["time"])
    night = stores[1].night(world.night)
    assert night is not None
    raw = stores[0].read_samples("kid", "left", night.start, night.end + 1)
    assert max(m[0] for m in got["max"]) == pytest.approx(float(raw.accel[:, 0].max()), abs=1e-4)
    capped = client.get(f"/api/v1/nights/{world.night}/signal",
                        params={"side": "left", "points": 10**6}).json()
    assert len(capped["time"]) <= 5000


def test_trends_rows_and_range_limit(client: TestClient, world: World) -> None:
    rows = client.get("/api/v1/subjects/kid/trends",
                      params={"from": "2026-11-01", "to": "2026-11-30"}).json()
    assert [r["night_id"] for r in rows] == [world.night]  # the night without a report: none
    summary = client.get(f"/api/v1/nights/{world.night}").json()
    assert rows[0]["plm_index"] == summary["plm_index"]
    too_long = client.get("/api/v1/subjects/kid/trends",
                          params={"from": "2026-01-01", "to": "2026-11-30"})
    assert too_long.status_code == 400 and "100 days" in too_long.json()["detail"]
    backwards = client.get("/api/v1/subjects/kid/trends",
                           params={"from": "2026-11-30", "to": "2026-11-01"})
    assert backwards.status_code == 400


def _csv(t0: float, n: int, scale: float = 1.0) -> str:
    rng = np.random.default_rng(1)
    rows = [f"{t0 + i * 0.04:.3f},{x:.4f},{y:.4f},{scale + z:.4f}"
            for i, (x, y, z) in enumerate(rng.normal(0, 0.01, (n, 3)) * scale)]
    return "time,x,y,z\n" + "\n".join(rows) + "\n"


def test_import_makes_an_ended_night_and_warns(client: TestClient,
                                               stores: tuple[SqliteSampleStore,
                                                             SqliteRecordStore]) -> None:
    ok = client.post("/api/v1/imports", data={"subject_id": "kid"},
                     files={"left": ("a.csv", _csv(T0 + 10 * 86400, 3000))})
    assert ok.status_code == 201 and ok.json()["warnings"] == []
    night = stores[1].night(ok.json()["night_id"])
    assert night is not None and night.ended and night.status == "waiting"
    got = stores[0].read_samples("kid", "left", night.start, night.end + 1)
    assert len(got.time) == 3000 and got.fs == 25.0

    def warnings(**files: tuple[str, str]) -> list[str]:
        answer = client.post("/api/v1/imports", data={"subject_id": "kid"}, files=files)
        assert answer.status_code == 201, answer.text
        return list(answer.json()["warnings"])

    assert "m/s^2" in warnings(left=("ms2.csv", _csv(T0 + 20 * 86400, 3000, scale=9.80665)))[0]
    assert "Unix time" in warnings(left=("zero.csv", _csv(0.0, 3000)))[0]
    same = _csv(T0 + 30 * 86400, 3000)
    assert "same file" in warnings(left=("l.csv", same), right=("r.csv", same))[0]
    start, end = _csv(T0 + 40 * 86400, 2000), _csv(T0 + 40 * 86400 + 25 * 3600, 2000)
    long = warnings(left=("long.csv", start + end.split("\n", 1)[1]))  # a gap of 25 h
    assert "more than 24 h" in long[0]


def test_malformed_or_oversized_import_is_refused_with_the_command_line_message(
    stores: tuple[SqliteSampleStore, SqliteRecordStore], world: World,
) -> None:
    client = client_on(stores, world.tokens["caregiver"], max_upload_bytes=100_000)
    bad = client.post("/api/v1/imports", data={"subject_id": "kid"},
                      files={"left": ("night.csv", "time,x,y,z\n1795203000,0,0,1\n1,abc,0,1\n")})
    assert bad.status_code == 400
    assert bad.json()["detail"] == "night.csv line 3: x is not a number ('abc')"
    big = client.post("/api/v1/imports", data={"subject_id": "kid"},
                      files={"left": ("big.csv", _csv(T0, 5000))})
    assert big.status_code == 413


def live_events(server: str, token: str, headers: dict[str, str] | None = None
                ) -> list[dict[str, str]]:
    """The events of `GET /api/v1/live?once=1`, each as its fields (id, event, data)."""
    text = httpx.get(f"{server}/api/v1/live?once=1",
                     headers={"Authorization": f"Bearer {token}", **(headers or {})}).text
    return [dict(line.split(": ", 1) for line in block.splitlines())
            for block in text.strip().split("\n\n") if block]


def test_live_stream_alerts_after_the_confirm_delay_and_resumes(
    server: str, world: World, stores: tuple[SqliteSampleStore, SqliteRecordStore],
) -> None:
    records = stores[1]
    for k in range(4):  # battery low from NOW - 60 s: alerts once it has held 30 s
        t = NOW - 60 + 20 * k
        records.put_status([SensorStatus("LW-left", "kid", "left", t, True, 15.0, t, True, t)])
    records.put_status([SensorStatus("LW-o", "other", "left", NOW, True, 5.0, NOW, True, NOW)])

    def events(headers: dict[str, str]) -> list[dict[str, str]]:
        return live_events(server, world.tokens["caregiver"], headers)

    first = events({})
    assert [e["event"] for e in first] == ["status", "status", "status", "alert", "status"]
    ids = [int(e["id"]) for e in first]
    assert ids == sorted(ids)
    alert = json.loads(first[3]["data"])  # at the third snapshot: low for 40 s >= 30 s
    assert alert["alert"] == "low_battery" and alert["subject_id"] == "kid"  # not "other"
    resumed = events({"Last-Event-ID": first[2]["id"]})
    assert resumed == first[3:]  # from the event after, alert not repeated nor lost


def test_a_new_live_stream_starts_with_each_sensors_newest_snapshot_and_its_open_alerts(
    server: str, world: World, stores: tuple[SqliteSampleStore, SqliteRecordStore],
) -> None:
    """A sensor last seen 2 h ago (the gateway went too) is shown, and lost; one the gateway
    has reported away for an hour is lost since then, though it alerted before the window."""
    records = stores[1]
    for t in (NOW - 7260, NOW - 7230, NOW - 7200):  # connected, then nothing from the gateway
        records.put_status([SensorStatus("LW-left", "kid", "left", t, True, 80.0, t, True, t)])
    records.put_status([SensorStatus("LW-o", "other", "left", NOW - 7200, True, 80.0,
                                     NOW - 7200, True, None)])  # not this token's
    for k in range(61):  # away from NOW - 3600 on, a snapshot a minute
        t = NOW - 3600 + 60 * k
        records.put_status([SensorStatus("LW-right", "kid", "right", t, False, 70.0,
                                         NOW - 3600, None, None)])

    got = live_events(server, world.tokens["caregiver"])
    data = [json.loads(e["data"]) for e in got]
    assert [(e["event"], d["serial"]) for e, d in zip(got, data, strict=True)] == [
        ("status", "LW-left"), ("alert", "LW-left"), ("alert", "LW-right"),
        *[("status", "LW-right")] * 11]  # the right's of the last 10 min
    ids = [int(e["id"]) for e in got]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert data[0]["time"] == iso_ms(NOW - 7200) and data[0]["connected"] is True
    assert {k: data[1][k] for k in ("alert", "since", "time")} == {
        "alert": "lost", "since": iso_ms(NOW - 7200), "time": iso_ms(NOW)}
    assert {k: data[2][k] for k in ("alert", "since")} == {
        "alert": "lost", "since": iso_ms(NOW - 3600)}
    assert data[3]["time"] == iso_ms(NOW - 600) and data[-1]["time"] == iso_ms(NOW)
    resumed = live_events(server, world.tokens["caregiver"], {"Last-Event-ID": got[2]["id"]})
    assert resumed[-11:] == got[3:]  # (and the right's since its alert), no alert again
    assert {e["event"] for e in resumed} == {"status"}


def test_an_open_stream_follows_a_share_taken_back_and_ends_when_the_token_is_revoked(
    server: str, world: World, stores: tuple[SqliteSampleStore, SqliteRecordStore],
) -> None:
    records = stores[1]

    def put(serial: str, t: float) -> None:
        records.put_status([SensorStatus(serial, "kid", "left", t, True, 80.0, t, True, t)])

    put("LW-left", NOW)
    headers = {"Authorization": f"Bearer {world.tokens['clinician_shared']}"}
    seen: list[str] = []
    with httpx.stream("GET", f"{server}/api/v1/live", headers=headers, timeout=10) as live:
        lines = live.iter_lines()
        for line in lines:
            if line.startswith("data: "):
                seen.append(json.loads(line[6:])["serial"])
                break
        records.delete_share("kid", "clinician_shared")
        time.sleep(0.3)  # a few polls: the stream now sees no subject
        put("LW-after-unshare", NOW + 1)
        time.sleep(0.3)
        records.revoke_token("clinician_shared", NOW)
        started = time.monotonic()
        rest = list(lines)  # the stream ends by itself
    assert time.monotonic() - started < 5
    assert seen == ["LW-left"]
    assert not any("LW-after-unshare" in line for line in rest), rest


def test_bad_tokens_are_rate_limited_per_address(
    stores: tuple[SqliteSampleStore, SqliteRecordStore], world: World,
) -> None:
    client = client_on(stores, "wrong")
    assert [client.get("/api/v1/subjects").status_code for _ in range(10)] == [401] * 10
    limited = client.get("/api/v1/subjects",
                         headers={"Authorization": f"Bearer {world.tokens['admin']}"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    login = client.post("/api/v1/session", json={"token": world.tokens["admin"]})
    assert login.status_code == 429


def test_session_cookie_is_accepted_like_the_token(
    stores: tuple[SqliteSampleStore, SqliteRecordStore], world: World,
) -> None:
    app = create_app(*stores, now=lambda: NOW)
    browser = TestClient(app)
    assert browser.post("/api/v1/session", json={"token": "nope"}).status_code == 401
    login = browser.post("/api/v1/session", json={"token": world.tokens["caregiver"]})
    assert login.status_code == 200 and login.json()["subject_id"] == "kid"
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert [s["id"] for s in browser.get("/api/v1/subjects").json()] == ["kid"]
    assert browser.delete("/api/v1/session").status_code == 204
    assert browser.get("/api/v1/subjects").status_code == 401


def test_events_and_journal_page_by_a_cursor_in_the_link_header(
    stores: tuple[SqliteSampleStore, SqliteRecordStore], world: World,
) -> None:
    client = client_on(stores, world.tokens["caregiver"])

    def follow(url: str) -> tuple[list[dict[str, object]], int]:
        """Every item of the pages from `url` on, and how many pages."""
        items, pages = [], 0
        while url:
            got = client.get(url)
            assert got.status_code == 200, got.text
            items += got.json()
            pages += 1
            url = got.links.get("next", {}).get("url", "")
        return items, pages

    events = client.get(f"/api/v1/nights/{world.night}/events").json()
    assert len(events) > 10
    paged, pages = follow(f"/api/v1/nights/{world.night}/events?limit=4")
    assert paged == events and pages == -(-len(events) // 4)
    assert follow(f"/api/v1/nights/{world.night}/events?type=lm&limit=7")[0] == [
        e for e in events if e["type"] == "lm"]

    for k, t in enumerate((NOW - 50, NOW - 40, NOW - 40, NOW - 40, NOW - 10)):  # 3 at one time
        stores[1].add_note("kid", t, "other", f"note {k}")
    notes = client.get("/api/v1/subjects/kid/journal").json()
    assert follow("/api/v1/subjects/kid/journal?limit=2") == (notes, -(-len(notes) // 2))
    assert "Link" not in client.get("/api/v1/subjects/kid/journal").headers

    bad = client.get("/api/v1/subjects/kid/journal?cursor=bm90LWEtY3Vyc29y")
    assert bad.status_code == 400 and "cursor" in bad.json()["detail"]
