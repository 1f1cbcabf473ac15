"""Real BLE protocol between simulated sensors and the bleak backend, on an emulated radio.

Sensors (`SensorPeripheral` on a `Radio`) and the ingester's side (bleak + `ingest.bumble_backend`
+ bleak-retry-connector) talk advertising, connection, MTU exchange, discovery, notifications,
writes and HCI disconnect reasons over Bumble's emulated controllers: in-process on one
`LocalLink`, and across processes through the simulator's HCI server. Short nights (0.05-0.2 h)
on a fast SimClock. Figures (connect time, packets/s, backfill throughput) are printed, not
asserted: run with `-s` to see them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakGATTProtocolError, BleakGATTProtocolErrorCode
from bleak_retry_connector import establish_connection
from bumble import hci
from bumble.core import UUID, AdvertisingData
from bumble.device import Device
from bumble.host import Host
from bumble.transport.common import AsyncPipeSink

from firmware_sim import simulator
from firmware_sim.peripheral import SensorPeripheral, address_for, advertising_data
from firmware_sim.radio import LE_DATA_LENGTH_MAX, LE_DATA_LENGTH_MIN, Radio
from firmware_sim.sensor import Fault, Sensor, SensorConfig
from ingest.bumble_backend import BumbleTransport, bumble_backend, close_adapter
from limbwatch import wire
from limbwatch.recording import Side
from limbwatch.simclock import SimClock
from limbwatch.wire import Flag, Op, Result

ROOT = Path(__file__).resolve().parents[1]
LEFT: tuple[str, Side] = ("LW0001L", "left")
RIGHT: tuple[str, Side] = ("LW0002R", "right")
TEST_TIMEOUT_S = 30.0


def run(coro: Coroutine[Any, Any, None]) -> None:
    """Each test in its own event loop (one Radio and one Bumble adapter per loop)."""

    async def bounded() -> None:
        async with asyncio.timeout(TEST_TIMEOUT_S):
            await coro

    asyncio.run(bounded())


def config(serial: str, side: Side, clock: SimClock, *, duration_h: float = 0.1,
           scenario: str = "mild_plms", faults: tuple[Fault, ...] = ()) -> SensorConfig:
    return SensorConfig(serial=serial, side=side, scenario=scenario, seed=7,
                        night_start=clock.start, duration_h=duration_h, faults=faults)


@dataclass(slots=True)
class Rig:
    """Sensors on an in-process radio and the bleak backends of a central on the same radio."""

    radio: Radio
    sensors: dict[str, Sensor]
    scanner: type[BaseBleakScanner]
    client: type[BaseBleakClient]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def run_sensors(self) -> None:
        self.tasks += [asyncio.create_task(s.run()) for s in self.sensors.values()]


@contextlib.asynccontextmanager
async def rig(configs: list[SensorConfig], clock: SimClock, *, le_data_length: int = 251,
              sample: bool = True) -> AsyncIterator[Rig]:
    radio = Radio(le_data_length=le_data_length)
    sensors = {c.serial: Sensor(c, clock) for c in configs}
    peripherals = [SensorPeripheral(s, radio, address_for(s.config.serial))
                   for s in sensors.values()]
    scanner, client = bumble_backend(BumbleTransport(controller=radio.central_controller()))
    setup = Rig(radio, sensors, scanner, client)
    try:
        for p in peripherals:
            await p.start()
        if sample:
            setup.run_sensors()
        yield setup
    finally:
        await close_adapter()
        for task in setup.tasks:
            task.cancel()
        for p in peripherals:
            await p.stop()
        await radio.close()


class Central:
    """A connected bleak client that records DATA packets and CONTROL replies."""

    def __init__(self, client: BleakClient) -> None:
        self.client = client
        self.packets: list[wire.Packet] = []
        self.replies: list[wire.Reply] = []
        self._reply_seen = asyncio.Event()

    @classmethod
    async def connect(cls, device: BLEDevice, backend: type[BaseBleakClient],
                      on_disconnect: Callable[[BleakClient], None] | None = None) -> Central:
        client = await establish_connection(BleakClient, device, device.name or device.address,
                                            backend=backend, disconnected_callback=on_disconnect)
        central = cls(client)
        await client.start_notify(wire.DATA_CHAR_UUID, central._on_data)
        await client.start_notify(wire.CONTROL_CHAR_UUID, central._on_reply)
        return central

    def _on_data(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        assert isinstance(data, bytearray)
        self.packets.append(wire.decode_packet(bytes(data)))

    def _on_reply(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        self.replies.append(wire.decode_reply(bytes(data)))
        self._reply_seen.set()

    async def command(self, op: Op, *args: int) -> wire.Reply:
        """Write a control command and wait for its reply."""
        before = len(self.replies)
        await self.client.write_gatt_char(wire.CONTROL_CHAR_UUID, wire.command(op, *args),
                                          response=True)
        while True:
            self._reply_seen.clear()
            if (reply := next((r for r in self.replies[before:] if r.op is op), None)):
                return reply
            await self._reply_seen.wait()

    async def status(self) -> wire.Status:
        return wire.Status.decode(bytes(await self.client.read_gatt_char(wire.STATUS_CHAR_UUID)))


async def find(scanner: type[BaseBleakScanner], name: str, timeout: float = 3.0) -> BLEDevice:
    device = await BleakScanner.find_device_by_name(name, timeout=timeout, backend=scanner)
    assert device is not None, f"{name} not found"
    return device


async def names_seen(scanner: type[BaseBleakScanner], seconds: float,
                     **filters: Any) -> dict[str, AdvertisementData]:
    found = await BleakScanner.discover(timeout=seconds, backend=scanner, return_adv=True,
                                        **filters)
    return {adv.local_name or "": adv for _device, adv in found.values()}


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def test_advertisement_fits_legacy_31_bytes() -> None:
    assert len(advertising_data("LW0001L")) <= 31
    assert len(advertising_data("12345678")) == 31
    with pytest.raises(ValueError, match="at most 8"):
        advertising_data("123456789")


def test_one_radio_per_event_loop_with_a_valid_data_length() -> None:
    async def scenario() -> None:
        for bad in (LE_DATA_LENGTH_MIN - 1, LE_DATA_LENGTH_MAX + 1):
            with pytest.raises(ValueError, match=r"27\.\.251"):
                Radio(le_data_length=bad)
        radio = Radio()
        with pytest.raises(RuntimeError, match="already has an open Radio"):
            Radio()
        await radio.close()
        await Radio().close()  # a closed radio frees the loop

    run(scenario())


def test_scan_finds_sensors_by_name_and_service_ignores_other_devices() -> None:
    async def scenario() -> None:
        clock = SimClock(speed=100)
        async with rig([config(*LEFT, clock), config(*RIGHT, clock)], clock) as setup:
            other_controller = setup.radio.controller("thermometer")
            other = Device(name="Thermo", address=hci.Address("E1:02:03:04:05:06"),
                           host=Host(other_controller, AsyncPipeSink(other_controller)))
            await other.power_on()
            await other.start_advertising(
                advertising_data=bytes(AdvertisingData([
                    (AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                     bytes(UUID.from_16_bits(0x1809))),
                    (AdvertisingData.Type.COMPLETE_LOCAL_NAME, b"Thermo"),
                ])),
                advertising_interval_min=50, advertising_interval_max=50)

            started = time.monotonic()
            first_seen: dict[str, float] = {}

            def seen(_device: BLEDevice, adv: AdvertisementData) -> None:
                first_seen.setdefault(adv.local_name or "", time.monotonic())

            async with BleakScanner(seen, service_uuids=[wire.SERVICE_UUID],
                                    backend=setup.scanner):
                await wait_until(lambda: {"LW0001L", "LW0002R"} <= set(first_seen))
            print(f"\nscan-to-found: {1000 * (max(first_seen.values()) - started):.0f} ms "
                  "for both sensors")

            found = await BleakScanner.discover(timeout=0.3, backend=setup.scanner,
                                                service_uuids=[wire.SERVICE_UUID],
                                                return_adv=True)
            assert sorted(adv.local_name or "" for _d, adv in found.values()) == [
                "LW0001L", "LW0002R"]
            for device, adv in found.values():
                assert adv.service_uuids == [wire.SERVICE_UUID]
                assert device.name == adv.local_name
                assert device.address == address_for(device.name or "")
                assert "path" not in device.details

            everything = await names_seen(setup.scanner, 0.3)
            assert everything["Thermo"].service_uuids == [
                "00001809-0000-1000-8000-00805f9b34fb"]
            assert {"LW0001L", "LW0002R"} <= set(everything)
            await other.power_off()
            setup.radio.release(other_controller, hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR)

    run(scenario())


def test_connect_stream_time_sync_and_backfill() -> None:
    async def scenario() -> None:
        clock = SimClock(speed=100)
        async with rig([config(*LEFT, clock), config(*RIGHT, clock)], clock) as setup:
            device = await find(setup.scanner, "LW0001L")
            disconnected = asyncio.Event()
            started = time.monotonic()
            central = await Central.connect(device, setup.client,
                                            lambda _c: disconnected.set())
            connect_ms = 1000 * (time.monotonic() - started)
            client = central.client
            assert client.is_connected
            assert client.mtu_size == 247

            uuids = {s.uuid for s in client.services}
            assert {wire.SERVICE_UUID, wire.BATTERY_SERVICE_UUID,
                    wire.DEVICE_INFO_SERVICE_UUID} <= uuids
            chars = {c.uuid: c for c in client.services.characteristics.values()}
            assert chars[wire.DATA_CHAR_UUID].properties == ["notify"]
            assert chars[wire.CONTROL_CHAR_UUID].properties == ["write", "notify"]
            assert chars[wire.STATUS_CHAR_UUID].properties == ["read"]
            assert chars[wire.BATTERY_LEVEL_UUID].properties == ["read", "notify"]
            assert await client.read_gatt_char(wire.SERIAL_UUID) == bytearray(b"LW0001L")
            assert await client.read_gatt_char(wire.MANUFACTURER_UUID) == bytearray(
                b"limbwatch")
            assert (await client.read_gatt_char(wire.BATTERY_LEVEL_UUID))[0] == 100
            assert (await central.status()).side == "left"
            with pytest.raises(BleakGATTProtocolError) as refused:
                await client.read_gatt_char(wire.DATA_CHAR_UUID)
            assert refused.value.code is BleakGATTProtocolErrorCode.READ_NOT_PERMITTED
            with pytest.raises(BleakGATTProtocolError) as refused:
                await client.write_gatt_char(wire.STATUS_CHAR_UUID, b"\x00", response=True)
            assert refused.value.code is BleakGATTProtocolErrorCode.WRITE_NOT_PERMITTED

            assert (await central.command(Op.START)).result is Result.OK
            await wait_until(lambda: len(central.packets) >= 20)
            t0, n0 = time.monotonic(), len(central.packets)
            await asyncio.sleep(1.0)
            live_rate = (len(central.packets) - n0) / (time.monotonic() - t0)
            seqs = [p.seq for p in central.packets]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            assert all(p.flags == Flag(0) for p in central.packets)
            assert len(central.packets[-1].counts) == wire.max_samples(247)

            sync = await central.command(Op.TIME_SYNC, 0xC0FFEE)
            assert sync.result is Result.OK
            assert wire.TimeSyncReply.decode(sync.payload).request_id == 0xC0FFEE

            status = await central.status()
            first = max(status.oldest_seq, status.newest_seq - 199)
            before = len(central.packets)
            backfill = await central.command(Op.BACKFILL, first, status.newest_seq)
            assert backfill.result is Result.OK
            filled = [p for p in central.packets[before:] if p.flags & Flag.BACKFILL]
            assert [p.seq for p in filled] == list(range(first, status.newest_seq + 1))

            per_packet = wire.max_samples(247)
            print(f"\nconnect (MTU + discovery): {connect_ms:.0f} ms; live: {live_rate:.0f} "
                  f"packets/s (expected {clock.speed * 50 / per_packet:.0f} at x{clock.speed:g})")
            await client.disconnect()
            assert not client.is_connected
            assert disconnected.is_set()  # on every disconnection, asked for or not

    run(scenario())


def test_connect_timeout_is_cancelled_in_the_controller_and_next_connect_works() -> None:
    async def scenario() -> None:
        clock = SimClock(speed=100)
        async with rig([config(*LEFT, clock)], clock) as setup:
            nobody = BleakClient("C0:00:00:00:00:01", backend=setup.client, timeout=0.3)
            with pytest.raises(asyncio.TimeoutError, match=r"no connection within 0\.3 s"):
                await nobody.connect()
            # The controller dropped the cancelled attempt: the next connection goes through.
            central = await Central.connect(await find(setup.scanner, "LW0001L"),
                                            setup.client)
            assert central.client.is_connected
            await central.client.disconnect()

    run(scenario())


def test_scheduled_drop_fires_disconnected_callback_and_reconnect_works() -> None:
    async def scenario() -> None:
        clock = SimClock(speed=100)
        drop_at = clock.start + 80.0
        cfg = config(*LEFT, clock, faults=(Fault(kind="drop", at_s=80.0),))
        async with rig([cfg], clock) as setup:
            dropped = asyncio.Event()
            device = await find(setup.scanner, "LW0001L")
            central = await Central.connect(device, setup.client, lambda _c: dropped.set())
            assert clock.now() < drop_at
            await central.command(Op.START)
            await asyncio.wait_for(dropped.wait(), 5.0)
            assert clock.now() >= drop_at
            assert not central.client.is_connected

            again = await find(setup.scanner, "LW0001L")  # advertising again
            second = await Central.connect(again, setup.client)
            assert (await second.status()).side == "left"
            assert (await second.command(Op.START)).result is Result.OK
            await wait_until(lambda: len(second.packets) > 5)
            await second.client.disconnect()

    run(scenario())


def test_out_of_range_disconnects_and_hides_sensor_until_back() -> None:
    async def scenario() -> None:
        clock = SimClock(speed=100)
        gone, back = clock.start + 60.0, clock.start + 160.0
        cfg = config(*LEFT, clock, faults=(Fault(kind="out_of_range", at_s=60.0,
                                                  until_s=160.0),))
        async with rig([cfg, config(*RIGHT, clock)], clock) as setup:
            dropped = asyncio.Event()
            device = await find(setup.scanner, "LW0001L")
            await Central.connect(device, setup.client, lambda _c: dropped.set())
            await asyncio.wait_for(dropped.wait(), 5.0)
            assert gone <= clock.now() < back

            seen = await names_seen(setup.scanner, 0.3, service_uuids=[wire.SERVICE_UUID])
            assert clock.now() < back
            assert "LW0001L" not in seen and "LW0002R" in seen

            await clock.sleep_until(back)
            assert (await find(setup.scanner, "LW0001L")).name == "LW0001L"

    run(scenario())


def test_battery_level_is_notified_when_it_changes() -> None:
    async def scenario() -> None:
        clock = SimClock(speed=100)
        cfg = config(*LEFT, clock, faults=(Fault(kind="low_battery", at_s=30.0, value=5.0),))
        async with rig([cfg], clock) as setup:
            central = await Central.connect(await find(setup.scanner, "LW0001L"),
                                            setup.client)
            levels: list[int] = []
            await central.client.start_notify(wire.BATTERY_LEVEL_UUID,
                                              lambda _c, data: levels.append(data[0]))
            await wait_until(lambda: 5 in levels)
            assert (await central.client.read_gatt_char(wire.BATTERY_LEVEL_UUID))[0] <= 5
            await central.client.disconnect()

    run(scenario())


def test_simulator_refuses_bad_input_in_one_line(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert simulator.main(["--rig", str(tmp_path / "missing.toml")]) == 2
    assert simulator.main(["--rig", str(ROOT / "firmware_sim/rigs/demo.toml"),
                           "--speed", "0"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2
    assert "missing.toml not found" in errors[0]
    assert "--speed must be > 0" in errors[1]


@pytest.mark.parametrize("length", [27, 251])
def test_backfill_throughput_by_le_data_length(length: int) -> None:
    """Not asserted beyond completeness: the figures are printed for the README."""

    async def scenario() -> None:
        # The whole 0.2 h night (100 Hz) lies in the past: run() forms it at once, after the MTU
        # exchange, so flash holds full 247-MTU packets.
        clock = SimClock(start=time.time() - 0.2 * 3600, speed=600)
        cfg = config(*LEFT, clock, duration_h=0.2, scenario="noisy_100hz")
        async with rig([cfg], clock, le_data_length=length, sample=False) as setup:
            central = await Central.connect(await find(setup.scanner, "LW0001L"),
                                            setup.client)
            await setup.sensors["LW0001L"].run()
            status = await central.status()
            started = time.monotonic()
            reply = await central.command(Op.BACKFILL, status.oldest_seq, status.newest_seq)
            elapsed = time.monotonic() - started
            assert reply.result is Result.OK
            count = status.newest_seq - status.oldest_seq + 1
            assert len(central.packets) == count
            assert all(len(p.counts) == wire.max_samples(247) for p in central.packets[:-1])
            print(f"\nbackfill, LE data length {length}: {count} packets of "
                  f"{len(wire.encode_packet(0, 0, central.packets[0].counts))} bytes in "
                  f"{elapsed:.2f} s = {count / elapsed:.0f} packets/s")
            await central.client.disconnect()

    run(scenario())


CHILD_CLIENT = """
import asyncio, sys
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakGATTProtocolError, BleakGATTProtocolErrorCode
from bleak_retry_connector import establish_connection
from ingest.bumble_backend import BumbleTransport, bumble_backend

