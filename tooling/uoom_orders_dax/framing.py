"""CBOR framing of a DAX connection: where one data item ends, and reading whole items.

DAX requests are bare CBOR items back to back, with no length prefix: the only way to know
that a request has arrived is to find where each of its items ends. `item_end` walks the
item heads without building values (cbor2 then decodes the bytes it found).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import cbor2

_BREAK = 0xFF
_MAX_DEPTH = 64  # deeper than any DynamoDB item (32 levels) plus the protocol's wrapping


class Incomplete(Exception):
    """The buffer ends inside the item: read more."""


class MalformedCbor(ValueError):
    """The bytes are not well-formed CBOR."""


def _head(buf: bytes | bytearray, pos: int) -> tuple[int, int | None, int]:
    """(major type, argument or None for indefinite length, position after the head)."""
    if pos >= len(buf):
        raise Incomplete
    initial = buf[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if info < 24:
        return major, info, pos
    if info == 31:
        if major in (0, 1, 6):
            raise MalformedCbor(f"indefinite length on major type {major}")
        return major, None, pos
    if info > 27:
        raise MalformedCbor(f"reserved additional information {info}")
    size = 1 << (info - 24)
    if pos + size > len(buf):
        raise Incomplete
    return major, int.from_bytes(buf[pos : pos + size], "big"), pos + size


def item_end(buf: bytes | bytearray, pos: int = 0, depth: int = 0) -> int:
    """The offset just past the CBOR item that starts at `pos`."""
    if depth > _MAX_DEPTH:
        raise MalformedCbor("nested too deeply")
    major, argument, pos = _head(buf, pos)
    if major in (0, 1, 7):
        if major == 7 and argument is None:
            raise MalformedCbor("break outside an indefinite-length item")
        return pos  # ints, simple values and floats: the head is the whole item
    if major == 6:
        return item_end(buf, pos, depth + 1)  # a tag wraps exactly one item
    if major in (2, 3) and argument is not None:
        if pos + argument > len(buf):
            raise Incomplete
        return pos + argument
    if argument is None:  # indefinite string chunks, array items or map keys and values
        while True:
            if pos >= len(buf):
                raise Incomplete
            if buf[pos] == _BREAK:
                return pos + 1
            pos = item_end(buf, pos, depth + 1)
    count = argument if major == 4 else 2 * argument
    for _ in range(count):
        pos = item_end(buf, pos, depth + 1)
    return pos


def decode_sequence(data: bytes) -> Iterator[Any]:
    """The values of CBOR items concatenated with no delimiter (DAX's item values)."""
    pos = 0
    while pos < len(data):
        try:
            end = item_end(data, pos)
        except Incomplete as error:
            raise MalformedCbor("truncated item in a sequence") from error
        yield cbor2.loads(data[pos:end])
        pos = end


def loads(data: bytes) -> Any:
    """One CBOR item's value; malformed input raises MalformedCbor."""
    try:
        return cbor2.loads(data)
    except cbor2.CBORDecodeError as error:
        raise MalformedCbor(str(error)) from error


class CborStream:
    """Whole CBOR items (and the raw preamble bytes) from an asyncio stream."""

    def __init__(self, reader: asyncio.StreamReader, *, max_item_bytes: int = 16 << 20) -> None:
        self._reader = reader
        self._buffer = bytearray()
        self._max_item_bytes = max_item_bytes

    async def _fill(self) -> None:
        chunk = await self._reader.read(65536)
        if not chunk:
            raise EOFError("connection closed")
        self._buffer += chunk
        if len(self._buffer) > self._max_item_bytes:
            raise MalformedCbor("item larger than the endpoint accepts")

    async def read_bytes(self, count: int) -> bytes:
        """Exactly `count` raw bytes (the connection's magic string)."""
        while len(self._buffer) < count:
            await self._fill()
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    async def read_raw(self) -> bytes:
        """The bytes of the next whole CBOR item."""
        while True:
            try:
                end = item_end(self._buffer)
                break
            except Incomplete:
                await self._fill()
        data = bytes(self._buffer[:end])
        del self._buffer[:end]
        return data

    async def read(self) -> Any:
        """The value of the next whole CBOR item."""
        return loads(await self.read_raw())
