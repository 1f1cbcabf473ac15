"""The sensor's GATT profile and wire formats: what the sensor sends and what it is told.

Shared by the simulated sensor (`firmware_sim`) and the ingester (`ingest`); documented for
firmware authors in `docs/gatt-profile.md`. All integers little-endian.

Sample packet (notify on DATA_CHAR), `PACKET_HEADER` then `count` x (x, y, z) int16 counts:

    offset size field
    0      4    seq     u32  packet sequence number, +1 per packet, from 0 after an erase
    4      4    ticks   u32  device clock (32.768 kHz) at the first sample; wraps after 36.4 h
    8      1    count   u8   samples in this packet
    9      1    flags   u8   FLAG_* bits
    10     2    crc     u16  CRC-16/CCITT-FALSE over bytes 0-9 and the samples

Sample k of a packet was taken at ticks + k * TICK_HZ / rate (the rate is in the status).
Control (write with response on CONTROL_CHAR): one opcode byte and its arguments; replies come as
notifications on CONTROL_CHAR: opcode | 0x80, a result byte, then the reply's fields.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag

import numpy as np

TICK_HZ = 32768
_BASE = "4c57{:04x}-6c69-6d62-7761-746368000000"  # "LW" + "limbwatch"
SERVICE_UUID = _BASE.format(0x0001)
DATA_CHAR_UUID = _BASE.format(0x0002)
CONTROL_CHAR_UUID = _BASE.format(0x0003)
STATUS_CHAR_UUID = _BASE.format(0x0004)
BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
DEVICE_INFO_SERVICE_UUID = "0000180a-0000-1000-8000-00805f9b34fb"
MANUFACTURER_UUID = "00002a29-0000-1000-8000-00805f9b34fb"
MODEL_UUID = "00002a24-0000-1000-8000-00805f9b34fb"
SERIAL_UUID = "00002a25-0000-1000-8000-00805f9b34fb"
FIRMWARE_UUID = "00002a26-0000-1000-8000-00805f9b34fb"

PACKET_HEADER = struct.Struct("<IIBBH")
SAMPLE_BYTES = 6
ATT_OVERHEAD = 3  # an ATT notification carries MTU - 3 bytes
RATES_HZ = (25, 50, 100)
RANGES_G = (2, 4, 8, 16)


class Flag(IntFlag):
    BACKFILL = 0x01  # sent from flash on request, not live
    CLIPPED = 0x02  # a sample hit the range
    LOW_BATTERY = 0x04
    CLOCK_SET = 0x08  # the device clock was set or jumped since the previous packet


class Op(IntEnum):
    START = 0x01  # start live streaming
    STOP = 0x02
    SET_RATE = 0x03  # u8 rate in Hz (25, 50, 100)
    SET_RANGE = 0x04  # u8 range in g (2, 4, 8, 16)
    TIME_SYNC = 0x05  # u32 request id -> reply: u32 id, u32 ticks now
    BACKFILL = 0x06  # u32 first seq, u32 last seq (inclusive) -> packets with BACKFILL, then reply
    ERASE = 0x07  # clear the flash; seq restarts at 0


class Result(IntEnum):
    OK = 0
    BAD_REQUEST = 1
    NOT_IN_FLASH = 2  # backfill: some packets asked for were already overwritten


class WireError(ValueError):
    """A packet or message that does not decode: its str() says what is wrong."""


def max_samples(mtu: int) -> int:
    """Samples that fit in one notification at this ATT MTU (at least 1: MTU 23 gives 1)."""
    return max(1, (mtu - ATT_OVERHEAD - PACKET_HEADER.size) // SAMPLE_BYTES)


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), as most BLE SoC SDKs provide."""
    return binascii.crc_hqx(data, 0xFFFF)


@dataclass(frozen=True, slots=True)
class Packet:
    seq: int
    ticks: int
    flags: Flag
    counts: np.ndarray  # int16 (count, 3)


NO_FLAGS = Flag(0)


def encode_packet(seq: int, ticks: int, counts: np.ndarray, flags: Flag = NO_FLAGS) -> bytes:
    body = np.ascontiguousarray(counts, dtype="<i2").tobytes()
    head = PACKET_HEADER.pack(seq & 0xFFFFFFFF, ticks & 0xFFFFFFFF, len(counts), int(flags), 0)
    crc = crc16(head[:-2] + body)
    return head[:-2] + struct.pack("<H", crc) + body


def decode_packet(data: bytes) -> Packet:
    """Decode and validate one notification; WireError says why a bad one is refused."""
    if len(data) < PACKET_HEADER.size:
        raise WireError(f"packet of {len(data)} bytes is shorter than its {PACKET_HEADER.size}-"
                        "byte header")
    seq, ticks, count, flags, crc = PACKET_HEADER.unpack_from(data)
    body = data[PACKET_HEADER.size:]
    if count == 0:
        raise WireError(f"packet {seq} holds no samples")
    if len(body) != count * SAMPLE_BYTES:
        raise WireError(f"packet {seq} says {count} samples but carries {len(body)} bytes "
                        f"(truncated: was the MTU negotiated?)")
    if crc16(bytes(data[:PACKET_HEADER.size - 2]) + bytes(body)) != crc:
        raise WireError(f"packet {seq} fails its CRC")
    if flags & ~int(Flag.BACKFILL | Flag.CLIPPED | Flag.LOW_BATTERY | Flag.CLOCK_SET):
        raise WireError(f"packet {seq} has unknown flag bits {flags:#04x}")
    counts = np.frombuffer(bytes(body), dtype="<i2").reshape(count, 3)
    return Packet(seq=seq, ticks=ticks, flags=Flag(flags), counts=counts)


