"""Helpers shared by the read-model, projector and rebuild tests, and a projector process.

`python -m tests.integration.projector_support --bootstrap ... --endpoint ... --prefix ...
--topic ... --group ...` runs an OrderProjector until SIGTERM/SIGINT, so a test can SIGKILL it
mid-stream. AWS credentials and region come from the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aioboto3
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from uoom_orders import wire
from uoom_orders.domain.commands import CreateOrder
from uoom_orders.domain.events import OrderEvent, OrderEventType
from uoom_orders.domain.lifecycle import change_status, place_order
from uoom_orders.domain.order import DeliveryLocation, OrderItem, OrderStatus
from uoom_orders.dynamodb import items
from uoom_orders.dynamodb.client import dynamodb_client
from uoom_orders.dynamodb.tables import TableNames
from uoom_orders_devstack import StackEndpoints

# Bounds every wait; the servers answer in milliseconds when healthy.
DEADLINE_SECONDS = 60.0
HAPPY_PATH = (
    OrderStatus.CONFIRMED,
    OrderStatus.PREPARING,
    OrderStatus.READY_FOR_PICKUP,
    OrderStatus.OUT_FOR_DELIVERY,
    OrderStatus.DELIVERED,
)


async def eventually(
    check: Callable[[], bool | Awaitable[bool]],
    what: str,
    timeout: float = DEADLINE_SECONDS,
    interval: float = 0.05,
) -> None:
    """Polls `check` (sync or async) until it is true; fails with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = check()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:12]}"


def aws_session(endpoints: StackEndpoints) -> aioboto3.Session:
    return aioboto3.Session(
        aws_access_key_id=endpoints.aws_access_key_id,
        aws_secret_access_key=endpoints.aws_secret_access_key,
        region_name=endpoints.aws_region,
    )


@asynccontextmanager
async def dynamodb(endpoints: StackEndpoints, **kwargs: Any) -> AsyncIterator[Any]:
    async with dynamodb_client(
        region=endpoints.aws_region,
        endpoint=endpoints.dynamodb_endpoint,
        session=aws_session(endpoints),
        **kwargs,
    ) as client:
        yield client


async def drop_tables(client: Any, tables: TableNames) -> None:
    for name in tables.all():
        # Already gone, e.g. after a moto restart.
        with contextlib.suppress(Exception):
            await client.delete_table(TableName=name)


async def get_item(client: Any, table: str, order_id: str) -> items.Item | None:
    answer = await client.get_item(
        TableName=table, Key=items.item_key(order_id), ConsistentRead=True
    )
    item: items.Item | None = answer.get("Item")
    return item


async def scan_all(client: Any, table: str) -> dict[str, items.Item]:
    found: dict[str, items.Item] = {}
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = await client.scan(**kwargs)
        for item in page.get("Items", []):
            found[item[items.ORDER_ID]["S"]] = item
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


async def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    """Creates topics (name → partitions); tansu would auto-create them with 4 partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, count, 1) for name, count in topics.items()])
    finally:
        await admin.close()


def producer(bootstrap: str) -> AIOKafkaProducer:
    # tansu rejects aiokafka's idempotent producer (InitProducerId v0); acks="all" works.
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)


def event_headers(event: OrderEvent) -> list[tuple[str, bytes]]:
    return [
        ("event_id", str(event.event_id).encode()),
        ("event_type", event.event_type.value.encode()),
        ("content-type", b"application/x-protobuf"),
        ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ]


async def publish(kafka: AIOKafkaProducer, topic: str, events: Sequence[OrderEvent]) -> list[Any]:
    """Publishes the events like the relay does (key = order id); returns their metadata."""
    sent = [
        await kafka.send(
            topic,
            value=wire.event_to_proto(event).SerializeToString(),
            key=str(event.order.order_id).encode(),
            headers=event_headers(event),
        )
        for event in events
    ]
    return list(await asyncio.gather(*sent))


def order_history(
    changes: int = len(HAPPY_PATH),
    *,
    start: datetime | None = None,
    customer: uuid.UUID | None = None,
) -> list[OrderEvent]:
    """A new order's events: created, then `changes` steps along the happy path."""
    now = start or datetime.now(UTC).replace(microsecond=123456)
    command = CreateOrder(
        request_id=uuid.uuid4(),
        fingerprint=b"",
        customer_id=customer or uuid.uuid4(),
        restaurant_id=uuid.uuid4(),
        channel_id="default-channel",
        currency_code="USD",
        items=(
            OrderItem("pizza-margherita", "Pizza Margherita", 1, 1599),
            OrderItem("cola", "Cola", 2, 250),
        ),
        delivery_location=DeliveryLocation(40.7128, -74.0060, "123 Main St", "New York", "10001"),
        estimated_delivery_time=now + timedelta(minutes=45),
    )
    order = place_order(command, order_id=uuid.uuid4(), tracking_code="TRK23456789AB", now=now)
    events = [OrderEvent(uuid.uuid4(), OrderEventType.CREATED, now, order, None)]
    for step, status in enumerate(HAPPY_PATH[:changes], start=1):
        moment = now + timedelta(seconds=step)
        changed = change_status(order, status, now=moment)
        events.append(
            OrderEvent(uuid.uuid4(), OrderEventType.STATUS_CHANGED, moment, changed, order.status)
        )
        order = changed
    return events


def projector_process_argv(
    endpoints: StackEndpoints, *, prefix: str, topic: str, group: str
) -> list[str]:
    return [
        "-m",
        "tests.integration.projector_support",
        "--bootstrap", endpoints.kafka_bootstrap_servers,
        "--endpoint", endpoints.dynamodb_endpoint,
        "--prefix", prefix,
        "--topic", topic,
        "--group", group,
    ]  # fmt: skip


async def _run_process(args: argparse.Namespace) -> None:
    from uoom_orders.dynamodb import ReadModelWriter
    from uoom_orders.projector import OrderProjector, ProjectorConfig

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    writer = await ReadModelWriter.open(
        region=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint=args.endpoint,
        table_prefix=args.prefix,
    )
    async with writer:
        config = ProjectorConfig(
            bootstrap_servers=args.bootstrap,
            topic=args.topic,
            group_id=args.group,
            dead_letter_topic="",
            ttl_hours=72,
            session_timeout_ms=3000,
            heartbeat_interval_ms=500,
            # The local tansu broker: short fetch waits, no idempotent producer.
            fetch_max_wait_ms=10,
            idempotent_producer=False,
            max_records=50,  # small batches: a kill lands mid-stream with work uncommitted
        )
        async with OrderProjector(writer, config):
            print("projector-started", flush=True)
            await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("bootstrap", "endpoint", "prefix", "topic", "group"):
        parser.add_argument(f"--{name}", required=True)
    asyncio.run(_run_process(parser.parse_args()))


if __name__ == "__main__":
    main()
