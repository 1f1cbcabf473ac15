"""Clock alignment (ingest.clock): hard bounds, the fitted rate and its limits, u32 wraps, clock
jumps, persistence and the error bound. Night-long acceptance: test_clock_offline.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ingest import clock as clock_module
from ingest.central import ClockState
from ingest.clock import (
    MAX_DRIFT_PPM,
    MAX_ENVELOPE_POINTS,
    WRAP,
    ClockModel,
    DeviceClock,
    Sync,
    unwrap,
)
from limbwatch.wire import TICK_HZ

T0 = 1795203000.0


def device_ticks(t: float, ppm: float, offset: int) -> int:
    """What a device clock running `ppm` fast reads at UTC t, as a u32."""
    return int(offset + math.floor((t - T0) * TICK_HZ * (1 + ppm * 1e-6))) % WRAP


def exchange(clock: DeviceClock, rng: np.random.Generator, t: float, ppm: float, offset: int,
             up: tuple[float, float], down: tuple[float, float] | None = None) -> float:
    """One TIME_SYNC at host time t, one-way delays uniform in `up` and `down` (default: `up`);
    the device reads its clock on arrival. Returns when the reply came."""
    there, back = rng.uniform(*up), rng.uniform(*(down or up))
    clock.add_sync(device_ticks(t + there, ppm, offset), t, t + there + back)
    return t + there + back


def stream(clock: DeviceClock, rng: np.random.Generator, start: float, end: float, ppm: float,
           offset: int, delay: tuple[float, float], seq: int = 0) -> int:
    """Packets of 38 samples at 50 Hz from `start` to `end`, each arriving `delay` after its
    last sample (one-sample packets here: ticks of the last sample). Returns the next seq."""
    for t in np.arange(start, end, 0.76):
        clock.add_arrival(device_ticks(t, ppm, offset), seq, t + rng.uniform(*delay))
        seq += 1
    return seq


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


def test_one_sync_gives_the_nominal_rate_and_a_bound_growing_at_the_drift_limit() -> None:
    clock = DeviceClock()
    clock.add_sync(device_ticks(T0 + 0.02, 50.0, 7), T0, T0 + 0.04)
    assert clock.drift_ppm == 0.0
    assert clock.seconds_per_sample(50, 0) == 1 / 50
    ticks = device_ticks(T0 + 3600, 50.0, 7)
    error = abs(clock.to_utc(ticks, 0) - (T0 + 3600))
    assert error == pytest.approx(50e-6 * 3600, abs=0.025)  # nominal: off by the drift
    bound = clock.error_bound_s(ticks, 0)
    assert error < bound == pytest.approx(MAX_DRIFT_PPM * 1e-6 * 3600, abs=0.025)


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


def test_a_reading_of_the_jumped_clock_before_its_clock_set_packet_moves_to_the_new_segment(
) -> None:
    rng = np.random.default_rng(3)
    clock = DeviceClock()
    for t in np.arange(T0, T0 + 1800, 300.0):
        exchange(clock, rng, t, 20.0, 5, (0.0075, 0.045))
    seq = stream(clock, rng, T0 + 1, T0 + 1799, 20.0, 5, (0.0075, 0.045))
    jump = 90 * TICK_HZ  # the clock jumps 90 s forward; the next sync reads it first
    exchange(clock, rng, T0 + 1800, 20.0, 5 + jump, (0.0075, 0.045))
    assert not clock.ready_for(seq)  # newer packets wait: the sync looks like a jump
    clock.new_segment(seq)  # its CLOCK_SET packet arrives
    assert clock.ready_for(seq) and len(clock.syncs()) == 7
    assert clock.syncs()[-1][0] == seq  # the sync went with the new segment
    before, after = clock.model().segments
    assert before.consistent and after.synced
    assert abs(clock.to_utc(device_ticks(T0 + 1000, 20.0, 5), 10) - (T0 + 1000)) < 0.02
    assert abs(clock.to_utc(device_ticks(T0 + 1801, 20.0, 5 + jump), seq) - (T0 + 1801)) < 0.05


def test_unwrap_picks_the_nearest_value() -> None:
    assert unwrap(5, WRAP - 10) == WRAP + 5
    assert unwrap(WRAP - 10, WRAP + 5) == WRAP - 10
    assert unwrap(123, 100) == 123
    assert Sync(0, 1.0, 3.0).mid == 2.0


@pytest.mark.parametrize("seed", range(20))
def test_a_connect_burst_alone_fits_no_rate(seed: int) -> None:
    """The old fit took -245,000 ppm from a burst of 8 syncs seconds long; nothing is fitted
    from it (nor from 5 min of packets), so an hour later the error is the drift's alone."""
    rng = np.random.default_rng(seed)
    ppm, offset = rng.uniform(-50, 50), int(rng.integers(WRAP))
    clock = DeviceClock()
    t = T0
    for _ in range(8):  # spread over seconds, delays asymmetric per exchange
        t = exchange(clock, rng, t, ppm, offset, (0.0075, 0.045)) + rng.uniform(0.2, 0.6)
    assert clock.drift_ppm == 0.0
    stream(clock, rng, t, t + 300, ppm, offset, (0.0075, 0.045))
    assert clock.drift_ppm == 0.0
    later = T0 + 3600
    assert abs(clock.to_utc(device_ticks(later, ppm, offset), 0) - later) < (
        abs(ppm) * 1e-6 * 3600 + 0.045)


