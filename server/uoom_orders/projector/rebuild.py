"""Re-projects the read model from PostgreSQL, the source of truth.

For a new or emptied table, after TTL expiry, or to repair anything the projector missed. It
writes through the same versioned condition as the projector, so running it while the
projector runs is safe: whichever writes a version first, the newest one stays.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg
from uoom.orders.v1 import order_pb2

from uoom_orders.observability.metrics import PROJECTOR_APPLIED, PROJECTOR_STALE
from uoom_orders.read.postgres_store import order_from_rows
from uoom_orders.readmodel.items import ttl_after
from uoom_orders.readmodel.ports import ProjectionWriter, ReadModelWriteRejected
from uoom_orders.readmodel.tables import DETAILS_TABLE, STATUS_TABLE

_log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called after each batch with (orders done, orders in total)."""

# The filters are optional; `$1::uuid IS NULL OR ...` keeps one statement for every combination.
_FILTER = """
    ($1::uuid IS NULL OR o.customer_id = $1)
    AND ($2::timestamptz IS NULL OR o.updated_at >= $2)
"""
_COUNT = f"SELECT count(*) FROM orders o WHERE {_FILTER}"
# Keyset pagination on the primary key: no OFFSET, so each batch costs the same.
_ORDERS = f"""
    SELECT o.order_id, o.status, o.customer_id, o.restaurant_id, o.channel_id, o.currency_code,
        o.total_minor, o.estimated_delivery_time, o.tracking_code, o.created_at, o.updated_at,
        o.version, o.delivery_latitude, o.delivery_longitude, o.delivery_address,
        o.delivery_city, o.delivery_postal_code
    FROM orders o
    WHERE {_FILTER} AND ($3::uuid IS NULL OR o.order_id > $3)
    ORDER BY o.order_id
    LIMIT $4
"""
# Items never change after an order is placed, so reading them in a second statement cannot
# pair an order row with another version's items.
_ITEMS = """
    SELECT order_id, item_id, name, quantity, unit_price_minor, total_minor AS item_total
    FROM order_items WHERE order_id = ANY($1::uuid[])
    ORDER BY order_id, line_no
"""


@dataclass
class RebuildStats:
    """What a rebuild did. `rejected` lists orders the read model refused (e.g. too large)."""

    orders: int = 0
    applied: int = 0
    stale: int = 0
    rejected: list[str] = field(default_factory=list)
    seconds: float = 0.0


async def rebuild_read_model(
    pool: asyncpg.Pool,
    writer: ProjectionWriter,
    *,
    customer_id: UUID | None = None,
    since: datetime | None = None,
    batch_size: int = 500,
    progress: Progress | None = None,
    ttl_hours: int = 72,
    concurrency: int = 16,
    clock: Callable[[], float] = time.time,
) -> RebuildStats:
    """Writes every order (of `customer_id`, updated at or after `since`) into the read model.

    Orders the read model refuses are listed in the result and skipped; an unreachable read
    model (ReadModelUnavailable) stops the rebuild, which is safe to run again.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = time.monotonic()
    stats = RebuildStats()
    total = int(await pool.fetchval(_COUNT, customer_id, since))
    semaphore = asyncio.Semaphore(concurrency)

    async def write(order: order_pb2.Order) -> None:
        async with semaphore:
            try:
                result = await writer.put_order(order, ttl_after(ttl_hours, clock()))
            except (ReadModelWriteRejected, ValueError) as error:
                _log.error("rebuild: order %s refused: %s", order.order_id, error)
                stats.rejected.append(order.order_id)
                return
        tables = ((STATUS_TABLE, result.status_written), (DETAILS_TABLE, result.details_written))
        for table, written in tables:
            (PROJECTOR_APPLIED if written else PROJECTOR_STALE).labels(table=table).inc()
        if result.applied:
            stats.applied += 1
        else:
            stats.stale += 1

    after: UUID | None = None
    while True:
        rows = await pool.fetch(_ORDERS, customer_id, since, after, batch_size)
        if not rows:
            break
        ids = [row["order_id"] for row in rows]
        lines: dict[UUID, list[asyncpg.Record]] = {order_id: [] for order_id in ids}
        for line in await pool.fetch(_ITEMS, ids):
            lines[line["order_id"]].append(line)
        # Every write finishes (each is bounded by the writer's retries) before an error
        # propagates, so no write is left running behind the caller's back.
        outcomes = await asyncio.gather(
            *(write(order_from_rows(row, lines[row["order_id"]])) for row in rows),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        stats.orders += len(rows)
        after = ids[-1]
        if progress is not None:
            # Orders created during the rebuild can push the count past the first total.
            progress(stats.orders, max(total, stats.orders))
        if len(rows) < batch_size:
            break
    stats.seconds = time.monotonic() - started
    _log.info(
        "rebuild: %d orders, %d written, %d already current, %d refused in %.1f s",
        stats.orders,
        stats.applied,
        stats.stale,
        len(stats.rejected),
        stats.seconds,
    )
    return stats
