"""Many orders, fast: PostgreSQL by COPY and the read-model tables by BatchWriteItem.

For scenarios that need a large working set (zipf: 200,000 orders). Through CreateOrder the
seed would take many minutes: the write path takes a few hundred orders a second here, and
their projection is bound by the local DynamoDB endpoint's conditional writes (moto, about 300
a second). Nothing else writes these orders while they are seeded, so the read model's items
are written without a condition, 25 to a BatchWriteItem, and the rows with COPY.

Honest to what CreateOrder makes: each order is placed by the domain (`place_order`: version 1,
PENDING, its totals and tracking code) and stored by the service's own codecs (the
repository's columns, `wire.order_to_proto`, `items.status_item` and `items.details_item`, TTL
from ORDER_CACHE_TTL_HOURS). What differs, and is said where it is used: no outbox rows and so
no events (an API replica learns of these orders only by reading them, like orders placed
before it started), and no request-log entries (nobody retries these creates).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from uoom.orders.v1 import order_pb2

from uoom_orders import wire
from uoom_orders.application.handlers import new_tracking_code
from uoom_orders.config import Settings
from uoom_orders.domain.commands import CreateOrder
from uoom_orders.domain.lifecycle import place_order
from uoom_orders.domain.order import DeliveryLocation, Order, OrderItem
from uoom_orders.dynamodb import items
from uoom_orders.dynamodb.tables import TableNames
from uoom_orders.write.order_repository import ORDER_COLUMNS, order_row

# DynamoDB's maximum requests per BatchWriteItem.
BATCH_WRITE_LIMIT = 25
# BatchWriteItem calls in flight: the local endpoint is one process on a shared core, more
# only queue there.
_WRITES_IN_FLIGHT = 4
# Orders built and stored per step (bounds the memory the items take at once).
_CHUNK = 5000
_UNPROCESSED_ATTEMPTS = 10

_ITEM_COLUMNS = (
    "order_id",
    "line_no",
    "item_id",
    "name",
    "quantity",
    "unit_price_minor",
    "total_minor",
)
_MENU = (
    OrderItem("pizza-margherita", "Pizza Margherita", 1, 1599),
    OrderItem("garlic-bread", "Garlic Bread", 2, 499),
    OrderItem("cola", "Cola", 2, 250),
)
_NEW_YORK = DeliveryLocation(
    40.7128, -74.006, "123 Main St, New York, NY 10001", "New York", "10001"
)


@dataclass(frozen=True)
class BulkSeed:
    """What a bulk seed stored, and how long each store took."""

    summaries: list[order_pb2.OrderSummary]
    build_s: float
    postgres_s: float
    dynamodb_s: float
    items_written: int

    @property
    def total_s(self) -> float:
        """The whole seed."""
        return self.build_s + self.postgres_s + self.dynamodb_s


def _order(rng: random.Random, now: datetime) -> Order:
    lines = tuple(rng.sample(_MENU, rng.randint(1, len(_MENU))))
    command = CreateOrder(
        request_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        fingerprint=b"bulk-seed",
        customer_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        restaurant_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        channel_id="default-channel",
        currency_code="USD",
        items=lines,
        delivery_location=_NEW_YORK,
        estimated_delivery_time=now + timedelta(minutes=45),
    )
    return place_order(
        command,
        order_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        tracking_code=new_tracking_code(),
        now=now,
    )


def _item_rows(order: Order) -> list[tuple[Any, ...]]:
    return [
        (
            order.order_id,
            line_no,
            item.item_id,
            item.name,
            item.quantity,
            item.unit_price_minor,
            item.total_minor,
        )
        for line_no, item in enumerate(order.items, start=1)
    ]


async def seed_bulk(
    env: Mapping[str, str], count: int, *, details: bool = True, seed: int = 1
) -> BulkSeed:
    """Stores `count` new orders in PostgreSQL and the read model's status table (and its
    details table unless `details` is False: half the endpoint's work, for a scenario that reads
    statuses only), as the service's settings in `env` name them; returns their status records
    as the service would serve them."""
    import aioboto3

    from uoom_orders.dynamodb.client import dynamodb_client

    settings = Settings.from_env(env)
    tables = TableNames.for_prefix(settings.dynamodb_table_prefix)
    rng = random.Random(f"bulk-seed:{seed}")
    session = aioboto3.Session(
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        region_name=settings.aws_region,
    )
    summaries: list[order_pb2.OrderSummary] = []
    build_s = postgres_s = dynamodb_s = 0.0
    written = 0
    connection = await asyncpg.connect(settings.database_url)
    try:
        async with dynamodb_client(
            region=settings.aws_region,
            endpoint=settings.dynamodb_endpoint,
            session=session,
            timeout_ms=30_000,
        ) as client:
            for start in range(0, count, _CHUNK):
                began = time.perf_counter()
                now = datetime.now(UTC)
                ttl = items.ttl_after(settings.order_cache_ttl_hours, now.timestamp())
                orders = [_order(rng, now) for _ in range(min(_CHUNK, count - start))]
                messages = [wire.order_to_proto(order) for order in orders]
                requests = [(tables.status, items.status_item(m, ttl)) for m in messages]
                if details:
                    requests += [(tables.details, items.details_item(m, ttl)) for m in messages]
                built = time.perf_counter()
                await _copy(connection, orders)
                copied = time.perf_counter()
                written += await _batch_write(client, requests)
                stored = time.perf_counter()
                build_s += built - began
                postgres_s += copied - built
                dynamodb_s += stored - copied
                summaries.extend(wire.summary_from_order(message) for message in messages)
    finally:
        await connection.close()
    return BulkSeed(summaries, build_s, postgres_s, dynamodb_s, written)


async def _copy(connection: asyncpg.Connection, orders: Sequence[Order]) -> None:
    async with connection.transaction():
        await connection.copy_records_to_table(
            "orders", records=[order_row(o) for o in orders], columns=ORDER_COLUMNS
        )
        await connection.copy_records_to_table(
            "order_items",
            records=[row for o in orders for row in _item_rows(o)],
            columns=_ITEM_COLUMNS,
        )


async def _batch_write(client: Any, requests: Sequence[tuple[str, items.Item]]) -> int:
    """Puts every (table, item), 25 to a call, a few calls in flight; returns how many."""
    chunks = [
        requests[i : i + BATCH_WRITE_LIMIT] for i in range(0, len(requests), BATCH_WRITE_LIMIT)
    ]
    queue = iter(chunks)

    async def writer() -> None:
        for chunk in queue:
            pending: dict[str, list[dict[str, Any]]] = {}
            for table, item in chunk:
                pending.setdefault(table, []).append({"PutRequest": {"Item": item}})
            for attempt in range(_UNPROCESSED_ATTEMPTS):
                reply = await client.batch_write_item(RequestItems=pending)
                pending = reply.get("UnprocessedItems") or {}
                if not pending:
                    break
                await asyncio.sleep(0.05 * 2**attempt)
            else:
                raise RuntimeError("the read model left items unprocessed after 10 attempts")

    await asyncio.gather(*(writer() for _ in range(_WRITES_IN_FLIGHT)))
    return len(requests)