@pytest.mark.parametrize("ppm", [300.0, 1000.0, -5000.0])
def test_no_bounds_fit_a_rate_beyond_the_drift_limit(ppm: float) -> None:
    clock = DeviceClock()  # tight syncs that say the clock runs `ppm` fast
    clock.add_sync(device_ticks(T0, 0.0, 0), T0 - 0.001, T0 + 0.001)
    for t in np.arange(T0 + 600, T0 + 4800, 300.0):  # a run of them: taken as they are
        clock.add_sync(device_ticks(t, ppm, 0), t - 0.001, t + 0.001)
    assert clock.drift_ppm == pytest.approx(math.copysign(MAX_DRIFT_PPM, ppm), abs=0.01)
    assert not clock.model().segments[0].consistent  # the bounds contradict the model
    sound = DeviceClock()  # a clock 150 ppm fast is within the limit, and fitted as it is
    rng = np.random.default_rng(5)
    for t in np.arange(T0, T0 + 3600, 300.0):
        exchange(sound, rng, t, 150.0, 0, (0.0075, 0.045))
    assert sound.drift_ppm == pytest.approx(150.0, abs=5.0)
    assert sound.model().segments[0].consistent


@pytest.mark.parametrize("packets", [False, True], ids=["syncs only", "with packets"])
def test_slow_syncs_after_a_quick_burst_do_not_lock_a_bad_rate(packets: bool) -> None:
    """The old fit kept the quick burst's rate and dropped every slower sync (RTT > 2x the
    burst's median). Here 6 h of syncs with 1-4 s round trips follow a burst of quick ones."""
    rng = np.random.default_rng(2)
    ppm, offset = 40.0, int(rng.integers(WRAP))
    clock = DeviceClock()
    for k in range(8):  # quick, 0.5 s apart
        exchange(clock, rng, T0 + 0.5 * k, ppm, offset, (0.001, 0.020))
    for t in np.arange(T0 + 300, T0 + 6 * 3600, 300.0):
        if packets:
            stream(clock, rng, t - 296, t, ppm, offset, (0.03, 0.15))
        exchange(clock, rng, t, ppm, offset, (0.5, 2.0))
    assert clock.drift_ppm == pytest.approx(ppm, abs=0.05 if packets else 8.0)
    model = clock.model()
    times = np.linspace(T0, T0 + 6 * 3600, 200)
    ticks = [device_ticks(t, ppm, offset) for t in times]
    errors = np.array([abs(model.to_utc(k, 0, near=t) - t) for k, t in zip(ticks, times,
                                                                           strict=True)])
    assert errors.max() < (0.005 if packets else 0.150)
    assert all(errors <= [model.error_bound_s(k, 0, near=t) for k, t in zip(ticks, times,
                                                                            strict=True)])


