"""Reconciliation: the read model converges to PostgreSQL — missing, older, newer, other
content and orphan items — without ever overwriting a projection that races it."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from uoom.orders.v1 import order_events_pb2, order_pb2

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
from uoom_orders.config import Settings
from uoom_orders.config.components import projector_config
from uoom_orders.domain.commands import CreateOrder, UpdateOrderStatus
from uoom_orders.domain.order import DeliveryLocation, Order, OrderItem
from uoom_orders.dynamodb import ReadModelWriter, TableNames, create_tables, items
from uoom_orders.projector import OrderProjector, ProjectorConfig, Reconciler
from uoom_orders.projector.reconcile import DifferenceKind, ReconcileSchedule
from uoom_orders.write.unit_of_work import PostgresUnitOfWork
from uoom_orders_devstack import StackEndpoints

# Recent: a reconciliation pass walks the orders changed within the items' TTL (72 h).
T0 = datetime.now(UTC).replace(second=0, microsecond=250_001) - timedelta(hours=3)


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


def _summary(order: Order) -> order_pb2.OrderSummary:
    return wire.summary_from_order(wire.order_to_proto(order))


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
            answer = await create_order(
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
            order = wire.order_from_proto(answer)
            for status in HAPPY_PATH[: n % (len(HAPPY_PATH) + 1)]:
                answer = await update_order_status(
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
                order = wire.order_from_proto(answer)
            orders[order.order_id] = order
    return orders


async def _project_outbox(
    pool: asyncpg.Pool, ddb: Any, tables: TableNames, config: ProjectorConfig, expected: int
) -> None:
    """Publishes the outbox as the relay would, and projects it."""
    rows = await pool.fetch("SELECT order_id, payload FROM outbox ORDER BY id")
    topic = config.topic
    async with ReadModelWriter(ddb, _prefix(tables)) as writer:
        async with OrderProjector(writer, config) as projector:
            async with producer(config.bootstrap_servers) as kafka:
                sent = [
                    await kafka.send(topic, row["payload"], key=str(row["order_id"]).encode())
                    for row in rows
                ]
                await asyncio.gather(*sent)
            await eventually(lambda: projector.stats.consumed == len(rows), "the projection")
        projector.task.result()  # the loop ended by the stop, not by a failure
    assert len(await scan_all(ddb, tables.details)) == expected


def _without_ttl(found: dict[str, items.Item]) -> dict[str, items.Item]:
    return {
        order_id: {name: value for name, value in item.items() if name != items.TTL}
        for order_id, item in found.items()
    }


async def _outbox_events(pool: asyncpg.Pool, after_id: int) -> list[tuple[str, bytes]]:
    rows = await pool.fetch(
        "SELECT event_type, payload FROM outbox WHERE id > $1 ORDER BY id", after_id
    )
    return [(row["event_type"], row["payload"]) for row in rows]


async def _last_outbox_id(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT coalesce(max(id), 0) FROM outbox"))


async def _projector_config(local_stack: StackEndpoints) -> ProjectorConfig:
    """A fresh topic (2 partitions) and group."""
    topic = unique("reconcile")
    await create_topics(local_stack.kafka_bootstrap_servers, {topic: 2})
    return projector_config(
        Settings.from_env(local_stack.env()),
        topic=topic,
        group_id=unique("reconcile"),
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
    )


def _kinds(report: Any) -> dict[tuple[str, str], int]:
    return dict(report.counts())


async def test_into_empty_tables_it_equals_the_projection(
    pool: asyncpg.Pool, ddb: Any, make_tables: Any, local_stack: StackEndpoints
) -> None:
    orders = await _place_orders(pool, [uuid.uuid4() for _ in range(3)], per_customer=5)
    config = await _projector_config(local_stack)
    projected = await make_tables()
    await _project_outbox(pool, ddb, projected, config, len(orders))

    rebuilt = await make_tables()
    calls: list[tuple[int, int]] = []
    reconciler = Reconciler(pool, ddb, _prefix(rebuilt), page_size=4)
    outbox_before = await _last_outbox_id(pool)
    report = await reconciler.run(progress=lambda done, total: calls.append((done, total)))
    assert report.checked == 15
    assert _kinds(report) == {("order-status", "missing"): 15, ("order-details", "missing"): 15}
    assert (report.repaired, report.raced, report.rejected) == (30, 0, [])
    # Missing items are nobody's stale copy: no correction events.
    assert report.corrections == 0
    assert await _outbox_events(pool, outbox_before) == []
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert calls[-1] == (15, 15)
    for projected_table, rebuilt_table in zip(projected.all(), rebuilt.all(), strict=True):
        from_events = await scan_all(ddb, projected_table)
        from_postgres = await scan_all(ddb, rebuilt_table)
        # ttl counts from the write, so only it may differ.
        assert _without_ttl(from_postgres) == _without_ttl(from_events)
    details = await scan_all(ddb, rebuilt.details)
    for order_id, order in orders.items():
        assert items.item_version(details[str(order_id)]) == order.version

    # Again over current tables: nothing differs, nothing is written.
    again = await reconciler.run()
    assert (again.checked, again.differences, again.repaired) == (15, [], 0)
    assert again.scanned == 30  # both tables scanned for orphans


class _PageOrder(Reconciler):
    """Records the orders of each page as its check begins."""

    walked: list[str]

    async def read_items(self, table: str, order_ids: Any) -> dict[str, items.Item]:
        if table == "order-status":
            self.walked.extend(order_ids)
        return await super().read_items(table, order_ids)


async def test_orders_changed_since_recent_from_are_walked_last(
    pool: asyncpg.Pool, ddb: Any, make_tables: Any
) -> None:
    """After an outage the walk takes the orders changed since it began last (their events are
    what the projectors are catching up on); it still checks and repairs every order."""
    orders = await _place_orders(pool, [uuid.uuid4() for _ in range(3)], per_customer=5)
    updated = {str(oid): order.updated_at for oid, order in orders.items()}
    middle = sorted(updated.values())[len(updated) // 2]
    tables = await make_tables()
    reconciler = _PageOrder(pool, ddb, _prefix(tables), page_size=2, pages_in_flight=1)
    reconciler.walked = []
    report = await reconciler.run(scan=False, recent_from=middle)
    assert (report.checked, report.repaired) == (15, 30)
    assert sorted(reconciler.walked) == sorted(updated)
    recent = [updated[oid] >= middle for oid in reconciler.walked]
    assert recent == sorted(recent)  # every older order first, then every recent one
    assert 0 < sum(recent) < 15


async def test_filters_select_orders_and_older_items_are_repaired(
    pool: asyncpg.Pool, ddb: Any, make_tables: Any
) -> None:
    customers = [uuid.uuid4(), uuid.uuid4()]
    orders = await _place_orders(pool, customers, per_customer=4)
    tables = await make_tables()
    reconciler = Reconciler(pool, ddb, _prefix(tables))
    report = await reconciler.run(customer_id=customers[0])
    found = await scan_all(ddb, tables.status)
    mine = {str(o.order_id) for o in orders.values() if o.customer_id == customers[0]}
    assert set(found) == mine
    assert report.checked == len(mine) == 4
    assert report.scanned == 0  # a filtered pass does not look for orphans

    cut = T0 + timedelta(minutes=15)
    recent = {str(o.order_id) for o in orders.values() if o.updated_at >= cut}
    assert 0 < len(recent) < len(orders)
    report = await reconciler.run(since=cut)
    assert report.checked == len(recent)
    assert set(await scan_all(ddb, tables.status)) == mine | recent

    # An item left behind at an older version is brought up to date.
    repaired = await make_tables()
    newest = max(orders.values(), key=lambda o: o.version)
    older = wire.order_to_proto(newest)
    older.version = 1
    older.status = order_pb2.ORDER_STATUS_PENDING
    async with ReadModelWriter(ddb, _prefix(repaired)) as writer:
        ttl = items.ttl_after(72, datetime.now(UTC).timestamp())
        assert (await writer.put_order(older, ttl)).applied
    report = await Reconciler(pool, ddb, _prefix(repaired)).run()
    counts = _kinds(report)
    assert counts[("order-status", "older")] == counts[("order-details", "older")] == 1
    assert report.repaired == 2 * len(orders)
    for table in repaired.all():
        item = (await scan_all(ddb, table))[str(newest.order_id)]
        assert items.summary_from_item(item) == _summary(newest)


async def _lost_commits(
    pool: asyncpg.Pool, ddb: Any, tables: TableNames
) -> tuple[dict[uuid.UUID, Order], order_pb2.Order, order_pb2.Order, order_pb2.Order]:
    """A read model that kept what PostgreSQL lost: one order at a version PostgreSQL never
    had, one at PostgreSQL's version number with other content (the number reused after the
    loss), and one order PostgreSQL does not have at all."""
    orders = await _place_orders(pool, [uuid.uuid4()], per_customer=4)
    await Reconciler(pool, ddb, _prefix(tables)).run()
    ahead_of, reused, _, _ = list(orders.values())
    newer = wire.order_to_proto(ahead_of)
    newer.version += 1
    newer.status = order_pb2.ORDER_STATUS_CANCELLED
    newer.updated_at.seconds += 60
    other = wire.order_to_proto(reused)
    other.tracking_code = "LOST-COMMIT"
    other.updated_at.seconds += 30
    orphan = wire.order_to_proto(reused)
    orphan.order_id = str(uuid.uuid4())
    orphan.version = 1
    ttl = items.ttl_after(72, datetime.now(UTC).timestamp())
    for table in tables.all():
        encode = items.status_item if table == tables.status else items.details_item
        for order in (newer, other, orphan):
            await ddb.put_item(TableName=table, Item=encode(order, ttl))
    return orders, newer, other, orphan


async def test_newer_other_content_and_orphans_are_repaired_and_corrected(
    pool: asyncpg.Pool, ddb: Any, make_tables: Any
) -> None:
    tables = await make_tables()
    orders, newer, other, orphan = await _lost_commits(pool, ddb, tables)
    outbox_before = await _last_outbox_id(pool)

    report = await Reconciler(pool, ddb, _prefix(tables)).run()

    assert _kinds(report) == {
        (table, kind): 1
        for table in ("order-status", "order-details")
        for kind in ("newer", "content", "orphan")
    }
    assert (report.repaired, report.raced, report.rejected) == (6, 0, [])
    for table in tables.all():
        found = await scan_all(ddb, table)
        assert orphan.order_id not in found
        assert set(found) == {str(order_id) for order_id in orders}
        for order_id, order in orders.items():
            assert items.summary_from_item(found[str(order_id)]) == _summary(order)
    # One correction per order whose read model held what PostgreSQL never had, carrying
    # PostgreSQL's order (or its absence), for every near cache to apply whatever its version.
    events = await _outbox_events(pool, outbox_before)
    decoded = {}
    for event_type, payload in events:
        event = order_events_pb2.OrderEvent.FromString(payload)
        decoded[event.order_id] = (event_type, event)
    assert set(decoded) == {newer.order_id, other.order_id, orphan.order_id}
    for corrected in (newer.order_id, other.order_id):
        event_type, event = decoded[corrected]
        assert event_type == "ORDER_CORRECTED"
        assert event.event_type == order_events_pb2.ORDER_EVENT_TYPE_CORRECTED
        assert event.order == wire.order_to_proto(orders[uuid.UUID(corrected)])
    event_type, event = decoded[orphan.order_id]
    assert event_type == "ORDER_REMOVED"
    assert event.event_type == order_events_pb2.ORDER_EVENT_TYPE_REMOVED
    assert not event.HasField("order")

    again = await Reconciler(pool, ddb, _prefix(tables)).run()
    assert again.differences == []


async def test_a_dry_run_reports_and_changes_nothing(
    pool: asyncpg.Pool, ddb: Any, make_tables: Any
) -> None:
    tables = await make_tables()
    await _lost_commits(pool, ddb, tables)
    before = {table: await scan_all(ddb, table) for table in tables.all()}
    outbox_before = await _last_outbox_id(pool)

    report = await Reconciler(pool, ddb, _prefix(tables)).run(dry_run=True)

    assert sorted(d.kind for d in report.differences) == sorted(
        [DifferenceKind.NEWER, DifferenceKind.CONTENT, DifferenceKind.ORPHAN] * 2
    )
    assert (report.repaired, report.corrections) == (0, 0)
    assert {table: await scan_all(ddb, table) for table in tables.all()} == before
    assert await _outbox_events(pool, outbox_before) == []


async def test_a_repair_never_overwrites_a_projection_that_raced_it(
    pool: asyncpg.Pool, ddb: Any, make_tables: Any
) -> None:
    """The repair is conditioned on the exact item read: a projector write in between wins."""
    tables = await make_tables()
    orders = await _place_orders(pool, [uuid.uuid4()], per_customer=3)
    newest = max(orders.values(), key=lambda o: o.version)
    assert newest.version > 1
    current = wire.order_to_proto(newest)
    stale = wire.order_to_proto(newest)
    stale.version = 1
    projector_ttl = 4_000_000_000  # tells the projector's item from a repair's
    async with ReadModelWriter(ddb, _prefix(tables)) as writer:
        await writer.put_order(stale, projector_ttl)

        class Racing(Reconciler):
            async def read_orders(self, order_ids: Any) -> dict[str, order_pb2.Order]:
                # The items were read (older); the projector writes the current version.
                await writer.put_order(current, projector_ttl)
                return await super().read_orders(order_ids)

        report = await Racing(pool, ddb, _prefix(tables)).run(customer_id=newest.customer_id)
    older = [d for d in report.differences if d.kind is DifferenceKind.OLDER]
    assert len(older) == 2
    assert (report.repaired, report.raced) == (len(orders) * 2 - 2, 2)
    for table in tables.all():
        item = (await scan_all(ddb, table))[str(newest.order_id)]
        assert int(item[items.TTL]["N"]) == projector_ttl
        assert items.summary_from_item(item) == _summary(newest)


async def test_rebuild_and_the_projector_together_end_at_postgres_versions(
    pool: asyncpg.Pool, ddb: Any, make_tables: Any, local_stack: StackEndpoints
) -> None:
    orders = await _place_orders(pool, [uuid.uuid4() for _ in range(4)], per_customer=6)
    config = await _projector_config(local_stack)
    tables = await make_tables()
    reconciler = Reconciler(pool, ddb, _prefix(tables), page_size=5)
    await asyncio.gather(_project_outbox(pool, ddb, tables, config, len(orders)), reconciler.run())
    for table in tables.all():
        found = await scan_all(ddb, table)
        assert set(found) == {str(order_id) for order_id in orders}
        for order_id, order in orders.items():
            assert items.summary_from_item(found[str(order_id)]) == _summary(order)


async def test_one_scheduled_pass_at_a_time_across_processes(
    pool: asyncpg.Pool, ddb: Any, make_tables: Any, database_url: str
) -> None:
    """A second schedule (another projector) skips its turn while a pass holds the lock."""
    tables = await make_tables()
    await _place_orders(pool, [uuid.uuid4()], per_customer=3)
    started = asyncio.Event()
    release = asyncio.Event()

    class Slow(Reconciler):
        async def read_orders(self, order_ids: Any) -> dict[str, order_pb2.Order]:
            started.set()
            await release.wait()
            return await super().read_orders(order_ids)

    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as other_pool:
        first = ReconcileSchedule(Slow(pool, ddb, _prefix(tables)), pool, 60)
        second = ReconcileSchedule(Reconciler(other_pool, ddb, _prefix(tables)), other_pool, 60)
        running = asyncio.create_task(first.run_once())
        await asyncio.wait_for(started.wait(), 10)
        assert await second.run_once() is None
        release.set()
        report = await running
        assert report is not None
        assert report.repaired == 6
        again = await second.run_once()
        assert again is not None
        assert again.differences == []


async def test_a_trigger_brings_the_next_scheduled_pass_forward(
    pool: asyncpg.Pool, ddb: Any, make_tables: Any
) -> None:
    """What the projector does when the read model answers again after an outage."""
    tables = await make_tables()
    await _place_orders(pool, [uuid.uuid4()], per_customer=2)
    schedule = ReconcileSchedule(Reconciler(pool, ddb, _prefix(tables)), pool, 3600)
    async with schedule:
        await asyncio.sleep(0.2)
        assert schedule.passes == 0
        schedule.trigger()
        await eventually(lambda: _passes(schedule, 1), "a pass soon after the trigger")
    assert len(await scan_all(ddb, tables.status)) == 2


async def _passes(schedule: ReconcileSchedule, count: int) -> bool:
    return schedule.passes >= count


async def test_orders_older_than_the_ttl_are_not_revived_but_an_item_ahead_is_repaired(
    pool: asyncpg.Pool, ddb: Any, make_tables: Any
) -> None:
    """The walk covers the orders changed within the items' TTL: an older order's missing
    items have expired, as they should, and writing them again would keep every order ever
    made. An item the tables still hold of an older order is still checked, by the scan."""
    orders = await _place_orders(pool, [uuid.uuid4()], per_customer=3)
    old, ahead_of, recent = list(orders.values())
    await pool.execute(
        "UPDATE orders SET updated_at = updated_at - interval '100 hours' "
        "WHERE order_id = ANY($1::uuid[])",
        [old.order_id, ahead_of.order_id],
    )
    tables = await make_tables()
    newer = wire.order_to_proto(ahead_of)
    newer.version += 1
    newer.status = order_pb2.ORDER_STATUS_CANCELLED
    ttl = items.ttl_after(72, datetime.now(UTC).timestamp())
    for table in tables.all():
        encode = items.status_item if table == tables.status else items.details_item
        await ddb.put_item(TableName=table, Item=encode(newer, ttl))

    report = await Reconciler(pool, ddb, _prefix(tables)).run()

    assert _kinds(report) == {
        ("order-status", "missing"): 1,
        ("order-details", "missing"): 1,
        ("order-status", "newer"): 1,
        ("order-details", "newer"): 1,
    }
    for table in tables.all():
        found = await scan_all(ddb, table)
        assert set(found) == {str(recent.order_id), str(ahead_of.order_id)}
        assert items.item_version(found[str(ahead_of.order_id)]) == ahead_of.version
    again = await Reconciler(pool, ddb, _prefix(tables)).run()
    assert again.differences == []
