"""GetOrderStatus and BatchGetOrderStatus answers, encoded from what the near cache holds.

A response message built from status records copies every record into it, and gRPC then
encodes the whole: for a batch of ten, about 16 µs of the event loop's time in a tight loop,
more in a server, where each call's work runs between gRPC's. The near cache keeps each
record's encoding from when it stored it (read/near_cache.py), and both responses are, on the
wire, only their records (a batch with an id missing is not: it is built as a message), each
behind its field's key and its length. Those bytes are the response's encoding, and gRPC sends
a `bytes` answer as it is (grpc_server.py's serializer). A record that did not come from the
near cache is encoded here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from google.protobuf.message import Message
from uoom.orders.v1 import order_pb2
from uoom.orders.v1 import order_service_pb2 as pb

EncodedSummaries = Callable[[int, order_pb2.OrderSummary], bytes | None]
"""(the id's integer, the record answered) -> that record's encoding, when it is held."""

_LENGTH_DELIMITED = 2


def varint(value: int) -> bytes:
    """`value` (not negative) as a protobuf base-128 varint."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field_key(message: type[Message], field: str) -> bytes:
    number = message.DESCRIPTOR.fields_by_name[field].number
    return varint(number << 3 | _LENGTH_DELIMITED)


_ORDER = _field_key(pb.GetOrderStatusResponse, "order")
_ORDERS = _field_key(pb.BatchGetOrderStatusResponse, "orders")
# Records are a few hundred bytes: their lengths repeat.
_length = functools.lru_cache(maxsize=1024)(varint)


class ReadAnswers:
    """Encodes the two responses from their records; `encoded` finds a record's encoding
    (the near cache's `encoded_summary`; None without a near cache)."""

    def __init__(self, encoded: EncodedSummaries | None = None) -> None:
        self._encoded = encoded

    def order_status(self, key: int, summary: order_pb2.OrderSummary) -> bytes:
        """The encoded GetOrderStatusResponse answering `summary` (of the id whose integer is
        `key`)."""
        return self._records(_ORDER, (key,), (summary,))

    def order_statuses(
        self, keys: Sequence[int], summaries: Sequence[order_pb2.OrderSummary]
    ) -> bytes:
        """The encoded BatchGetOrderStatusResponse answering `summaries` in order, no id
        missing (`keys[i]` is the integer of `summaries[i]`'s id)."""
        return self._records(_ORDERS, keys, summaries)

    def _records(
        self, field: bytes, keys: Sequence[int], summaries: Sequence[order_pb2.OrderSummary]
    ) -> bytes:
        """Each record behind `field`'s key and its length, in order."""
        lookup, length = self._encoded, _length
        parts: list[bytes] = []
        for key, summary in zip(keys, summaries, strict=True):
            record = None if lookup is None else lookup(key, summary)
            if record is None:
                record = summary.SerializeToString()
            parts += (field, length(len(record)), record)
        return b"".join(parts)
