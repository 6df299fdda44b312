"""The relay's SQL over the outbox table: claim, mark published, measure, purge."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from uoom_orders.relay.records import OutboxRecord

# Advisory lock keys, constants shared by every relay process on the database. Distinct from
# the migration lock (0x756F6F6D).
PUBLISHER_LOCK_KEY = 0x756F6F6D_0001
"""Held for one claim transaction: one relay publishes at a time (see OutboxRelay)."""
PURGE_LOCK_KEY = 0x756F6F6D_0002
"""Held for one purge chunk: relays do not delete the same rows twice over."""

# Counting stops here, so a large backlog cannot make the metrics query slow.
STATS_ROW_CAP = 100_000


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """What is waiting in the outbox, as of one query."""

    pending: int
    """Committed rows not yet published (capped at STATS_ROW_CAP)."""
    held_back: int
    """Of those, rows not publishable yet: an older transaction is still open."""
    oldest_age_seconds: float
    """Age of the oldest unpublished row; 0 when there is none."""


@dataclass(frozen=True, slots=True)
class OldestWriter:
    """The open transaction that holds the xid horizon back, from pg_stat_activity."""

    pid: int
    application_name: str
    state: str
    open_seconds: float


class OutboxBatch:
    """Rows claimed in an open transaction; `mark_published()` commits, leaving rolls back."""

    def __init__(self, conn: asyncpg.Connection, records: list[OutboxRecord], mark_sql: str):
        self._conn = conn
        self.records = records
        self._mark_sql = mark_sql
        self.marked = False

    async def mark_published(self) -> None:
        """Marks the claimed rows published (committed when the claim's block ends)."""
        if self.records:
            await self._conn.execute(self._mark_sql, [r.id for r in self.records])
        self.marked = True


class PostgresOutboxStore:
    """Reads and retires outbox rows for the relay; the SQL is built once, here.

    With `respect_xid_horizon`, a row is claimed only once every transaction that started
    before it has ended (its xid is below the snapshot's xmin), so rows leave in id order
    even when a transaction holding a lower id commits late. Rows are found by
    `published_at IS NULL`, never by a high-water-mark id, so nothing is skipped either way.
    """

    def __init__(self, *, respect_xid_horizon: bool = True) -> None:
        self.respect_xid_horizon = respect_xid_horizon
        horizon = "AND xid < pg_snapshot_xmin(pg_current_snapshot())" if respect_xid_horizon else ""
        # Plain FOR UPDATE, not SKIP LOCKED: SKIP LOCKED would pass over an order's version N
        # that another claimer holds and take its version N+1. The advisory lock means there
        # is no other claimer, so this never waits; if one ever ran without the lock, it would
        # wait for the holder rather than publish out of order.
        self._claim = f"""
            SELECT id, event_id, order_id, event_type, version, payload, trace_context,
                   created_at
            FROM outbox
            WHERE published_at IS NULL {horizon}
            ORDER BY id
            LIMIT $1
            FOR UPDATE
        """
        self._mark = "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])"
        held_back = (
            "count(*) FILTER (WHERE xid >= pg_snapshot_xmin(pg_current_snapshot()))"
            if respect_xid_horizon
            else "0"
        )
        self._stats = f"""
            SELECT count(*) AS pending,
                   {held_back} AS held_back,
                   coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)::float8
                       AS oldest_age
            FROM (
                SELECT xid, created_at FROM outbox
                WHERE published_at IS NULL
                ORDER BY id
                LIMIT {STATS_ROW_CAP}
            ) AS unpublished
        """
        # The index on published_at (published rows only) finds the oldest chunk.
        self._purge = """
            DELETE FROM outbox
            WHERE id IN (
                SELECT id FROM outbox
                WHERE published_at < now() - $1::interval
                ORDER BY published_at
                LIMIT $2
            )
        """
        self._oldest_writer = """
            SELECT pid, coalesce(application_name, '') AS application_name,
                   coalesce(state, '') AS state,
                   extract(epoch FROM clock_timestamp() - xact_start)::float8 AS open_seconds
            FROM pg_stat_activity
            WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
            ORDER BY age(backend_xid) DESC
            LIMIT 1
        """

    @asynccontextmanager
    async def claim(
        self, conn: asyncpg.Connection, limit: int
    ) -> AsyncIterator[OutboxBatch | None]:
        """Opens a transaction and claims up to `limit` rows in id order.

        Yields None when another relay holds the publisher lock. Commits on leaving the block
        if `mark_published()` was called, else rolls back, so the rows stay unpublished.
        """
        transaction = conn.transaction()
        await transaction.start()
        try:
            # A transaction-level lock: released by commit or rollback, and by PostgreSQL when
            # the connection dies, so a crashed relay never blocks the others.
            if await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", PUBLISHER_LOCK_KEY):
                # A separate statement on purpose: in READ COMMITTED it takes a new snapshot
                # after the lock is held, so it sees what the previous holder marked published.
                rows = await conn.fetch(self._claim, limit)
                batch: OutboxBatch | None = OutboxBatch(
                    conn, [_record(row) for row in rows], self._mark
                )
            else:
                batch = None
            yield batch
        except BaseException:
            await _rollback_quietly(transaction)
            raise
        if batch is not None and batch.marked:
            await transaction.commit()
        else:
            await transaction.rollback()

    async def stats(self, conn: asyncpg.Connection) -> OutboxStats:
        """Counts unpublished rows and measures the oldest one's age."""
        row = await conn.fetchrow(self._stats)
        assert row is not None
        return OutboxStats(
            pending=int(row["pending"]),
            held_back=int(row["held_back"]),
            oldest_age_seconds=max(0.0, float(row["oldest_age"])),
        )

    async def oldest_writer(self, conn: asyncpg.Connection) -> OldestWriter | None:
        """The longest-running transaction that has an xid, if any (for a diagnostic log)."""
        row = await conn.fetchrow(self._oldest_writer)
        if row is None:
            return None
        return OldestWriter(
            pid=int(row["pid"]),
            application_name=str(row["application_name"]),
            state=str(row["state"]),
            open_seconds=float(row["open_seconds"] or 0.0),
        )

    async def purge_chunk(
        self, conn: asyncpg.Connection, retention: timedelta, limit: int
    ) -> int | None:
        """Deletes up to `limit` rows published more than `retention` ago, in one transaction.

        Returns how many, or None when another relay is purging right now.
        """
        async with conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", PURGE_LOCK_KEY):
                return None
            status: str = await conn.execute(self._purge, retention, limit)
        # "DELETE <count>"
        return int(status.rsplit(" ", 1)[-1])


async def _rollback_quietly(transaction: asyncpg.transaction.Transaction) -> None:
    # Already failing: a broken connection must not replace the original error.
    with contextlib.suppress(Exception):
        await transaction.rollback()


def _record(row: asyncpg.Record) -> OutboxRecord:
    trace = row["trace_context"]
    # asyncpg returns jsonb as text unless a codec is set; accept both.
    context = json.loads(trace) if isinstance(trace, str) else dict(trace or {})
    return OutboxRecord(
        id=row["id"],
        event_id=row["event_id"],
        order_id=row["order_id"],
        event_type=row["event_type"],
        version=row["version"],
        payload=bytes(row["payload"]),
        created_at=row["created_at"],
        trace_context={
            k: v for k, v in context.items() if isinstance(k, str) and isinstance(v, str)
        },
    )
