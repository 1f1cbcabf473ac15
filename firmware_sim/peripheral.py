"""A simulated sensor on the emulated radio: a Bumble GATT server in front of a `Sensor`.

Exposes the `limbwatch.wire` profile (DATA notify, CONTROL write-with-response + notify, STATUS
read), the Battery Service (level read + notify) and the Device Information Service. While
disconnected and in range it advertises flags, the 128-bit service UUID and the short name: with
at most 8 characters that is exactly the 31 bytes of a legacy advertisement. (Nothing goes in a
scan response: bumble 0.0.236's emulated controller repeats the advertisement as the response.)

On connection the sensor gets `send`/`reply` callables that notify the central (dropped until it
subscribes, as firmware does; a backlog of ACL packets makes them wait, which paces backfill to
what the link carries); MTU exchanges reach `sensor.set_mtu`. Control writes are answered at once
and run in order by `sensor.control`. The sensor's fault schedule is obeyed: at each drop time the
link is ended with CONNECTION_TIMEOUT, and while out of range the link is ended and advertising
stops until the sensor is reachable again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from bumble import att, hci
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.host import Host
from bumble.profiles.battery_service import BatteryService
from bumble.profiles.device_information_service import DeviceInformationService
from bumble.transport.common import AsyncPipeSink

from firmware_sim.radio import Radio, SimController
from firmware_sim.sensor import Sensor
from limbwatch import wire

logger = logging.getLogger(__name__)

MANUFACTURER = "limbwatch"
MODEL_NUMBER = "LW-A1-SIM"
FIRMWARE_REVISION = "1.0.0-sim"
ADVERTISING_INTERVAL_MS = 50.0
ADVERTISEMENT_MAX = 31  # bytes of a legacy advertisement
# ACL packets queued towards the controller before send() waits: one controller buffer.
_MAX_PENDING_ACL = 64
_BATTERY_POLL_S = 1.0  # real seconds between battery level checks
_DISCONNECT_TIMEOUT_S = 5.0

Notify = Callable[[bytes], Awaitable[None]]


class AdvertisementTooLongError(ValueError):
    """The advertised name does not fit next to the flags and the 128-bit service UUID."""


def _refuse_read(_connection: Connection) -> bytes:
    # Bumble does not check permissions itself; firmware answers with an ATT error.
    raise att.ATT_Error(att.ATT_READ_NOT_PERMITTED_ERROR)


def _refuse_write(_connection: Connection, _value: bytes) -> None:
    raise att.ATT_Error(att.ATT_WRITE_NOT_PERMITTED_ERROR)


def address_for(serial: str) -> str:
    """A stable random static BLE address for a sensor serial (top two bits set)."""
    digest = hashlib.blake2b(serial.encode(), digest_size=6).digest()
    return ":".join(f"{b:02X}" for b in (0xC0 | digest[0] & 0x3F, *digest[1:]))


def advertising_data(name: str) -> bytes:
    """Flags, the complete list with SERVICE_UUID and the complete local name (<= 31 bytes)."""
    flags = (AdvertisingData.Flags.LE_GENERAL_DISCOVERABLE_MODE
             | AdvertisingData.Flags.BR_EDR_NOT_SUPPORTED)
    data = bytes(AdvertisingData([
        (AdvertisingData.Type.FLAGS, bytes([flags])),
        (AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
         bytes(UUID(wire.SERVICE_UUID))),
        (AdvertisingData.Type.COMPLETE_LOCAL_NAME, name.encode()),
    ]))
    if len(data) > ADVERTISEMENT_MAX:
        raise AdvertisementTooLongError(
            f"advertised name {name!r} makes a {len(data)}-byte advertisement: at most 8 ASCII "
            "characters fit next to the flags and the 128-bit service UUID in 31 bytes")
    return data


class SensorPeripheral:
    """One `Sensor` as a BLE peripheral on `radio` at `address` (a random static address)."""

    def __init__(self, sensor: Sensor, radio: Radio, address: str) -> None:
        self.sensor = sensor
        self.radio = radio
        self.address = hci.Address(address)
        if not self.address.is_static:
            raise ValueError(f"{address} is not a random static address (first byte C0-FF); "
                             "use peripheral.address_for(serial)")
        self._advertisement = advertising_data(sensor.config.name)
        self._data: Characteristic[bytes] = Characteristic(
            wire.DATA_CHAR_UUID, Characteristic.Properties.NOTIFY, Characteristic.Permissions(0),
            CharacteristicValue(read=_refuse_read, write=_refuse_write),
        )
        self._control: Characteristic[bytes] = Characteristic(
            wire.CONTROL_CHAR_UUID,
            Characteristic.Properties.WRITE | Characteristic.Properties.NOTIFY,
            Characteristic.WRITEABLE,
            CharacteristicValue(read=_refuse_read, write=self._on_control_write),
        )
        self._status: Characteristic[bytes] = Characteristic(
            wire.STATUS_CHAR_UUID, Characteristic.Properties.READ, Characteristic.READABLE,
            CharacteristicValue(read=lambda _connection: self.sensor.status().encode(),
                                write=_refuse_write),
        )
        self._battery = BatteryService(lambda _connection: self.sensor.battery_pct())
        self._info = DeviceInformationService(
            manufacturer_name=MANUFACTURER, model_number=MODEL_NUMBER,
            serial_number=sensor.config.serial, firmware_revision=FIRMWARE_REVISION,
        )
        self._controller: SimController | None = None
        self._device: Device | None = None
        self._connection: Connection | None = None
        self._controls: asyncio.Queue[bytes] = asyncio.Queue()
        self._control_task: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake = asyncio.Event()  # time to re-check: link state changed, timer, stop()
        self._flow = asyncio.Event()  # the controller took ACL packets, or the link went down

    async def start(self) -> None:
        """Power the peripheral on its own controller and start obeying the sensor's schedule."""
        controller = self.radio.controller(f"sensor-{self.sensor.config.serial}")
        device = Device(name=self.sensor.config.name, address=self.address,
                        host=Host(controller, AsyncPipeSink(controller)))
        device.add_services([Service(wire.SERVICE_UUID, [self._data, self._control,
                                                         self._status]),
                             self._battery, self._info])
        device.on(Device.EVENT_CONNECTION, self._on_connection)
        await device.power_on()
        queue = device.host.le_acl_packet_queue
        if queue is not None:
            queue.on("flow", self._flow.set)
        self._controller, self._device = controller, device
        self._stopping = False
        self._supervisor = asyncio.create_task(self._supervise(device),
                                               name=f"peripheral {self.sensor.config.serial}")
        self._supervisor.add_done_callback(self._on_supervisor_done)

    async def stop(self) -> None:
        """End the link (the central sees a power-off), stop advertising, leave the radio."""
        if self._supervisor is not None:
            # Asked to finish rather than cancelled: on Python 3.11 a cancel that lands while
            # Bumble awaits an HCI response (asyncio.wait_for) can be lost.
            self._stopping = True
            self._wake.set()
            await asyncio.gather(self._supervisor, return_exceptions=True)
            self._supervisor = None
        device, controller = self._device, self._controller
        if device is None or controller is None:
            return
        await self._end_link(
            device, hci.HCI_ErrorCode.REMOTE_DEVICE_TERMINATED_CONNECTION_DUE_TO_POWER_OFF_ERROR)
        if device.is_advertising:
            await device.stop_advertising()
        await device.power_off()
        self.radio.release(
            controller,
            hci.HCI_ErrorCode.REMOTE_DEVICE_TERMINATED_CONNECTION_DUE_TO_POWER_OFF_ERROR)
        self._device = self._controller = None

    # -- link ------------------------------------------------------------------------------------

    def _on_connection(self, connection: Connection) -> None:
        self._connection = connection
        self._controls = asyncio.Queue()
        self._control_task = asyncio.create_task(self._run_controls(self._controls))
        connection.on(Connection.EVENT_DISCONNECTION,
                      lambda reason: self._on_disconnection(connection, reason))
        connection.on(Connection.EVENT_CONNECTION_ATT_MTU_UPDATE,
                      lambda: self._on_mtu(connection))
        self.sensor.connect(self._notifier(connection, self._data),
                            self._notifier(connection, self._control))
        logger.info("%s: connected to %s", self.sensor.config.serial, connection.peer_address)
        self._wake.set()

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        if self._connection is not connection:
            return
        self._connection = None
        self.sensor.disconnect()
        if self._control_task is not None:
            self._control_task.cancel()
            self._control_task = None
        logger.info("%s: disconnected (%s)", self.sensor.config.serial,
                    hci.HCI_Constant.error_name(reason))
        self._flow.set()
        self._wake.set()

    def _on_mtu(self, connection: Connection) -> None:
        effective = self.sensor.set_mtu(connection.att_mtu)
        if effective != connection.att_mtu:
            logger.info("%s: ATT MTU %d negotiated, firmware uses %d", self.sensor.config.serial,
                        connection.att_mtu, effective)

    def _notifier(self, connection: Connection, characteristic: Characteristic) -> Notify:
        """A `send`/`reply` for the sensor, bound to this connection and characteristic."""

        async def notify(data: bytes) -> None:
            device = self._device
            if device is None or self._connection is not connection:
                return  # the link is gone: the notification is lost
            await device.notify_subscriber(connection, characteristic, data)
            queue = connection.data_packet_queue
            while (queue is not None and queue.pending > _MAX_PENDING_ACL
                   and self._connection is connection):
                self._flow.clear()
                await self._flow.wait()

        return notify

    def _on_control_write(self, connection: Connection, value: bytes) -> None:
        if connection is self._connection:
            self._controls.put_nowait(bytes(value))

    async def _run_controls(self, controls: asyncio.Queue[bytes]) -> None:
        while True:
            data = await controls.get()
            try:
                await self.sensor.control(data)
            except Exception:
                logger.exception("%s: control write %s failed", self.sensor.config.serial,
                                 data.hex())

    async def _end_link(self, device: Device, reason: int) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            async with asyncio.timeout(_DISCONNECT_TIMEOUT_S):
                await device.disconnect(connection, reason)
        except (TimeoutError, hci.HCI_Error) as exc:
            logger.warning("%s: disconnect not confirmed (%s)", self.sensor.config.serial, exc)
            self._on_disconnection(connection, reason)

    # -- schedule --------------------------------------------------------------------------------

    async def _supervise(self, device: Device) -> None:
        """Apply drops and range, keep advertising while free and in range, notify battery."""
        clock = self.sensor.clock
        drops = deque(self.sensor.drop_times())
        battery = self.sensor.battery_pct()
        while not self._stopping:
            self._wake.clear()
            now = clock.now()
            while drops and drops[0] <= now:
                drops.popleft()
                await self._end_link(device, hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR)
            reachable = self.sensor.reachable(now)
            if not reachable:
                await self._end_link(device, hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR)
            await self._advertise(device, reachable and self._connection is None)
            if self._connection is not None and self.sensor.battery_pct() != battery:
                battery = self.sensor.battery_pct()
                await device.notify_subscribers(self._battery.battery_level_characteristic)
            changes = [t for t in (drops[0] if drops else None,
                                   self.sensor.next_reach_change(now)) if t is not None]
            wait = _BATTERY_POLL_S
            if changes:
                wait = min(wait, max(0.0, (min(changes) - clock.now()) / clock.speed))
            timer = asyncio.get_running_loop().call_later(wait, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()

    def _on_supervisor_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s: peripheral supervisor failed", self.sensor.config.serial,
                         exc_info=task.exception())

    async def _advertise(self, device: Device, on: bool) -> None:
        if on and not device.is_advertising:
            await device.start_advertising(
                advertising_data=self._advertisement,
                advertising_interval_min=ADVERTISING_INTERVAL_MS,
                advertising_interval_max=ADVERTISING_INTERVAL_MS,
            )
        elif not on and device.is_advertising:
            await device.stop_advertising()