@pytest.mark.parametrize("gap_h", [20, 40])
@pytest.mark.parametrize("before", ["an hour of syncs", "a burst"])
def test_a_long_sync_gap_unwraps_from_the_prediction(gap_h: int, before: str) -> None:
    """The ticks advance 2.4e9 (20 h) or 4.7e9 (40 h) between syncs: nearest the last sync
    is the wrong u32 wrap; nearest the model's prediction for the reply's host time is right."""
    rng = np.random.default_rng(gap_h)
    ppm, offset = -45.0, int(rng.integers(WRAP))
    clock = DeviceClock()
    first = T0 + 0.02
    spans = [(T0, T0 + (3600 if before == "an hour of syncs" else 1)),
             (T0 + gap_h * 3600, T0 + (gap_h + 1) * 3600)]
    for start, end in spans:
        for t in np.arange(start, end, 0.5):  # a burst, and syncs every 5 min
            if t - start < 4 or (t - start) % 300 == 0:
                exchange(clock, rng, float(t), ppm, offset, (0.0075, 0.045))
    elapsed = [s.ticks - clock.syncs()[0][1].ticks for _, s in clock.syncs()]
    assert elapsed[-1] > gap_h * 3600 * TICK_HZ * 0.99  # unwrapped across the gap
    assert all(np.diff(elapsed) >= 0)
    for t in np.linspace(spans[1][0] + 10, spans[1][1], 50):
        assert abs(clock.to_utc(device_ticks(t, ppm, offset), 0) - t) < 0.05
    model = clock.model()
    for t in np.linspace(first, spans[0][1], 20):  # re-stamped, the wrap picked near t +- 1 h
        assert abs(model.to_utc(device_ticks(t, ppm, offset), 0, near=t + 3600) - t) < 0.05


def night(seed: int = 4, jump_at_h: float = 1.0) -> DeviceClock:
    """Two hours: a connect burst, syncs every 5 min, packets 30-150 ms late, a clock jump
    (CLOCK_SET at the next packet), a reconnect burst and old packets from flash."""
    rng = np.random.default_rng(seed)
    ppm, offset = rng.uniform(-50, 50), int(rng.integers(WRAP))
    clock = DeviceClock()
    delay = (0.03, 0.15)
    for k in range(8):
        exchange(clock, rng, T0 - 1 + 0.1 * k, ppm, offset, delay)
    jump_t = T0 + jump_at_h * 3600
    seq = 0
    for t in np.arange(T0, T0 + 7200, 300.0):
        if t <= jump_t < t + 300:
            seq = stream(clock, rng, t, jump_t, ppm, offset, delay, seq)
            clock.new_segment(seq)
            offset += 600 * TICK_HZ
            exchange(clock, rng, jump_t + 0.5, ppm, offset, delay)
            seq = stream(clock, rng, jump_t + 1, t + 300, ppm, offset, delay, seq)
        else:
            seq = stream(clock, rng, t, t + 300, ppm, offset, delay, seq)
        exchange(clock, rng, t + 300, ppm, offset, delay)
    for k in range(50):  # from flash, minutes late
        clock.add_arrival(device_ticks(T0 + 4000 + k, ppm, offset), 4000 + k, T0 + 7300 + k,
                          live=False)
    return clock


def test_the_gateway_state_file_restores_the_same_model(tmp_path: Path) -> None:
    """A restarted gateway fits what it wrote: the syncs and the packet bounds (the rate the
    live packets trace included) round-trip through the JSON state file."""
    clock = night()
    model = clock.model()
    assert len(model.segments) == 2 and all(s.consistent for s in model.segments)
    state = ClockState(tmp_path / "spool-clock.json")
    state.write(*state.snapshot("LW1", 3, clock))
    assert ClockState(tmp_path / "spool-clock.json").load("LW1", 3).model() == model
    assert len(clock.arrivals()) < 100  # the envelopes: a few dozen bounds, not 9,000 packets
    without = DeviceClock.restore(clock.syncs())  # syncs alone: a valid, looser model
    assert without.model() != model
    assert all(s.consistent for s in without.model().segments)
    assert ClockModel.from_dict(json.loads(json.dumps(model.as_dict()))) == model


def test_the_state_file_keeps_a_sessions_morning_sync_until_the_next_clock_sync(
        tmp_path: Path) -> None:
    clock = night()
    path = tmp_path / "spool-clock.json"
    state = ClockState(path)
    state.write(*state.snapshot("LW1", 3, clock))
    state.write(*state.mark_synced("LW1", 3, 1799))
    assert ClockState(path).synced("LW1", 3) == 1799
    assert ClockState(path).load("LW1", 3).model() == clock.model()  # the model kept too
    assert ClockState(path).synced("LW1", 2) is None
    state.write(*state.snapshot("LW1", 3, clock))  # a sync after it: new data came
    assert ClockState(path).synced("LW1", 3) is None


def test_a_state_file_of_syncs_alone_still_loads(tmp_path: Path) -> None:
    """The file an earlier gateway wrote (syncs only, no packet bounds) gives the syncs' model."""
    clock = night()
    path = tmp_path / "spool-clock.json"
    path.write_text(json.dumps({"LW1/3": [[seq, s.ticks, s.sent, s.received]
                                          for seq, s in clock.syncs()]}))
    assert ClockState(path).load("LW1", 3).model() == DeviceClock.restore(clock.syncs()).model()


