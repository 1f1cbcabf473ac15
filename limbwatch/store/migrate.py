"""Copy samples between sample stores (SQLite <-> InfluxDB), resumable and verified.

Per sensor: the clock models of its sessions first, then the chunks the destination does not
have yet (by (session, seq): a copy cut short goes on where it stopped), in batches; at the end
both stores are read back and compared by chunk count and a checksum over every chunk's
contents (`influx_lines.chunk_crc`, which leaves out the estimated times).
Records (subjects, nights, reports) are not copied: they stay in their SQLite file, which the
InfluxDB URL's `records=` names.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

from limbwatch.errors import Damaged
from limbwatch.store.influx_lines import chunk_crc
from limbwatch.store.samples import Chunk, SampleStore

BATCH_CHUNKS = 500


@dataclass(frozen=True, slots=True)
class Copied:
    device: str
    chunks: int  # in the source
    written: int  # by this run (the others were there)
    checksum: int  # over the source's chunks, equal in the destination


def checksum(chunks: list[Chunk]) -> int:
    """A CRC-32 over the contents of chunks in (session, seq) order."""
    crc = 0
    for chunk in sorted(chunks, key=lambda c: (c.session, c.seq)):
        crc = zlib.crc32(chunk_crc(chunk).to_bytes(4, "little"), crc)
    return crc


def migrate(source: SampleStore, target: SampleStore, *, subject: str | None = None,
            progress: Callable[[str, int, int], None] = lambda device, done, total: None
            ) -> list[Copied]:
    """Copy every sensor's chunks (of `subject`, or of everyone) from `source` to `target`;
    `progress(device, chunks done, chunks total)` after each batch. Damaged if a sensor's
    chunks differ in the target afterwards."""
    copied = []
    for device in source.devices(subject):
        chunks = [c for c in source.read_chunks(device)
                  if subject is None or c.subject == subject]
        sessions = sorted({c.session for c in chunks})
        models = {(device, s): m for s in sessions
                  if (m := source.clock_model(device, s)) is not None}
        if models:
            target.put_clock_models(models)
        have = {(s, q) for s in sessions for q in target.stored_seqs(device, s)}
        todo = [c for c in chunks if (c.session, c.seq) not in have]
        progress(device, len(chunks) - len(todo), len(chunks))
        for i in range(0, len(todo), BATCH_CHUNKS):
            target.write_chunks(todo[i:i + BATCH_CHUNKS])
            progress(device, len(chunks) - len(todo) + min(i + BATCH_CHUNKS, len(todo)),
                     len(chunks))
        there = [c for c in target.read_chunks(device) if subject is None or c.subject == subject]
        want, got = checksum(chunks), checksum(there)
        if len(there) != len(chunks) or want != got:
            raise Damaged(f"sensor {device}: the copy differs ({len(there)} chunks, checksum "
                          f"{got:08x}; the source has {len(chunks)}, {want:08x}): run migrate "
                          "again")
        copied.append(Copied(device, len(chunks), len(todo), want))
    return copied
