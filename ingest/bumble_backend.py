"""A bleak 3.1 backend that drives a Bumble host instead of BlueZ: BLE without Bluetooth hardware.

Production keeps bleak's platform backend; tests and the demo pick this one by configuration and
nothing else in the ingester changes::

    scanner_backend, client_backend = bumble_backend(BumbleTransport("tcp-client:127.0.0.1:7001"))
    devices = await BleakScanner.discover(service_uuids=[SERVICE_UUID], backend=scanner_backend)
    client = await establish_connection(BleakClient, device, name, backend=client_backend,
                                        disconnected_callback=on_disconnect)
    ...
    await close_adapter()  # before the event loop ends
    await reset_adapter()  # instead, for a controller that stopped answering

`BumbleTransport` says where the Bumble host finds its controller: a Bumble transport name (e.g.
the simulator's `tcp-client:HOST:PORT`), or an emulated controller in this process
(`BumbleTransport(controller=radio.central_controller())`, for tests).

One Bumble host (the "adapter") per event loop, opened on first use and shared by every scanner
and client of that loop; `close_adapter()` disconnects its links and closes it. Connections
request an ATT MTU of 247 and discover all services. Errors follow bleak: ATT error responses
raise `BleakGATTProtocolError`, timeouts raise `TimeoutError` (= `asyncio.TimeoutError`), a link
that drops under an operation raises `BleakError`, and `disconnected_callback` runs on every
disconnection, asked for or not.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar, cast

from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakError,
    BleakGATTProtocolError,
)
from bleak.uuids import normalize_uuid_str
from bumble import att, core, hci
from bumble.controller import Controller
from bumble.core import AdvertisingData
from bumble.device import Advertisement, Connection, Device
from bumble.gatt import Characteristic
from bumble.gatt_client import CharacteristicProxy, DescriptorProxy
from bumble.host import Host
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink, Transport

logger = logging.getLogger(__name__)

MTU_REQUEST = 247
# Bumble's own connect timeout fires first (it cancels the attempt in the controller); this
# outer margin only catches a controller that never answers.
_CONNECT_MARGIN_S = 2.0
_DISCONNECT_TIMEOUT_S = 5.0

_T = TypeVar("_T")

_PROPERTY_NAMES: tuple[tuple[Characteristic.Properties, CharacteristicPropertyName], ...] = (
    (Characteristic.Properties.BROADCAST, "broadcast"),
    (Characteristic.Properties.READ, "read"),
    (Characteristic.Properties.WRITE_WITHOUT_RESPONSE, "write-without-response"),
    (Characteristic.Properties.WRITE, "write"),
    (Characteristic.Properties.NOTIFY, "notify"),
    (Characteristic.Properties.INDICATE, "indicate"),
    (Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES, "authenticated-signed-writes"),
    (Characteristic.Properties.EXTENDED_PROPERTIES, "extended-properties"),
)
_UUID_LISTS = (
    AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)
_SERVICE_DATA = (
    AdvertisingData.Type.SERVICE_DATA_16_BIT_UUID,
    AdvertisingData.Type.SERVICE_DATA_32_BIT_UUID,
    AdvertisingData.Type.SERVICE_DATA_128_BIT_UUID,
)


class AdapterInUseError(BleakError):
    """This event loop's Bumble adapter was opened on another transport."""


@dataclass(frozen=True, slots=True)
class BumbleTransport:
    """Where the Bumble host finds its controller: give exactly one of the two.

    `spec`: a Bumble transport name, e.g. `"tcp-client:127.0.0.1:7001"` for the simulator's
    `serve_hci`. `controller`: an emulated controller in this process, e.g.
    `radio.central_controller()`.
    """

    spec: str | None = None
    controller: Controller | None = None

    def __post_init__(self) -> None:
        if (self.spec is None) == (self.controller is None):
            raise ValueError("give BumbleTransport either a transport spec such as "
                             "'tcp-client:127.0.0.1:7001' or an in-process controller, not both")

    def describe(self) -> str:
        return f"bumble:{self.spec}" if self.spec else "bumble:in-process"