async def main():
    scanner, client = bumble_backend(BumbleTransport(sys.argv[1]))
    device = await BleakScanner.find_device_by_name("LW0001L", timeout=5, backend=scanner)
    await establish_connection(BleakClient, device, "LW0001L", backend=client)
    print("connected", flush=True)
    await asyncio.Future()

asyncio.run(main())
"""


def test_simulator_process_serves_hci_and_frees_sensors_of_dead_clients(tmp_path: Path) -> None:
    rig_file = tmp_path / "rig.toml"
    rig_file.write_text('scenario = "mild_plms"\nseed = 7\nduration_h = 0.1\n'
                        '[[sensors]]\nserial = "LW0001L"\nside = "left"\n'
                        '[[sensors]]\nserial = "LW0002R"\nside = "right"\n')

    async def scenario() -> None:
        sim = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "firmware_sim.simulator", "--rig", str(rig_file),
            "--speed", "60", "--port", "0", cwd=ROOT, stdout=asyncio.subprocess.PIPE)
        child: asyncio.subprocess.Process | None = None
        try:
            assert sim.stdout is not None
            line = (await sim.stdout.readline()).decode().strip()
            assert line.startswith("HCI tcp://127.0.0.1:"), line
            spec = "tcp-client:" + line.removeprefix("HCI tcp://")

            # Another ingester process takes the left sensor, then dies without a word.
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CHILD_CLIENT, spec, cwd=ROOT,
                stdout=asyncio.subprocess.PIPE)
            assert child.stdout is not None
            assert (await child.stdout.readline()).decode().strip() == "connected"

            scanner, client = bumble_backend(BumbleTransport(spec))
            seen = await names_seen(scanner, 0.5, service_uuids=[wire.SERVICE_UUID])
            assert "LW0002R" in seen and "LW0001L" not in seen  # taken: not advertising

            child.send_signal(signal.SIGKILL)
            await child.wait()
            device = await find(scanner, "LW0001L")  # its links ended: advertising again

            started = time.monotonic()
            central = await Central.connect(device, client)
            connect_ms = 1000 * (time.monotonic() - started)
            assert central.client.mtu_size == 247
            assert await central.client.read_gatt_char(wire.SERIAL_UUID) == bytearray(
                b"LW0001L")
            await central.command(Op.START)
            await wait_until(lambda: len(central.packets) >= 20)
            seqs = [p.seq for p in central.packets]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            print(f"\nover tcp-client: connect {connect_ms:.0f} ms")
            await close_adapter()
        finally:
            if child is not None and child.returncode is None:
                child.kill()
                await child.wait()
            sim.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    assert await sim.wait() == 0
            finally:
                if sim.returncode is None:
                    sim.kill()
                    await sim.wait()

    run(scenario())
