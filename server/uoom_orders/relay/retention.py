"""Retention: published outbox rows are deleted once older than the configured period."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from uoom_orders.observability.metrics import OUTBOX_PURGED
from uoom_orders.postgres_outages import POSTGRES_UNAVAILABLE
from uoom_orders.relay.config import RelayConfig
from uoom_orders.relay.outbox_store import PostgresOutboxStore

_log = logging.getLogger(__name__)


async def purge_published(
    pool: asyncpg.Pool, store: PostgresOutboxStore, config: RelayConfig, stopping: asyncio.Event
) -> None:
    """Purges at start, then every `purge_interval`, until `stopping` is set."""
    while not stopping.is_set():
        try:
            async with pool.acquire() as conn:
                purged = await _purge(conn, store, config, stopping)
            if purged:
                _log.info("outbox relay: purged %d published rows", purged)
        except Exception as error:
            # An outage says enough in a line; anything else gets a trace.
            unexpected = not isinstance(error, POSTGRES_UNAVAILABLE)
            _log.warning("outbox relay: purge failed: %s", error, exc_info=unexpected)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), config.purge_interval)


async def _purge(
    conn: asyncpg.Connection,
    store: PostgresOutboxStore,
    config: RelayConfig,
    stopping: asyncio.Event,
) -> int:
    # Bounded chunks, each its own short transaction: a big delete would hold the xid horizon
    # back (delaying every newer row) and bloat one transaction.
    total = 0
    while not stopping.is_set():
        deleted = await store.purge_chunk(conn, config.retention, config.purge_chunk_size)
        if deleted is None:  # another relay is purging
            break
        total += deleted
        OUTBOX_PURGED.inc(deleted)
        if deleted < config.purge_chunk_size:
            break
    return total
