"""Answers of bytes serialised once: JSON bodies kept by a cache and served as they are, gzip
-compressed (also once) for a client that accepts it (`Accept-Encoding: gzip`, as browsers
send), with `Vary: Accept-Encoding` so that caches between keep the two apart."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Hashable

from fastapi import Request, Response

LEVEL = 6  # zlib's default: within a few % of 9's size at a fraction of its time


def accepts_gzip(request: Request) -> bool:
    """Whether the request's Accept-Encoding allows gzip (`gzip` or `*`, not with q=0)."""
    header = request.headers.get("accept-encoding", "")
    for item in header.lower().split(","):
        name, _, params = item.partition(";")
        if name.strip() in ("gzip", "x-gzip", "*"):
            q = params.strip().removeprefix("q=")
            try:
                if not params.strip() or float(q) > 0:
                    return True
            except ValueError:
                return True  # a malformed q: take it as the default, 1
    return False


def gzip_bytes(body: bytes) -> bytes:
    """`body` compressed for Content-Encoding: gzip (mtime 0: the same bytes every time)."""
    return gzip.compress(body, LEVEL, mtime=0)


def json_bytes(body: bytes, gzipped: bool) -> Response:
    """A 200 application/json answer of `body` (already gzip-compressed if `gzipped`)."""
    headers = {"Vary": "Accept-Encoding"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


class Bodies:
    """Answers made from stored text, kept per id (at most `size` ids) beside the text they were
    made from: an answer is reused only while the store gives equal text (a report replaced by
    re-analysis is made anew on its first request)."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: dict[tuple[Hashable, bool], tuple[object, bytes]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, source: object, gzipped: bool) -> bytes | None:
        with self._lock:
            found = self._items.get((key, gzipped))
        return found[1] if found is not None and found[0] == source else None

    def put(self, key: Hashable, source: object, gzipped: bool, body: bytes) -> None:
        with self._lock:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[(key, gzipped)] = (source, body)
