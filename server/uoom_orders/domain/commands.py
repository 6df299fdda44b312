"""What callers ask the write side to do. Built from validated input only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from uoom_orders.domain.order import DeliveryLocation, OrderItem, OrderStatus


@dataclass(frozen=True, slots=True)
class CreateOrder:
    """Place a new order. `fingerprint` identifies the request's content for AIP-155 retries."""

    request_id: UUID
    fingerprint: bytes
    customer_id: UUID
    restaurant_id: UUID
    channel_id: str
    currency_code: str
    items: tuple[OrderItem, ...]
    delivery_location: DeliveryLocation
    estimated_delivery_time: datetime | None


@dataclass(frozen=True, slots=True)
class UpdateOrderStatus:
    """Move an order to another status, optionally only from an expected version."""

    request_id: UUID
    fingerprint: bytes
    order_id: UUID
    status: OrderStatus
    expected_version: int | None
    estimated_delivery_time: datetime | None
