"""The emulated radio: one Bumble `LocalLink` and the emulated controllers that share it.

Every simulated sensor and every central (the ingester's Bumble host) gets its own emulated
controller on the link, so advertising, connections, ATT and HCI disconnect reasons are real
protocol traffic. A central in another process reaches the radio over TCP (`serve_hci`): each TCP
client gets a new controller, H4-framed like Bumble's `tcp-server` transport, and when its socket
closes its links end as a supervision timeout would end them.

Bumble objects belong to the event loop that created them: a `Radio` must be created inside a
running loop, used only from it, and closed before that loop ends. One open `Radio` per loop.

Fixes to bumble 0.0.236's emulated controller live here and only here, in `SimController`:

* LE Create Connection Cancel is ignored by the stock controller, so after one connect timeout
  every later connect fails with COMMAND_DISALLOWED. `SimController` clears the pending
  connection and reports it as failed, as the spec says (Vol 4, Part E, 7.8.13).
* The LE ACL data length (the HCI LE buffer size, which sets how a host fragments ACL data, and
  the maximum data length it reports) is raised from 27 to 251 bytes by default; this is what
  lifts the emulated link's burst throughput about fivefold. LE Set Data Length is not emulated,
  so the value is fixed per controller when it is created.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from bumble import core, hci, ll
from bumble.controller import Controller
from bumble.link import LocalLink
from bumble.transport.common import PacketParser

logger = logging.getLogger(__name__)

LE_DATA_LENGTH_MIN = 27
LE_DATA_LENGTH_MAX = 251
# LE 1M PHY air time of the longest data PDU: (payload + 14 bytes of overhead) x 8 us.
_MAX_TX_TIME_US = (LE_DATA_LENGTH_MAX + 14) * 8

_OPEN_RADIOS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Radio] = (
    weakref.WeakKeyDictionary()
)


class RadioError(RuntimeError):
    """Base of the radio's errors; each says what to do."""


class RadioLoopError(RadioError):
    """The radio was used outside the event loop that owns it, or twice in one loop."""


class RadioClosedError(RadioError):
    """The radio was used after `close()`."""


@dataclass(frozen=True, slots=True)
class HciEndpoint:
    """Where `serve_hci` listens; a central's Bumble transport is `tcp-client:{host}:{port}`."""

    host: str
    port: int


