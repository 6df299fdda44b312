"""The read path's last tier: PostgreSQL, the source of truth."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from uoom.orders.v1 import order_pb2

from uoom_orders import wire
from uoom_orders.domain.order import OrderStatus
from uoom_orders.read.ports import ListQuery, ListScope
from uoom_orders.write import order_rows

_SUMMARY_COLUMNS = """
    o.order_id, o.status, o.customer_id, o.restaurant_id, o.channel_id, o.currency_code,
    o.total_minor, o.estimated_delivery_time, o.tracking_code, o.created_at, o.updated_at,
    o.version
"""


class PostgresOrderReadStore:
    """Reads orders straight from the write model, keyset-paginated on (updated_at, order_id)."""

    name = "postgres"

    _GET_SUMMARY = f"SELECT {_SUMMARY_COLUMNS} FROM orders o WHERE o.order_id = $1"
    _GET_SUMMARIES = f"SELECT {_SUMMARY_COLUMNS} FROM orders o WHERE o.order_id = ANY($1::uuid[])"
    # One round trip: the order's columns repeat on each item row.
    _GET_ORDER = f"""
        SELECT {_SUMMARY_COLUMNS}, o.delivery_latitude, o.delivery_longitude,
            o.delivery_address, o.delivery_city, o.delivery_postal_code,
            i.item_id, i.name, i.quantity, i.unit_price_minor
        FROM orders o LEFT JOIN order_items i ON i.order_id = o.order_id
        WHERE o.order_id = $1
        ORDER BY i.line_no
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._list_sql = {scope: self._list_statement(scope) for scope in ListScope}

    @staticmethod
    def _list_statement(scope: ListScope) -> str:
        owner = {ListScope.CUSTOMER: "customer_id", ListScope.RESTAURANT: "restaurant_id"}[scope]
        # The row comparison walks the (owner, updated_at DESC, order_id DESC) index.
        return f"""
            SELECT {_SUMMARY_COLUMNS} FROM orders o
            WHERE o.{owner} = $1
              AND ($2::text IS NULL OR o.status = $2)
              AND ($3::timestamptz IS NULL OR (o.updated_at, o.order_id) < ($3, $4::uuid))
            ORDER BY o.updated_at DESC, o.order_id DESC
            LIMIT $5
        """

    async def get_summary(self, order_id: UUID) -> order_pb2.OrderSummary | None:
        row = await self._pool.fetchrow(self._GET_SUMMARY, order_id)
        return None if row is None else summary_from_row(row)

    async def get_summaries(self, order_ids: Sequence[UUID]) -> dict[int, order_pb2.OrderSummary]:
        rows = await self._pool.fetch(self._GET_SUMMARIES, list(order_ids))
        return {row["order_id"].int: summary_from_row(row) for row in rows}

    async def get_order(self, order_id: UUID) -> order_pb2.Order | None:
        rows = await self._pool.fetch(self._GET_ORDER, order_id)
        if not rows:
            return None
        return order_from_rows(rows[0], [row for row in rows if row["item_id"] is not None])

    async def list_summaries(self, query: ListQuery) -> list[order_pb2.OrderSummary]:
        after = query.after
        rows = await self._pool.fetch(
            self._list_sql[query.scope],
            query.owner_id,
            None if query.status is None else query.status.value,
            None if after is None else after.updated_at,
            None if after is None else after.order_id,
            query.limit,
        )
        return [summary_from_row(row) for row in rows]


def summary_from_row(row: asyncpg.Record) -> order_pb2.OrderSummary:
    """The status record in an `orders` row's summary columns (no items, no location)."""
    summary = order_pb2.OrderSummary(
        order_id=str(row["order_id"]),
        status=wire.status_to_proto(OrderStatus(row["status"])),
        customer_id=str(row["customer_id"]),
        restaurant_id=str(row["restaurant_id"]),
        channel_id=row["channel_id"],
        total=wire.money(row["currency_code"], row["total_minor"]),
        tracking_code=row["tracking_code"],
        created_at=wire.timestamp(row["created_at"]),
        updated_at=wire.timestamp(row["updated_at"]),
        version=row["version"],
    )
    if row["estimated_delivery_time"] is not None:
        summary.estimated_delivery_time.CopyFrom(wire.timestamp(row["estimated_delivery_time"]))
    return summary


def order_from_rows(row: asyncpg.Record, item_rows: Sequence[asyncpg.Record]) -> order_pb2.Order:
    """The whole order's message from its rows, mapped as the write side maps them (see
    write/order_rows.py)."""
    return wire.order_to_proto(order_rows.order_from_rows(row, item_rows))
