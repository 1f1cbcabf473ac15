"""The wire format: round trips, and no input at all makes the decoder raise anything but
WireError (hypothesis fuzzing)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from limbwatch import wire

counts_strategy = st.integers(1, 38).flatmap(
    lambda n: st.lists(st.integers(-32768, 32767), min_size=3 * n, max_size=3 * n)
)


@given(seq=st.integers(0, 2**32 - 1), ticks=st.integers(0, 2**32 - 1), values=counts_strategy,
       flags=st.sampled_from(list(wire.Flag)))
def test_packet_round_trip(seq: int, ticks: int, values: list[int], flags: wire.Flag) -> None:
    counts = np.array(values, dtype=np.int16).reshape(-1, 3)
    packet = wire.decode_packet(wire.encode_packet(seq, ticks, counts, flags))
    assert (packet.seq, packet.ticks, packet.flags) == (seq, ticks, flags)
    assert np.array_equal(packet.counts, counts)


@settings(max_examples=500)
@given(data=st.binary(max_size=300))
def test_random_bytes_never_escape_as_anything_but_wire_error(data: bytes) -> None:
    with contextlib.suppress(wire.WireError):
        wire.decode_packet(data)


@settings(max_examples=300)
@given(values=counts_strategy, position=st.integers(0, 10_000), flip=st.integers(1, 255))
def test_any_corrupted_byte_is_caught(values: list[int], position: int, flip: int) -> None:
    counts = np.array(values, dtype=np.int16).reshape(-1, 3)
    data = bytearray(wire.encode_packet(7, 1234, counts))
    data[position % len(data)] ^= flip
    with pytest.raises(wire.WireError):
        wire.decode_packet(bytes(data))


@given(values=counts_strategy, cut=st.integers(1, 300))
def test_truncated_packets_say_so(values: list[int], cut: int) -> None:
    data = wire.encode_packet(1, 2, np.array(values, dtype=np.int16).reshape(-1, 3))
    short = data[: max(0, len(data) - cut)]
    with pytest.raises(wire.WireError, match=r"shorter|truncated|no samples"):
        wire.decode_packet(short)


def test_mtu_decides_samples_per_packet() -> None:
    assert wire.max_samples(23) == 1
    assert wire.max_samples(247) == 38
    payload = 247 - wire.ATT_OVERHEAD
    assert len(wire.encode_packet(0, 0, np.zeros((38, 3), np.int16))) <= payload
    assert len(wire.encode_packet(0, 0, np.zeros((39, 3), np.int16))) > payload


def test_status_and_replies_round_trip_and_reject_nonsense() -> None:
    status = wire.Status("right", 4096, 50, 8, True, 10, 500, 87, 3)
    assert wire.Status.decode(status.encode()) == status
    with pytest.raises(wire.WireError):
        wire.Status.decode(status.encode()[:-1])
    bad = bytearray(status.encode())
    bad[3] = 33  # rate 33 Hz
    with pytest.raises(wire.WireError, match="impossible"):
        wire.Status.decode(bytes(bad))
    reply = wire.decode_reply(wire.encode_reply(wire.Op.TIME_SYNC, wire.Result.OK, b"abcd"))
    assert reply == wire.Reply(wire.Op.TIME_SYNC, wire.Result.OK, b"abcd")
    for junk in (b"", b"\x05\x00", b"\xff\x00", b"\x85\x09"):
        with pytest.raises(wire.WireError):
            wire.decode_reply(junk)
    assert wire.command(wire.Op.BACKFILL, 5, 9) == b"\x06\x05\x00\x00\x00\x09\x00\x00\x00"
    assert wire.crc16(b"123456789") == 0x29B1  # the CRC-16/CCITT-FALSE check value


_ARG_VALUES = {"B": st.integers(0, 0xFF), "I": st.integers(0, 0xFFFFFFFF)}


@st.composite
def commands(draw: st.DrawFn) -> tuple[wire.Op, tuple[int, ...]]:
    op = draw(st.sampled_from(list(wire.Op)))
    fmt = wire.COMMAND_ARGS[op].format.lstrip("<")
    return op, tuple(draw(_ARG_VALUES[code]) for code in fmt)


@given(commands())
def test_every_command_round_trips(cmd: tuple[wire.Op, tuple[int, ...]]) -> None:
    op, args = cmd
    assert wire.decode_command(wire.command(op, *args)) == (op, args)


@settings(max_examples=500)
@given(data=st.binary(max_size=12))
def test_any_control_write_decodes_or_raises_wire_error(data: bytes) -> None:
    try:
        op, args = wire.decode_command(data)
    except wire.WireError:
        return
    assert wire.command(op, *args) == data  # what decodes is exactly what command() writes


def test_commands_with_wrong_arguments_are_refused() -> None:
    with pytest.raises(wire.WireError, match="SET_RATE"):
        wire.command(wire.Op.SET_RATE, 300)
    with pytest.raises(wire.WireError, match="BACKFILL"):
        wire.command(wire.Op.BACKFILL, 5)
    with pytest.raises(wire.WireError, match="unknown control opcode"):
        wire.decode_command(b"\x55")
    with pytest.raises(wire.WireError, match="empty"):
        wire.decode_command(b"")


@given(request_id=st.integers(0, 2**32 - 1), ticks=st.integers(0, 2**32 - 1))
def test_time_sync_reply_round_trips(request_id: int, ticks: int) -> None:
    payload = wire.TimeSyncReply(request_id, ticks).encode()
    reply = wire.decode_reply(wire.encode_reply(wire.Op.TIME_SYNC, wire.Result.OK, payload))
    assert wire.TimeSyncReply.decode(reply.payload) == wire.TimeSyncReply(request_id, ticks)


@settings(max_examples=300)
@given(data=st.binary(max_size=12))
def test_any_time_sync_payload_decodes_or_raises_wire_error(data: bytes) -> None:
    try:
        reply = wire.TimeSyncReply.decode(data)
    except wire.WireError:
        assert len(data) != 8
        return
    assert reply.encode() == data
