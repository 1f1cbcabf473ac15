"""A store URL to the stores: `sqlite:PATH` (or a plain PATH) for the embedded store, or
`influxdb[s]://HOST:PORT/BUCKET?api=v1|v2&org=ORG&records=PATH` for samples on InfluxDB
(`limbwatch.store.influx_http.InfluxSettings`; the token from $LIMBWATCH_INFLUX_TOKEN or
token_file=PATH).

Samples and records of the embedded store share one SQLite file; with InfluxDB the records stay
in SQLite, in the `records` file. A gateway may also write to a central server,
`https://HOST[:PORT][/PREFIX]?token_file=PATH&ca_file=PATH` (`limbwatch.store.remote`).
"""

from __future__ import annotations

from pathlib import Path

from limbwatch.errors import BadInput
from limbwatch.store.influx import InfluxSampleStore
from limbwatch.store.influx_http import InfluxSettings
from limbwatch.store.records import GatewayRecords
from limbwatch.store.remote import RemoteSettings, RemoteStore, is_remote
from limbwatch.store.samples import ChunkSink, SampleStore
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_base import Synchronous
from limbwatch.store.sqlite_records import SqliteRecordStore

_INFLUX = ("influxdb://", "influxdbs://")


def is_influx(url: str) -> bool:
    return url.startswith(_INFLUX)


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:PATH` URL or plain path; BadInput for any other scheme."""
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:").removeprefix("//")
    elif is_remote(url):
        raise BadInput(f"store URL {url!r}: a central server's URL is for gateways (`limbwatch "
                       "ingest`); this command needs sqlite:PATH or influxdb://...")
    elif "://" in url:
        scheme = url.split("://", 1)[0]
        raise BadInput(f"store URL {url!r}: unknown scheme {scheme!r} (use sqlite:PATH, a path, "
                       "influxdb://HOST:PORT/BUCKET?... or, for a gateway, https://SERVER)")
    else:
        path = url
    if not path:
        raise BadInput(f"store URL {url!r} names no file (use sqlite:PATH)")
    return Path(path)


def records_path(url: str) -> Path:
    """The SQLite file that holds the records of a store URL."""
    return InfluxSettings.from_url(url).records if is_influx(url) else sqlite_path(url)


def open_samples(url: str, *, create: bool = True, synchronous: Synchronous = "NORMAL",
                 timeout_s: float = 5.0) -> SampleStore:
    """The sample store of a URL. For SQLite, `create` makes a missing file and `timeout_s`
    is how long to wait for another process's lock; InfluxDB is not contacted until used."""
    if is_influx(url):
        return InfluxSampleStore(InfluxSettings.from_url(url))
    return SqliteSampleStore(sqlite_path(url), create=create, synchronous=synchronous,
                             timeout_s=timeout_s)


def open_records(url: str, *, create: bool = True, timeout_s: float = 5.0) -> SqliteRecordStore:
    return SqliteRecordStore(records_path(url), create=create, timeout_s=timeout_s)


def open_gateway_stores(url: str, *, timeout_s: float = 5.0
                        ) -> tuple[ChunkSink, GatewayRecords]:
    """A gateway's sample and record stores: those of a local store URL (its SQLite files with
    synchronous=FULL: the spool forgets what they took), or one `RemoteStore` for both."""
    if is_remote(url):
        remote = RemoteStore(RemoteSettings.from_url(url))
        return remote, remote
    samples = open_samples(url, synchronous="FULL", timeout_s=timeout_s)
    try:
        return samples, open_records(url, timeout_s=timeout_s)
    except BaseException:
        samples.close()
        raise
