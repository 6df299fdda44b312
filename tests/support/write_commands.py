"""Commands for the write side's handlers, with valid defaults (as request parsing makes them)."""

from __future__ import annotations

import uuid
from uuid import UUID

from uoom_orders.domain.commands import CreateOrder, UpdateOrderStatus
from uoom_orders.domain.order import DeliveryLocation, OrderItem, OrderStatus


def create_command(*, request_id: UUID | None = None, fingerprint: bytes = b"c1") -> CreateOrder:
    return CreateOrder(
        request_id=request_id or uuid.uuid4(),
        fingerprint=fingerprint,
        customer_id=uuid.uuid4(),
        restaurant_id=uuid.uuid4(),
        channel_id="default-channel",
        currency_code="USD",
        items=(OrderItem("pizza", "Pizza", 2, 1599), OrderItem("water", "Water", 1, 199)),
        delivery_location=DeliveryLocation(40.7128, -74.006, "123 Main St", "New York", "10001"),
        estimated_delivery_time=None,
    )


def update_command(
    order_id: UUID,
    status: OrderStatus,
    *,
    expected_version: int | None = None,
    request_id: UUID | None = None,
    fingerprint: bytes = b"u1",
) -> UpdateOrderStatus:
    return UpdateOrderStatus(
        request_id=request_id or uuid.uuid4(),
        fingerprint=fingerprint,
        order_id=order_id,
        status=status,
        expected_version=expected_version,
        estimated_delivery_time=None,
    )
