"""The signal API's cache of recent windows: kept for a while, forgotten after its TTL or when
pushed out, and keyed so that new data for a night is never answered from an old window."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from test_sample_store_contract import T0, packets

from api.app import create_app
from api.auth import make_token
from api.signal import WindowCache
from limbwatch.store.nights import refresh_nights
from limbwatch.store.open import open_records, open_samples
from limbwatch.store.records import Subject


def test_windows_expire_and_the_least_recently_used_goes_first() -> None:
    cache = WindowCache(size=2, ttl_s=60.0)
    cache.put(("night", 1), b"a", now=0.0)
    cache.put(("night", 2), b"b", now=1.0)
    assert cache.get(("night", 1), now=59.0) == b"a"  # now the most recent
    cache.put(("night", 3), b"c", now=2.0)
    assert cache.get(("night", 2), now=3.0) is None  # pushed out
    assert cache.get(("night", 1), now=3.0) == b"a"
    assert cache.get(("night", 1), now=61.0) is None  # older than its TTL
    assert cache.get(("night", 3), now=61.0) == b"c"


def test_the_api_answers_a_night_that_grew_from_its_new_data(tmp_path: Path) -> None:
    url = f"sqlite:{tmp_path / 's.db'}"
    samples, records = open_samples(url), open_records(url)
    kid = Subject("kid", "Kid", None, "UTC")
    records.put_subject(kid)
    samples.write_chunks(packets(count=100))
    secret, token = make_token("ops", "admin", None, time.time())
    records.put_token(token)
    (night,) = refresh_nights(samples, records, kid, now=T0 + 100)
    client = TestClient(create_app(samples, records))
    client.headers["Authorization"] = f"Bearer {secret}"
    path = f"/api/v1/nights/{night.id}/signal?side=left&points=50"
    first = client.get(path).json()
    assert client.get(path).json() == first  # from the cache
    samples.write_chunks(packets(first_seq=100, count=100))  # the night grows
    refresh_nights(samples, records, kid, now=T0 + 200)
    grown = client.get(path).json()
    assert grown["time"][-1] > first["time"][-1]
