"""Clock alignment: device ticks to UTC within 20 ms after 10 h at 50 ppm drift."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.clock import WRAP, DeviceClock, Sync, unwrap
from limbwatch.wire import TICK_HZ

T0 = 1795203000.0


def device_ticks(t: float, ppm: float, offset: int) -> int:
    """What a device clock running `ppm` fast reads at UTC t, as a u32."""
    return int(offset + (t - T0) * TICK_HZ * (1 + ppm * 1e-6)) % WRAP


@pytest.mark.parametrize("ppm", [50.0, -50.0, 0.0])
def test_ten_hours_of_syncs_keep_packets_within_20_ms(ppm: float) -> None:
    rng = np.random.default_rng(1)
    clock = DeviceClock()
    offset = WRAP - 5 * 3600 * TICK_HZ  # the u32 counter wraps mid-night
    for t in np.arange(T0, T0 + 10 * 3600, 300.0):  # a sync every 5 min
        up, down = rng.uniform(0.005, 0.045, 2)  # BLE latencies, 7.5-45 ms each way
        clock.add_sync(device_ticks(t + up, ppm, offset), t, t + up + down)
    assert clock.drift_ppm == pytest.approx(ppm, abs=2.0)
    errors = [abs(clock.to_utc(device_ticks(t, ppm, offset), seq=0) - t)
              for t in np.linspace(T0, T0 + 10 * 3600, 500)]
    assert max(errors) < 0.020


def test_one_sync_uses_nominal_rate_and_slow_exchanges_count_less() -> None:
    clock = DeviceClock()
    clock.add_sync(device_ticks(T0, 0.0, 1000), T0 - 0.01, T0 + 0.01)
    assert clock.to_utc(device_ticks(T0 + 60, 0.0, 1000), 0) == pytest.approx(T0 + 60, abs=1e-3)
    clock.add_sync(device_ticks(T0 + 600, 0.0, 1000), T0 + 600 - 5.0, T0 + 600 + 25.0)  # slow
    clock.add_sync(device_ticks(T0 + 1200, 0.0, 1000), T0 + 1199.99, T0 + 1200.01)
    assert clock.to_utc(device_ticks(T0 + 900, 0.0, 1000), 0) == pytest.approx(T0 + 900, abs=0.02)


def test_a_clock_jump_starts_a_new_segment_for_later_packets() -> None:
    clock = DeviceClock()
    clock.add_sync(device_ticks(T0, 0.0, 0), T0, T0)
    clock.add_sync(device_ticks(T0 + 600, 0.0, 0), T0 + 600, T0 + 600)
    clock.new_segment(first_seq=1000)  # the device clock jumped by an hour at packet 1000
    assert not clock.ready_for(1000) and clock.ready_for(999)
    jump = 3600 * TICK_HZ
    clock.add_sync(device_ticks(T0 + 700, 0.0, jump), T0 + 700, T0 + 700)
    assert clock.to_utc(device_ticks(T0 + 500, 0.0, 0), seq=999) == pytest.approx(T0 + 500)
    assert clock.to_utc(device_ticks(T0 + 800, 0.0, jump), seq=1200) == pytest.approx(T0 + 800)
    restored = DeviceClock.restore(clock.syncs())
    assert restored.to_utc(device_ticks(T0 + 800, 0.0, jump), 1200) == pytest.approx(T0 + 800)


def test_unwrap_picks_the_nearest_value() -> None:
    assert unwrap(5, WRAP - 10) == WRAP + 5
    assert unwrap(WRAP - 10, WRAP + 5) == WRAP - 10
    assert unwrap(123, 100) == 123
    assert Sync(0, 1.0, 3.0).mid == 2.0
