"""The read path as configured: the tiers READ_TIERS names, fastest first (near cache, DAX,
DynamoDB), then PostgreSQL; with the near cache's fill rule and the DynamoDB write-back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

import asyncpg
from uoom.orders.v1 import order_pb2

from uoom_orders.dynamodb.tables import TableNames
from uoom_orders.dynamodb.writer import ReadModelWriter
from uoom_orders.read.cache_feed import NearCacheFeed
from uoom_orders.read.circuit_breaker import CircuitBreaker
from uoom_orders.read.item_store import ItemReadStore
from uoom_orders.read.near_cache import NearCache, NearCacheStore
from uoom_orders.read.near_cache_reads import NearCacheReads
from uoom_orders.read.page_token import PageTokenCodec
from uoom_orders.read.postgres_store import PostgresOrderReadStore
from uoom_orders.read.tiers import ReadPath, Tier
from uoom_orders.read.version_floors import VersionFloors
from uoom_orders.read.write_back import ReadModelWriteBack

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReadPathConfig:
    """What the read path is built from (bootstrap makes it from the settings)."""

    tiers: tuple[str, ...]  # of "near-cache", "dax", "dynamodb"; PostgreSQL is always last
    tier_timeout_seconds: float
    postgres_timeout_seconds: float
    breaker_failure_threshold: int
    breaker_reset_seconds: float
    table_prefix: str
    # How long the read model and the near cache keep an order they were given.
    order_ttl_hours: int
    # The near cache follows the event topic; without brokers it is off.
    kafka_bootstrap_servers: str | None
    kafka_topic: str
    kafka_fetch_max_wait_ms: int
    near_cache_max_entries: int
    # Orders whose newest answered version this replica remembers (version_floors.py).
    read_floor_max_entries: int
    near_cache_max_bytes: int
    # How long an order copied up from a lower tier stays in the near cache.
    near_cache_fill_ttl_seconds: float
    dax_endpoint: str | None
    dax_threads: int
    aws_region: str


@dataclass(frozen=True, slots=True)
class AssembledReadPath:
    """The read path and the parts of it the service watches."""

    reads: ReadPath
    tiers: list[str]  # names in the order asked, PostgreSQL last
    near_cache: NearCache | None
    near_cache_feed: NearCacheFeed | None
    # The status reads the near cache answers in one step; None without a near cache.
    near_cache_reads: NearCacheReads | None
    write_back: ReadModelWriteBack | None


def page_tokens(secret: bytes) -> PageTokenCodec:
    """The page-token codec of PAGE_TOKEN_SECRET; a random key (with a warning) without one."""
    key = secret
    if not key:
        _log.warning(
            "PAGE_TOKEN_SECRET is not set: using a random key, so page tokens do not "
            "survive a restart and do not work across replicas"
        )
        key = secrets.token_bytes(32)
    return PageTokenCodec(key)


def _breaker(name: str, config: ReadPathConfig) -> CircuitBreaker:
    return CircuitBreaker(
        name,
        failure_threshold=config.breaker_failure_threshold,
        reset_seconds=config.breaker_reset_seconds,
    )


@contextlib.asynccontextmanager
async def read_path(
    config: ReadPathConfig, pool: asyncpg.Pool, dynamodb: Any | None
) -> AsyncIterator[AssembledReadPath]:
    """Starts the tiers' background parts (the near cache's feed, the write-back); on exit
    stops them in reverse order. `dynamodb` is an aioboto3 client, None without DynamoDB."""
    async with AsyncExitStack() as stack:
        postgres = PostgresOrderReadStore(pool)
        tables = TableNames.for_prefix(config.table_prefix)
        # Retries of UnprocessedKeys stop at half the tier's budget, leaving the other half
        # for the last call to answer; the keys still unprocessed then go to the next tier.
        unprocessed_retry = config.tier_timeout_seconds / 2
        tiers: list[Tier] = []
        cache: NearCache | None = None
        feed: NearCacheFeed | None = None
        near_cache_reads: NearCacheReads | None = None
        write_back: ReadModelWriteBack | None = None
        floors = VersionFloors(config.read_floor_max_entries)

        if "near-cache" in config.tiers:
            if config.kafka_bootstrap_servers is None:
                _log.warning("near cache off: it needs KAFKA_BOOTSTRAP_SERVERS to stay coherent")
            else:
                cache = NearCache(
                    max_entries=config.near_cache_max_entries,
                    max_bytes=config.near_cache_max_bytes,
                    floors=floors,
                )
                feed = NearCacheFeed(
                    cache,
                    bootstrap_servers=config.kafka_bootstrap_servers,
                    topic=config.kafka_topic,
                    entry_ttl_seconds=config.order_ttl_hours * 3600,
                    fetch_max_wait_ms=config.kafka_fetch_max_wait_ms,
                )
                await stack.enter_async_context(feed)
                tier = Tier(NearCacheStore(cache, feed.is_live), serves_lists=False, local=True)
                tiers.append(tier)
                near_cache_reads = NearCacheReads(cache, feed.is_live, tier)

        if "dax" in config.tiers and config.dax_endpoint is not None:
            from uoom_orders.read.dax_client import AsyncDaxClient, LazyDaxClient, connect_dax

            lazy = LazyDaxClient(partial(connect_dax, config.dax_endpoint, config.aws_region))
            if not await asyncio.to_thread(lazy.try_connect):
                _log.warning(
                    "DAX at %s cannot be reached: reads go to the next tier until it can",
                    config.dax_endpoint,
                )
            dax = AsyncDaxClient(lazy, max_workers=config.dax_threads)
            stack.callback(dax.close)
            # Not for lists: DAX's query cache is not invalidated by item writes.
            tiers.append(
                Tier(
                    ItemReadStore(
                        dax, tables, name="dax", unprocessed_retry_seconds=unprocessed_retry
                    ),
                    timeout=config.tier_timeout_seconds,
                    breaker=_breaker("dax", config),
                    serves_lists=False,
                )
            )

        if "dynamodb" in config.tiers and dynamodb is not None:
            tiers.append(
                Tier(
                    ItemReadStore(
                        dynamodb,
                        tables,
                        name="dynamodb",
                        unprocessed_retry_seconds=unprocessed_retry,
                        count_capacity=True,
                    ),
                    timeout=config.tier_timeout_seconds,
                    breaker=_breaker("dynamodb", config),
                )
            )
            write_back = ReadModelWriteBack(
                ReadModelWriter(dynamodb, config.table_prefix), ttl_hours=config.order_ttl_hours
            )
            await stack.enter_async_context(write_back)

        names = [t.name for t in tiers] + [postgres.name]
        _log.info("read path: %s", " → ".join(names))
        source = Tier(
            postgres,
            timeout=config.postgres_timeout_seconds,
            breaker=_breaker("postgres", config),
        )
        reads = ReadPath(
            tiers,
            source,
            remember=_floor_raise(floors) if cache is None else _near_cache_fill(cache, config),
            write_back=write_back,
            memory=floors if cache is None else cache,
            memory_ttl_seconds=config.near_cache_fill_ttl_seconds,
        )
        yield AssembledReadPath(reads, names, cache, feed, near_cache_reads, write_back)


def _near_cache_fill(
    cache: NearCache, config: ReadPathConfig
) -> Callable[[order_pb2.OrderSummary, order_pb2.Order | None], None]:
    """What a lower tier answers is kept in the near cache for a short while."""
    fill_ttl = config.near_cache_fill_ttl_seconds

    def remember(summary: order_pb2.OrderSummary, order: order_pb2.Order | None) -> None:
        cache.put(summary, order, time.time() + fill_ttl)

    return remember


def _floor_raise(
    floors: VersionFloors,
) -> Callable[[order_pb2.OrderSummary, order_pb2.Order | None], None]:
    """Without a near cache, what a lower tier answers still raises this replica's floor."""

    def remember(summary: order_pb2.OrderSummary, order: order_pb2.Order | None) -> None:
        floors.raise_to(UUID(summary.order_id), summary.version)

    return remember
