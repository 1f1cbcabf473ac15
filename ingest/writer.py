"""Hands chunks from the BLE callbacks to the spool without blocking the event loop.

`Spool.put` commits with an fsync (0.4 ms median, 12 ms seen on a busy disk): too slow for a
notification callback, which runs on the event loop with every sensor's traffic. Links `offer`
chunks and never wait; one task puts them in a worker thread, as many per commit as have
queued meanwhile.

The queue is bounded (`MAX_QUEUED` chunks). An offer that does not fit is refused, and the link
forgets those packets so that it fetches them again from the sensor's flash once there is room:
the flash (14 h) is the buffer, not the gateway's memory. While the spool fails (disk full, file
deleted) the writer keeps its queue and retries with backoff; links ask for no backfill
meanwhile (`accepting`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Sequence

from ingest.aio import first_of
from ingest.spool import Spool, SpoolError
from limbwatch.store.samples import Chunk

log = logging.getLogger(__name__)

MAX_QUEUED = 8192  # chunks: about 2 MB of counts at 38 samples each, 80 s of a backfill burst
PUT_BATCH = 1024  # chunks per spool commit at most
RETRY_MIN_S, RETRY_MAX_S = 0.5, 30.0  # backoff while the spool fails


class SpoolWriter:
    """A bounded queue of chunks in front of a `Spool` (see the module docstring)."""

    def __init__(self, spool: Spool, *, max_queued: int = MAX_QUEUED) -> None:
        self.spool = spool
        self.max_queued = max_queued
        self._queue: deque[Chunk] = deque()
        self._wake = asyncio.Event()
        self._failing = False

    @property
    def accepting(self) -> bool:
        """False while the spool fails: ask the sensors for nothing more."""
        return not self._failing

    def room(self) -> int:
        """Chunks that an offer may still bring."""
        return self.max_queued - len(self._queue)

    def holds(self, device: str) -> bool:
        """Whether chunks of `device` wait in the queue (not yet in the spool)."""
        return any(chunk.device == device for chunk in self._queue)

    def offer(self, chunks: Sequence[Chunk]) -> bool:
        """Queue all of `chunks`, or (when they do not fit) none and return False."""
        if len(chunks) > self.room():
            return False
        self._queue.extend(chunks)
        self._wake.set()
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Put what is queued until `stop` is set (a put under way is finished first)."""
        delay = RETRY_MIN_S
        while not stop.is_set():
            if not self._queue:
                self._wake.clear()
                await first_of(stop, self._wake)
            elif await self._put_some():
                delay = RETRY_MIN_S
            else:
                await first_of(stop, timeout=delay)
                delay = min(2 * delay, RETRY_MAX_S)

    async def finish(self, timeout_s: float) -> None:
        """After `run`: put what is still queued, for at most `timeout_s`; log what is left
        (the sensors' flash still holds it, and the next start asks for it)."""
        deadline = time.monotonic() + timeout_s
        while self._queue and time.monotonic() < deadline and await self._put_some():
            pass
        if self._queue:
            log.warning("%d chunks could not be put in the spool before stopping; they stay in "
                        "the sensors' flash and are asked for at the next start",
                        len(self._queue))

    async def _put_some(self) -> bool:
        batch = list(itertools.islice(self._queue, PUT_BATCH))
        try:
            await asyncio.to_thread(self.spool.put, batch)
        except SpoolError as exc:
            if not self._failing:
                log.error("%s; holding %d chunks in memory and retrying (new packets wait in "
                          "the sensors' flash once %d are held)", exc, len(self._queue),
                          self.max_queued)
            self._failing = True
            return False
        except ValueError as exc:  # a chunk the store cannot take: a bug upstream
            log.error("dropped %d chunks the spool refused: %s", len(batch), exc)
        if self._failing:
            log.warning("%s: writable again", self.spool.path)
        self._failing = False
        for _ in batch:
            self._queue.popleft()
        return True
