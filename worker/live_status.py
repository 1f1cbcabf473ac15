"""Upkeep of the gateway's live-status snapshots, once per analysis round.

- **A gateway gone silent.** The gateway adds a snapshot of each of its sensors every 2 s; the
  live stream judges its alerts from the snapshots it reads, so a gateway that dies (a crash,
  its power, the network to a central server) leaves an open stream nothing to judge and no
  `lost` alert. When a sensor's newest snapshot has stayed the same for `silent_after_s` on the
  service's clock, a snapshot saying it is not connected is added (everything else as the
  gateway last said, its last packet included), and again every `silent_after_s` while the
  silence lasts, so that the stream alerts as for a sensor the gateway reported away. Not
  for a sensor last heard more than `give_up_s` ago (gone for good: no snapshot a minute for
  ever).
- **Pruning.** Once every `prune_every_s`, the snapshots older than `keep_s` are dropped, each
  sensor's newest kept (about 43,000 a sensor a day; the live view reads the last minutes and
  each sensor's newest).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from limbwatch.store.records import RecordStore

log = logging.getLogger(__name__)

SILENT_AFTER_S = 60.0  # 30 of the gateway's 2-s rounds without a new snapshot of a sensor
GIVE_UP_S = 24 * 3600.0
KEEP_S = 24 * 3600.0  # snapshots kept (a night's connection, to look back at)
PRUNE_EVERY_S = 3600.0


@dataclass
class LiveStatusUpkeep:
    records: RecordStore
    now: Callable[[], float]  # Unix s on the store's clock
    silent_after_s: float = SILENT_AFTER_S
    give_up_s: float = GIVE_UP_S
    keep_s: float = KEEP_S
    prune_every_s: float = PRUNE_EVERY_S
    # each serial's newest snapshot id and when this process first saw it
    _seen: dict[str, tuple[int, float]] = field(default_factory=dict, init=False)
    _away: set[str] = field(default_factory=set, init=False)  # newest snapshot is one of ours
    _pruned: float = field(default=-math.inf, init=False)

    def run(self) -> None:
        """One round: report the silent sensors away, and prune when it is time."""
        now = self.now()
        away = []
        for snapshot_id, s in self.records.latest_statuses():
            seen, since = self._seen.get(s.serial, (None, now))
            if seen != snapshot_id:
                self._seen[s.serial] = (snapshot_id, now)
                self._away.discard(s.serial)
            elif (now - since >= self.silent_after_s
                  and now - (s.time if s.last_packet is None else s.last_packet) < self.give_up_s):
                away.append(replace(s, time=now, connected=False))
        if away:
            last = self.records.put_status(away)  # one transaction: consecutive ids
            newly = [s.serial for s in away if s.serial not in self._away]
            for k, s in enumerate(away):
                self._seen[s.serial] = (last - len(away) + 1 + k, now)
                self._away.add(s.serial)
            if newly:
                log.warning("no live status from the gateway for %.0f s: %s reported away",
                            self.silent_after_s, ", ".join(newly))
        if now - self._pruned >= self.prune_every_s:
            dropped = self.records.prune_statuses(now - self.keep_s)
            self._pruned = now
            if dropped:
                log.info("dropped %d live-status snapshots older than %.0f h", dropped,
                         self.keep_s / 3600)
