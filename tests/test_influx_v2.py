"""InfluxDB 2.x / 3.x servers, when one is given: none can be installed here (no Docker engine,
no package), so these run only with

    LIMBWATCH_TEST_INFLUX_URL=influxdb://HOST:8086/BUCKET?api=v2&org=ORG   (a new bucket name)
    LIMBWATCH_INFLUX_TOKEN=an all-access token

and are skipped, saying so, otherwise. They check what 1.6.7 cannot: token auth, the buckets API
of `store init`, and InfluxQL reads through the v1 compatibility API (DBRP mapping)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_sample_store_contract import T0, N, packets

from limbwatch.store.http_status import StoreRefused
from limbwatch.store.influx import init_store
from limbwatch.store.influx_http import InfluxSettings
from limbwatch.store.open import open_samples

GIVEN = os.environ.get("LIMBWATCH_TEST_INFLUX_URL")
pytestmark = pytest.mark.skipif(
    GIVEN is None, reason="no InfluxDB 2.x/3.x server given (set LIMBWATCH_TEST_INFLUX_URL and "
    "LIMBWATCH_INFLUX_TOKEN; none can be installed on this machine)")


def url(tmp_path: Path) -> str:
    assert GIVEN is not None
    return f"{GIVEN}&records={tmp_path / 'records.db'}"


def test_init_creates_the_buckets_and_the_store_reads_through_influxql(tmp_path: Path) -> None:
    settings = InfluxSettings.from_url(url(tmp_path))
    done = init_store(settings, retention_days=30)
    assert len(done) == 2 and all(line.startswith("bucket ") for line in done)
    assert all(line.endswith("exists") for line in init_store(settings))
    chunks = packets(count=100)
    with open_samples(url(tmp_path)) as store:
        store.write_chunks(chunks)
        store.write_chunks(chunks[:10])
        got = store.read_samples("kid", "left", T0 - 1, T0 + 3600)
        assert got.time.size == 100 * N and got.damaged == 0
        assert store.stored_seqs("LW0001L", 7) == list(range(100))


def test_a_wrong_token_is_refused(tmp_path: Path) -> None:
    settings = InfluxSettings.from_url(url(tmp_path), env={"LIMBWATCH_INFLUX_TOKEN": "wrong"})
    with pytest.raises(StoreRefused):
        init_store(settings)