def _uuid(uuid: core.UUID) -> str:
    return normalize_uuid_str(uuid.to_hex_str("-"))


def _advertisement_data(advertisement: Advertisement) -> AdvertisementData:
    data = advertisement.data
    names = [str(name) for kind in (AdvertisingData.Type.COMPLETE_LOCAL_NAME,
                                    AdvertisingData.Type.SHORTENED_LOCAL_NAME)
             for name in data.get_all(kind)]
    uuids: dict[str, None] = {}  # ordered and without the repeats a scan response brings
    for kind in _UUID_LISTS:
        for group in data.get_all(kind):
            uuids.update((_uuid(uuid), None) for uuid in cast(list[core.UUID], group))
    service_data = {
        _uuid(uuid): bytes(value)
        for kind in _SERVICE_DATA
        for uuid, value in cast(list[tuple[core.UUID, bytes]], data.get_all(kind))
    }
    manufacturer_data = {
        company: bytes(value)
        for company, value in cast(
            list[tuple[int, bytes]],
            data.get_all(AdvertisingData.Type.MANUFACTURER_SPECIFIC_DATA),
        )
    }
    tx_power = data.get(AdvertisingData.Type.TX_POWER_LEVEL)
    return AdvertisementData(
        local_name=names[0] if names else None,
        manufacturer_data=manufacturer_data,
        service_data=service_data,
        service_uuids=list(uuids),
        tx_power=cast(int, tx_power) if tx_power is not None else None,
        rssi=advertisement.rssi,
        platform_data=(advertisement,),
    )


class BumbleAdapter:
    """One Bumble host on one controller: scanning, connecting, closing. One per event loop."""

    def __init__(self, transport: BumbleTransport, device: Device,
                 hci_transport: Transport | None) -> None:
        self.transport = transport
        self.device = device
        self._hci_transport = hci_transport
        self._scan_listeners: list[Callable[[Advertisement], None]] = []
        self._scan_lock = asyncio.Lock()
        self._connect_lock = asyncio.Lock()
        self._addresses: dict[str, hci.Address] = {}
        device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)

    @classmethod
    async def open(cls, transport: BumbleTransport) -> BumbleAdapter:
        hci_transport: Transport | None = None
        if transport.spec is not None:
            try:
                hci_transport = await open_transport(transport.spec)
            except (OSError, core.BaseBumbleError) as exc:
                raise BleakBluetoothNotAvailableError(
                    f"cannot open the Bumble transport {transport.spec!r} ({exc}): is the "
                    "simulator (`limbwatch sim`) running and is this its HCI address?",
                    BleakBluetoothNotAvailableReason.NO_BLUETOOTH,
                ) from exc
            host = Host(hci_transport.source, hci_transport.sink)
        else:
            controller = cast(Controller, transport.controller)
            host = Host(controller, AsyncPipeSink(controller))
        device = Device(name="limbwatch-ingest", address=hci.Address.generate_static_address(),
                        host=host)
        try:
            await device.power_on()
        except core.BaseBumbleError as exc:
            if hci_transport is not None:
                await hci_transport.close()
            raise BleakBluetoothNotAvailableError(
                f"the controller behind {transport.describe()} does not answer ({exc!r})",
                BleakBluetoothNotAvailableReason.UNKNOWN,
            ) from exc
        return cls(transport, device, hci_transport)

    @property
    def lost(self) -> bool:
        """True once the HCI transport has closed (e.g. the simulator went away)."""
        return self._hci_transport is not None and self._hci_transport.source.terminated.done()

    def address_of(self, address: str) -> hci.Address:
        """The typed address last seen advertising as `address` (random if never seen)."""
        if (seen := self._addresses.get(address.upper())) is not None:
            return seen
        try:
            return hci.Address(address)
        except (core.InvalidArgumentError, ValueError) as exc:
            raise BleakError(f"{address!r} is not a Bluetooth address such as "
                             "'C0:11:22:33:44:55'") from exc

    async def start_scanning(self, listener: Callable[[Advertisement], None]) -> None:
        async with self._scan_lock:
            self._scan_listeners.append(listener)
            if not self.device.is_scanning:
                await self.device.start_scanning(active=True, filter_duplicates=False)

    async def stop_scanning(self, listener: Callable[[Advertisement], None]) -> None:
        async with self._scan_lock:
            if listener in self._scan_listeners:
                self._scan_listeners.remove(listener)
            if not self._scan_listeners and self.device.is_scanning and not self.lost:
                await self.device.stop_scanning()

    async def connect(self, address: hci.Address, timeout: float) -> Connection:
        """Connect as central; one attempt at a time (the controller has one initiator)."""
        async with self._connect_lock:
            connection = await self.device.connect(
                address, transport=core.PhysicalTransport.LE, timeout=timeout
            )
        return connection

    async def close(self) -> None:
        """Disconnect every link (each client's `disconnected_callback` runs), then let go."""
        self._scan_listeners.clear()
        if not self.lost:
            if self.device.is_scanning:
                await self.device.stop_scanning()
            for connection in list(self.device.connections.values()):
                await _disconnect(connection)
        await self.device.power_off()
        if self._hci_transport is not None:
            await self._hci_transport.close()
        elif self.transport.controller is not None:
            self.transport.controller.host = None

    async def abandon(self) -> None:
        """Let go without a word to the controller, which may not answer (or answers out of
        turn, as after a stall): every link is reported disconnected, the transport closed."""
        self._scan_listeners.clear()
        self.device.host.emit("flush")  # Bumble's "host state gone": each link's disconnection
        if self._hci_transport is not None:
            await self._hci_transport.close()
        elif self.transport.controller is not None:
            self.transport.controller.host = None

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        key = advertisement.address.to_string(with_type_qualifier=False)
        self._addresses[key] = advertisement.address
        for listener in list(self._scan_listeners):
            listener(advertisement)


