"""The relay's publish loop against a scripted outbox (no servers): when it looks again.

The race it covers: the drain claims nothing (an older transaction holds the row back), that
transaction rolls back (no NOTIFY), and the count that follows no longer sees the row as held
back. The row is publishable, so the relay must look again soon, not at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

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


async def _published_within(store: ScriptedStore, seconds: float) -> bool:
    config = RelayConfig(
        database_url="postgresql://unused@127.0.0.1:1/unused",
        batch_size=100,
        poll_interval=POLL_SECONDS,
        retention=timedelta(hours=1),
        listen=False,
    )
    publisher = Publisher()
    relay = OutboxRelay(config, publisher)  # type: ignore[arg-type]
    relay._store = store  # type: ignore[assignment]
    loop = asyncio.create_task(relay._publish_loop(Pool()))
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(publisher.published.wait(), seconds)
        return publisher.published.is_set()
    finally:
        relay.request_stop()
        await loop


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
