"""The simulated sensor's firmware (no BLE): packets, clock, flash, control, faults, truth, rigs.

Each test runs a short night (0.05 h at 50 Hz: 9000 samples) on a SimClock at 1000x, talking
to the Sensor through in-memory callbacks that record what it sends.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firmware_sim.rig import RigError, load_rig, parse_rig
from firmware_sim.sensor import ConfigError, Fault, Sensor, SensorConfig
from limbwatch import wire
from limbwatch.recording import read_recording_csv
from limbwatch.simclock import SimClock
from limbwatch.wire import TICK_HZ, Flag, Op, Result

T0 = 1795203000.0
RATE = 50
SPEED = 1000.0
MTU = 247
PER_PACKET = wire.max_samples(MTU)
BASE = SensorConfig(serial="LW0001L", side="left", scenario="mild_plms", seed=5,
                    night_start=T0, duration_h=0.05)
N_SAMPLES = round(0.05 * 3600 * RATE)
RIGS = Path(__file__).resolve().parents[1] / "firmware_sim" / "rigs"
FROZEN = 1e-9  # SimClock speed that keeps now() still for the length of a test


class Link:
    """One connection's in-memory callbacks; records notifications and replies while open."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.replies: list[bytes] = []
        self.open = True
        self.sent_while_closed = 0

    async def send(self, data: bytes) -> None:
        self.sent_while_closed += not self.open
        self.data.append(bytes(data))

    async def reply(self, data: bytes) -> None:
        self.replies.append(bytes(data))

    def packets(self) -> list[wire.Packet]:
        return [wire.decode_packet(d) for d in self.data]

    def last_reply(self) -> wire.Reply:
        return wire.decode_reply(self.replies[-1])


def sensor(speed: float = SPEED, start: float = T0 - 0.5, **changes: Any) -> Sensor:
    return Sensor(replace(BASE, **changes), SimClock(start=start, speed=speed))


async def open_link(s: Sensor, link: Link, mtu: int = MTU, start: bool = True) -> None:
    s.connect(link.send, link.reply)
    s.set_mtu(mtu)
    if start:
        await s.control(wire.command(Op.START))


async def ask(s: Sensor, link: Link, op: Op, *args: int) -> wire.Reply:
    await s.control(wire.command(op, *args))
    return link.last_reply()


Step = Callable[[], Awaitable[None]]


def run(s: Sensor, *steps: tuple[float, Step], setup: Step | None = None) -> None:
    """Run the night after ``setup``; each step runs at its time (s since night start)."""

    async def main() -> None:
        if setup is not None:
            await setup()
        task = asyncio.create_task(s.run())
        for at_s, step in steps:
            await s.clock.sleep_until(T0 + at_s)
            await step()
        await task

    asyncio.run(main())


def streamed(s: Sensor, link: Link | None = None) -> Link:
    """Run the night streaming live to a link opened before sampling starts."""
    link = link or Link()
    run(s, setup=lambda: open_link(s, link))
    return link


def truth_counts(s: Sensor, counts_per_g: int = 4096) -> np.ndarray:
    return np.rint(s.truth_samples()[1].astype(np.float64) * counts_per_g).astype(np.int16)


def first_samples(packets: list[wire.Packet]) -> np.ndarray:
    """Index of each packet's first sample, for a complete run of packets from seq 0."""
    return np.cumsum([0] + [len(p.counts) for p in packets])[:-1]


def backfill_all(s: Sensor) -> list[wire.Packet]:
    """Every packet in flash, through BACKFILL on a new link."""
    link = Link()

    async def main() -> None:
        await open_link(s, link, start=False)
        status = s.status()
        assert await ask(s, link, Op.BACKFILL, status.oldest_seq, status.newest_seq) == \
            wire.Reply(Op.BACKFILL, Result.OK, b"")

    asyncio.run(main())
    return link.packets()


# -- packets, clock, truth ----------------------------------------------------------------------


