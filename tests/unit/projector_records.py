"""Order events and records as the projector reads them, for its unit tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from uoom.orders.v1 import order_events_pb2

from uoom_orders import wire
from uoom_orders.domain.commands import CreateOrder
from uoom_orders.domain.events import OrderEvent, OrderEventType
from uoom_orders.domain.lifecycle import change_status, place_order
from uoom_orders.domain.order import DeliveryLocation, OrderItem, OrderStatus

NOW = datetime(2026, 1, 15, 13, 0, tzinfo=UTC)
STEPS = (OrderStatus.CONFIRMED, OrderStatus.PREPARING, OrderStatus.READY_FOR_PICKUP)


def history(changes: int = len(STEPS)) -> list[order_events_pb2.OrderEvent]:
    """A new order's events as the relay publishes them: created, then `changes` steps."""
    command = CreateOrder(
        request_id=uuid.uuid4(),
        fingerprint=b"f",
        customer_id=uuid.uuid4(),
        restaurant_id=uuid.uuid4(),
        channel_id="default-channel",
        currency_code="USD",
        items=(OrderItem("pizza", "Pizza", 1, 1599),),
        delivery_location=DeliveryLocation(40.7128, -74.006, "123 Main St", "New York", "10001"),
        estimated_delivery_time=None,
    )
    order = place_order(command, order_id=uuid.uuid4(), tracking_code="TRKX", now=NOW)
    events = [OrderEvent(uuid.uuid4(), OrderEventType.CREATED, NOW, order, None)]
    for step, status in enumerate(STEPS[:changes], start=1):
        moment = NOW + timedelta(seconds=step)
        changed = change_status(order, status, now=moment)
        events.append(
            OrderEvent(uuid.uuid4(), OrderEventType.STATUS_CHANGED, moment, changed, order.status)
        )
        order = changed
    return [wire.event_to_proto(event) for event in events]


def correction(event: order_events_pb2.OrderEvent) -> order_events_pb2.OrderEvent:
    return wire.correction_event(event.order, NOW)


def removal(event: order_events_pb2.OrderEvent) -> order_events_pb2.OrderEvent:
    return wire.removal_event(event.order.order_id, NOW)


@dataclass
class Record:
    """What the projector reads of an aiokafka ConsumerRecord."""

    value: bytes | None
    offset: int = 0
    partition: int = 0
    topic: str = "orders"
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def records(*values: order_events_pb2.OrderEvent | bytes | None) -> list[Record]:
    return [
        Record(v.SerializeToString() if isinstance(v, order_events_pb2.OrderEvent) else v, offset)
        for offset, v in enumerate(values)
    ]
