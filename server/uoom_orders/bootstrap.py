"""All the wiring: each role is an async context manager (enter: running, exit: drained),
composed here in one AsyncExitStack in start order and unwound in reverse. What the parts
are and how they behave lives with them; this module only chooses and connects them."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import asyncpg

from uoom_orders.api.grpc_server import ORDER_SERVICE, GrpcServer, server_credentials
from uoom_orders.api.servicer import OrderServicer
from uoom_orders.application.queries import OrderQueries
from uoom_orders.config import ROLE_NAMES, Settings
from uoom_orders.config.components import (
    dynamodb_client_for,
    keepalive,
    outbox_relay,
    projection_client_for,
    projector_config,
    read_path_config,
    tracing_config,
    watch_limits,
)
from uoom_orders.dynamodb.tables import TableNames
from uoom_orders.dynamodb.writer import ReadModelWriter
from uoom_orders.observability.health import HealthMonitor
from uoom_orders.observability.metrics_endpoint import metrics_endpoint
from uoom_orders.observability.service_health import service_health
from uoom_orders.observability.tracing import inject_current
from uoom_orders.observability.tracing_setup import configure_tracing
from uoom_orders.postgres_pools import postgres_pool
from uoom_orders.projector import OrderProjector
from uoom_orders.projector.reconcile import Reconciler, ReconcileSchedule
from uoom_orders.read.assembly import AssembledReadPath, page_tokens, read_path
from uoom_orders.read.cache_feed import NearCacheFeed
from uoom_orders.read.page_token import PageTokenCodec
from uoom_orders.read.write_back import ReadModelWriteBack
from uoom_orders.relay import DEAD_LETTER_TOPIC_PARTITIONS, EVENT_TOPIC_PARTITIONS, ensure_topics
from uoom_orders.watch import Watches, WatchHub
from uoom_orders.write.durability import check_durability
from uoom_orders.write.unit_of_work import PostgresUnitOfWork

_log = logging.getLogger(__name__)

ROLES = ROLE_NAMES


@dataclass(frozen=True)
class RunningService:
    """What a started service exposes to its runner and to tests."""

    health: HealthMonitor
    # Long-running role tasks; if one ends by itself, the process shuts down (exit 1).
    tasks: tuple[asyncio.Task[Any], ...]
    server: GrpcServer | None
    read: AssembledReadPath | None
    watches: Watches | None = None

    @property
    def port(self) -> int:
        if self.server is None:
            raise RuntimeError("this process does not run the api role")
        return self.server.port

    @property
    def near_cache_feed(self) -> NearCacheFeed | None:
        return None if self.read is None else self.read.near_cache_feed

    @property
    def write_back(self) -> ReadModelWriteBack | None:
        return None if self.read is None else self.read.write_back


@contextlib.asynccontextmanager
async def _postgres_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await postgres_pool(
        settings.database_url,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        command_timeout=30,
    )
    try:
        yield pool
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def _projector_role(
    settings: Settings, pool: asyncpg.Pool, dynamodb: Any
) -> AsyncIterator[tuple[OrderProjector, Callable[[float, float], None] | None]]:
    """The projector, and the reconciliation schedule that a read-model outage triggers (and
    how to trigger it; None when the schedule is off)."""
    async with AsyncExitStack() as stack:
        schedule = None
        if settings.reconcile_interval_seconds > 0:
            reconciler = Reconciler(
                pool,
                dynamodb,
                settings.dynamodb_table_prefix,
                ttl_hours=settings.order_cache_ttl_hours,
            )
            schedule = ReconcileSchedule(
                reconciler,
                pool,
                settings.reconcile_interval_seconds,
                scan_every=settings.reconcile_scan_every_passes,
            )
        # A client of its own: the projector's writes retry in one layer (see
        # projection_client_for); reconciliation and the read path keep botocore's retries.
        writes = await stack.enter_async_context(projection_client_for(settings))
        projector = OrderProjector(
            ReadModelWriter(writes, settings.dynamodb_table_prefix),
            projector_config(settings),
            on_recovered=None if schedule is None else schedule.trigger,
        )
        await stack.enter_async_context(projector)
        if schedule is not None:
            await stack.enter_async_context(schedule)
        yield projector, None if schedule is None else schedule.trigger


@contextlib.asynccontextmanager
async def _watches(
    settings: Settings, read: AssembledReadPath, tokens: PageTokenCodec
) -> AsyncIterator[Watches | None]:
    """The watches, fed by the near cache's feed (None without it: nothing to watch from)."""
    feed = read.near_cache_feed
    if feed is None:
        yield None
        return
    hub = WatchHub(watch_limits(settings), feed.is_live)
    feed.listen(hub.publish, hub.feed_gap)
    try:
        async with hub:
            yield Watches(hub, read.reads, tokens)
    finally:
        feed.listen(None)


