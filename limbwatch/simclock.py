"""Simulated UTC for the simulator and the demo: it can run faster than real time.

The simulated sensors and the ingester must read the same clock, so a night can be compressed
into minutes while every timestamp stays a plausible UTC time. In production the ingester uses
`SimClock(speed=1)` started at the host's time, which is the host's clock.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class SimClock:
    """UTC that started at `start` (Unix s) when created and runs `speed` times real time."""

    start: float = field(default_factory=time.time)
    speed: float = 1.0
    _host0: float = field(default_factory=time.monotonic)

    def now(self) -> float:
        return self.start + (time.monotonic() - self._host0) * self.speed

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of simulated time."""
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    async def sleep_until(self, t: float) -> None:
        await self.sleep(t - self.now())
