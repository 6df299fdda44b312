"""Orders and their items in PostgreSQL, read and written inside a unit of work."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from uoom_orders.domain.order import Order
from uoom_orders.write.order_rows import order_from_rows

ORDER_COLUMNS = (
    "order_id",
    "customer_id",
    "restaurant_id",
    "channel_id",
    "status",
    "currency_code",
    "total_minor",
    "estimated_delivery_time",
    "tracking_code",
    "delivery_latitude",
    "delivery_longitude",
    "delivery_address",
    "delivery_city",
    "delivery_postal_code",
    "created_at",
    "updated_at",
    "version",
)
"""An `orders` row's columns, in the order of `order_row`'s values."""
INSERT_ORDER_COLUMNS = f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)})"
"""The head of the order's INSERT; its values are `order_parameters`' first 17, $1 to $17."""
ORDER_VALUES = "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17"

INSERT_PLACED_ITEMS = """
    INSERT INTO order_items (order_id, line_no, item_id, name, quantity,
        unit_price_minor, total_minor)
    SELECT placed.order_id, t.line_no, t.item_id, t.name, t.quantity, t.unit_price_minor,
        t.total_minor
    FROM placed, unnest($18::int[], $19::text[], $20::text[], $21::int[], $22::bigint[],
        $23::bigint[]) AS t(line_no, item_id, name, quantity, unit_price_minor, total_minor)
"""
"""The order's items ($18 to $23), inserted for the order a CTE named `placed` returned."""


def order_row(order: Order) -> tuple[Any, ...]:
    """The order's `orders` row, in ORDER_COLUMNS' order."""
    location = order.delivery_location
    return (
        order.order_id,
        order.customer_id,
        order.restaurant_id,
        order.channel_id,
        order.status.value,
        order.currency_code,
        order.total_minor,
        order.estimated_delivery_time,
        order.tracking_code,
        location.latitude,
        location.longitude,
        location.address,
        location.city,
        location.postal_code,
        order.created_at,
        order.updated_at,
        order.version,
    )


def order_parameters(order: Order) -> tuple[Any, ...]:
    """$1 to $23 of the statements that insert an order and its items."""
    items = order.items
    return (
        *order_row(order),
        list(range(1, len(items) + 1)),
        [i.item_id for i in items],
        [i.name for i in items],
        [i.quantity for i in items],
        [i.unit_price_minor for i in items],
        [i.total_minor for i in items],
    )


class PostgresOrderRepository:
    """The write side's access to orders; every call runs on the unit of work's connection."""

    # One round trip for the order and all its items (the foreign key is checked at the end
    # of the statement, after the CTE inserted the order).
    _INSERT_ORDER = f"""
        WITH placed AS (
            {INSERT_ORDER_COLUMNS} VALUES ({ORDER_VALUES})
            RETURNING order_id
        )
        {INSERT_PLACED_ITEMS}
    """
    _SELECT_FOR_UPDATE = "SELECT * FROM orders WHERE order_id = $1 FOR UPDATE"
    _SELECT_ITEMS = """
        SELECT item_id, name, quantity, unit_price_minor FROM order_items
        WHERE order_id = $1 ORDER BY line_no
    """
    # The version predicate is a second guard: the row lock already serialises writers.
    _UPDATE_STATUS = """
        UPDATE orders SET status = $2, estimated_delivery_time = $3, updated_at = $4, version = $5
        WHERE order_id = $1 AND version = $5 - 1
    """

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._conn = connection

    async def add(self, order: Order) -> None:
        await self._conn.execute(self._INSERT_ORDER, *order_parameters(order))

    async def get_for_update(self, order_id: UUID) -> Order | None:
        """The order, locked until the unit of work ends; None if there is none."""
        row = await self._conn.fetchrow(self._SELECT_FOR_UPDATE, order_id)
        if row is None:
            return None
        items = await self._conn.fetch(self._SELECT_ITEMS, order_id)
        return order_from_rows(row, items)

    async def save_status_change(self, order: Order) -> None:
        """Stores `order`, which must be one version after the stored one."""
        result = await self._conn.execute(
            self._UPDATE_STATUS,
            order.order_id,
            order.status.value,
            order.estimated_delivery_time,
            order.updated_at,
            order.version,
        )
        if result != "UPDATE 1":
            raise RuntimeError(f"order {order.order_id} changed under its row lock: {result}")
