"""The relay's publish loop against a scripted outbox (no servers): when it looks again.

The race it covers: the drain claims nothing (an older transaction holds the row back), that
transaction rolls back (no NOTIFY), and the count that follows no longer sees the row as held
back. The row is publishable, so the relay must look again soon, not at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest

from uoom_orders.relay.config import RelayConfig
from uoom_orders.relay.outbox_relay import OutboxRelay
from uoom_orders.relay.outbox_store import OutboxStats

POLL_SECONDS = 30.0


class ScriptedStore:
    """Claims `claims[i]` rows and counts `stats[i]` at the i-th cycle (the last repeats)."""

    def __init__(self, claims: list[int], stats: list[OutboxStats]) -> None:
        self._claims = claims
        self._stats = stats
        self.cycles = 0

    @contextlib.asynccontextmanager
    async def claim(self, conn: Any, limit: int) -> AsyncIterator[Any]:
        count = self._claims[min(self.cycles, len(self._claims) - 1)]
        records = [SimpleNamespace(id=i, created_at=datetime.now(UTC)) for i in range(count)]

        async def mark_published() -> None:
            pass

        yield SimpleNamespace(records=records, mark_published=mark_published)

    async def stats(self, conn: Any) -> OutboxStats:
        stats = self._stats[min(self.cycles, len(self._stats) - 1)]
        self.cycles += 1
        return stats


class Pool:
    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[object]:
        yield object()


class Publisher:
    def __init__(self) -> None:
        self.published = asyncio.Event()

    async def publish_batch(self, records: list[Any]) -> None:
        if records:
            self.published.set()


@contextlib.asynccontextmanager
async def _publish_loop(store: ScriptedStore, publisher: Publisher) -> AsyncIterator[None]:
    """The relay's publish loop over `store`, running until the block ends."""
    config = RelayConfig(
        database_url="postgresql://unused@127.0.0.1:1/unused",
        batch_size=100,
        poll_interval=POLL_SECONDS,
        retention=timedelta(hours=1),
        listen=False,
    )
    relay = OutboxRelay(config, publisher)  # type: ignore[arg-type]
    relay._store = store  # type: ignore[assignment]
    loop = asyncio.create_task(relay._publish_loop(Pool()))
    try:
        yield
    finally:
        relay.request_stop()
        await loop


async def _published_within(store: ScriptedStore, seconds: float) -> bool:
    publisher = Publisher()
    async with _publish_loop(store, publisher):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(publisher.published.wait(), seconds)
        return publisher.published.is_set()


async def test_a_row_freed_between_the_claim_and_the_count_is_published_soon() -> None:
    nothing_claimed_then_one_left = ScriptedStore(
        claims=[0, 1, 0],
        stats=[
            OutboxStats(pending=1, held_back=0, oldest_age_seconds=0.1),  # freed meanwhile
            OutboxStats(pending=0, held_back=0, oldest_age_seconds=0.0),
        ],
    )
    # Well before the 30 s poll (the recheck starts at 5 ms).
    assert await _published_within(nothing_claimed_then_one_left, 5.0)


async def test_an_empty_outbox_waits_for_the_poll() -> None:
    empty = ScriptedStore(
        claims=[0, 1], stats=[OutboxStats(pending=0, held_back=0, oldest_age_seconds=0.0)]
    )
    assert not await _published_within(empty, 0.5)
    assert empty.cycles == 1


class FailingStore(ScriptedStore):
    """Every claim fails with `error`."""

    def __init__(self, error: Exception) -> None:
        super().__init__(claims=[0], stats=[OutboxStats(0, 0, 0.0)])
        self._error = error

    @contextlib.asynccontextmanager
    async def claim(self, conn: Any, limit: int) -> AsyncIterator[Any]:
        raise self._error
        yield  # an async generator, as the real claim is


@pytest.mark.parametrize(
    ("error", "traced"),
    [
        # PostgreSQL going away (a fast shutdown, pg_terminate_backend) or being read-only
        # (a failover) is an outage of the moment: a line each time, no traceback.
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), False),
        (asyncpg.exceptions.CrashShutdownError("crash of another server process"), False),
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"), False),
        (asyncpg.exceptions.ReadOnlySQLTransactionError("read-only transaction"), False),
        (ConnectionRefusedError(111, "Connection refused"), False),
        # Anything else may be a bug: its traceback is what finds it.
        (RuntimeError("unexpected"), True),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
async def test_a_failed_cycle_is_traced_only_when_unexpected(
    error: Exception, traced: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="uoom_orders.relay.outbox_relay")
    async with _publish_loop(FailingStore(error), Publisher()):
        for _ in range(200):
            if any("publishing failed" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.01)
    failures = [r for r in caplog.records if "publishing failed" in r.getMessage()]
    assert failures, "the failed cycle was not logged"
    assert all(bool(r.exc_info) is traced for r in failures)
    assert str(error) in failures[0].getMessage()
