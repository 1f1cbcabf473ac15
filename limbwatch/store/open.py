"""A store URL to the stores: `sqlite:PATH` (or a plain PATH) for the embedded store.

Samples and records of the embedded store share one SQLite file. InfluxDB URLs
(`influxdb://...`) come with the InfluxDB sample store; records then stay in SQLite.
"""

from __future__ import annotations

from pathlib import Path

from limbwatch.errors import BadInput
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_base import Synchronous
from limbwatch.store.sqlite_records import SqliteRecordStore


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:PATH` URL or plain path; BadInput for any other scheme."""
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:").removeprefix("//")
    elif "://" in url:
        scheme = url.split("://", 1)[0]
        raise BadInput(f"store URL {url!r}: unknown scheme {scheme!r} (use sqlite:PATH or a path)")
    else:
        path = url
    if not path:
        raise BadInput(f"store URL {url!r} names no file (use sqlite:PATH)")
    return Path(path)


def open_samples(url: str, *, create: bool = True,
                 synchronous: Synchronous = "NORMAL") -> SqliteSampleStore:
    return SqliteSampleStore(sqlite_path(url), create=create, synchronous=synchronous)


def open_records(url: str, *, create: bool = True) -> SqliteRecordStore:
    return SqliteRecordStore(sqlite_path(url), create=create)
