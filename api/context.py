"""What every request handler reaches: the stores, the clock and the settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from api.encoding import Bodies
from api.signal import WindowCache
from limbwatch.store.records import RecordStore
from limbwatch.store.samples import SampleStore


@dataclass(frozen=True)
class Settings:
    """Limits and live-alert timing; tests shrink them."""

    max_upload_bytes: int = 64 * 2**20  # an import larger than this gets 413
    auth_failures_per_min: int = 10  # bad tokens per client address before 429
    max_points: int = 5000  # signal buckets at most
    live_poll_s: float = 1.0  # how often the event stream looks for new snapshots
    live_once: bool = False  # every event stream sends what is pending and closes (tests)
    live_history_s: float = 600.0  # a new stream: each sensor's newest and those this long ago
    lost_after_s: float = 120.0  # no packet for this long: the sensor is lost
    confirm_s: float = 30.0  # a condition must hold this long before it alerts
    low_battery_pct: float = 20.0


@dataclass
class Context:
    samples: SampleStore
    records: RecordStore
    now: Callable[[], float]
    settings: Settings = field(default_factory=Settings)
    windows: WindowCache = field(default_factory=WindowCache)  # signal answers served lately
    bodies: Bodies = field(default_factory=Bodies)  # report and events answers


async def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx
