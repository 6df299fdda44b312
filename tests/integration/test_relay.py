"""The outbox relay against real PostgreSQL and the local Kafka-protocol broker (tansu)."""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from prometheus_client import REGISTRY
from uoom.orders.v1 import order_events_pb2, order_pb2

from tests.support.memory_publisher import InMemoryEventPublisher
from uoom_orders import wire
from uoom_orders.application.handlers import create_order, update_order_status
from uoom_orders.application.ports import LoggedRequest, TraceContext
from uoom_orders.domain.commands import CreateOrder, UpdateOrderStatus
from uoom_orders.domain.events import OrderEvent
from uoom_orders.domain.order import DeliveryLocation, Order, OrderItem, OrderStatus
from uoom_orders.relay import (
    CONTENT_TYPE,
    EVENT_TOPIC_PARTITIONS,
    EventMessage,
    EventPublisher,
    KafkaEventPublisher,
    OutboxRecord,
    OutboxRelay,
    PostgresOutboxStore,
    PublishError,
    RelayConfig,
    ensure_topics,
)
from uoom_orders.write.unit_of_work import PostgresUnitOfWork
from uoom_orders_devstack import LocalStack, StackEndpoints

# Bounds every wait; the relay publishes in milliseconds when healthy.
DEADLINE_SECONDS = 30.0
# Long enough that anything arriving sooner came by NOTIFY (or a recheck), not by the poll.
SLOW_POLL = 30.0
STATUS_PATH = (
    OrderStatus.CONFIRMED,
    OrderStatus.PREPARING,
    OrderStatus.READY_FOR_PICKUP,
    OrderStatus.OUT_FOR_DELIVERY,
    OrderStatus.DELIVERED,
)
TRACE = {
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "vendor=value",
}


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    # A leaked Kafka client warns from its finaliser; collecting here blames the right test.
    yield
    gc.collect()


# --- helpers ---------------------------------------------------------------------------


@pytest.fixture
async def write_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The write side's pool, as the API uses it."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=12)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def topic(local_stack: StackEndpoints) -> str:
    """A topic of this test's own, created with the event topic's partition count."""
    name = f"relay-test-{uuid.uuid4().hex}"
    await ensure_topics(local_stack.kafka_bootstrap_servers, {name: EVENT_TOPIC_PARTITIONS})
    return name


def kafka_publisher(endpoints: StackEndpoints, topic: str) -> KafkaEventPublisher:
    # tansu rejects aiokafka's idempotent producer; a short timeout notices an outage fast.
    return KafkaEventPublisher(
        endpoints.kafka_bootstrap_servers,
        topic,
        enable_idempotence=False,
        request_timeout_ms=2000,
    )


def relay_for(database_url: str, publisher: EventPublisher, **options: Any) -> OutboxRelay:
    config: dict[str, Any] = {
        "batch_size": 500,
        "poll_interval": 0.2,
        "retention": timedelta(hours=24),
        "backoff_max": 0.5,
    }
    config.update(options)
    return OutboxRelay(RelayConfig(database_url, **config), publisher)


def create_command() -> CreateOrder:
    return CreateOrder(
        request_id=uuid.uuid4(),
        fingerprint=b"relay-test",
        customer_id=uuid.uuid4(),
        restaurant_id=uuid.uuid4(),
        channel_id="default-channel",
        currency_code="USD",
        items=(OrderItem("pizza", "Pizza", 1, 1599),),
        delivery_location=DeliveryLocation(40.7, -74.0, "1 Main St", "NYC", "10001"),
        estimated_delivery_time=None,
    )


async def place(pool: asyncpg.Pool, *, trace: dict[str, str] | None = None) -> Order:
    answer = await create_order(
        create_command(),
        lambda: PostgresUnitOfWork(pool),
        trace_context=lambda: dict(trace or {}),
    )
    return wire.order_from_proto(answer)


async def advance(pool: asyncpg.Pool, order_id: uuid.UUID, status: OrderStatus) -> Order:
    command = UpdateOrderStatus(
        request_id=uuid.uuid4(),
        fingerprint=b"relay-test",
        order_id=order_id,
        status=status,
        expected_version=None,
        estimated_delivery_time=None,
    )
    return wire.order_from_proto(
        await update_order_status(command, lambda: PostgresUnitOfWork(pool))
    )


async def place_and_deliver(pool: asyncpg.Pool) -> Order:
    """Creates an order and moves it through the whole lifecycle: six events."""
    order = await place(pool)
    for status in STATUS_PATH:
        order = await advance(pool, order.order_id, status)
    return order


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = DEADLINE_SECONDS
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


async def unpublished(db: asyncpg.Connection) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    return count


async def hold_a_change(
    pool: asyncpg.Pool, db: asyncpg.Connection, held: HeldUnitOfWork
) -> asyncio.Task[order_pb2.Order]:
    """Places an order (its outbox row marked published: not what the test watches), then
    changes it in `held`'s transaction, left running: its outbox row has taken an id and stays
    uncommitted until `held.release`. (A create is one statement: it cannot be held open.)"""
    order = await place(pool)
    await db.execute("UPDATE outbox SET published_at = now() WHERE published_at IS NULL")
    command = UpdateOrderStatus(
        request_id=uuid.uuid4(),
        fingerprint=b"relay-test",
        order_id=order.order_id,
        status=OrderStatus.CONFIRMED,
        expected_version=None,
        estimated_delivery_time=None,
    )
    return asyncio.create_task(update_order_status(command, lambda: held))


class HeldUnitOfWork(PostgresUnitOfWork):
    """A unit of work whose commit waits for `release`: a transaction held open on purpose.
    A status change, one statement in the service, makes its writes in such a transaction."""

    def __init__(self, pool: asyncpg.Pool, *, roll_back: bool = False) -> None:
        super().__init__(pool)
        self.written = asyncio.Event()
        self.release = asyncio.Event()
        self._roll_back = roll_back

    async def __aenter__(self) -> HeldUnitOfWork:
        await super().__aenter__()
        return self

    async def change(
        self,
        request_id: uuid.UUID,
        request: LoggedRequest[order_pb2.Order],
        changed: Order,
        event: OrderEvent,
        trace_context: TraceContext,
    ) -> bool:
        async with self:
            await self.orders.save_status_change(changed)
            await self.outbox.append(event, request.answer, trace_context())
            await self.requests.record(
                request_id, request.method, request.fingerprint, request.answer
            )
            await self.commit()
        return True

    async def commit(self) -> None:
        self.written.set()
        await self.release.wait()
        if self._roll_back:
            raise RuntimeError("rolled back on purpose")
        await super().commit()


class TopicReader:
    """Reads a whole topic from the start (no group), polling with a deadline."""

    def __init__(self, endpoints: StackEndpoints, topic: str) -> None:
        self.records: list[Any] = []
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=endpoints.kafka_bootstrap_servers,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
        )

    async def __aenter__(self) -> TopicReader:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._consumer.stop()

    async def _poll(self) -> None:
        batches = await self._consumer.getmany(timeout_ms=100)
        for records in batches.values():
            self.records.extend(records)

    async def wait_for(self, count: int, timeout: float = DEADLINE_SECONDS) -> list[Any]:
        """Polls until at least `count` records have arrived; fails at the deadline."""
        deadline = time.monotonic() + timeout
        while len(self.records) < count:
            assert time.monotonic() < deadline, f"{len(self.records)} of {count} records arrived"
            await self._poll()
        return self.records

    async def settle(self, seconds: float = 0.5) -> list[Any]:
        """Keeps polling for `seconds` more, to catch duplicates or strays."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self._poll()
        return self.records


def headers_of(record: Any) -> dict[str, bytes]:
    return {name: bytes(value) for name, value in record.headers}


def versions_by_order(records: Sequence[Any]) -> dict[str, list[int]]:
    """Each order's event versions in the order they were read from the topic."""
    versions: dict[str, list[int]] = defaultdict(list)
    for record in records:
        event = order_events_pb2.OrderEvent.FromString(record.value)
        versions[record.key.decode()].append(event.version)
    return versions


# --- the publisher contract: the in-memory fake and Kafka behave alike --------------------


def sample_records(orders: int = 3, versions: int = 3) -> list[OutboxRecord]:
    ids = [uuid.uuid4() for _ in range(orders)]
    now = datetime.now(UTC)
    records: list[OutboxRecord] = []
    for version in range(1, versions + 1):
        for order_id in ids:
            records.append(
                OutboxRecord(
                    id=len(records) + 1,
                    event_id=uuid.uuid4(),
                    order_id=order_id,
                    event_type="ORDER_STATUS_CHANGED" if version > 1 else "ORDER_CREATED",
                    version=version,
                    payload=f"{order_id}:{version}".encode(),
                    created_at=now,
                    trace_context=TRACE,
                )
            )
    return records


class _PublisherUnderTest:
    """A publisher plus a way to read back what it published, as EventMessages."""

    def __init__(
        self, publisher: EventPublisher, read: Callable[[int], Awaitable[list[EventMessage]]]
    ) -> None:
        self.publisher = publisher
        self.read = read


@pytest.fixture(params=["memory", "kafka"])
async def publisher_under_test(
    request: pytest.FixtureRequest, local_stack: StackEndpoints, topic: str
) -> AsyncIterator[_PublisherUnderTest]:
    if request.param == "memory":
        memory = InMemoryEventPublisher()

        async def read_memory(count: int) -> list[EventMessage]:
            return list(memory.messages)

        yield _PublisherUnderTest(memory, read_memory)
        await memory.close()
        return
    kafka = kafka_publisher(local_stack, topic)

    async def read_kafka(count: int) -> list[EventMessage]:
        async with TopicReader(local_stack, topic) as reader:
            records = await reader.wait_for(count)
            records = await reader.settle(0.2)
        return [
            EventMessage(key=r.key, value=r.value, headers=tuple(r.headers))
            for r in sorted(records, key=lambda r: (r.partition, r.offset))
        ]

    yield _PublisherUnderTest(kafka, read_kafka)
    await kafka.close()


async def test_publisher_contract_publishes_with_key_headers_and_order_per_key(
    publisher_under_test: _PublisherUnderTest,
) -> None:
    records = sample_records()
    async with publisher_under_test.publisher as publisher:
        await publisher.publish_batch([])
        await publisher.publish_batch(records[:4])
        await publisher.publish_batch(records[4:])
    messages = await publisher_under_test.read(len(records))
    assert len(messages) == len(records)
    by_payload = {m.value: m for m in messages}
    for record in records:
        message = by_payload[record.payload]
        assert message.key == str(record.order_id).encode()
        assert dict(message.headers) == {
            "event_id": str(record.event_id).encode(),
            "event_type": record.event_type.encode(),
            "content-type": CONTENT_TYPE.encode(),
            "traceparent": TRACE["traceparent"].encode(),
            "tracestate": TRACE["tracestate"].encode(),
        }
    # Per key, the order of publication.
    per_key: dict[bytes, list[bytes]] = defaultdict(list)
    for message in messages:
        per_key[message.key].append(message.value)
    for key, values in per_key.items():
        assert values == [f"{key.decode()}:{v}".encode() for v in (1, 2, 3)]