class SimController(Controller):
    """Bumble's emulated controller with the fixes this project depends on (module docstring)."""

    def on_hci_le_create_connection_cancel_command(
        self, _command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        failed = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=pending.peer_address_type,
            peer_address=pending.peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # Scheduled, so the host sees Command Complete first and then the failed connection.
        asyncio.get_running_loop().call_soon(self.send_hci_packet, failed)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def end_links(self, reason: int) -> None:
        """Stop radio activity and end every LE link at once, telling each peer `reason`."""
        self.le_scan_enable = False
        self.pending_le_connection = None
        self.le_legacy_advertiser.stop()
        for advertising_set in self.advertising_sets.values():
            advertising_set.stop()
        for connection in list(self.le_connections.values()):
            # The peer's controller may already be gone from the link: nothing to tell then.
            with contextlib.suppress(core.InvalidArgumentError):
                connection.send_ll_control_pdu(ll.TerminateInd(reason))
            self.on_le_disconnected(connection, reason)


class _HciClient(asyncio.Protocol):
    """One TCP client of `serve_hci`: H4 packets to and from its own central controller."""

    def __init__(self, radio: Radio, on_closed: Callable[[_HciClient], None]) -> None:
        self._radio = radio
        self._on_closed = on_closed
        self._transport: asyncio.Transport | None = None
        self._controller: SimController | None = None
        self._parser = PacketParser()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._controller = self._radio.central_controller()
        self._controller.host = self
        self._parser.set_packet_sink(self._controller)
        logger.info("HCI client %s on controller %s", transport.get_extra_info("peername"),
                    self._controller.name)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except core.InvalidPacketError:
            logger.warning("HCI client sent a packet that is not H4; closing it")
            if self._transport is not None:
                self._transport.close()

    def on_packet(self, packet: bytes) -> None:
        """Controller -> host: write the H4 packet to the socket."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(packet)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._controller is not None:
            # A vanished central looks like a supervision timeout to its peers.
            self._radio.release(self._controller, hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR)
            logger.info("HCI client on %s left; its links ended", self._controller.name)
        self._transport = None
        self._on_closed(self)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class Radio:
    """One emulated LE radio space. Create it inside the running loop that will use it."""

    def __init__(self, le_data_length: int = LE_DATA_LENGTH_MAX) -> None:
        if not LE_DATA_LENGTH_MIN <= le_data_length <= LE_DATA_LENGTH_MAX:
            raise ValueError(f"LE data length {le_data_length} is outside "
                             f"{LE_DATA_LENGTH_MIN}..{LE_DATA_LENGTH_MAX} bytes")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError as exc:
            raise RadioLoopError("create the Radio inside a running event loop "
                                 "(in a coroutine), not at import or in sync code") from exc
        if loop in _OPEN_RADIOS:
            raise RadioLoopError("this event loop already has an open Radio: share it, or "
                                 "await its close() before creating another")
        _OPEN_RADIOS[loop] = self
        self._loop = loop
        self.le_data_length = le_data_length
        self.link = LocalLink()
        self._controllers: list[SimController] = []
        self._servers: list[asyncio.Server] = []
        self._clients: set[_HciClient] = set()
        self._closed = False
        self._count = 0

    def controller(self, name: str) -> SimController:
        """A new emulated controller on this radio's link (give it to one Bumble host)."""
        self._check()
        self._count += 1
        controller = SimController(f"{name}#{self._count}", link=self.link)
        controller.le_acl_data_packet_length = self.le_data_length
        controller.supported_max_tx_octets = self.le_data_length
        controller.supported_max_rx_octets = self.le_data_length
        controller.supported_max_tx_time = _MAX_TX_TIME_US
        controller.supported_max_rx_time = _MAX_TX_TIME_US
        self._controllers.append(controller)
        return controller

    def central_controller(self) -> SimController:
        """A new controller for a central: an in-process ingester's Bumble host, a TCP client."""
        return self.controller("central")

    def release(self, controller: SimController, reason: int) -> None:
        """End the controller's links with `reason`, detach its host and take it off the link."""
        controller.host = None  # a gone host gets no more events
        controller.end_links(reason)
        if controller in self.link.controllers:
            self.link.remove_controller(controller)
        if controller in self._controllers:
            self._controllers.remove(controller)

    async def serve_hci(self, host: str = "127.0.0.1", port: int = 0) -> HciEndpoint:
        """Serve emulated central controllers over TCP (H4); each client gets a new one.

        Returns the bound endpoint (`port=0` picks a free port). Serves until `close()`.
        """
        self._check()

        def new_client() -> _HciClient:
            client = _HciClient(self, self._clients.discard)
            self._clients.add(client)
            return client

        server = await self._loop.create_server(new_client, host, port)
        self._servers.append(server)
        bound_host, bound_port = server.sockets[0].getsockname()[:2]
        return HciEndpoint(str(bound_host), int(bound_port))

    async def close(self) -> None:
        """Stop serving, end every link (peers see a power-off), free the loop for a new radio."""
        if self._closed:
            return
        self._closed = True
        for server in self._servers:
            server.close()
        for client in list(self._clients):
            client.close()
        for server in self._servers:
            await server.wait_closed()
        for controller in list(self._controllers):
            self.release(
                controller,
                hci.HCI_ErrorCode.REMOTE_DEVICE_TERMINATED_CONNECTION_DUE_TO_POWER_OFF_ERROR,
            )
        # Let the scheduled disconnection events reach the hosts still attached.
        await asyncio.sleep(0)
        _OPEN_RADIOS.pop(self._loop, None)

    def _check(self) -> None:
        if self._closed:
            raise RadioClosedError("the Radio is closed: create a new one")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self._loop:
            raise RadioLoopError("this Radio belongs to another event loop: create one Radio "
                                 "per loop (per test) and use it only there")
