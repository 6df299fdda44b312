"""All the wiring: stores, tiers, handlers, server and background roles, started in order and
stopped in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Collection
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import prometheus_client

from uoom_orders.api.grpc_server import ORDER_SERVICE, GrpcServer, server_credentials
from uoom_orders.api.servicer import OrderServicer
from uoom_orders.application.queries import OrderQueries
from uoom_orders.config import Settings
from uoom_orders.config.components import (
    dynamodb_client_for,
    outbox_relay,
    projector_config,
    tracing_config,
)
from uoom_orders.observability import metrics
from uoom_orders.observability.health import Component, HealthMonitor
from uoom_orders.observability.tracing import inject_current
from uoom_orders.observability.tracing_setup import configure_tracing
from uoom_orders.projector import OrderProjector
from uoom_orders.projector.reconcile import Reconciler, ReconcileSchedule
from uoom_orders.read.assembly import ReadPathConfig, page_tokens, read_path
from uoom_orders.read.cache_feed import NearCacheFeed
from uoom_orders.read.near_cache import NearCache
from uoom_orders.read.write_back import ReadModelWriteBack
from uoom_orders.readmodel.tables import TableNames
from uoom_orders.readmodel.writer import ReadModelWriter
from uoom_orders.relay import (
    DEAD_LETTER_TOPIC_PARTITIONS,
    EVENT_TOPIC_PARTITIONS,
    ensure_topics,
)
from uoom_orders.write.durability import check_durability
from uoom_orders.write.unit_of_work import PostgresUnitOfWork

_log = logging.getLogger(__name__)

ROLES = ("api", "relay", "projector")


@dataclass
class RunningService:
    """What a started service exposes to its runner and to tests."""

    roles: frozenset[str]
    server: GrpcServer | None = None
    pool: asyncpg.Pool | None = None
    near_cache: NearCache | None = None
    near_cache_feed: NearCacheFeed | None = None
    write_back: ReadModelWriteBack | None = None
    tiers: list[str] = field(default_factory=list)
    health: HealthMonitor | None = None
    background: list[Any] = field(default_factory=list)
    # Long-running role tasks; if one ends by itself, the process shuts down (exit 1).
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def port(self) -> int:
        if self.server is None:
            raise RuntimeError("this process does not run the api role")
        return self.server.port


def _read_path_config(settings: Settings) -> ReadPathConfig:
    return ReadPathConfig(
        tiers=settings.read_tiers,
        tier_timeout_seconds=settings.read_tier_timeout_ms / 1000,
        postgres_timeout_seconds=settings.postgres_read_timeout_ms / 1000,
        breaker_failure_threshold=settings.breaker_failure_threshold,
        breaker_reset_seconds=settings.breaker_reset_seconds,
        table_prefix=settings.dynamodb_table_prefix,
        order_ttl_hours=settings.order_cache_ttl_hours,
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        kafka_topic=settings.kafka_topic,
        kafka_fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        near_cache_max_entries=settings.near_cache_max_entries,
        near_cache_max_bytes=settings.near_cache_max_mb * 1024 * 1024,
        near_cache_fill_ttl_seconds=settings.near_cache_fill_ttl_seconds,
        dax_endpoint=settings.dax_endpoint,
        dax_threads=settings.dax_threads,
        aws_region=settings.aws_region,
    )


def _serve_metrics(port: int, stack: AsyncExitStack) -> None:
    """Prometheus text format on its own port, in prometheus-client's own thread."""
    server, thread = prometheus_client.start_http_server(port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    stack.callback(stop)
    _log.info("metrics on http://0.0.0.0:%d/metrics", port)


async def _ensure_topics(settings: Settings) -> None:
    await ensure_topics(
        settings.require_kafka("the relay and projector roles"),
        {
            settings.kafka_topic: EVENT_TOPIC_PARTITIONS,
            settings.dead_letter_topic: DEAD_LETTER_TOPIC_PARTITIONS,
        },
    )


async def _start_projector(
    settings: Settings,
    stack: AsyncExitStack,
    pool: asyncpg.Pool,
    dynamodb: Any,
    service: RunningService,
) -> None:
    schedule = None
    if settings.reconcile_interval_seconds > 0:
        reconciler = Reconciler(
            pool,
            dynamodb,
            settings.dynamodb_table_prefix,
            ttl_hours=settings.order_cache_ttl_hours,
        )
        schedule = ReconcileSchedule(reconciler, pool, settings.reconcile_interval_seconds)
    projector = OrderProjector(
        ReadModelWriter(dynamodb, settings.dynamodb_table_prefix),
        projector_config(settings),
        on_recovered=None if schedule is None else schedule.trigger,
    )
    await stack.enter_async_context(projector)
    service.background.append(projector)
    service.tasks.append(projector.task)
    if schedule is not None:
        await stack.enter_async_context(schedule)


def _health_monitor(
    settings: Settings, service: RunningService, pool: asyncpg.Pool, dynamodb: Any | None
) -> HealthMonitor:
    """Watches every store and role this process uses (see observability/health.py)."""

    async def postgres_up() -> bool:
        return bool(await pool.fetchval("SELECT 1"))

    components = [Component("postgres", postgres_up)]
    read_tiers: list[str] = []
    if dynamodb is not None:
        table = TableNames.for_prefix(settings.dynamodb_table_prefix).status

        async def dynamodb_up() -> bool:
            await dynamodb.describe_table(TableName=table)
            return True

        components.append(Component("dynamodb", dynamodb_up))
        if "dynamodb" in service.tiers:
            read_tiers.append("dynamodb")
    feed = service.near_cache_feed
    if feed is not None:

        async def feed_live() -> bool:
            return feed.is_live()

        components.append(Component("near-cache", feed_live))
        read_tiers.append("near-cache")
    for task in service.tasks:

        async def running(task: asyncio.Task[None] = task) -> bool:
            return not task.done()

        components.append(Component(task.get_name(), running))

    cache = service.near_cache

    def publish_cache_size() -> None:
        if cache is not None:
            metrics.NEAR_CACHE_ENTRIES.set(len(cache))
            metrics.NEAR_CACHE_BYTES.set(cache.bytes)

    return HealthMonitor(
        components,
        servicer=None if service.server is None else service.server.health,
        service_name=ORDER_SERVICE,
        # Each role's task reports under its own name, e.g. "uoom.orders.projector".
        role_names={task.get_name(): f"uoom.orders.{task.get_name()}" for task in service.tasks},
        # Degraded is still serving; only with no read tier and no PostgreSQL is it not.
        can_serve=lambda up: up["postgres"] or any(up[t] for t in read_tiers),
        on_tick=publish_cache_size,
    )


def _wants_dynamodb(settings: Settings, roles: Collection[str]) -> bool:
    return "projector" in roles or ("api" in roles and "dynamodb" in settings.read_tiers)


@contextlib.asynccontextmanager
async def running_service(
    settings: Settings, roles: Collection[str] = ("api",)
) -> AsyncIterator[RunningService]:
    """Starts the given roles; on exit stops taking calls, drains, then closes the stores."""
    service = RunningService(roles=frozenset(roles))
    async with AsyncExitStack() as stack:
        stack.enter_context(configure_tracing(tracing_config(settings)))
        if settings.metrics_port:
            _serve_metrics(settings.metrics_port, stack)
        pool = await asyncpg.create_pool(
            settings.database_url,
            min_size=settings.db_pool_min_size,
            max_size=settings.db_pool_max_size,
            command_timeout=30,
        )
        stack.push_async_callback(pool.close)
        service.pool = pool
        await check_durability(pool)
        if {"relay", "projector"} & service.roles:
            await _ensure_topics(settings)
        if "relay" in roles:
            relay = outbox_relay(settings)
            await stack.enter_async_context(relay)
            service.background.append(relay)
            if relay.task is not None:
                service.tasks.append(relay.task)
        dynamodb = None
        if _wants_dynamodb(settings, roles):
            dynamodb = await stack.enter_async_context(dynamodb_client_for(settings))
        if "projector" in roles:
            await _start_projector(settings, stack, pool, dynamodb, service)
        if "api" in roles:
            assembled = await stack.enter_async_context(
                read_path(_read_path_config(settings), pool, dynamodb)
            )
            service.tiers, service.write_back = assembled.tiers, assembled.write_back
            service.near_cache = assembled.near_cache
            service.near_cache_feed = assembled.near_cache_feed
            queries = OrderQueries(assembled.reads, page_tokens(settings.page_token_secret))
            servicer = OrderServicer(
                lambda: PostgresUnitOfWork(pool), queries, trace_context=inject_current
            )
            credentials = None
            if settings.grpc_tls_cert_file and settings.grpc_tls_key_file:
                credentials = server_credentials(
                    settings.grpc_tls_cert_file,
                    settings.grpc_tls_key_file,
                    settings.grpc_tls_client_ca_file,
                )
            server = GrpcServer(
                servicer,
                settings.grpc_host,
                settings.grpc_port,
                settings.shutdown_grace_seconds,
                credentials=credentials,
            )
            await stack.enter_async_context(server)
            service.server = server
        service.health = await stack.enter_async_context(
            _health_monitor(settings, service, pool, dynamodb)
        )
        yield service


async def serve_until_signalled(settings: Settings, roles: Collection[str] = ROLES) -> int:
    """Runs the roles until SIGTERM or SIGINT, then shuts them down gracefully; returns the
    exit code: 0 after a signal, 1 when a role ended by itself."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with running_service(settings, roles) as service:
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
