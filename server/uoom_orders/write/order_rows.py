"""The one mapping of an order's rows (`orders` and `order_items`) to the domain order.

Every reader of the write model's tables goes through it: the repository, the PostgreSQL read
tier and reconciliation (which then encode the order with `wire.order_to_proto`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from uoom_orders.domain.order import DeliveryLocation, Order, OrderItem, OrderStatus

Row = Mapping[str, Any]  # an asyncpg.Record, or anything with its columns


def order_from_rows(row: Row, item_rows: Sequence[Row]) -> Order:
    """The order in its `orders` row (every column) and its items' rows in line order (columns
    item_id, name, quantity and unit_price_minor; totals follow from them)."""
    return Order(
        order_id=row["order_id"],
        customer_id=row["customer_id"],
        restaurant_id=row["restaurant_id"],
        channel_id=row["channel_id"],
        status=OrderStatus(row["status"]),
        currency_code=row["currency_code"],
        items=tuple(
            OrderItem(
                item_id=item["item_id"],
                name=item["name"],
                quantity=item["quantity"],
                unit_price_minor=item["unit_price_minor"],
            )
            for item in item_rows
        ),
        delivery_location=DeliveryLocation(
            latitude=row["delivery_latitude"],
            longitude=row["delivery_longitude"],
            address=row["delivery_address"],
            city=row["delivery_city"],
            postal_code=row["delivery_postal_code"],
        ),
        estimated_delivery_time=row["estimated_delivery_time"],
        tracking_code=row["tracking_code"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )
