"""The order aggregate and its value objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID


class OrderStatus(StrEnum):
    """Lifecycle states; the values are what PostgreSQL and DynamoDB store."""

    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    PREPARING = "PREPARING"
    READY_FOR_PICKUP = "READY_FOR_PICKUP"
    OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class DeliveryLocation:
    latitude: float
    longitude: float
    address: str
    city: str
    postal_code: str


@dataclass(frozen=True, slots=True)
class OrderItem:
    """One line; prices are integer minor units of the order's currency."""

    item_id: str
    name: str
    quantity: int
    unit_price_minor: int

    @property
    def total_minor(self) -> int:
        return self.quantity * self.unit_price_minor


@dataclass(frozen=True, slots=True)
class Order:
    """An order as of one version. Immutable: a change makes a new Order."""

    order_id: UUID
    customer_id: UUID
    restaurant_id: UUID
    channel_id: str
    status: OrderStatus
    currency_code: str
    items: tuple[OrderItem, ...]
    delivery_location: DeliveryLocation
    estimated_delivery_time: datetime | None
    tracking_code: str
    created_at: datetime
    updated_at: datetime
    version: int

    @property
    def total_minor(self) -> int:
        return sum(item.total_minor for item in self.items)