def test_restore_of_syncs_reproduces_a_model_from_syncs() -> None:
    rng = np.random.default_rng(8)
    clock = DeviceClock()
    for t in np.arange(T0, T0 + 3 * 3600, 300.0):
        exchange(clock, rng, t, -30.0, 99, (0.03, 0.15))
    assert DeviceClock.restore(clock.syncs()).model() == clock.model()


def test_the_error_bound_covers_the_truth_when_the_quickest_delays_differ_each_way() -> None:
    """Requests take 30-60 ms, replies and notifications 5-45 ms: the centred line is biased
    by about half the difference of the quickest delays (12 ms), within the bound."""
    rng = np.random.default_rng(6)
    ppm, offset = 33.0, 12345
    clock = DeviceClock()
    for t in np.arange(T0, T0 + 7200, 300.0):
        exchange(clock, rng, t, ppm, offset, (0.030, 0.060), (0.005, 0.045))
        stream(clock, rng, t + 1, t + 299, ppm, offset, (0.005, 0.045))
    model = clock.model()
    for t in np.linspace(T0, T0 + 7200, 100):
        ticks = device_ticks(t, ppm, offset)
        error = model.to_utc(ticks, 0) - t
        assert 0.005 < abs(error) <= model.error_bound_s(ticks, 0)


def test_bounds_in_convex_position_stay_within_the_envelope_cap() -> None:
    """Bounds on a convex curve are all on the envelope: the cap drops every other one, which
    only loosens the model (a dropped bound is still met)."""
    envelope = clock_module._Envelope(upper_bounds=True)
    for x in range(5000):
        envelope.add(float(x), 1e-4 * x * x, None)
    assert len(envelope.xs) <= MAX_ENVELOPE_POINTS and envelope.thinned
    assert envelope.xs[0] == 0 and envelope.xs[-1] == 4999
    clock = DeviceClock()  # and through the clock: 20,000 live packet bounds on a curve (a
    # link slow, quick, then slow again: 135 to 10 to 135 ms)
    clock.add_sync(device_ticks(T0, 0.0, 0), T0 - 0.01, T0 + 0.01)
    times = T0 + 1 + np.arange(20000) * 1.0
    late = 0.01 + 0.5 * ((times - T0) / 20000 - 0.5) ** 2
    for k, t in enumerate(times):
        clock.add_arrival(device_ticks(t, 0.0, 0), k, t + late[k])
    assert len(clock.arrivals()) <= 2 * MAX_ENVELOPE_POINTS
    assert abs(clock.to_utc(device_ticks(T0 + 5000, 0.0, 0), 0) - (T0 + 5000)) < 0.05


def test_an_hour_of_packets_refits_rarely(monkeypatch: pytest.MonkeyPatch) -> None:
    """The line is refitted only when a bound cuts the feasible set or moves the traced rate,
    not for each of the 4,700 packets of an hour."""
    calls = 0
    sides = clock_module._sides

    def counted(*args: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nonlocal calls
        calls += 1
        return sides(*args)

    monkeypatch.setattr(clock_module, "_sides", counted)
    rng = np.random.default_rng(7)
    clock = DeviceClock()
    for t in np.arange(T0, T0 + 3600, 300.0):
        exchange(clock, rng, t, 10.0, 0, (0.03, 0.15))
        for k, s in enumerate(np.arange(t + 1, t + 300, 0.76)):
            seq = int((s - T0) / 0.76)
            clock.add_arrival(device_ticks(s, 10.0, 0), seq, s + rng.uniform(0.03, 0.15))
            clock.to_utc(device_ticks(s, 10.0, 0), seq)
            del k
    assert calls < 0.1 * 3600 / 0.76


def test_the_gateway_keeps_the_syncs_of_a_sensors_two_latest_sessions(tmp_path: Path) -> None:
    """A sensor starts a new session most nights: only the current one and the one before
    (whose chunks may still be in the spool) stay in the state file."""
    state = ClockState(tmp_path / "spool-clock.json")
    clock = DeviceClock()
    clock.add_sync(1000, 10.0, 10.02)
    for session in (1, 2, 3, 2, 4):
        state.write(*state.snapshot("LW1", session, clock))
    state.write(*state.snapshot("LW2", 1, clock))
    again = ClockState(tmp_path / "spool-clock.json")
    assert again.sessions() == [("LW1", 2), ("LW1", 4), ("LW2", 1)]
    assert again.load("LW1", 4).syncs() == clock.syncs()