def _grpc_server(
    settings: Settings, servicer: OrderServicer, watches: Watches | None
) -> GrpcServer:
    credentials = None
    if settings.grpc_tls_cert_file and settings.grpc_tls_key_file:
        credentials = server_credentials(
            settings.grpc_tls_cert_file,
            settings.grpc_tls_key_file,
            settings.grpc_tls_client_ca_file,
        )
    return GrpcServer(
        servicer,
        settings.grpc_host,
        settings.grpc_port,
        settings.shutdown_grace_seconds,
        credentials=credentials,
        keepalive=keepalive(settings),
        # Watches end at once (UNAVAILABLE, to resume elsewhere) instead of holding the grace.
        before_drain=None if watches is None else watches.hub.shut_down,
    )


def _wants_dynamodb(settings: Settings, roles: Collection[str]) -> bool:
    return "projector" in roles or ("api" in roles and "dynamodb" in settings.read_tiers)


@contextlib.asynccontextmanager
async def running_service(
    settings: Settings, roles: Collection[str] = ("api",)
) -> AsyncIterator[RunningService]:
    """Starts the given roles; on exit stops taking calls, drains, then closes the stores."""
    async with AsyncExitStack() as stack:
        stack.enter_context(configure_tracing(tracing_config(settings)))
        if settings.metrics_port:
            stack.enter_context(metrics_endpoint(settings.metrics_port))
        pool = await stack.enter_async_context(_postgres_pool(settings))
        await check_durability(pool)
        if {"relay", "projector"} & set(roles):
            await ensure_topics(
                settings.require_kafka("the relay and projector roles"),
                {
                    settings.kafka_topic: EVENT_TOPIC_PARTITIONS,
                    settings.dead_letter_topic: DEAD_LETTER_TOPIC_PARTITIONS,
                },
            )
        tasks: list[asyncio.Task[Any]] = []
        if "relay" in roles:
            relay = await stack.enter_async_context(outbox_relay(settings))
            assert relay.task is not None  # running once entered
            tasks.append(relay.task)
        dynamodb = None
        if _wants_dynamodb(settings, roles):
            dynamodb = await stack.enter_async_context(dynamodb_client_for(settings))
        reconcile_now = projector = None
        if "projector" in roles:
            projector, reconcile_now = await stack.enter_async_context(
                _projector_role(settings, pool, dynamodb)
            )
            tasks.append(projector.task)
        read = server = watches = None
        if "api" in roles:
            read = await stack.enter_async_context(
                read_path(read_path_config(settings), pool, dynamodb)
            )
            tokens = page_tokens(settings.page_token_secret)
            queries = OrderQueries(read.reads, tokens)
            watches = await stack.enter_async_context(_watches(settings, read, tokens))
            servicer = OrderServicer(
                lambda: PostgresUnitOfWork(pool),
                queries,
                trace_context=inject_current,
                watches=watches,
                near_cache=read.near_cache_reads,
            )
            server = await stack.enter_async_context(_grpc_server(settings, servicer, watches))
        monitor = service_health(
            pool=pool,
            dynamodb=dynamodb,
            dynamodb_status_table=TableNames.for_prefix(settings.dynamodb_table_prefix).status,
            read=read,
            role_tasks=tasks,
            servicer=None if server is None else server.health,
            service_name=ORDER_SERVICE,
            on_read_model_back=reconcile_now,
            on_read_model_reachable=None if projector is None else projector.retry_now,
        )
        health = await stack.enter_async_context(monitor)
        yield RunningService(health, tuple(tasks), server, read, watches)


async def serve_until_signalled(settings: Settings, roles: Collection[str] = ROLES) -> int:
    """Runs the roles until SIGTERM or SIGINT, then shuts them down gracefully; returns the
    exit code: 0 after a signal, 1 when a role ended by itself."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with running_service(settings, roles) as service:
            # What starting made (modules, clients, pools, the metrics registry) lives as long
            # as the process: out of the collector's sight, a full collection walks only what
            # came after. Walking everything stalled the event loop for 100-300 ms here, every
            # few seconds under load: the tail of the relay's and the watches' latency.
            gc.collect()
            gc.freeze()
            stopped = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait(
                [stopped, *service.tasks], return_when=asyncio.FIRST_COMPLETED
            )
            if stopped in done:
                _log.info("signal received: shutting down")
                return 0
            stopped.cancel()
            for task in done:
                _log.error("role task %s ended by itself: %r", task.get_name(), task.exception())
            return 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
