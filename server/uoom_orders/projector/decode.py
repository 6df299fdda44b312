"""Decoding a record of the order-event topic: a validated event, or PoisonMessage."""

from __future__ import annotations

from uuid import UUID

from google.protobuf.message import DecodeError
from uoom.orders.v1 import order_events_pb2

from uoom_orders import wire

CORRECTED = order_events_pb2.ORDER_EVENT_TYPE_CORRECTED
"""Reconciliation's event: the order as PostgreSQL has it, whatever the version."""
REMOVED = order_events_pb2.ORDER_EVENT_TYPE_REMOVED
"""Reconciliation's event: PostgreSQL does not have the order; it carries only `order_id`."""


class PoisonMessage(ValueError):
    """A record that is not a well-formed order event."""


def decode_event(value: bytes | None) -> order_events_pb2.OrderEvent:
    """The event in a record's value, validated; raises PoisonMessage for anything else.

    A REMOVED event carries only `order_id`; every other kind carries the whole order.
    """
    if value is None:
        raise PoisonMessage("record has no value")
    try:
        message = order_events_pb2.OrderEvent.FromString(value)
    except DecodeError as error:
        raise PoisonMessage(f"not a protobuf OrderEvent: {error}") from error
    try:
        if message.event_type == REMOVED:
            if message.HasField("order"):
                raise ValueError("a removal carries no order")
            UUID(message.order_id)
            return message
        if message.event_type == CORRECTED:
            if not message.HasField("order") or message.version != message.order.version:
                raise ValueError("a correction without an order, or with another version")
            wire.order_from_proto(message.order)
        else:
            # The domain conversion checks ids, status, event type and version consistency.
            wire.event_from_proto(message)
    except (ValueError, OverflowError, TypeError) as error:
        raise PoisonMessage(f"malformed OrderEvent: {error}") from error
    if message.version < 1:
        raise PoisonMessage(f"malformed OrderEvent: version {message.version}")
    return message