async def test_a_batch_leaves_in_one_produce_request(
    local_stack: StackEndpoints, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No linger: the batch is whole because it is queued before anything is awaited.
    requests: list[str] = []
    send = AIOKafkaClient.send

    async def counting(client: AIOKafkaClient, node_id: int, request: Any, **kwargs: Any) -> Any:
        if type(request).__name__.startswith("ProduceRequest"):
            requests.append(type(request).__name__)
        return await send(client, node_id, request, **kwargs)

    monkeypatch.setattr(AIOKafkaClient, "send", counting)
    async with kafka_publisher(local_stack, topic) as publisher:
        await publisher.publish_batch(sample_records(1, 1))  # the producer starts
        for records in (sample_records(1, 1), sample_records(10, 1), sample_records(30, 3)):
            requests.clear()
            await publisher.publish_batch(records)
            assert len(requests) == 1, f"{len(records)} records took {len(requests)} requests"


async def test_publisher_contract_refuses_to_publish_once_closed(
    publisher_under_test: _PublisherUnderTest,
) -> None:
    publisher = publisher_under_test.publisher
    await publisher.close()
    await publisher.close()  # twice is fine
    with pytest.raises(PublishError):
        await publisher.publish_batch(sample_records(1, 1))


# --- topics ------------------------------------------------------------------------------


async def test_ensure_topics_is_idempotent(local_stack: StackEndpoints) -> None:
    name = f"relay-topics-{uuid.uuid4().hex}"
    servers = local_stack.kafka_bootstrap_servers
    assert await ensure_topics(servers, {name: 3}) == [name]
    assert await ensure_topics(servers, {name: 3}) == []
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([name])
    finally:
        await admin.close()
    assert len(described["partitions"]) == 3


# --- the relay, end to end ------------------------------------------------------------------


async def test_created_orders_arrive_with_key_headers_and_payload(
    local_stack: StackEndpoints, database_url: str, write_pool: asyncpg.Pool, topic: str
) -> None:
    relay = relay_for(database_url, kafka_publisher(local_stack, topic), poll_interval=SLOW_POLL)
    async with relay, TopicReader(local_stack, topic) as reader:
        orders = [await place(write_pool, trace=TRACE) for _ in range(5)]
        records = await reader.wait_for(len(orders))
    by_key = {r.key: r for r in records}
    assert len(records) == len(by_key) == 5
    for order in orders:
        record = by_key[str(order.order_id).encode()]
        event = wire.event_from_proto(order_events_pb2.OrderEvent.FromString(record.value))
        assert event.order == order
        assert event.version == 1
        headers = headers_of(record)
        assert headers["event_id"] == str(event.event_id).encode()
        assert headers["event_type"] == b"ORDER_CREATED"
        assert headers["content-type"] == CONTENT_TYPE.encode()
        assert headers["traceparent"] == TRACE["traceparent"].encode()
        assert headers["tracestate"] == TRACE["tracestate"].encode()
    assert relay.published == 5
    assert relay.stats is not None
    assert relay.stats.pending == 0


async def test_status_changes_arrive_in_version_order_per_order(
    local_stack: StackEndpoints, database_url: str, write_pool: asyncpg.Pool, topic: str
) -> None:
    relay = relay_for(database_url, kafka_publisher(local_stack, topic), batch_size=7)
    async with relay, TopicReader(local_stack, topic) as reader:
        # Interleaved: twenty orders move through their lifecycles at the same time.
        orders = await asyncio.gather(*(place_and_deliver(write_pool) for _ in range(20)))
        records = await reader.wait_for(20 * 6)
        records = await reader.settle(0.3)
    assert len(records) == 20 * 6
    versions = versions_by_order(records)
    assert versions == {str(o.order_id): [1, 2, 3, 4, 5, 6] for o in orders}
    # One order, one partition.
    partitions: dict[bytes, set[int]] = defaultdict(set)
    for record in records:
        partitions[record.key].add(record.partition)
    assert all(len(p) == 1 for p in partitions.values())


async def test_the_store_holds_back_rows_behind_an_older_open_transaction(
    database_url: str, write_pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    held = HeldUnitOfWork(write_pool)
    earlier = await hold_a_change(write_pool, db, held)
    try:
        await asyncio.wait_for(held.written.wait(), DEADLINE_SECONDS)  # its row has an id
        later = await place(write_pool)

        with_horizon = PostgresOutboxStore(respect_xid_horizon=True)
        async with with_horizon.claim(db, 100) as batch:
            assert batch is not None
            assert batch.records == []  # the later row waits for the older transaction
        stats = await with_horizon.stats(db)
        assert (stats.pending, stats.held_back) == (1, 1)
        assert stats.oldest_age_seconds > 0

        without_horizon = PostgresOutboxStore(respect_xid_horizon=False)
        async with without_horizon.claim(db, 100) as batch:
            assert batch is not None
            assert [r.order_id for r in batch.records] == [later.order_id]
            # Not marked: the claim rolls back and the row stays unpublished.
        assert await unpublished(db) == 1
    finally:
        held.release.set()
        first = wire.order_from_proto(await earlier)

    async with with_horizon.claim(db, 100) as batch:
        assert batch is not None
        # Both now, in id order: the earlier transaction's row took the lower id.
        assert [r.order_id for r in batch.records] == [first.order_id, later.order_id]
        await batch.mark_published()
    assert await unpublished(db) == 0


@pytest.mark.parametrize(
    ("outcome", "open_for"), [("commit", 0.0), ("rollback", 0.0), ("rollback", 10.0)]
)
async def test_a_later_commit_waits_for_an_older_transaction_then_is_published(
    local_stack: StackEndpoints,
    database_url: str,
    write_pool: asyncpg.Pool,
    db: asyncpg.Connection,
    topic: str,
    outcome: str,
    open_for: float,
) -> None:
    """What the xid horizon guarantees: rows leave in id order, none is ever skipped.

    A later commit is held back while an older transaction is open; when that one commits,
    its NOTIFY wakes the relay; when it rolls back (no NOTIFY), the relay's quick recheck of
    held-back rows publishes the later row long before the (slow) poll — also after the older
    transaction stayed open for `open_for` seconds, while the recheck's wait grew.
    """
    relay = relay_for(database_url, kafka_publisher(local_stack, topic), poll_interval=SLOW_POLL)
    held = HeldUnitOfWork(write_pool, roll_back=outcome == "rollback")
    earlier = await hold_a_change(write_pool, db, held)
    async with relay, TopicReader(local_stack, topic) as reader:
        await asyncio.wait_for(held.written.wait(), DEADLINE_SECONDS)
        later = await place(write_pool)

        async def relay_holds_it_back() -> bool:
            return relay.stats is not None and relay.stats.held_back == 1

        await eventually(relay_holds_it_back, "the relay has seen the row and held it back")
        assert await unpublished(db) == 1
        # The older transaction stays open a while (its duration is the point, not a wait for
        # something to happen); the row stays held back all along.
        await asyncio.sleep(open_for)
        assert await unpublished(db) == 1

        started = time.monotonic()
        held.release.set()
        if outcome == "commit":
            first = await earlier
            records = await reader.wait_for(2)
            assert {r.key for r in records} == {
                str(first.order_id).encode(),
                str(later.order_id).encode(),
            }
        else:
            with pytest.raises(RuntimeError, match="on purpose"):
                await earlier
            records = await reader.wait_for(1)
            assert [r.key for r in records] == [str(later.order_id).encode()]
        assert time.monotonic() - started < 15.0  # not the 30 s poll (roomy: a loaded machine)
        records = await reader.settle(0.2)
    assert len(records) == (2 if outcome == "commit" else 1)
    assert await unpublished(db) == 0


async def test_two_relays_publish_every_event_once_and_in_order(
    local_stack: StackEndpoints, database_url: str, write_pool: asyncpg.Pool, topic: str
) -> None:
    first = relay_for(database_url, kafka_publisher(local_stack, topic), batch_size=5)
    second = relay_for(database_url, kafka_publisher(local_stack, topic), batch_size=5)
    async with TopicReader(local_stack, topic) as reader:
        async with first, second:
            orders = await asyncio.gather(*(place_and_deliver(write_pool) for _ in range(25)))
            await reader.wait_for(25 * 6)
            # The hot spare takes over when the other stops.
            await first.stop()
            more = await asyncio.gather(*(place_and_deliver(write_pool) for _ in range(5)))
            records = await reader.wait_for(30 * 6)
        records = await reader.settle(0.5)
    event_ids = [headers_of(r)["event_id"] for r in records]
    assert len(event_ids) == len(set(event_ids)) == 30 * 6  # each exactly once
    versions = versions_by_order(records)
    assert versions == {str(o.order_id): [1, 2, 3, 4, 5, 6] for o in [*orders, *more]}
    assert first.published + second.published == 30 * 6
    assert second.published > 0


async def test_events_created_while_the_broker_is_down_arrive_after_it_returns(
    stack_servers: LocalStack,
    database_url: str,
    write_pool: asyncpg.Pool,
    db: asyncpg.Connection,
    topic: str,
) -> None:
    broker = stack_servers.kafka
    if broker is None:
        pytest.skip("the broker is given from outside (TEST_KAFKA_BOOTSTRAP_SERVERS)")
    endpoints = stack_servers.endpoints
    # tansu keeps topics in memory: have the restarted broker create this one again.
    broker.create_topics({topic: EVENT_TOPIC_PARTITIONS})
    relay = relay_for(database_url, kafka_publisher(endpoints, topic))
    async with relay:
        await place(write_pool)  # the producer is connected before the outage

        async def all_published() -> bool:
            return await unpublished(db) == 0

        await eventually(all_published, "the first order is published")
        errors_before = metric("outbox_publish_errors_total")
        try:
            broker.stop()
            orders = await asyncio.gather(*(place(write_pool) for _ in range(10)))
            orders = await asyncio.gather(
                *(advance(write_pool, o.order_id, OrderStatus.CONFIRMED) for o in orders)
            )

            async def failed_twice() -> bool:
                return metric("outbox_publish_errors_total") >= errors_before + 2

            await eventually(failed_twice, "the relay has failed to publish and retried")
            assert await unpublished(db) == 20  # rolled back, not lost
        finally:
            broker.start()
        await eventually(all_published, "the backlog is published after the restart")
        # The memory-backed broker came back empty: only what was published after it returned
        # is there, which is everything created during the outage.
        async with TopicReader(endpoints, topic) as reader:
            records = await reader.wait_for(20)
            records = await reader.settle(0.3)
    versions = versions_by_order(records)
    assert set(versions) == {str(o.order_id) for o in orders}
    for seen in versions.values():
        # At least once: a retried batch may repeat, but never regress before it first
        # delivered the next version.
        first_seen = list(dict.fromkeys(seen))
        assert first_seen == [1, 2]


async def test_the_poll_publishes_when_no_notify_arrives(
    local_stack: StackEndpoints, database_url: str, write_pool: asyncpg.Pool, topic: str
) -> None:
    relay = relay_for(database_url, kafka_publisher(local_stack, topic), listen=False)
    async with relay, TopicReader(local_stack, topic) as reader:
        assert not relay.listening
        order = await place(write_pool)
        records = await reader.wait_for(1)
    assert records[0].key == str(order.order_id).encode()


async def test_a_row_whose_notify_was_lost_is_published_by_the_poll(
    database_url: str, write_pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    publisher = InMemoryEventPublisher()
    async with relay_for(database_url, publisher, poll_interval=0.3) as relay:
        await eventually(_async(lambda: relay.listening), "the relay listens")
        order = await place(write_pool)
        await eventually(_async(lambda: len(publisher.messages) == 1), "the first is published")
        row = await db.fetchrow("SELECT * FROM outbox")
        # Written like the outbox does, minus its pg_notify: the notification is "lost".
        await db.execute(
            "INSERT INTO outbox (event_id, order_id, event_type, version, payload)"
            " VALUES ($1, $2, 'ORDER_CREATED', 1, $3)",
            uuid.uuid4(),
            order.order_id,
            row["payload"],
        )
        await eventually(_async(lambda: len(publisher.messages) == 2), "the poll publishes it")


async def test_the_relay_listens_again_after_its_connection_is_killed(
    database_url: str, write_pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    publisher = InMemoryEventPublisher()
    listener_pid = """
        SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'uoom-outbox-relay-listen'
    """
    async with relay_for(database_url, publisher, poll_interval=SLOW_POLL) as relay:
        await eventually(_async(lambda: relay.listening), "the relay listens")
        old_pid = await db.fetchval(listener_pid)
        assert old_pid is not None
        await db.execute("SELECT pg_terminate_backend($1)", old_pid)

        async def listening_on_a_new_connection() -> bool:
            pid = await db.fetchval(listener_pid)
            return relay.listening and pid is not None and pid != old_pid

        await eventually(listening_on_a_new_connection, "LISTEN is back on a new connection")
        started = time.monotonic()
        await place(write_pool)
        await eventually(_async(lambda: len(publisher.messages) == 1), "the order is published")
        assert time.monotonic() - started < 15.0  # by NOTIFY, not the 30 s poll


async def test_a_failed_batch_is_rolled_back_counted_and_retried(
    database_url: str, write_pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    publisher = InMemoryEventPublisher()
    publisher.fail_next(3)
    errors_before = metric("outbox_publish_errors_total")
    published_before = metric("outbox_published_total")
    async with relay_for(database_url, publisher, backoff_initial=0.01, backoff_max=0.05):
        orders = [await place(write_pool) for _ in range(4)]
        await eventually(_async(lambda: len(publisher.messages) == 4), "all are published")
    assert metric("outbox_publish_errors_total") - errors_before == 3
    assert metric("outbox_published_total") - published_before == 4
    assert {m.key for m in publisher.messages} == {str(o.order_id).encode() for o in orders}
    assert await unpublished(db) == 0


async def test_pending_rows_and_the_oldest_age_are_exported_even_while_failing(
    database_url: str, write_pool: asyncpg.Pool
) -> None:
    publisher = InMemoryEventPublisher()
    publisher.available = False
    async with relay_for(database_url, publisher, backoff_max=0.05) as relay:
        await place(write_pool)
        await place(write_pool)

        async def gauges_show_the_backlog() -> bool:
            return (
                metric("outbox_unpublished_rows") == 2
                and metric("outbox_oldest_unpublished_age_seconds") > 0
            )

        await eventually(gauges_show_the_backlog, "the gauges show two waiting rows")
        publisher.available = True  # the next retry publishes both

        async def gauges_show_none() -> bool:
            return (
                metric("outbox_unpublished_rows") == 0
                and metric("outbox_oldest_unpublished_age_seconds") == 0
            )

        await eventually(gauges_show_none, "the gauges show an empty outbox")
        assert len(publisher.messages) == 2
        assert relay.stats is not None
    assert relay.stats.pending == 0


async def test_retention_deletes_only_rows_published_long_enough_ago(
    database_url: str, write_pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    orders = [await place(write_pool) for _ in range(5)]
    ids = [r["id"] for r in await db.fetch("SELECT id FROM outbox ORDER BY id")]
    # Three published two hours ago, one just now, one not published (and old).
    await db.execute(
        "UPDATE outbox SET published_at = now() - interval '2 hours' WHERE id = ANY($1)", ids[:3]
    )
    await db.execute("UPDATE outbox SET published_at = now() WHERE id = $1", ids[3])
    await db.execute(
        "UPDATE outbox SET created_at = now() - interval '3 hours' WHERE id = $1", ids[4]
    )
    store = PostgresOutboxStore()
    deleted = [await store.purge_chunk(db, timedelta(hours=1), 2) for _ in range(3)]
    assert deleted == [2, 1, 0]  # bounded chunks
    left = {r["id"] for r in await db.fetch("SELECT id FROM outbox")}
    assert left == {ids[3], ids[4]}
    assert len(orders) == 5


async def test_the_relay_purges_published_rows_after_retention(
    database_url: str, write_pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    publisher = InMemoryEventPublisher()
    purged_before = metric("outbox_purged_total")
    relay = relay_for(
        database_url, publisher, retention=timedelta(milliseconds=1), purge_interval=0.1
    )
    async with relay:
        for _ in range(3):
            await place(write_pool)

        async def outbox_empty() -> bool:
            count: int = await db.fetchval("SELECT count(*) FROM outbox")
            return count == 0

        await eventually(outbox_empty, "published rows are purged")
    assert len(publisher.messages) == 3
    assert metric("outbox_purged_total") - purged_before == 3


async def test_stop_is_safe_twice_and_closes_the_publisher(database_url: str) -> None:
    publisher = InMemoryEventPublisher()
    relay = relay_for(database_url, publisher)
    await relay.stop()  # before starting: nothing to do
    async with relay:
        pass
    await relay.stop()
    with pytest.raises(PublishError):
        await publisher.publish_batch(sample_records(1, 1))
    with pytest.raises(RuntimeError, match="runs once"):
        await relay.run()


async def test_a_relay_that_cannot_reach_postgres_fails_at_start() -> None:
    relay = relay_for("postgresql://nobody@127.0.0.1:1/none", InMemoryEventPublisher())
    with pytest.raises(OSError, match=r"Connect call failed|connection refused|Errno"):
        async with relay:
            pass


async def test_a_backlog_is_drained_in_batches_back_to_back(
    local_stack: StackEndpoints,
    database_url: str,
    write_pool: asyncpg.Pool,
    db: asyncpg.Connection,
    topic: str,
) -> None:
    order = await place(write_pool, trace=TRACE)
    backlog = 5000
    # Copies of a real row with new event ids: a backlog as after an outage.
    await db.execute(
        """
        INSERT INTO outbox (event_id, order_id, event_type, version, payload, trace_context)
        SELECT gen_random_uuid(), order_id, event_type, version, payload, trace_context
        FROM outbox, generate_series(2, $1)
        """,
        backlog,
    )
    relay = relay_for(database_url, kafka_publisher(local_stack, topic), poll_interval=SLOW_POLL)
    started = time.monotonic()
    async with relay:

        async def drained() -> bool:
            return await unpublished(db) == 0

        await eventually(drained, "the backlog is drained")
        elapsed = time.monotonic() - started
    async with TopicReader(local_stack, topic) as reader:
        records = await reader.wait_for(backlog)
    assert {r.key for r in records} == {str(order.order_id).encode()}
    assert relay.published == backlog
    print(f"relay drained {backlog} events in {elapsed:.2f}s: {backlog / elapsed:,.0f} events/s")


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def run() -> bool:
        return check()

    return run
