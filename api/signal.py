"""Min/max decimation of one leg's samples for a zoomable view: each of at most `points` equal
time buckets keeps its per-axis minimum and maximum, so a brief spike (a jerk) stays visible
however far out the view is (M4/min-max; `../shared/notes/surfaces.md`)."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np
import numpy.typing as npt


def min_max_buckets(time: npt.NDArray[np.float64], accel: npt.NDArray[np.float32], start: float,
                    end: float, points: int
                    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32],
                               npt.NDArray[np.float32]]:
    """(bucket start times, per-axis min, per-axis max) of the non-empty buckets of [start, end)
    cut into `points` equal parts; `time` ascending within [start, end)."""
    if len(time) == 0 or end <= start:
        empty = np.empty((0, 3), dtype=np.float32)
        return np.empty(0), empty, empty
    width = (end - start) / points
    bucket = np.minimum(((time - start) / width).astype(np.int64), points - 1)
    first = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    lows = np.minimum.reduceat(accel, first, axis=0)
    highs = np.maximum.reduceat(accel, first, axis=0)
    return start + bucket[first] * width, lows, highs


def iso_ms_array(unix_s: npt.NDArray[np.float64]) -> list[str]:
    """Unix seconds -> ISO 8601 UTC with milliseconds and a Z, as `limbwatch.report.iso_ms`."""
    ms = np.round(unix_s * 1000.0).astype("datetime64[ms]")
    return [f"{text}Z" for text in np.datetime_as_string(ms, unit="ms")]


def window_json(side: str, times: list[str], lows: npt.NDArray[np.float32],
                highs: npt.NDArray[np.float32]) -> bytes:
    """The signal answer's JSON, compact: values in g to 4 decimals (finer than a count of the
    sensor's 2048 per g, so no two counts merge), rounded in float64 so that each is written as
    the short decimal it is (float32 -> Python float would print 0.98730003833770752)."""
    return json.dumps({"side": side, "time": times,
                       "min": np.round(lows.astype(np.float64), 4).tolist(),
                       "max": np.round(highs.astype(np.float64), 4).tolist()},
                      separators=(",", ":")).encode()


class WindowCache:
    """The last `size` signal windows served (their JSON bodies), each for at most `ttl_s`
    seconds and only while the night's data has not changed: a parent's phone and a
    specialist's screen ask for the same overview again and again, and each answer reads and
    decimates up to the whole night. The TTL bounds how long a re-stamped clock model (which
    moves times by milliseconds without new data) stays unseen."""

    def __init__(self, size: int = 64, ttl_s: float = 60.0) -> None:
        self.size, self.ttl_s = size, ttl_s
        self._items: OrderedDict[Hashable, tuple[float, bytes]] = OrderedDict()
        self._making: dict[Hashable, threading.Lock] = {}  # bodies being made, by key
        self._lock = threading.Lock()

    def get(self, key: Hashable, now: float | None = None) -> bytes | None:
        now = time.monotonic() if now is None else now
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] < now:
                return None
            self._items.move_to_end(key)
            return found[1]

    def made(self, key: Hashable, make: Callable[[], bytes]) -> bytes:
        """The body for `key`, from `make()` if it is not kept: made once however many requests
        ask for it at the same time (the others wait for it instead of each reading and
        decimating the same samples: 50 clients opening the same night at once)."""
        body = self.get(key)
        if body is not None:
            return body
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        try:
            with making:
                body = self.get(key)
                if body is None:
                    body = make()
                    self.put(key, body)
                return body
        finally:
            with self._lock:
                self._making.pop(key, None)

    def put(self, key: Hashable, body: bytes, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._items[key] = (now + self.ttl_s, body)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