def test_live_packets_are_consecutive_and_carry_the_true_samples() -> None:
    s = sensor(drift_ppm=35.0)
    packets = streamed(s).packets()
    assert [p.seq for p in packets] == list(range(len(packets)))
    assert all(p.flags == Flag(0) for p in packets)
    assert {len(p.counts) for p in packets[:-1]} == {PER_PACKET}
    assert s.finished and s.stats.formed == s.stats.sent_live == len(packets)
    time, accel = s.truth_samples()
    assert len(time) == N_SAMPLES and accel.dtype == np.float32 and time.dtype == np.float64
    np.testing.assert_array_equal(np.concatenate([p.counts for p in packets]), truth_counts(s))
    # Samples follow the drifting device clock: 1 / (rate (1 + drift)) s apart in true time.
    k = np.arange(N_SAMPLES)
    np.testing.assert_allclose(time - T0, k / (RATE * (1 + 35e-6)), rtol=0, atol=1e-6)
    status = s.status()
    assert (status.oldest_seq, status.newest_seq, status.rate_hz) == (0, len(packets) - 1, RATE)


def test_ticks_follow_the_drifting_clock() -> None:
    drift = -45.0
    s = sensor(drift_ppm=drift)
    packets = streamed(s).packets()
    ticks = np.array([p.ticks for p in packets], dtype=np.int64)
    steps = np.diff(ticks) % 2**32
    expected = np.array([len(p.counts) for p in packets[:-1]]) * TICK_HZ / RATE
    assert np.all(np.abs(steps - expected) < 1.0)
    # Device time since the first packet, scaled by the drift, is true time since then.
    time = s.truth_samples()[0][first_samples(packets)]
    device_s = (ticks - ticks[0]) % 2**32 / (TICK_HZ * (1 + drift * 1e-6))
    np.testing.assert_allclose(device_s, time - time[0], atol=1.0 / TICK_HZ)


def test_time_sync_replies_the_device_ticks_now() -> None:
    drift = 50.0
    done = sensor(drift_ppm=drift)
    packets = streamed(done).packets()
    t_packet = done.truth_samples()[0][first_samples(packets)[100]]

    def sync_at(t: float, request: int) -> int:
        s, link = sensor(drift_ppm=drift, speed=FROZEN, start=t), Link()

        async def main() -> wire.Reply:
            await open_link(s, link, start=False)
            return await ask(s, link, Op.TIME_SYNC, request)

        reply = asyncio.run(main())
        assert reply.result is Result.OK
        sync = wire.TimeSyncReply.decode(reply.payload)
        assert sync.request_id == request
        return sync.ticks

    # At the true time of a packet's first sample the device reads that packet's ticks ...
    assert abs(sync_at(t_packet, 0xDEADBEEF) - packets[100].ticks) <= 1
    # ... and 10 minutes later 600 s of the drifting 32.768 kHz clock more (983 ticks of drift).
    later = (sync_at(t_packet + 600.0, 1) - packets[100].ticks) % 2**32
    assert abs(later - 600.0 * TICK_HZ * (1 + drift * 1e-6)) <= 1


def test_truth_csv_round_trips_through_the_contract_reader(tmp_path: Path) -> None:
    s = sensor(drift_ppm=20.0)
    streamed(s)
    path = s.write_truth_csv(tmp_path / "left.csv")
    assert path.read_text().startswith("time,x,y,z\n1795203000.0000,")
    recording = read_recording_csv(path, "left")
    time, accel = s.truth_samples()
    assert recording.fs == RATE
    np.testing.assert_allclose(recording.time, time, rtol=0, atol=0.51e-4)  # 4 decimals
    np.testing.assert_allclose(recording.accel, accel, rtol=0, atol=0.6e-6)  # 6 decimals
    np.testing.assert_array_equal(np.rint(recording.accel * 4096.0), truth_counts(s))


# -- flash and backfill -------------------------------------------------------------------------


