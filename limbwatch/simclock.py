"""Simulated UTC for the simulator and the demo: it can run faster than real time.

The simulated sensors and the ingester must read the same clock, so a night can be compressed
into minutes while every timestamp stays a plausible UTC time. Sim time is `start` at host wall
time `anchor` and runs `speed` times faster; two processes given the same three numbers share it.
In production the ingester uses `SimClock()`: speed 1 from now, which is the host's clock.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SimClock:
    start: float = field(default_factory=time.time)  # sim UTC at `anchor`, Unix s
    speed: float = 1.0
    anchor: float = field(default_factory=time.time)  # host wall time, Unix s

    def now(self) -> float:
        return self.start + (time.time() - self.anchor) * self.speed

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of simulated time."""
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    async def sleep_until(self, t: float) -> None:
        await self.sleep(t - self.now())

    def describe(self) -> str:
        """The three numbers another process needs to share this clock."""
        return f"start={self.start:.6f} speed={self.speed:g} anchor={self.anchor:.6f}"
