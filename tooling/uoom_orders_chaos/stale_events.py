"""Old and duplicate events for existing orders, published straight to the event topic.

They are the relay's own messages again: payloads and headers of published outbox rows (the
relay keeps them for OUTBOX_RETENTION_HOURS), rebuilt with the relay's `event_message`. A row
of an order's current version is a duplicate; a row of an earlier version is an old event,
arriving after newer ones. The read model and every near cache must ignore both.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
from aiokafka import AIOKafkaProducer

from uoom_orders.relay.records import OutboxRecord, event_message

if TYPE_CHECKING:
    from uoom_orders_chaos.cluster import ChaosCluster

_ROWS = """
    SELECT x.id, x.event_id, x.order_id, x.event_type, x.version, x.payload, x.created_at,
        x.trace_context, x.version = o.version AS is_current
    FROM outbox x JOIN orders o ON o.order_id = x.order_id
    WHERE x.published_at IS NOT NULL AND x.version {op} o.version
    ORDER BY random()
    LIMIT $1
"""


@dataclass(frozen=True)
class Published:
    old: int
    duplicate: int
    order_ids: frozenset[str]
    """The orders the events were about."""


def _record(row: asyncpg.Record) -> OutboxRecord:
    context = row["trace_context"]
    if isinstance(context, str):
        context = json.loads(context)
    return OutboxRecord(
        id=row["id"],
        event_id=row["event_id"],
        order_id=row["order_id"],
        event_type=row["event_type"],
        version=row["version"],
        payload=bytes(row["payload"]),
        created_at=row["created_at"],
        trace_context=context or {},
    )


async def publish_stale_events(
    cluster: ChaosCluster, count: int, over_seconds: float, rng: random.Random
) -> Published:
    """Publishes about `count` events, half old and half duplicates, spread over
    `over_seconds`; returns how many of each were acknowledged by the broker."""
    connection = await asyncpg.connect(cluster.database_url)
    try:
        old = await connection.fetch(_ROWS.format(op="<"), count - count // 2)
        current = await connection.fetch(_ROWS.format(op="="), count // 2)
    finally:
        await connection.close()
    rows = [*old, *current]
    rng.shuffle(rows)
    producer = AIOKafkaProducer(
        bootstrap_servers=cluster.stack.endpoints.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=False,  # tansu rejects aiokafka's idempotent producer
        client_id="uoom-chaos-stale-events",
    )
    await producer.start()
    sent = {"old": 0, "duplicate": 0}
    try:
        pause = over_seconds / max(1, len(rows))
        for row in rows:
            message = event_message(_record(row))
            await producer.send_and_wait(
                cluster.topic, message.value, key=message.key, headers=list(message.headers)
            )
            sent["duplicate" if row["is_current"] else "old"] += 1
            await asyncio.sleep(pause)
    finally:
        await producer.stop()
    return Published(
        old=sent["old"],
        duplicate=sent["duplicate"],
        order_ids=frozenset(str(row["order_id"]) for row in rows),
    )