def test_backfill_returns_exactly_the_flash_packets_flagged() -> None:
    s = sensor()
    live = streamed(s).packets()
    again = backfill_all(s)
    assert [p.seq for p in again] == [p.seq for p in live]
    assert all(p.flags == Flag.BACKFILL for p in again)
    assert [p.ticks for p in again] == [p.ticks for p in live]
    for a, b in zip(again, live, strict=True):
        np.testing.assert_array_equal(a.counts, b.counts)
    assert s.stats.backfilled == len(live)


def test_flash_ring_overwrites_the_oldest() -> None:
    s = sensor(flash_hours=0.01)  # 36 s: 1800 samples
    run(s)
    status = s.status()
    assert s.stats.formed == status.newest_seq + 1 and status.oldest_seq > 0
    link = Link()

    async def main() -> None:
        await open_link(s, link, start=False)
        assert (await ask(s, link, Op.BACKFILL, status.oldest_seq, status.newest_seq)).result \
            is Result.OK
        kept = link.packets()
        assert [p.seq for p in kept] == list(range(status.oldest_seq, status.newest_seq + 1))
        stored = sum(len(p.counts) for p in kept)
        assert 1800 - PER_PACKET < stored <= 1800
        np.testing.assert_array_equal(np.concatenate([p.counts for p in kept]),
                                      truth_counts(s)[-stored:])
        # Asking for overwritten packets: what is left is still sent, then NOT_IN_FLASH.
        link.data.clear()
        assert (await ask(s, link, Op.BACKFILL, 0, status.newest_seq)).result \
            is Result.NOT_IN_FLASH
        assert [p.seq for p in link.packets()] == [p.seq for p in kept]
        # Beyond the newest packet, or backwards: BAD_REQUEST, nothing sent.
        link.data.clear()
        for first, last in ((status.newest_seq, status.newest_seq + 1), (5, 2)):
            assert (await ask(s, link, Op.BACKFILL, first, last)).result is Result.BAD_REQUEST
        assert link.data == []

    asyncio.run(main())


def test_disconnected_sensor_sends_nothing_but_keeps_sampling_into_flash() -> None:
    s = sensor()
    first, second = Link(), Link()

    async def drop() -> None:
        first.open = False
        s.disconnect()

    run(s, (60.0, drop), (120.0, lambda: open_link(s, second)), setup=lambda: open_link(s, first))
    assert first.sent_while_closed == 0
    before, after = first.packets(), second.packets()
    gap = range(before[-1].seq + 1, after[0].seq)
    assert len(gap) > (60.0 - 2.0) * RATE / PER_PACKET
    assert [p.seq for p in before + after] == [q for q in range(after[-1].seq + 1) if q not in gap]
    status = s.status()
    assert (status.oldest_seq, status.newest_seq) == (0, after[-1].seq)
    recovered = {p.seq: p for p in backfill_all(s)}
    merged = sorted([*before, *after, *(recovered[q] for q in gap)], key=lambda p: p.seq)
    np.testing.assert_array_equal(np.concatenate([p.counts for p in merged]), truth_counts(s))


def test_erase_restarts_seq_in_a_new_session() -> None:
    s = sensor()
    link = Link()
    sessions: list[int] = []

    async def erase() -> None:
        sessions.append(s.status().session)
        assert await ask(s, link, Op.ERASE) == wire.Reply(Op.ERASE, Result.OK, b"")
        status = s.status()
        sessions.append(status.session)
        assert (status.oldest_seq, status.newest_seq) == (0, 2**32 - 1)  # empty

    run(s, (60.0, erase), setup=lambda: open_link(s, link))
    seqs = [p.seq for p in link.packets()]
    restart = seqs.index(0, 1)
    assert seqs == list(range(restart)) + list(range(len(seqs) - restart))
    assert sessions[1] == (sessions[0] + 1) & 0xFFFF
    assert s.status().newest_seq == len(seqs) - restart - 1
    np.testing.assert_array_equal(np.concatenate([p.counts for p in link.packets()]),
                                  truth_counts(s))


