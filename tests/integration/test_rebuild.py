"""Rebuilding the read model from PostgreSQL gives what the projector gives."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from uoom.orders.v1 import order_pb2

from tests.integration.projector_support import (
    HAPPY_PATH,
    create_topics,
    drop_tables,
    eventually,
    producer,
    scan_all,
    unique,
)
from uoom_orders import wire
from uoom_orders.application.handlers import create_order, update_order_status
from uoom_orders.devstack import StackEndpoints
from uoom_orders.domain.commands import CreateOrder, UpdateOrderStatus
from uoom_orders.domain.order import DeliveryLocation, Order, OrderItem
from uoom_orders.projector import OrderProjector, ProjectorConfig, rebuild_read_model
from uoom_orders.readmodel import ReadModelWriter, TableNames, create_tables, items
from uoom_orders.write.unit_of_work import PostgresUnitOfWork

T0 = datetime(2024, 1, 15, 13, 0, 0, 250_001, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def make_tables(ddb: Any) -> AsyncIterator[Any]:
    """Creates a fresh pair of tables per call; all are dropped afterwards."""
    made: list[TableNames] = []

    async def make() -> TableNames:
        prefix = unique("rb") + "-"
        await create_tables(ddb, prefix)
        made.append(TableNames.for_prefix(prefix))
        return made[-1]

    yield make
    for tables in made:
        await drop_tables(ddb, tables)


def _prefix(tables: TableNames) -> str:
    return tables.status.removesuffix("order-status")


async def _place_orders(
    pool: asyncpg.Pool, customers: list[uuid.UUID], per_customer: int
) -> dict[uuid.UUID, Order]:
    """Orders through the real write path, each moved a different number of steps; the
    clock advances one minute per command so `updated_at` differs predictably."""
    tick = iter(range(10_000))

    def clock() -> datetime:
        return T0 + timedelta(minutes=next(tick))

    def new_uow() -> PostgresUnitOfWork:
        return PostgresUnitOfWork(pool)

    orders: dict[uuid.UUID, Order] = {}
    for n in range(per_customer):
        for customer in customers:
            order = await create_order(
                CreateOrder(
                    request_id=uuid.uuid4(),
                    fingerprint=b"create",
                    customer_id=customer,
                    restaurant_id=uuid.uuid4(),
                    channel_id="default-channel",
                    currency_code="EUR",
                    items=(
                        OrderItem("pizza", "Pizza", 2, 1250),
                        OrderItem("water", "Water", 1, 199),
                    ),
                    delivery_location=DeliveryLocation(
                        52.520008, 13.404954, "Unter den Linden 1", "Berlin", "10117"
                    ),
                    estimated_delivery_time=T0 + timedelta(hours=1) if n % 2 else None,
                ),
                new_uow,
                clock=clock,
            )
            for status in HAPPY_PATH[: n % (len(HAPPY_PATH) + 1)]:
                order = await update_order_status(
                    UpdateOrderStatus(
                        request_id=uuid.uuid4(),
                        fingerprint=b"update",
                        order_id=order.order_id,
                        status=status,
                        expected_version=order.version,
                        estimated_delivery_time=None,
                    ),
                    new_uow,
                    clock=clock,
                )
            orders[order.order_id] = order
    return orders


async def _project_outbox(
    pool: asyncpg.Pool, ddb: Any, tables: TableNames, config: ProjectorConfig, expected: int
) -> None:
    """Publishes the outbox as the relay would, and projects it."""
    rows = await pool.fetch("SELECT order_id, payload FROM outbox ORDER BY id")
    topic = config.topic
    async with ReadModelWriter(ddb, _prefix(tables)) as writer:
        projector = OrderProjector(writer, config)
        task = asyncio.create_task(projector.run())
        try:
            async with producer(config.bootstrap_servers) as kafka:
                sent = [
                    await kafka.send(topic, row["payload"], key=str(row["order_id"]).encode())
                    for row in rows
                ]
                await asyncio.gather(*sent)
            await eventually(lambda: projector.stats.consumed == len(rows), "the projection")
        finally:
            await projector.stop()
            await task
    assert len(await scan_all(ddb, tables.details)) == expected


def _without_ttl(found: dict[str, items.Item]) -> dict[str, items.Item]:
    return {
        order_id: {name: value for name, value in item.items() if name != items.TTL}
        for order_id, item in found.items()
    }


async def test_rebuild_into_empty_tables_equals_the_projection(
    pool: asyncpg.Pool, ddb: Any, make_tables: Any, local_stack: StackEndpoints
) -> None:
    orders = await _place_orders(pool, [uuid.uuid4() for _ in range(3)], per_customer=5)
    topic = unique("rebuild")
    await create_topics(local_stack.kafka_bootstrap_servers, {topic: 2})
    config = ProjectorConfig(
        bootstrap_servers=local_stack.kafka_bootstrap_servers,
        topic=topic,
        group_id=unique("rebuild"),
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
    )
    projected = await make_tables()
    await _project_outbox(pool, ddb, projected, config, len(orders))

    rebuilt = await make_tables()
    calls: list[tuple[int, int]] = []
    async with ReadModelWriter(ddb, _prefix(rebuilt)) as writer:
        stats = await rebuild_read_model(
            pool, writer, batch_size=4, progress=lambda done, total: calls.append((done, total))
        )
    assert (stats.orders, stats.applied, stats.stale, stats.rejected) == (15, 15, 0, [])
    assert calls == [(4, 15), (8, 15), (12, 15), (15, 15)]
    for projected_table, rebuilt_table in zip(projected.all(), rebuilt.all(), strict=True):
        from_events = await scan_all(ddb, projected_table)
        from_postgres = await scan_all(ddb, rebuilt_table)
        # ttl counts from the write, so only it may differ.
        assert _without_ttl(from_postgres) == _without_ttl(from_events)
    details = await scan_all(ddb, rebuilt.details)
    for order_id, order in orders.items():
        assert items.item_version(details[str(order_id)]) == order.version

    # Again over current tables: nothing to write.
    async with ReadModelWriter(ddb, _prefix(rebuilt)) as writer:
        again = await rebuild_read_model(pool, writer)
    assert (again.orders, again.applied, again.stale) == (15, 0, 15)


async def test_rebuild_filters_and_repairs_older_items(
    pool: asyncpg.Pool, ddb: Any, make_tables: Any
) -> None:
    customers = [uuid.uuid4(), uuid.uuid4()]
    orders = await _place_orders(pool, customers, per_customer=4)
    tables = await make_tables()
    async with ReadModelWriter(ddb, _prefix(tables)) as writer:
        stats = await rebuild_read_model(pool, writer, customer_id=customers[0])
        found = await scan_all(ddb, tables.status)
        mine = {str(o.order_id) for o in orders.values() if o.customer_id == customers[0]}
        assert set(found) == mine
        assert stats.orders == len(mine) == 4

        cut = T0 + timedelta(minutes=15)
        recent = {str(o.order_id) for o in orders.values() if o.updated_at >= cut}
        assert 0 < len(recent) < len(orders)
        stats = await rebuild_read_model(pool, writer, since=cut)
        assert stats.orders == len(recent)
        assert set(await scan_all(ddb, tables.status)) == mine | recent

    # An item left behind at an older version is brought up to date.
    repaired = await make_tables()
    newest = max(orders.values(), key=lambda o: o.version)
    older = wire.order_to_proto(newest)
    older.version = 1
    older.status = order_pb2.ORDER_STATUS_PENDING
    async with ReadModelWriter(ddb, _prefix(repaired)) as writer:
        assert (await writer.put_order(older, items.ttl_after(72, 1_700_000_000))).applied
        stats = await rebuild_read_model(pool, writer)
    assert stats.applied == len(orders)
    for table in repaired.all():
        item = (await scan_all(ddb, table))[str(newest.order_id)]
        assert items.summary_from_item(item) == wire.summary_to_proto(newest)
