"""What this process watches: every store it uses, its near-cache feed and its role tasks,
assembled into one HealthMonitor (the rules are in health.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from grpc_health.v1 import health

from uoom_orders.observability import metrics
from uoom_orders.observability.health import Component, HealthMonitor
from uoom_orders.read.assembly import AssembledReadPath

ORDER_SERVICE_HEALTH_PREFIX = "uoom.orders"


def service_health(
    *,
    pool: asyncpg.Pool,
    dynamodb: Any | None,
    dynamodb_status_table: str,
    read: AssembledReadPath | None,
    role_tasks: Sequence[asyncio.Task[Any]],
    servicer: health.aio.HealthServicer | None,
    service_name: str,
    on_read_model_back: Callable[[float, float], None] | None = None,
    on_read_model_reachable: Callable[[], None] | None = None,
) -> HealthMonitor:
    """A monitor of PostgreSQL, DynamoDB (when this process uses it), the near-cache feed and
    each role task. Degraded is still serving; only with no read tier and no PostgreSQL left
    is the service NOT_SERVING.

    `on_read_model_back` is called, with the table's creation time and the time of the last
    check that reached the table before (epoch seconds), when the read model may have come
    back without what it held: its status table is another one than at that check (created
    again, or restored: DescribeTable's CreationDateTime moved). The projector brings
    reconciliation forward on its own writes' outages too, but a write that retries across a
    short outage never reports one: seen in fault injection, where the endpoint was replaced by
    an empty one within 8 s and no walk came. An endpoint that was only unreachable lost
    nothing (the projector resumes from its offsets), so that alone calls nothing: under load
    a check can time out now and then, and each walk reads every recent order.

    `on_read_model_reachable` is called when DynamoDB answers again after checks that did not
    reach it: what waits out the outage (the projector's backoff, up to a second) can try now.
    """

    async def postgres_up() -> bool:
        return bool(await pool.fetchval("SELECT 1"))

    components = [Component("postgres", postgres_up)]
    read_tiers: list[str] = []
    if dynamodb is not None:
        # The status table's creation time and when a check last reached it.
        created: list[object] = []
        reached: list[float] = []

        async def dynamodb_up() -> bool:
            reply = await dynamodb.describe_table(TableName=dynamodb_status_table)
            creation = reply.get("Table", {}).get("CreationDateTime")
            if created and creation != created[0] and on_read_model_back is not None:
                on_read_model_back(_epoch_seconds(creation), reached[0])
            created[:] = [creation]
            reached[:] = [time.time()]
            return True

        components.append(Component("dynamodb", dynamodb_up))
        if read is not None and "dynamodb" in read.tiers:
            read_tiers.append("dynamodb")
    feed = None if read is None else read.near_cache_feed
    if feed is not None:

        async def feed_live() -> bool:
            return feed.is_live()

        components.append(Component("near-cache", feed_live))
        read_tiers.append("near-cache")
    for task in role_tasks:

        async def running(task: asyncio.Task[Any] = task) -> bool:
            return not task.done()

        components.append(Component(task.get_name(), running))

    cache = None if read is None else read.near_cache

    def publish_cache_size() -> None:
        if cache is not None:
            metrics.NEAR_CACHE_ENTRIES.set(len(cache))
            metrics.NEAR_CACHE_BYTES.set(cache.bytes)

    return HealthMonitor(
        components,
        servicer=servicer,
        service_name=service_name,
        # Each role's task reports under its own name, e.g. "uoom.orders.projector".
        role_names={
            task.get_name(): f"{ORDER_SERVICE_HEALTH_PREFIX}.{task.get_name()}"
            for task in role_tasks
        },
        can_serve=lambda up: up["postgres"] or any(up[t] for t in read_tiers),
        on_tick=publish_cache_size,
        on_back=None
        if on_read_model_reachable is None
        else lambda name: on_read_model_reachable() if name == "dynamodb" else None,
    )


def _epoch_seconds(moment: object) -> float:
    """DescribeTable's CreationDateTime (a datetime from botocore) as epoch seconds; now when
    it is missing or of another type, so that the caller treats it as just happened."""
    return moment.timestamp() if isinstance(moment, datetime) else time.time()