# -- control ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("write", "reply"),
    [
        (b"", b"\x80\x01"),
        (b"\x55", b"\xd5\x01"),  # unknown opcode: echoed, BAD_REQUEST
        (b"\x01\x00", b"\x81\x01"),  # START takes no argument
        (b"\x03", b"\x83\x01"),  # SET_RATE without its rate
        (b"\x03\x07", b"\x83\x01"),  # no such rate
        (b"\x03\x19", b"\x83\x01"),  # 25 Hz while sampling
        (b"\x03\x32", b"\x83\x00"),  # 50 Hz: already in effect
        (b"\x04\x03", b"\x84\x01"),  # no such range
        (b"\x05\x01\x02\x03", b"\x85\x01"),  # TIME_SYNC id cut short
        (b"\x06" + bytes(9), b"\x86\x01"),  # BACKFILL with a byte too many
    ],
)
def test_malformed_control_gets_bad_request(write: bytes, reply: bytes) -> None:
    s, link = sensor(speed=FROZEN, start=T0 + 10.0), Link()

    async def main() -> None:
        await open_link(s, link, start=False)
        await s.control(write)

    asyncio.run(main())
    assert link.replies == [reply]


def test_set_rate_before_sampling_renders_the_night_at_the_new_rate() -> None:
    s, link = sensor(start=T0 - 30.0), Link()
    assert len(s.truth_samples()[0]) == 0

    async def set_rate() -> None:
        await open_link(s, link)
        assert (await ask(s, link, Op.SET_RATE, 100)).result is Result.OK

    run(s, setup=set_rate)
    packets = link.packets()
    assert s.status().rate_hz == 100 and len(s.truth_samples()[0]) == 2 * N_SAMPLES
    np.testing.assert_array_equal(np.concatenate([p.counts for p in packets]), truth_counts(s))
    steps = np.diff([p.ticks for p in packets]) % 2**32
    assert abs(steps[0] - PER_PACKET * TICK_HZ / 100) < 1.0


def test_set_range_rescales_the_following_packets() -> None:
    s, link = sensor(), Link()

    async def set_range() -> None:
        assert (await ask(s, link, Op.SET_RANGE, 2)).result is Result.OK
        status = s.status()
        assert (status.range_g, status.counts_per_g) == (2, 16384)

    run(s, (60.0, set_range), setup=lambda: open_link(s, link))
    packets = link.packets()
    at = first_samples(packets)
    at_8g, at_2g = truth_counts(s, 4096), truth_counts(s, 16384)
    scale = [
        4096 if np.array_equal(p.counts, at_8g[k:k + len(p.counts)]) else 16384
        for p, k in zip(packets, at, strict=True)
    ]
    switch = scale.index(16384)
    assert scale == [4096] * switch + [16384] * (len(scale) - switch)
    np.testing.assert_array_equal(np.concatenate([p.counts for p in packets[switch:]]),
                                  at_2g[at[switch]:])
    # The truth follows the scale of each packet.
    truth = s.truth_samples()[1]
    np.testing.assert_array_equal(truth[at[switch]:], at_2g[at[switch]:] / np.float32(16384))


# -- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lose", "duplicate", "reorder", "corrupt"])
def test_live_faults_at_probability_one(kind: str) -> None:
    s = sensor(faults=(Fault(kind, value=1.0),))
    link = streamed(s)
    n = s.stats.formed
    if kind == "lose":
        assert link.data == [] and s.stats.lost == n
    elif kind == "duplicate":
        assert [p.seq for p in link.packets()] == [q for q in range(n) for _ in range(2)]
        assert s.stats.duplicated == n and s.stats.sent_live == 2 * n
    elif kind == "reorder":
        swapped = [q for i in range(0, n - 1, 2) for q in (i + 1, i)] + [n - 1] * (n % 2)
        assert [p.seq for p in link.packets()] == swapped
        assert s.stats.reordered == math.ceil(n / 2)
    else:
        assert len(link.data) == n == s.stats.corrupted
        for data in link.data:
            with pytest.raises(wire.WireError):
                wire.decode_packet(data)
    # Faults never touch flash: backfill recovers the night intact.
    restored = backfill_all(s)
    np.testing.assert_array_equal(np.concatenate([p.counts for p in restored]), truth_counts(s))


