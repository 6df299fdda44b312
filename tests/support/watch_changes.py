"""Changes and events for the watches' unit tests."""

from __future__ import annotations

import time
import uuid

from google.protobuf.timestamp_pb2 import Timestamp
from uoom.orders.v1 import order_events_pb2, order_pb2

from uoom_orders.watch.change import Change

S = order_pb2
# The lifecycle's statuses by version: version 1 is PENDING, 6 DELIVERED.
STATUS_AT = {
    1: S.ORDER_STATUS_PENDING,
    2: S.ORDER_STATUS_CONFIRMED,
    3: S.ORDER_STATUS_PREPARING,
    4: S.ORDER_STATUS_READY_FOR_PICKUP,
    5: S.ORDER_STATUS_OUT_FOR_DELIVERY,
    6: S.ORDER_STATUS_DELIVERED,
}
RESTAURANT = "550e8400-e29b-41d4-a716-446655440001"


def summary(order_id: str, version: int, status: int | None = None) -> order_pb2.OrderSummary:
    return order_pb2.OrderSummary(
        order_id=order_id,
        restaurant_id=RESTAURANT,
        status=STATUS_AT[version] if status is None else status,  # type: ignore[arg-type]
        version=version,
    )


def change(order_id: str, version: int, *, corrected: bool = False) -> Change:
    return Change(
        order_id=order_id,
        restaurant_id=RESTAURANT,
        summary=summary(order_id, version),
        previous_status=STATUS_AT.get(version - 1, 0),
        corrected=corrected,
        committed_at=time.time(),
    )


def event(
    order_id: str,
    version: int,
    kind: int = order_events_pb2.ORDER_EVENT_TYPE_STATUS_CHANGED,
) -> tuple[order_events_pb2.OrderEvent, order_pb2.OrderSummary | None]:
    """An event as the feed hands it to its listener, with its status record."""
    occurred = Timestamp()
    occurred.GetCurrentTime()
    if kind == order_events_pb2.ORDER_EVENT_TYPE_REMOVED:
        return (
            order_events_pb2.OrderEvent(
                event_id=str(uuid.uuid4()),
                event_type=kind,  # type: ignore[arg-type]
                order_id=order_id,
                occurred_at=occurred,
            ),
            None,
        )
    record = summary(order_id, version)
    message = order_events_pb2.OrderEvent(
        event_id=str(uuid.uuid4()),
        event_type=kind,  # type: ignore[arg-type]
        occurred_at=occurred,
        version=version,
        order=order_pb2.Order(
            order_id=order_id,
            restaurant_id=RESTAURANT,
            status=record.status,
            version=version,
        ),
        previous_status=STATUS_AT.get(version - 1, 0),  # type: ignore[arg-type]
        order_id=order_id,
    )
    return message, record