async def _disconnect(connection: Connection) -> None:
    """Ask for a clean disconnection; a peer that never confirms is given up on."""
    try:
        async with asyncio.timeout(_DISCONNECT_TIMEOUT_S):
            await connection.disconnect(hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR)
    except (TimeoutError, hci.HCI_Error) as exc:
        logger.warning("disconnect from %s not confirmed (%s)", connection.peer_address, exc)


_ADAPTERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[BumbleAdapter]] = (
    weakref.WeakKeyDictionary()
)


async def get_adapter(transport: BumbleTransport) -> BumbleAdapter:
    """This event loop's adapter, opened on `transport` on first use (and after it was lost)."""
    loop = asyncio.get_running_loop()
    opening = _ADAPTERS.get(loop)
    if opening is None:
        opening = loop.create_task(BumbleAdapter.open(transport))
        _ADAPTERS[loop] = opening
    try:
        adapter = await asyncio.shield(opening)
    except BaseException:
        if opening.done() and _ADAPTERS.get(loop) is opening:
            del _ADAPTERS[loop]
        raise
    if adapter.transport != transport:
        raise AdapterInUseError(
            f"this event loop's Bumble adapter uses {adapter.transport.describe()}, not "
            f"{transport.describe()}: one adapter per loop; await close_adapter() first"
        )
    if adapter.lost:
        if _ADAPTERS.get(loop) is opening:  # not already replaced by another user's call
            del _ADAPTERS[loop]
            await adapter.close()
        return await get_adapter(transport)
    return adapter


async def close_adapter() -> None:
    """Disconnect and close this event loop's Bumble adapter; the next use opens a new one."""
    opening = _ADAPTERS.pop(asyncio.get_running_loop(), None)
    if opening is None:
        return
    try:
        adapter = await opening
    except Exception:  # it never opened: nothing to close
        return
    await adapter.close()


async def reset_adapter() -> None:
    """Drop this event loop's adapter without waiting on its controller (`abandon`); the next use
    opens a fresh host on the same transport. For a controller that stopped answering."""
    opening = _ADAPTERS.pop(asyncio.get_running_loop(), None)
    if opening is None:
        return
    if not opening.done():
        opening.cancel()
    elif not opening.cancelled() and opening.exception() is None:
        await opening.result().abandon()