STATUS = struct.Struct("<BHBBBIIBH")  # side, counts/g, rate, range, streaming, oldest, newest,
# battery, session


@dataclass(frozen=True, slots=True)
class Status:
    """What the sensor says about itself (read STATUS_CHAR)."""

    side: str  # "left" | "right"
    counts_per_g: int
    rate_hz: int
    range_g: int
    streaming: bool
    oldest_seq: int  # oldest packet still in flash
    newest_seq: int  # newest packet taken (flash holds oldest..newest)
    battery_pct: int
    session: int  # changes at every erase: (device, session, seq) names a packet for good

    def encode(self) -> bytes:
        return STATUS.pack(0 if self.side == "left" else 1, self.counts_per_g, self.rate_hz,
                           self.range_g, int(self.streaming), self.oldest_seq, self.newest_seq,
                           self.battery_pct, self.session)

    @classmethod
    def decode(cls, data: bytes) -> Status:
        if len(data) != STATUS.size:
            raise WireError(f"status of {len(data)} bytes, expected {STATUS.size}")
        side, cpg, rate, rng, streaming, oldest, newest, batt, session = STATUS.unpack(data)
        if side not in (0, 1) or rate not in RATES_HZ or rng not in RANGES_G or cpg == 0:
            raise WireError(f"status with impossible values: side {side}, rate {rate}, "
                            f"range {rng}, counts/g {cpg}")
        return cls("left" if side == 0 else "right", cpg, rate, rng, bool(streaming), oldest,
                   newest, batt, session)


# The arguments of each control command, after its opcode byte (see `Op`).
COMMAND_ARGS: dict[Op, struct.Struct] = {
    Op.START: struct.Struct("<"),
    Op.STOP: struct.Struct("<"),
    Op.SET_RATE: struct.Struct("<B"),
    Op.SET_RANGE: struct.Struct("<B"),
    Op.TIME_SYNC: struct.Struct("<I"),
    Op.BACKFILL: struct.Struct("<II"),
    Op.ERASE: struct.Struct("<"),
}


def command(op: Op, *args: int) -> bytes:
    """A control write: the opcode and its u8 (rate, range) or u32 (ids, seqs) arguments."""
    try:
        return bytes([op]) + COMMAND_ARGS[op].pack(*args)
    except struct.error as exc:
        raise WireError(f"{op.name} takes arguments {COMMAND_ARGS[op].format!r}, "
                        f"not {args}: {exc}") from None


def decode_command(data: bytes) -> tuple[Op, tuple[int, ...]]:
    """The opcode and arguments of a control write; WireError for an empty write, an unknown
    opcode or arguments of the wrong size."""
    if not data:
        raise WireError("empty control write")
    try:
        op = Op(data[0])
    except ValueError:
        raise WireError(f"unknown control opcode {data[0]:#04x}") from None
    args = COMMAND_ARGS[op]
    if len(data) != 1 + args.size:
        raise WireError(f"{op.name} takes {args.size} argument bytes, got {len(data) - 1}")
    return op, args.unpack(data[1:])


TIME_SYNC_REPLY = struct.Struct("<II")  # request id, device ticks


@dataclass(frozen=True, slots=True)
class TimeSyncReply:
    """The payload of a TIME_SYNC reply: the request's id and the device's u32 tick counter
    when it handled the request."""

    request_id: int
    ticks: int

    def encode(self) -> bytes:
        return TIME_SYNC_REPLY.pack(self.request_id & 0xFFFFFFFF, self.ticks & 0xFFFFFFFF)

    @classmethod
    def decode(cls, payload: bytes) -> TimeSyncReply:
        if len(payload) != TIME_SYNC_REPLY.size:
            raise WireError(f"TIME_SYNC reply payload of {len(payload)} bytes, expected "
                            f"{TIME_SYNC_REPLY.size}")
        return cls(*TIME_SYNC_REPLY.unpack(payload))


@dataclass(frozen=True, slots=True)
class Reply:
    op: Op
    result: Result
    payload: bytes


def decode_reply(data: bytes) -> Reply:
    if len(data) < 2 or not data[0] & 0x80:
        raise WireError(f"not a control reply: {bytes(data).hex()}")
    try:
        return Reply(Op(data[0] & 0x7F), Result(data[1]), bytes(data[2:]))
    except ValueError as exc:
        raise WireError(f"control reply with unknown opcode or result: {bytes(data).hex()}") \
            from exc


def encode_reply(op: Op, result: Result, payload: bytes = b"") -> bytes:
    return bytes([op | 0x80, result]) + payload