@pytest.mark.parametrize("fault", [Fault("stall", at_s=60.0, until_s=120.0),
                                   Fault("lose", at_s=60.0, until_s=120.0, value=1.0)])
def test_faults_in_a_window_silence_live_packets_but_not_flash(fault: Fault) -> None:
    s = sensor(faults=(fault,))
    live = streamed(s).packets()
    stored = backfill_all(s)
    time = s.truth_samples()[0]
    due = {p.seq: time[k + len(p.counts) - 1] for p, k in zip(stored, first_samples(stored),
                                                               strict=True)}
    stalled = {q for q, t in due.items() if T0 + 60.0 <= t < T0 + 120.0}
    silenced = s.stats.withheld if fault.kind == "stall" else s.stats.lost
    assert len(stalled) > 50 and silenced == len(stalled)
    assert [p.seq for p in live] == [q for q in sorted(due) if q not in stalled]


def test_out_of_range_and_drops_are_exposed_and_silence_the_link() -> None:
    faults = (Fault("out_of_range", at_s=60.0, until_s=90.0), Fault("drop", at_s=150.0),
              Fault("drop", at_s=30.0))
    s = sensor(faults=faults)
    assert s.reachable(T0 + 59.9) and not s.reachable(T0 + 60.0)
    assert not s.reachable(T0 + 89.9) and s.reachable(T0 + 90.0)
    assert s.next_reach_change(T0) == T0 + 60.0 and s.next_reach_change(T0 + 70.0) == T0 + 90.0
    assert s.next_reach_change(T0 + 90.0) is None
    assert s.drop_times() == [T0 + 30.0, T0 + 150.0]
    streamed(s)
    assert s.stats.withheld > 0 and s.stats.sent_live + s.stats.withheld == s.stats.formed


def test_clock_jump_sets_clock_set_on_the_next_packet() -> None:
    s = sensor(faults=(Fault("clock_jump", at_s=60.0, value=3600.0),))
    packets = streamed(s).packets()
    flagged = [i for i, p in enumerate(packets) if p.flags & Flag.CLOCK_SET]
    assert len(flagged) == 1
    i = flagged[0]
    time = s.truth_samples()[0][first_samples(packets)]
    assert time[i - 1] < T0 + 60.0 <= time[i]
    step = (packets[i].ticks - packets[i - 1].ticks) % 2**32
    assert abs(step - len(packets[i - 1].counts) * TICK_HZ / RATE - 3600 * TICK_HZ) < 1.0


def test_mtu23_keeps_one_sample_packets() -> None:
    s = sensor(duration_h=0.01, faults=(Fault("mtu23"),))
    assert s.set_mtu(247) == 23
    packets = streamed(s).packets()
    assert {len(p.counts) for p in packets} == {1} and len(packets) == 0.01 * 3600 * RATE
    assert sensor().set_mtu(247) == 247


def test_battery_drains_and_low_battery_flags_packets() -> None:
    frozen = sensor(speed=FROZEN, start=T0 + 3 * 3600.0, battery_pct=50.0, battery_hours=10.0)
    assert frozen.battery_pct() == 20 and frozen.status().battery_pct == 20
    s = sensor(faults=(Fault("low_battery", at_s=60.0),))
    packets = streamed(s).packets()
    time = s.truth_samples()[0]
    due = [time[k + len(p.counts) - 1] for p, k in zip(packets, first_samples(packets),
                                                        strict=True)]
    low = [bool(p.flags & Flag.LOW_BATTERY) for p in packets]
    assert low == [t >= T0 + 60.0 for t in due]
    assert s.battery_pct() == 10