class BumbleScanner(BaseBleakScanner):
    """bleak scanner backend on this loop's Bumble adapter (see `bumble_backend`)."""

    transport: ClassVar[BumbleTransport]

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        **kwargs: Any,
    ) -> None:
        # The emulated radio answers every scan alike, so `scanning_mode` changes nothing.
        super().__init__(detection_callback, service_uuids)
        self._adapter: BumbleAdapter | None = None

    async def start(self) -> None:
        self.seen_devices = {}
        self._adapter = await get_adapter(self.transport)
        await self._adapter.start_scanning(self._on_advertisement)

    async def stop(self) -> None:
        if self._adapter is not None:
            await self._adapter.stop_scanning(self._on_advertisement)
            self._adapter = None

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        data = _advertisement_data(advertisement)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        address = advertisement.address.to_string(with_type_qualifier=False)
        key = str(advertisement.address)
        known = self.seen_devices.get(key)
        name = data.local_name or (known[0].name if known else None)
        device = self.create_or_update_device(
            key, address, name,
            {"source": self.transport.describe(), "address": advertisement.address},
            data,
        )
        self.call_detection_callbacks(device, data)


class BumbleClient(BaseBleakClient):
    """bleak client backend on this loop's Bumble adapter (see `bumble_backend`)."""

    transport: ClassVar[BumbleTransport]

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        services: set[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback,
                         timeout=timeout)
        self._known_address: hci.Address | None = None
        self._advertised_name: str | None = None
        if isinstance(address_or_ble_device, BLEDevice):
            self._advertised_name = address_or_ble_device.name
            details = address_or_ble_device.details
            if isinstance(details, dict) and isinstance(details.get("address"), hci.Address):
                self._known_address = details["address"]
        self._service_filter = [core.UUID(uuid) for uuid in services] if services else []
        self._connection: Connection | None = None
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        return self._advertised_name or self.address

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection is not None else att.ATT_DEFAULT_MTU

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect, exchange the MTU (247 asked) and discover services; `pair` pairs after."""
        if self._connection is not None:
            return
        timeout = float(kwargs.get("timeout", self._timeout))
        adapter = await get_adapter(self.transport)
        address = self._known_address or adapter.address_of(self.address)
        try:
            async with asyncio.timeout(timeout + _CONNECT_MARGIN_S):
                connection = await adapter.connect(address, timeout)
        except core.TimeoutError as exc:
            raise TimeoutError(f"{self.address}: no connection within {timeout:g} s: is the "
                               "sensor advertising and in range?") from exc
        except core.BaseBumbleError as exc:
            raise BleakError(f"{self.address}: connection failed: {exc}") from exc
        self._connection = connection
        connection.on(Connection.EVENT_DISCONNECTION,
                      lambda reason: self._on_disconnection(connection, reason))
        try:
            await self._gatt("MTU exchange", connection.gatt_client.request_mtu(MTU_REQUEST))
            self.services = await self._discover(connection)
            if pair:
                await self.pair()
        except BaseException:
            await self.disconnect()
            raise

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is not None:
            await _disconnect(connection)
            # Unconfirmed (the peer or the transport went silent): the link is gone for us.
            self._on_disconnection(
                connection, hci.HCI_ErrorCode.CONNECTION_TERMINATED_BY_LOCAL_HOST_ERROR)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        connection = self._require_connection("pair")
        try:
            await connection.pair()
        except core.BaseBumbleError as exc:
            raise BleakError(f"{self.address}: pairing failed: {exc}") from exc

    async def unpair(self) -> None:
        """Forget this peer's keys and disconnect."""
        adapter = await get_adapter(self.transport)
        if adapter.device.keystore is not None:
            address = self._known_address or adapter.address_of(self.address)
            await adapter.device.keystore.delete(str(address))
        await self.disconnect()

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *,
                             use_cached: bool = False, **kwargs: Any) -> bytearray:
        return await self._read(characteristic.obj, use_cached)

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *,
                                   use_cached: bool = False, **kwargs: Any) -> bytearray:
        return await self._read(descriptor.obj, use_cached)

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: Any,
                              response: bool) -> None:
        connection = self._require_connection("write")
        await self._gatt("write", connection.gatt_client.write_value(
            characteristic.obj, bytes(data), with_response=response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        connection = self._require_connection("write descriptor")
        await self._gatt("write descriptor", connection.gatt_client.write_value(
            descriptor.obj, bytes(data), with_response=True))

    async def start_notify(self, characteristic: BleakGATTCharacteristic,
                           callback: NotifyCallback, **kwargs: Any) -> None:
        connection = self._require_connection("start_notify")
        proxy: CharacteristicProxy[bytes] = characteristic.obj

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        self._subscribers[proxy.handle] = deliver
        await self._gatt("subscribe", connection.gatt_client.subscribe(proxy, deliver))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        connection = self._require_connection("stop_notify")
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        deliver = self._subscribers.pop(proxy.handle, None)
        if deliver is not None:
            await self._gatt("unsubscribe", connection.gatt_client.unsubscribe(proxy, deliver))

    async def _read(self, proxy: CharacteristicProxy[bytes] | DescriptorProxy,
                    use_cached: bool) -> bytearray:
        connection = self._require_connection("read")
        client = connection.gatt_client
        if use_cached and (cached := client.cached_values.get(proxy.handle)) is not None:
            return bytearray(cached[1])
        return bytearray(await self._gatt("read", client.read_value(proxy)))

    async def _discover(self, connection: Connection) -> BleakGATTServiceCollection:
        client = connection.gatt_client
        collection = BleakGATTServiceCollection()
        services = await self._gatt("service discovery",
                                    client.discover_services(self._service_filter))
        for service in services:
            bleak_service = BleakGATTService(service, service.handle, _uuid(service.uuid))
            collection.add_service(bleak_service)
            characteristics = await self._gatt("characteristic discovery",
                                               client.discover_characteristics((), service))
            for proxy in characteristics:
                properties = [name for flag, name in _PROPERTY_NAMES if proxy.properties & flag]
                characteristic = BleakGATTCharacteristic(
                    proxy, proxy.handle, _uuid(proxy.uuid), properties,
                    lambda: self.mtu_size - 3, bleak_service,
                )
                collection.add_characteristic(characteristic)
                descriptors = await self._gatt("descriptor discovery",
                                               client.discover_descriptors(proxy))
                for descriptor in descriptors:
                    collection.add_descriptor(BleakGATTDescriptor(
                        descriptor, descriptor.handle, _uuid(descriptor.type), characteristic))
        return collection

    def _require_connection(self, operation: str) -> Connection:
        if self._connection is None:
            raise BleakError(f"{self.address}: cannot {operation}: not connected; connect first")
        return self._connection

    async def _gatt(self, operation: str, awaitable: Awaitable[_T]) -> _T:
        """Await one ATT procedure and translate Bumble's errors into bleak's."""
        try:
            return await awaitable
        except att.ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from exc
        except core.TimeoutError as exc:
            raise TimeoutError(f"{self.address}: {operation}: no ATT response") from exc
        except core.BaseBumbleError as exc:
            raise BleakError(f"{self.address}: {operation} failed: {exc}") from exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # we are being cancelled
            # Bumble cancels the pending ATT request when the link drops.
            raise BleakError(f"{self.address}: {operation}: the link dropped; "
                             "reconnect and retry") from None

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        if self._connection is not connection:
            return
        self._connection = None
        self._subscribers.clear()
        logger.debug("%s disconnected: %s", self.address, hci.HCI_Constant.error_name(reason))
        if self._disconnected_callback is not None:
            self._disconnected_callback()


def bumble_backend(
    transport: BumbleTransport,
) -> tuple[type[BaseBleakScanner], type[BaseBleakClient]]:
    """Scanner and client backends bound to `transport`, for bleak's `backend=` arguments."""
    scanner = type("BumbleScanner", (BumbleScanner,), {"transport": transport})
    client = type("BumbleClient", (BumbleClient,), {"transport": transport})
    return scanner, client
