"""The spool writer on a real spool: bounded, never blocking the caller, riding out a spool that
fails (its write lock held by a second connection, so every put times out) and catching up."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from test_spool import make_chunks

from ingest.spool import Spool
from ingest.writer import SpoolWriter


def test_bounded_writer_holds_while_the_spool_fails_then_catches_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    chunks = make_chunks(110)
    spool = Spool(tmp_path / "spool.db", timeout_s=0.05)
    other = sqlite3.connect(spool.path, isolation_level=None)

    async def scenario() -> list[bool]:
        writer = SpoolWriter(spool, max_queued=100)
        stop = asyncio.Event()
        task = asyncio.create_task(writer.run(stop))
        other.execute("BEGIN EXCLUSIVE")  # the spool cannot be written...
        offers = [writer.offer(chunks[k : k + 10]) for k in range(0, 60, 10)]
        await asyncio.sleep(0.3)
        seen = [writer.accepting]
        offers += [writer.offer(chunks[60:110])]  # 60 held: 50 more do not fit, none is taken
        offers += [writer.offer(chunks[60:100])]
        other.execute("ROLLBACK")  # ...until now
        while writer.room() < 100:
            await asyncio.sleep(0.05)
        stop.set()
        await task
        await writer.finish(1.0)
        return [*offers, *seen, writer.accepting]

    try:
        results = asyncio.run(scenario())
        assert results == [True] * 6 + [False, True] + [False, True]
        assert [c.seq for _, c in spool.peek(1000)] == list(range(100))  # in order, once each
        assert "holding 60 chunks in memory" in caplog.text and "writable again" in caplog.text
    finally:
        other.close()
        spool.close()


def test_finish_says_what_it_could_not_put(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path / "spool.db", timeout_s=0.05)
    other = sqlite3.connect(spool.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")

    async def scenario() -> None:
        writer = SpoolWriter(spool)
        assert writer.offer(make_chunks(7))
        await writer.finish(0.3)

    try:
        asyncio.run(scenario())
        assert "7 chunks could not be put in the spool" in caplog.text
    finally:
        other.execute("ROLLBACK")
        other.close()
        spool.close()