# -- configuration and rigs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"drift_ppm": 60.0}, "drift_ppm"),
        ({"range_g": 3}, "range_g"),
        ({"side": "middle"}, "side"),
        ({"faults": (Fault("lose", value=0.5),), "flash_hours": 0.0}, "flash_hours"),
    ],
)
def test_bad_config_names_the_key(changes: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        replace(BASE, **changes)
    assert err.value.key == key


@pytest.mark.parametrize(
    ("fault", "key"),
    [
        ({"kind": "gremlins"}, "kind"),
        ({"kind": "stall", "at_s": 10.0}, "until_s"),
        ({"kind": "lose", "value": 1.5}, "value"),
        ({"kind": "clock_jump", "at_s": 5.0}, "value"),
        ({"kind": "drop", "at_s": -1.0}, "at_s"),
        ({"kind": "drop", "at_s": 1.0, "until_s": 2.0}, "until_s"),
        ({"kind": "mtu23", "at_s": 1.0}, "at_s"),
        ({"kind": "stall", "at_s": 1.0, "until_s": 2.0, "value": 0.5}, "value"),
    ],
)
def test_bad_fault_names_the_key(fault: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        Fault(**fault)
    assert err.value.key == key


def test_name_fits_the_advertisement() -> None:
    assert BASE.name == "LW0001L"
    assert replace(BASE, serial="SN-20260042R").name == "LW60042R"


def test_scenario_without_the_leg_is_refused() -> None:
    with pytest.raises(ConfigError, match="no left sensor"):
        sensor(scenario="nonwear_one_sensor")


def test_shipped_rigs_load() -> None:
    demo = load_rig(RIGS / "demo.toml")
    assert [(c.side, c.drift_ppm, c.scenario) for c in demo] == [
        ("left", 35.0, "mild_plms"), ("right", -20.0, "mild_plms")]
    kinds = {f.kind for c in demo for f in c.faults}
    assert {"drop", "out_of_range", "lose", "duplicate", "reorder", "corrupt"} <= kinds
    out = [f for c in demo for f in c.faults if f.kind == "out_of_range"]
    assert [(f.until_s or 0.0) - f.at_s for f in out] == [300.0]
    assert all(f.value == 0.01 for c in demo for f in c.faults if f.kind == "lose")
    clean = load_rig(RIGS / "clean.toml", night_start=T0)
    assert len(clean) == 2 and all(c.faults == () and c.night_start == T0 for c in clean)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"colour": "red"}, "'colour'"),
        ({"seed": "seven"}, "'seed'"),
        ({"duration_h": -1.0}, "'duration_h'"),
        ({"scenario": "no_such_scenario"}, "'scenario'"),
        ({"sensors": []}, "'sensors'"),
        ({"sensors": [{"side": "left"}]}, "'sensors[0].serial'"),
        ({"sensors": [{"serial": "A", "side": "left", "drift_ppm": 99}]}, "'sensors[0].drift_ppm'"),
        ({"sensors": [{"serial": "A", "side": "left"}, {"serial": "B", "side": "left"}]},
         "'sensors[1].side'"),
        ({"sensors": [{"serial": "A", "side": "left", "faults": [{"kind": "lose", "value": 2}]}]},
         "'sensors[0].faults[0].value'"),
        ({"sensors": [{"serial": "A", "side": "left", "faults": [{"kind": "stall", "at": 1}]}]},
         "'sensors[0].faults[0].at'"),
    ],
)
def test_bad_rig_names_the_key(change: dict[str, Any], key: str) -> None:
    rig = {"scenario": "mild_plms", "seed": 1, "sensors": [{"serial": "A", "side": "left"}]}
    with pytest.raises(RigError, match=re.escape(f"rig file x.toml: key {key}")):
        parse_rig(rig | change, Path("x.toml"))
